//! Rows of the SQLite tables as Diesel reads and writes them, and their conversion to and from the model.

use diesel::prelude::*;

use super::schema::chat_transcripts;
use crate::model::time::micros;
use crate::model::{AgentEvent, SpanId};

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
            event_type: ev.event_type.as_str(),
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

crate::store::rows::event_row!(
    diesel::sqlite::Sqlite,
    uuid = String,
    time = i64,
    latency = i64,
    json = String
);
crate::store::rows::session_row!(diesel::sqlite::Sqlite, uuid = String, time = i64);
