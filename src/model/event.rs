//! `AgentEvent`: the one event model every input is normalized into and every sink reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EventType;
use super::ids::{SpanId, TraceId};

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A Claude Code hook payload, from `hivewatch hook` or posted by Claude Code itself.
    Hook,
    OtlpLog,
    OtlpSpan,
    /// The envelope of the seed API (`hook_event_type` + `payload`).
    Api,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Hook, Source::OtlpLog, Source::OtlpSpan, Source::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hook => "hook",
            Source::OtlpLog => "otlp_log",
            Source::OtlpSpan => "otlp_span",
            Source::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Status::Ok),
            "error" => Some(Status::Error),
            _ => None,
        }
    }
}

/// OTLP's severity ranges, by name; ordered so that filters can ask for a minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Trace,
        Severity::Debug,
        Severity::Info,
        Severity::Warn,
        Severity::Error,
        Severity::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "warning" => Some(Severity::Warn),
            "critical" => Some(Severity::Fatal),
            other => Self::ALL.into_iter().find(|v| v.as_str() == other),
        }
    }

    /// OTLP `SeverityNumber` (1..=24) to its range; 0 (unspecified) gives `None`.
    pub fn from_otlp_number(n: i32) -> Option<Self> {
        match n {
            1..=4 => Some(Severity::Trace),
            5..=8 => Some(Severity::Debug),
            9..=12 => Some(Severity::Info),
            13..=16 => Some(Severity::Warn),
            17..=20 => Some(Severity::Error),
            21..=24 => Some(Severity::Fatal),
            _ => None,
        }
    }
}

/// One thing an agent did, as hivewatch stores and streams it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Idempotency key: a retried delivery of the same event stores nothing new.
    pub event_id: Uuid,
    /// The hook name as sent (unknown names kept verbatim), `span`, or the log's `event.name`.
    pub event_type: EventType,
    pub source: Source,
    pub session_id: Uuid,
    pub agent_id: String,
    pub source_app: String,
    pub prompt_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub status: Status,
    pub severity: Severity,
    /// For a finished tool call: its duration; for a span: end minus start.
    pub latency_ms: Option<i64>,
    /// The model the event names: a model request's, a session start's, the new one of a model switch.
    #[serde(default)]
    pub model: Option<String>,
    /// The MCP server of an MCP tool's event (its `mcp_server`, else the server part of an `mcp__server__tool`
    /// name).
    #[serde(default)]
    pub mcp_server: Option<String>,
    /// The repository as `host/owner/name`, where the sender names one (native `vcs.*` attributes).
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// When hivewatch committed it (set by the store).
    pub received_at: DateTime<Utc>,
    /// The sanitized original: the hook JSON, or the OTLP item's attributes as JSON.
    pub payload: serde_json::Value,
}

/// Longest `event_type` stored (Postgres column `VARCHAR(200)`), in characters.
pub const MAX_EVENT_TYPE_CHARS: usize = 200;

/// The trace of an event that names none and belongs to no session: an OTLP log record with neither a trace id nor
/// a session, a hook payload whose `session_id` is the nil UUID. Zeros are no trace id (W3C Trace Context), and the
/// store refuses to read them back.
pub const NO_TRACE: TraceId = TraceId(0x6869_7665_7761_7463_6800_0000_0000_0002_u128.to_be_bytes());

