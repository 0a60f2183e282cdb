//! Chat transcripts: one entry per line of Claude Code's session JSONL that has a `uuid`, redacted and made
//! storable before either back-end sees it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One entry of a chat transcript (a line of Claude Code's session JSONL that has a `uuid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub session_id: Uuid,
    pub agent_id: String,
    pub uuid: String,
    pub parent_uuid: Option<String>,
    /// `message.role`, else the entry's `type` (`attachment`, `system`, …).
    pub role: String,
    /// `message.content`, else the whole entry; redacted.
    pub content: Value,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl TranscriptEntry {
    /// Reads one transcript line; `None` for lines without a `uuid` (queue operations and the like).
    pub fn from_line(
        session_id: Uuid,
        agent_id: &str,
        mut line: Value,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let uuid = line.get("uuid")?.as_str()?.to_string();
        crate::model::redact::redact_json(&mut line);
        crate::model::event::strip_nul_json(&mut line);
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let message = line.get("message");
        let usage = message.and_then(|m| m.get("usage"));
        let count = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_i64);
        let role = message
            .and_then(|m| text(m, "role"))
            .or_else(|| text(&line, "type"))
            .unwrap_or_else(|| "unknown".into());
        let created_at = text(&line, "timestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        Some(TranscriptEntry {
            session_id,
            agent_id: agent_id.to_string(),
            parent_uuid: text(&line, "parentUuid"),
            model: message.and_then(|m| text(m, "model")),
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            cache_read_tokens: count("cache_read_input_tokens"),
            cache_creation_tokens: count("cache_creation_input_tokens"),
            content: match message.and_then(|m| m.get("content")) {
                Some(c) => c.clone(),
                None => line,
            },
            uuid,
            role,
            created_at,
        })
    }
}
