//! `hivewatch-load stream-lag`: how far hivewatch's Redis stream runs behind
//! its store.
//!
//! hivewatch XADDs every committed event to one stream; the entry's `data`
//! field is the event as JSON, whose `received_at` is the time the store
//! stamped on the commit. The first part of the entry id is Redis's clock in
//! milliseconds when the entry was added. For each entry, lag is the id's
//! millisecond minus `received_at`. This is only meaningful when Redis and
//! hivewatch share a clock (the same machine). The id has millisecond
//! resolution and is rounded down, so a single lag reads up to 1 ms low; one
//! that comes out below zero is counted as 0 and reported in `negative`.
//!
//! The stream is read with XRANGE in pages. `distinct_event_ids` counts the
//! events it holds once each (the publisher delivers at least once, so an
//! entry may repeat), which a caller compares with the store's row count
//! through `--expect-distinct`. The report ends with a `RESULT {json}` line.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::DateTime;
use hdrhistogram::Histogram;
use redis::AsyncConnectionConfig;
use redis::streams::{StreamId, StreamRangeReply};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// Histogram range: 1 µs .. 1 h, 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

/// Reads a hivewatch Redis stream and reports each entry's lag behind the
/// commit of its event (p50/p90/p99/max) and how many distinct events the
/// stream holds.
#[derive(clap::Args, Debug, Clone)]
pub struct StreamLagArgs {
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,

    /// Stream key (hivewatch's `--redis-stream-key`).
    #[arg(long, default_value = "hivewatch:events")]
    key: String,

    /// Only entries added at or after this Unix time in milliseconds
    /// (Redis's clock) [default: the start of the stream].
    #[arg(long)]
    since_ms: Option<u64>,

    /// Only entries added at or before this Unix time in milliseconds
    /// [default: the end of the stream].
    #[arg(long)]
    until_ms: Option<u64>,

    /// Entries per XRANGE call.
    #[arg(long, default_value_t = 10_000)]
    page: usize,

    /// How many distinct event ids the range should hold (e.g. the row
    /// count of `agent_events`); any other count makes the exit status 1
    /// (as does, with or without this flag, an entry without a readable
    /// `event_id` or `data.received_at`).
    #[arg(long)]
    expect_distinct: Option<u64>,

    /// Seconds to wait for one Redis answer.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

impl StreamLagArgs {
    pub fn validate(&self) -> Result<()> {
        if self.page == 0 {
            bail!("--page must be at least 1");
        }
        if let (Some(s), Some(u)) = (self.since_ms, self.until_ms)
            && s > u
        {
            bail!("--since-ms must not be later than --until-ms");
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be a positive number of seconds");
        }
        Ok(())
    }
}

/// The one field of the event JSON that the lag needs; the rest is skipped.
#[derive(Deserialize)]
struct EventTimes<'a> {
    #[serde(borrow)]
    received_at: &'a str,
}

/// Lag figures over the entries read.
pub struct LagReport {
    key: String,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    entries: u64,
    distinct: u64,
    /// Entries without a readable `event_id` or `data.received_at`.
    unparsed: u64,
    /// Entries whose id time was earlier than their commit time.
    negative: u64,
    first_entry_ms: Option<u64>,
    last_entry_ms: Option<u64>,
    lag_us: Histogram<u64>,
    /// The entry with the largest lag: (lag µs, entry id, event id).
    worst: Option<(u64, String, Uuid)>,
    expect_distinct: Option<u64>,
}

/// Milliseconds part of a stream entry id (`<ms>-<seq>`).
fn entry_ms(id: &str) -> Option<u64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

