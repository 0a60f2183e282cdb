//! `hivewatch tail`: the live stream in a terminal, one line per event; reconnects by itself.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The hivewatch HTTP address.
    #[arg(
        long,
        env = "HIVEWATCH_ENDPOINT",
        default_value = "http://127.0.0.1:4318"
    )]
    pub endpoint: String,
    /// Only this session (repeatable).
    #[arg(long = "session-id")]
    pub sessions: Vec<String>,
    /// Only this agent (`main` or a subagent id; repeatable).
    #[arg(long = "agent-id")]
    pub agents: Vec<String>,
    /// Only this event type (repeatable).
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    /// Only this source app (repeatable).
    #[arg(long = "source-app")]
    pub source_apps: Vec<String>,
    /// Recent events to show first.
    #[arg(long, default_value_t = 20)]
    pub backfill: usize,
    /// Print each event as a JSON line.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many events (default: until interrupted).
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// The server's read token, when it has one.
    #[arg(long, env = "HIVEWATCH_READ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl TailArgs {
    fn url(&self) -> anyhow::Result<String> {
        let base = self.endpoint.trim_end_matches('/');
        let ws = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            anyhow::bail!("--endpoint must start with http:// or https:// (got {base:?})");
        };
        let mut params = vec![format!("backfill={}", self.backfill)];
        for (key, values) in [
            ("session_id", &self.sessions),
            ("agent_id", &self.agents),
            ("event_type", &self.event_types),
            ("source_app", &self.source_apps),
        ] {
            params.extend(values.iter().map(|v| format!("{key}={}", encode(v))));
        }
        // Last, so that messages can show the URL up to it.
        if let Some(t) = &self.token {
            params.push(format!("access_token={}", encode(t)));
        }
        Ok(format!(
            "{ws}/observability/dashboard/stream?{}",
            params.join("&")
        ))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let url = args.url()?;
    let mut shown = 0u64;
    let mut delay = Duration::from_millis(250);
    let mut first = true;
    loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut socket, _)) => {
                delay = Duration::from_millis(250);
                if !first {
                    eprintln!("hivewatch tail: reconnected");
                }
                first = false;
                while let Some(msg) = socket.next().await {
                    let Ok(Message::Text(text)) = msg else {
                        if msg.is_err() {
                            break;
                        }
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    let events: Vec<&Value> = match v["type"].as_str() {
                        Some("backfill") => v["events"].as_array().into_iter().flatten().collect(),
                        Some("event") => vec![&v["event"]],
                        Some("missed") => {
                            eprintln!("hivewatch tail: {} events missed (too slow)", v["count"]);
                            continue;
                        }
                        Some("broadcast") => {
                            eprintln!("hivewatch tail: broadcast: {}", v["message"]);
                            continue;
                        }
                        Some("error") => {
                            eprintln!("hivewatch tail: {}", v["message"].as_str().unwrap_or(""));
                            continue;
                        }
                        _ => continue,
                    };
                    for ev in events {
                        print_event(ev, args.json);
                        shown += 1;
                        if args.exit_after.is_some_and(|max| shown >= max) {
                            return Ok(());
                        }
                    }
                }
                eprintln!("hivewatch tail: disconnected; reconnecting");
            }
            Err(e) if first => {
                let shown = url.split("&access_token=").next().unwrap_or_default();
                return Err(e).with_context(|| format!("cannot connect to {shown}"));
            }
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn print_event(ev: &Value, json: bool) {
    if json {
        println!("{ev}");
        return;
    }
    let text = |k: &str| ev[k].as_str().unwrap_or("");
    let session = text("session_id");
    let latency = ev["latency_ms"]
        .as_i64()
        .map(|ms| format!(" {ms} ms"))
        .unwrap_or_default();
    println!(
        "{}  {:<8} {:<10} {:<22} {}{}{}",
        text("created_at").get(..23).unwrap_or(text("created_at")),
        session.get(..8).unwrap_or(session),
        text("agent_id"),
        text("event_type"),
        text("tool_name"),
        if text("status") == "error" {
            " FAILED"
        } else {
            ""
        },
        latency,
    );
}
