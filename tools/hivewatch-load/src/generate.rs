//! Synthetic OTLP payloads shaped like the `tool_result` events that
//! hivewatch receives from coding agents.
//!
//! Every event carries a globally unique `event.sequence` and `tool_use_id`
//! (prefixed with a per-run tag), so the receiver's content-hash dedup never
//! collapses two generated events, not even across runs against one server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

const TOOL_NAMES: [&str; 5] = ["Bash", "Read", "Write", "Edit", "Grep"];
const SERVICE_NAME: &str = "hivewatch-load";
const SCOPE_NAME: &str = "hivewatch-load";

pub struct Generator {
    sessions: Vec<String>,
    run_tag: String,
    filler: String,
    seq: AtomicU64,
}

/// splitmix64: a cheap, well-mixed hash for picking tool names, sessions and
/// durations deterministically from the sequence number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// Builds a string of exactly `len` bytes that looks like a JSON tool
/// parameter blob (ASCII only, so byte length == char length).
fn make_filler(len: usize) -> String {
    let head = r#"{"command":"cargo test --workspace -- --nocapture","description":""#;
    let tail = r#""}"#;
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    let mut s = String::with_capacity(len.max(head.len() + tail.len()));
    s.push_str(head);
    while s.len() + tail.len() < len {
        let room = len - tail.len() - s.len();
        s.push_str(&words[..room.min(words.len())]);
    }
    s.push_str(tail);
    if s.len() > len {
        // Requested size smaller than the JSON frame: plain padding instead.
        s = "x".repeat(len);
    }
    s
}

/// One event's variable content.
struct Event<'a> {
    seq: u64,
    tool_use_id: String,
    tool_name: &'a str,
    duration_ms: i64,
}

impl Generator {
    pub fn new(sessions: usize, payload_bytes: usize) -> Self {
        let sessions = (0..sessions.max(1))
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let run_tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        Self {
            sessions,
            run_tag,
            filler: make_filler(payload_bytes),
            seq: AtomicU64::new(0),
        }
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    fn reserve(&self, n: usize) -> u64 {
        self.seq.fetch_add(n as u64, Ordering::Relaxed)
    }

    fn event(&self, seq: u64) -> Event<'_> {
        let h = mix(seq);
        Event {
            seq,
            tool_use_id: format!("toolu_{}{:012}", self.run_tag, seq),
            tool_name: TOOL_NAMES[(h % TOOL_NAMES.len() as u64) as usize],
            // 1..=5000 ms, skewed towards short calls.
            duration_ms: 1 + ((h >> 8) % 5000 * ((h >> 24) % 5000) / 5000) as i64,
        }
    }

    /// One request's events belong to one session, as an agent process batches
    /// its own events; sessions are picked uniformly per request.
    fn session_for(&self, first_seq: u64) -> &str {
        let idx = (mix(first_seq ^ 0x5E55_1011) % self.sessions.len() as u64) as usize;
        &self.sessions[idx]
    }