/// Microseconds since the Unix epoch of an RFC 3339 time.
fn rfc3339_us(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Lag in µs of an entry added at `entry_ms` for a commit at `committed_us`;
/// None when the entry claims to precede the commit.
fn lag_us(entry_ms: u64, committed_us: i64) -> Option<u64> {
    let added_us = i64::try_from(entry_ms).ok()?.checked_mul(1000)?;
    u64::try_from(added_us.checked_sub(committed_us)?).ok()
}

fn field_bytes<'a>(entry: &'a StreamId, name: &str) -> Option<&'a [u8]> {
    match entry.map.get(name)? {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

impl LagReport {
    fn new(args: &StreamLagArgs) -> Self {
        Self {
            key: args.key.clone(),
            since_ms: args.since_ms,
            until_ms: args.until_ms,
            entries: 0,
            distinct: 0,
            unparsed: 0,
            negative: 0,
            first_entry_ms: None,
            last_entry_ms: None,
            lag_us: Histogram::new_with_bounds(1, HIST_MAX_US, 3)
                .expect("static histogram bounds are valid"),
            worst: None,
            expect_distinct: args.expect_distinct,
        }
    }

    /// Files one entry; `seen` holds the event ids met so far.
    fn record(&mut self, entry: &StreamId, seen: &mut HashSet<Uuid>) {
        self.entries += 1;
        let Some(added_ms) = entry_ms(&entry.id) else {
            self.unparsed += 1;
            return;
        };
        self.first_entry_ms.get_or_insert(added_ms);
        self.last_entry_ms = Some(added_ms);
        let event_id = field_bytes(entry, "event_id")
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| Uuid::parse_str(s).ok());
        let committed_us = field_bytes(entry, "data")
            .and_then(|b| serde_json::from_slice::<EventTimes<'_>>(b).ok())
            .and_then(|t| rfc3339_us(t.received_at));
        let (Some(event_id), Some(committed_us)) = (event_id, committed_us) else {
            self.unparsed += 1;
            return;
        };
        if seen.insert(event_id) {
            self.distinct += 1;
        }
        let lag = lag_us(added_ms, committed_us).unwrap_or_else(|| {
            self.negative += 1;
            0
        });
        self.lag_us.saturating_record(lag.max(1));
        if self.worst.as_ref().is_none_or(|w| w.0 < lag) {
            self.worst = Some((lag, entry.id.clone(), event_id));
        }
    }

    pub fn count_matches(&self) -> bool {
        self.expect_distinct.is_none_or(|n| n == self.distinct) && self.unparsed == 0
    }

    pub fn json(&self) -> serde_json::Value {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.lag_us;
        let latency = if h.is_empty() {
            json!({"p50": null, "p90": null, "p99": null, "p999": null, "max": null})
        } else {
            json!({
                "p50": ms(h.value_at_quantile(0.50)),
                "p90": ms(h.value_at_quantile(0.90)),
                "p99": ms(h.value_at_quantile(0.99)),
                "p999": ms(h.value_at_quantile(0.999)),
                "max": ms(h.max()),
            })
        };
        let span_s = match (self.first_entry_ms, self.last_entry_ms) {
            (Some(a), Some(b)) => Some((b - a) as f64 / 1000.0),
            _ => None,
        };
        json!({
            "mode": "stream-lag",
            "key": self.key,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "entries": self.entries,
            "distinct_event_ids": self.distinct,
            "duplicates": self.entries - self.distinct - self.unparsed,
            "unparsed": self.unparsed,
            "expected_distinct": self.expect_distinct,
            "count_matches": self.expect_distinct.map(|_| self.count_matches()),
            "lag_ms": latency,
            "negative": self.negative,
            "span_s": span_s,
            "worst": self.worst.as_ref().map(|(lag, entry, event)| json!({
                "lag_ms": ms(*lag), "entry_id": entry, "event_id": event.to_string(),
            })),
        })
    }

    pub fn print(&self) {
        println!("hivewatch-load  stream-lag {}", self.key);
        println!(
            "  entries     {}  distinct event ids {}  unparsed {}",
            self.entries, self.distinct, self.unparsed
        );
        if let Some(n) = self.expect_distinct {
            println!(
                "  expected    {n} distinct event ids: {}",
                if self.count_matches() {
                    "match"
                } else {
                    "MISMATCH"
                }
            );
        }
        let h = &self.lag_us;
        if h.is_empty() {
            println!("  lag ms      n/a (no entry)");
        } else {
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            println!(
                "  lag ms      p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (entry time before commit: {})",
                ms(0.50),
                ms(0.90),
                ms(0.99),
                ms(0.999),
                h.max() as f64 / 1000.0,
                self.negative
            );
        }
        println!("RESULT {}", self.json());
    }
}

/// Reads the range page by page and builds the report.
pub async fn run(args: StreamLagArgs) -> Result<LagReport> {
    let client = redis::Client::open(args.redis_url.as_str()).context("Redis URL")?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
        )
        .await
        .context("connecting to Redis")?;
    let end = args
        .until_ms
        .map_or_else(|| "+".to_owned(), |ms| format!("{ms}-{}", u64::MAX));
    let mut start = args
        .since_ms
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms}-0"));
    let mut report = LagReport::new(&args);
    let mut seen = HashSet::new();
    loop {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&args.key)
            .arg(&start)
            .arg(&end)
            .arg("COUNT")
            .arg(args.page)
            .query_async(&mut conn)
            .await
            .with_context(|| format!("XRANGE {} {start} {end}", args.key))?;
        let n = reply.ids.len();
        for entry in &reply.ids {
            report.record(entry, &mut seen);
        }
        match reply.ids.last() {
            // An exclusive start (Redis 6.2+) continues after the last entry read.
            Some(last) if n == args.page => start = format!("({}", last.id),
            _ => break,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: id.to_owned(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn times() {
        assert_eq!(entry_ms("1764064800123-7"), Some(1_764_064_800_123));
        assert_eq!(entry_ms("1764064800123"), Some(1_764_064_800_123));
        assert_eq!(entry_ms("x-1"), None);
        assert_eq!(
            rfc3339_us("2025-11-25T10:00:00.123456789Z"),
            Some(1_764_064_800_123_456)
        );
        assert_eq!(
            rfc3339_us("2025-11-25T11:00:00.5+01:00"),
            Some(1_764_064_800_500_000)
        );
        assert_eq!(
            lag_us(1_764_064_800_125, 1_764_064_800_123_456),
            Some(1_544)
        );
        assert_eq!(lag_us(1_764_064_800_123, 1_764_064_800_123_456), None);
    }

    #[test]
    fn report_counts_and_lags() {
        let args = StreamLagArgs {
            redis_url: String::new(),
            key: "k".into(),
            since_ms: None,
            until_ms: None,
            page: 10,
            expect_distinct: Some(2),
            timeout: 1.0,
        };
        let a = "6f1c4f8e-2b1e-4f55-9a59-3f8f4d1c0a01";
        let b = "6f1c4f8e-2b1e-4f55-9a59-3f8f4d1c0a02";
        let data = |t: &str| {
            format!(r#"{{"id":1,"event_id":"x","received_at":"{t}","payload":{{"k":[1,2]}}}}"#)
        };
        let mut r = LagReport::new(&args);
        let mut seen = HashSet::new();
        r.record(
            &entry(
                "1764064800125-0",
                &[
                    ("event_id", a),
                    ("data", &data("2025-11-25T10:00:00.123456789Z")),
                ],
            ),
            &mut seen,
        );
        r.record(
            &entry(
                "1764064800140-0",
                &[("event_id", b), ("data", &data("2025-11-25T10:00:00.130Z"))],
            ),
            &mut seen,
        );
        // The same event again (at-least-once delivery).
        r.record(
            &entry(
                "1764064800141-0",
                &[("event_id", b), ("data", &data("2025-11-25T10:00:00.130Z"))],
            ),
            &mut seen,
        );
        assert_eq!((r.entries, r.distinct, r.unparsed), (3, 2, 0));
        assert!(r.count_matches());
        let j = r.json();
        assert_eq!(j["duplicates"], 1);
        let max = j["lag_ms"]["max"].as_f64().unwrap();
        assert!((max - 11.0).abs() < 0.01, "{max}");
        assert_eq!(j["worst"]["lag_ms"], 11.0);
        assert_eq!(j["worst"]["entry_id"], "1764064800141-0");
        assert_eq!(j["span_s"], 0.016);

        r.record(&entry("1764064800150-0", &[("event_id", a)]), &mut seen);
        assert_eq!(r.unparsed, 1);
        assert!(!r.count_matches());
    }
}
