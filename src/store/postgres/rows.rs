//! Rows of the Postgres tables as Diesel reads them, and their conversion to the model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::schema::{agent_events, chat_transcripts, sessions};
use crate::model::sessions::SessionSummary;
use crate::store::query::RawEvent;

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = agent_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(super) struct PgEventRow {
    pub(super) id: i64,
    pub(super) event_id: Uuid,
    pub(super) event_type: String,
    pub(super) source: String,
    pub(super) session_id: Uuid,
    pub(super) agent_id: String,
    pub(super) source_app: String,
    pub(super) prompt_id: Option<String>,
    pub(super) tool_name: Option<String>,
    pub(super) tool_use_id: Option<String>,
    pub(super) trace_id: String,
    pub(super) span_id: Option<String>,
    pub(super) parent_span_id: Option<String>,
    pub(super) status: String,
    pub(super) severity: String,
    pub(super) latency_ms: Option<i32>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) received_at: DateTime<Utc>,
    pub(super) payload: Value,
    pub(super) model: Option<String>,
    pub(super) mcp_server: Option<String>,
    pub(super) repo: Option<String>,
    pub(super) branch: Option<String>,
    pub(super) commit_sha: Option<String>,
}

impl PgEventRow {
    pub(super) fn into_raw(self) -> RawEvent {
        RawEvent {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            source: self.source,
            session_id: self.session_id,
            agent_id: self.agent_id,
            source_app: self.source_app,
            prompt_id: self.prompt_id,
            tool_name: self.tool_name,
            tool_use_id: self.tool_use_id,
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            status: self.status,
            severity: self.severity,
            latency_ms: self.latency_ms.map(i64::from),
            created_at: self.created_at,
            received_at: self.received_at,
            payload: self.payload,
            model: self.model,
            mcp_server: self.mcp_server,
            repo: self.repo,
            branch: self.branch,
            commit_sha: self.commit_sha,
        }
    }
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = chat_transcripts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(super) struct PgTranscriptRow {
    pub(super) agent_id: String,
    pub(super) uuid: String,
    pub(super) parent_uuid: Option<String>,
    pub(super) role: String,
    pub(super) content: Value,
    pub(super) model: Option<String>,
    pub(super) input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
    pub(super) cache_read_tokens: Option<i64>,
    pub(super) cache_creation_tokens: Option<i64>,
    pub(super) created_at: DateTime<Utc>,
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(super) struct PgSessionRow {
    pub(super) session_id: Uuid,
    pub(super) source_app: String,
    pub(super) first_seen: DateTime<Utc>,
    pub(super) last_seen: DateTime<Utc>,
    pub(super) cwd: Option<String>,
    pub(super) model: Option<String>,
    pub(super) status: String,
    pub(super) event_count: i64,
    pub(super) tool_calls: i64,
    pub(super) tool_failures: i64,
    pub(super) error_count: i64,
    pub(super) input_tokens: i64,
    pub(super) output_tokens: i64,
    pub(super) cost_usd: f64,
}

impl PgSessionRow {
    pub(super) fn into_summary(self) -> SessionSummary {
        SessionSummary {
            session_id: self.session_id,
            source_app: self.source_app,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            cwd: self.cwd,
            model: self.model,
            status: self.status,
            event_count: self.event_count,
            tool_calls: self.tool_calls,
            tool_failures: self.tool_failures,
            error_count: self.error_count,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost_usd,
        }
    }
}