    fn attributes(&self, session: &str, ev: &Event<'_>) -> Vec<KeyValue> {
        vec![
            kv_str("session.id", session),
            kv_str("event.name", "tool_result"),
            kv_str("tool_name", ev.tool_name),
            kv_str("tool_use_id", ev.tool_use_id.clone()),
            kv_int("event.sequence", ev.seq as i64),
            kv_int("duration_ms", ev.duration_ms),
            kv_str("success", "true"),
            kv_str("tool_parameters", self.filler.clone()),
        ]
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![
                kv_str("service.name", SERVICE_NAME),
                kv_str("service.version", env!("CARGO_PKG_VERSION")),
            ],
            ..Default::default()
        }
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope {
            name: SCOPE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }
    }

    pub fn logs(&self, batch: usize) -> ExportLogsServiceRequest {
        let first = self.reserve(batch);
        let session = self.session_for(first);
        let now = now_unix_nanos();
        let log_records = (0..batch as u64)
            .map(|i| {
                let ev = self.event(first + i);
                LogRecord {
                    time_unix_nano: now,
                    observed_time_unix_nano: now,
                    severity_number: SeverityNumber::Info as i32,
                    severity_text: "INFO".to_owned(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            "claude_code.tool_result".to_owned(),
                        )),
                    }),
                    attributes: self.attributes(session, &ev),
                    ..Default::default()
                }
            })
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Self::resource()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(Self::scope()),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// A `PostToolUse` hook payload per event, as Claude Code hands it to a hook (the filler as the command's
    /// description). One event is a bare object whose event id travels in a header, as `hivewatch hook` sends
    /// it; several are a JSON array with each event id in its `_hivewatch` object, as the hook's spool is sent.
    pub fn hooks(&self, batch: usize) -> (Vec<u8>, Option<String>) {
        let first = self.reserve(batch);
        let session = self.session_for(first);
        let payload = |seq: u64| {
            let ev = self.event(seq);
            serde_json::json!({
                "session_id": session,
                "transcript_path": format!("/home/dev/.claude/projects/-home-dev-load/{session}.jsonl"),
                "cwd": "/home/dev/load",
                "permission_mode": "default",
                "hook_event_name": "PostToolUse",
                "tool_name": ev.tool_name,
                "tool_input": {"command": "cargo test", "description": self.filler},
                "tool_response": {"stdout": "ok", "stderr": "", "interrupted": false},
                "tool_use_id": ev.tool_use_id,
                "duration_ms": ev.duration_ms,
            })
        };
        if batch == 1 {
            let body = serde_json::to_vec(&payload(first)).expect("JSON values serialize");
            return (body, Some(uuid::Uuid::now_v7().to_string()));
        }
        let items: Vec<serde_json::Value> = (0..batch as u64)
            .map(|i| {
                let mut item = payload(first + i);
                item["_hivewatch"] =
                    serde_json::json!({"event_id": uuid::Uuid::now_v7().to_string()});
                item
            })
            .collect();
        (
            serde_json::to_vec(&items).expect("JSON values serialize"),
            None,
        )
    }

    pub fn traces(&self, batch: usize) -> ExportTraceServiceRequest {
        let first = self.reserve(batch);
        let session = self.session_for(first);
        let now = now_unix_nanos();
        let spans = (0..batch as u64)
            .map(|i| {
                let ev = self.event(first + i);
                let trace_id = uuid::Uuid::new_v4().as_bytes().to_vec();
                let span_id = uuid::Uuid::new_v4().as_bytes()[..8].to_vec();
                let dur_ns = (ev.duration_ms as u64) * 1_000_000;
                Span {
                    trace_id,
                    span_id,
                    name: "claude_code.tool".to_owned(),
                    kind: span::SpanKind::Internal as i32,
                    start_time_unix_nano: now.saturating_sub(dur_ns),
                    end_time_unix_nano: now,
                    attributes: self.attributes(session, &ev),
                    ..Default::default()
                }
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Self::resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(Self::scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn filler_has_requested_length() {
        for len in [0, 5, 70, 300, 1000, 4096] {
            assert_eq!(make_filler(len).len(), len, "len {len}");
        }
    }

    #[test]
    fn events_are_unique_and_batched() {
        let g = Generator::new(3, 300);
        let a = g.logs(10);
        let b = g.logs(10);
        let recs: Vec<_> = a.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .chain(&b.resource_logs[0].scope_logs[0].log_records)
            .map(|r| r.encode_to_vec())
            .collect();
        let mut uniq = recs.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 20);
        let t = g.traces(4);
        let spans = &t.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 4);
        assert!(
            spans
                .iter()
                .all(|s| s.trace_id.len() == 16 && s.span_id.len() == 8)
        );
    }

    #[test]
    fn hook_payloads_are_unique_and_shaped_like_claude_codes() {
        let g = Generator::new(3, 300);
        let (one, id) = g.hooks(1);
        let one: serde_json::Value = serde_json::from_slice(&one).unwrap();
        assert_eq!(one["hook_event_name"], "PostToolUse");
        assert!(
            id.is_some(),
            "a single payload carries its event id in a header"
        );
        let (many, id) = g.hooks(3);
        assert!(id.is_none());
        let many: Vec<serde_json::Value> = serde_json::from_slice(&many).unwrap();
        let mut ids: Vec<_> = many
            .iter()
            .map(|m| m["tool_use_id"].as_str().unwrap().to_owned())
            .chain([one["tool_use_id"].as_str().unwrap().to_owned()])
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        assert!(many.iter().all(|m| m["_hivewatch"]["event_id"].is_string()));
    }
}
