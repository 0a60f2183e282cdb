//! `hivewatch consume`: a downstream consumer of the Redis stream, and the reference for writing one.
//!
//! The pattern (at-least-once, any number of consumers in a group):
//! 1. `XGROUP CREATE <stream> <group> $ MKSTREAM` once (an existing group is fine).
//! 2. Loop: first `XAUTOCLAIM <stream> <group> <me> <min-idle> <cursor>` takes over entries that another consumer
//!    read but did not acknowledge for `min-idle` (it died, or hangs); then
//!    `XREADGROUP GROUP <group> <me> COUNT n BLOCK ms STREAMS <stream> >` reads new entries.
//! 3. Handle each entry, then `XACK <stream> <group> <id>`. An entry handled but not acknowledged (crash between
//!    the two) is handled again by whoever claims it: handlers must tolerate repeats (the `event_id` field is the
//!    idempotency key).

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamReadOptions, StreamReadReply,
};
use serde_json::Value;

use crate::config::{Secret, parse_duration};

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Redis URL.
    #[arg(long, env = "HIVEWATCH_REDIS_URL")]
    pub redis_url: Secret,
    /// Key of the stream hivewatch writes.
    #[arg(
        long,
        env = "HIVEWATCH_REDIS_STREAM_KEY",
        default_value = "hivewatch:events"
    )]
    pub stream_key: String,
    /// Consumer group (created at the end of the stream when it does not exist).
    #[arg(long, default_value = "hivewatch-consumers")]
    pub group: String,
    /// This consumer's name within the group; keep it stable across restarts to resume its own pending entries.
    #[arg(long)]
    pub consumer: String,
    /// Take over entries another consumer has left unacknowledged for this long (`30s`, `5m`).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub claim_idle: Duration,
    /// Create the group at the start of the stream (`0`) instead of its end, to read what is already there.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after this many entries (default: run until interrupted).
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// Print entries as JSON lines (`{"id":…,"event":…}`) instead of one readable line each.
    #[arg(long)]
    pub json: bool,
}

const READ_COUNT: usize = 100;
const BLOCK: Duration = Duration::from_millis(1000);

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = redis::Client::open(args.redis_url.0.as_str()).context("--redis-url")?;
    // XREADGROUP blocks for up to BLOCK: the connection must wait longer than that for an answer.
    let mut conn = client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(Some(BLOCK * 5)),
        )
        .await
        .context("cannot connect to Redis")?;
    let start = if args.from_start { "0" } else { "$" };
    let created: redis::RedisResult<()> = conn
        .xgroup_create_mkstream(&args.stream_key, &args.group, start)
        .await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e).context("XGROUP CREATE");
    }
    let mut handled = 0u64;
    let done = |n: u64| args.exit_after.is_some_and(|max| n >= max);
    // Never take more than is left to handle: what is read and not acknowledged waits for a claim.
    let batch = |n: u64| {
        args.exit_after.map_or(READ_COUNT, |max| {
            (max.saturating_sub(n) as usize).clamp(1, READ_COUNT)
        })
    };
    let mut claim_cursor = "0-0".to_string();
    let mut out = std::io::stdout().lock();
    loop {
        // Entries another consumer read and never acknowledged.
        let claimed: StreamAutoClaimReply = conn
            .xautoclaim_options(
                &args.stream_key,
                &args.group,
                &args.consumer,
                args.claim_idle.as_millis() as u64,
                &claim_cursor,
                StreamAutoClaimOptions::default().count(batch(handled)),
            )
            .await
            .context("XAUTOCLAIM")?;
        claim_cursor = claimed.next_stream_id.clone();
        let mut entries = claimed.claimed;
        if entries.is_empty() {
            let reply: Option<StreamReadReply> = conn
                .xread_options(
                    &[&args.stream_key],
                    &[">"],
                    &StreamReadOptions::default()
                        .group(&args.group, &args.consumer)
                        .count(batch(handled))
                        .block(BLOCK.as_millis() as usize),
                )
                .await
                .context("XREADGROUP")?;
            entries = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
        }
        for entry in entries {
            if done(handled) {
                return Ok(());
            }
            let data: Option<String> = entry.get("data");
            let event: Value = data
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            print_entry(&mut out, &entry.id, &event, args.json)?;
            let _: i64 = conn
                .xack(&args.stream_key, &args.group, &[&entry.id])
                .await
                .context("XACK")?;
            handled += 1;
        }
        if done(handled) {
            return Ok(());
        }
    }
}

fn print_entry(
    out: &mut impl std::io::Write,
    id: &str,
    ev: &Value,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "id": id, "event": ev }))?;
    } else {
        let text = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("-");
        writeln!(
            out,
            "{id}  {}  {:<20} {:<8} session {}  agent {}  {}",
            text("created_at"),
            text("event_type"),
            text("status"),
            text("session_id"),
            text("agent_id"),
            ev.get("tool_name").and_then(Value::as_str).unwrap_or(""),
        )?;
    }
    out.flush()?;
    Ok(())
}
