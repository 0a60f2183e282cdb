//! Rows of the SQLite tables as Diesel reads and writes them, and their conversion to and from the model.

use diesel::prelude::*;

use super::schema::{agent_events, chat_transcripts, sessions};
use crate::model::sessions::SessionSummary;
use crate::model::time::{from_micros, micros};
use crate::model::{AgentEvent, SpanId};
use crate::store::StoreError;
use crate::store::query::{RawEvent, corrupt};

pub(super) struct EventRowRef<'a> {
    pub(super) event_id: String,
    pub(super) event_type: &'a str,
    pub(super) source: &'static str,
    pub(super) session_id: String,
    pub(super) agent_id: &'a str,
    pub(super) source_app: &'a str,
    pub(super) prompt_id: Option<&'a str>,
    pub(super) tool_name: Option<&'a str>,
    pub(super) tool_use_id: Option<&'a str>,
    pub(super) trace_id: String,
    pub(super) span_id: Option<String>,
    pub(super) parent_span_id: Option<String>,
    pub(super) status: &'static str,
    pub(super) severity: &'static str,
    pub(super) latency_ms: Option<i64>,
    pub(super) created_at: i64,
    pub(super) received_at: i64,
    pub(super) payload: String,
    pub(super) model: Option<&'a str>,
    pub(super) mcp_server: Option<&'a str>,
    pub(super) repo: Option<&'a str>,
    pub(super) branch: Option<&'a str>,
    pub(super) commit: Option<&'a str>,
}

impl<'a> EventRowRef<'a> {
    pub(super) fn new(ev: &'a AgentEvent, received_at: i64) -> Self {
        EventRowRef {
            event_id: ev.event_id.to_string(),
            event_type: &ev.event_type,
            source: ev.source.as_str(),
            session_id: ev.session_id.to_string(),
            agent_id: &ev.agent_id,
            source_app: &ev.source_app,
            prompt_id: ev.prompt_id.as_deref(),
            tool_name: ev.tool_name.as_deref(),
            tool_use_id: ev.tool_use_id.as_deref(),
            trace_id: ev.trace_id.to_hex(),
            span_id: ev.span_id.map(SpanId::to_hex),
            parent_span_id: ev.parent_span_id.map(SpanId::to_hex),
            status: ev.status.as_str(),
            severity: ev.severity.as_str(),
            latency_ms: ev.latency_ms,
            created_at: micros(ev.created_at),
            received_at,
            payload: ev.payload.to_string(),
            model: ev.model.as_deref(),
            mcp_server: ev.mcp_server.as_deref(),
            repo: ev.repo.as_deref(),
            branch: ev.branch.as_deref(),
            commit: ev.commit.as_deref(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = agent_events)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct EventRow {
    pub(super) id: i64,
    pub(super) event_id: String,
    pub(super) event_type: String,
    pub(super) source: String,
    pub(super) session_id: String,
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
    pub(super) latency_ms: Option<i64>,
    pub(super) created_at: i64,
    pub(super) received_at: i64,
    pub(super) payload: String,
    pub(super) model: Option<String>,
    pub(super) mcp_server: Option<String>,
    pub(super) repo: Option<String>,
    pub(super) branch: Option<String>,
    pub(super) commit_sha: Option<String>,
}

impl EventRow {
    pub(super) fn into_raw(self) -> Result<RawEvent, StoreError> {
        Ok(RawEvent {
            id: self.id,
            event_id: self
                .event_id
                .parse()
                .map_err(|_| corrupt("event_id", &self.event_id))?,
            session_id: self
                .session_id
                .parse()
                .map_err(|_| corrupt("session_id", &self.session_id))?,
            payload: serde_json::from_str(&self.payload).map_err(|_| corrupt("payload", "…"))?,
            event_type: self.event_type,
            source: self.source,
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
            latency_ms: self.latency_ms,
            created_at: from_micros(self.created_at),
            received_at: from_micros(self.received_at),
            model: self.model,
            mcp_server: self.mcp_server,
            repo: self.repo,
            branch: self.branch,
            commit_sha: self.commit_sha,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = chat_transcripts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct TranscriptRow {
    pub(super) agent_id: String,
    pub(super) uuid: String,
    pub(super) parent_uuid: Option<String>,
    pub(super) role: String,
    pub(super) content: String,
    pub(super) model: Option<String>,
    pub(super) input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
    pub(super) cache_read_tokens: Option<i64>,
    pub(super) cache_creation_tokens: Option<i64>,
    pub(super) created_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct SessionRow {
    pub(super) session_id: String,
    pub(super) source_app: String,
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
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

impl SessionRow {
    pub(super) fn into_summary(self) -> Result<SessionSummary, StoreError> {
        Ok(SessionSummary {
            session_id: self
                .session_id
                .parse()
                .map_err(|_| corrupt("session_id", &self.session_id))?,
            source_app: self.source_app,
            first_seen: from_micros(self.first_seen),
            last_seen: from_micros(self.last_seen),
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
        })
    }
}