impl AgentEvent {
    /// Makes the event storable by every back-end whatever the sender put in it: NUL characters removed from
    /// every string (Postgres text and JSONB cannot hold them), `event_type` cut to its column's length, the time
    /// kept within years 1970 to 9999 and `latency_ms` within 0 to 2^31 − 1 (Postgres `INTEGER`), and no id of
    /// zeros, which would not read back (a trace of zeros becomes [`NO_TRACE`], a span id of zeros none).
    pub fn make_storable(&mut self) {
        if self.trace_id.0 == [0; 16] {
            self.trace_id = NO_TRACE;
        }
        self.span_id = self.span_id.filter(|s| s.0 != [0; 8]);
        self.parent_span_id = self.parent_span_id.filter(|s| s.0 != [0; 8]);
        for field in [&mut self.agent_id, &mut self.source_app] {
            strip_nul(field);
        }
        for field in [
            &mut self.prompt_id,
            &mut self.tool_name,
            &mut self.tool_use_id,
            &mut self.model,
            &mut self.mcp_server,
            &mut self.repo,
            &mut self.branch,
            &mut self.commit,
        ]
        .into_iter()
        .flatten()
        {
            strip_nul(field);
        }
        // Only a name hivewatch does not know can be long or hold a NUL.
        if let EventType::Other(name) = &mut self.event_type {
            strip_nul(name);
            if let Some((cut, _)) = name.char_indices().nth(MAX_EVENT_TYPE_CHARS) {
                name.truncate(cut);
            }
        }
        strip_nul_json(&mut self.payload);
        let (min, max) = (
            DateTime::<Utc>::UNIX_EPOCH,
            DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        self.created_at = self.created_at.clamp(min, max);
        self.latency_ms = self.latency_ms.map(|l| l.clamp(0, i32::MAX as i64));
    }
}

fn strip_nul(s: &mut String) {
    if s.contains('\0') {
        s.retain(|c| c != '\0');
    }
}

/// Removes NUL characters from every string and key of a JSON value.
pub fn strip_nul_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => strip_nul(s),
        Value::Array(items) => items.iter_mut().for_each(strip_nul_json),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let entries = std::mem::take(map);
                for (mut k, v) in entries {
                    strip_nul(&mut k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(strip_nul_json);
        }
        _ => {}
    }
}

/// An event as read back from the store: the model plus its commit-order id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: AgentEvent,
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_are_made_storable_whatever_was_sent() {
        use chrono::{DateTime, Utc};
        let at = DateTime::<Utc>::from_timestamp(-8_000_000_000_000, 0).unwrap();
        let mut ev = crate::model::hook::normalize_hook(
            serde_json::json!({"session_id": "s", "hook_event_name": format!("X{}\0", "y".repeat(300)),
                               "tool_response": {"out\0": "a\0b"}, "duration_ms": 9e18}),
            &Default::default(),
            at,
        )
        .unwrap();
        ev.created_at = at;
        ev.make_storable();
        assert_eq!(
            ev.event_type.as_str().chars().count(),
            super::MAX_EVENT_TYPE_CHARS
        );
        assert!(!ev.event_type.as_str().contains('\0'));
        assert_eq!(ev.payload["tool_response"]["out"], "ab");
        assert_eq!(ev.created_at, DateTime::<Utc>::UNIX_EPOCH);
        assert!(ev.latency_ms.is_none_or(|l| l <= i32::MAX as i64));
    }

    #[test]
    fn ids_of_zeros_are_not_stored() {
        use crate::model::{SpanId, TraceId};
        // A hook payload whose session is the nil UUID gets a trace id of zeros, as does an OTLP log record with
        // neither a trace id nor a session.
        let mut ev = crate::model::hook::normalize_hook(
            serde_json::json!({"session_id": "00000000-0000-0000-0000-000000000000", "hook_event_name": "Stop"}),
            &Default::default(),
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(ev.trace_id, TraceId([0; 16]));
        ev.span_id = Some(SpanId([0; 8]));
        ev.parent_span_id = Some(SpanId([0; 8]));
        ev.make_storable();
        assert_eq!(ev.trace_id, super::NO_TRACE);
        assert_eq!((ev.span_id, ev.parent_span_id), (None, None));
        // What the store reads back: the ids as hex.
        let text = serde_json::to_string(&ev).unwrap();
        let back: super::AgentEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ev);
        // A real trace id is kept.
        let mut ev = back;
        ev.trace_id = TraceId([1; 16]);
        ev.make_storable();
        assert_eq!(ev.trace_id, TraceId([1; 16]));
    }
}
