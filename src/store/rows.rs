//! The rows both back-ends read, declared once: each back-end instantiates [`event_row!`] and [`session_row!`]
//! with its own column types (SQLite keeps ids and JSON as text and times as microseconds; Postgres has native
//! `UUID`, `TIMESTAMPTZ` and `JSONB`), and [`ToModel`] turns either kind of value into the model's.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::StoreError;
use super::query::corrupt;
use crate::model::time::from_micros;

/// A column value as the model holds it; `what` names the column in the error when a stored value does not
/// parse.
pub(super) trait ToModel<T> {
    fn to_model(self, what: &str) -> Result<T, StoreError>;
}

impl ToModel<Uuid> for Uuid {
    fn to_model(self, _: &str) -> Result<Uuid, StoreError> {
        Ok(self)
    }
}

impl ToModel<Uuid> for String {
    fn to_model(self, what: &str) -> Result<Uuid, StoreError> {
        self.parse().map_err(|_| corrupt(what, &self))
    }
}

impl ToModel<DateTime<Utc>> for DateTime<Utc> {
    fn to_model(self, _: &str) -> Result<DateTime<Utc>, StoreError> {
        Ok(self)
    }
}

impl ToModel<DateTime<Utc>> for i64 {
    fn to_model(self, _: &str) -> Result<DateTime<Utc>, StoreError> {
        Ok(from_micros(self))
    }
}

impl ToModel<Value> for Value {
    fn to_model(self, _: &str) -> Result<Value, StoreError> {
        Ok(self)
    }
}

impl ToModel<Value> for String {
    fn to_model(self, what: &str) -> Result<Value, StoreError> {
        serde_json::from_str(&self).map_err(|_| corrupt(what, "…"))
    }
}

impl ToModel<Option<i64>> for Option<i64> {
    fn to_model(self, _: &str) -> Result<Option<i64>, StoreError> {
        Ok(self)
    }
}

impl ToModel<Option<i64>> for Option<i32> {
    fn to_model(self, _: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.map(i64::from))
    }
}

/// `EventRow`: a row of `agent_events` for `$backend`, and its conversion into the model.
macro_rules! event_row {
    ($backend:ty, uuid = $uuid:ty, time = $time:ty, latency = $latency:ty, json = $json:ty) => {
        #[derive(diesel::Queryable, diesel::Selectable)]
        #[diesel(table_name = super::schema::agent_events)]
        #[diesel(check_for_backend($backend))]
        pub(super) struct EventRow {
            pub(super) id: i64,
            event_id: $uuid,
            event_type: String,
            source: String,
            session_id: $uuid,
            agent_id: String,
            source_app: String,
            prompt_id: Option<String>,
            tool_name: Option<String>,
            tool_use_id: Option<String>,
            trace_id: String,
            span_id: Option<String>,
            parent_span_id: Option<String>,
            status: String,
            severity: String,
            latency_ms: Option<$latency>,
            created_at: $time,
            received_at: $time,
            payload: $json,
            model: Option<String>,
            mcp_server: Option<String>,
            repo: Option<String>,
            branch: Option<String>,
            commit_sha: Option<String>,
        }

        impl EventRow {
            pub(super) fn into_event(
                self,
            ) -> Result<$crate::model::StoredEvent, $crate::store::StoreError> {
                use $crate::model::{AgentEvent, Severity, Source, SpanId, Status, TraceId};
                use $crate::store::query::corrupt;
                use $crate::store::rows::ToModel;
                let span = |s: Option<String>, field| {
                    s.map(|h| SpanId::parse_hex(field, &h).map_err(|_| corrupt(field, &h)))
                        .transpose()
                };
                Ok($crate::model::StoredEvent {
                    id: self.id,
                    event: AgentEvent {
                        event_id: self.event_id.to_model("event_id")?,
                        session_id: self.session_id.to_model("session_id")?,
                        source: Source::parse(&self.source)
                            .ok_or_else(|| corrupt("source", &self.source))?,
                        trace_id: TraceId::parse_hex("trace_id", &self.trace_id)
                            .map_err(|_| corrupt("trace_id", &self.trace_id))?,
                        span_id: span(self.span_id, "span_id")?,
                        parent_span_id: span(self.parent_span_id, "parent_span_id")?,
                        status: Status::parse(&self.status)
                            .ok_or_else(|| corrupt("status", &self.status))?,
                        severity: Severity::parse(&self.severity)
                            .ok_or_else(|| corrupt("severity", &self.severity))?,
                        payload: self.payload.to_model("payload")?,
                        event_type: self.event_type.into(),
                        agent_id: self.agent_id,
                        source_app: self.source_app,
                        prompt_id: self.prompt_id,
                        tool_name: self.tool_name,
                        tool_use_id: self.tool_use_id,
                        latency_ms: self.latency_ms.to_model("latency_ms")?,
                        model: self.model,
                        mcp_server: self.mcp_server,
                        repo: self.repo,
                        branch: self.branch,
                        commit: self.commit_sha,
                        created_at: self.created_at.to_model("created_at")?,
                        received_at: self.received_at.to_model("received_at")?,
                    },
                })
            }
        }
    };
}

/// `SessionRow`: a row of `sessions` for `$backend`, and its conversion into the model.
macro_rules! session_row {
    ($backend:ty, uuid = $uuid:ty, time = $time:ty) => {
        #[derive(diesel::Queryable, diesel::Selectable)]
        #[diesel(table_name = super::schema::sessions)]
        #[diesel(check_for_backend($backend))]
        pub(super) struct SessionRow {
            session_id: $uuid,
            source_app: String,
            first_seen: $time,
            last_seen: $time,
            cwd: Option<String>,
            model: Option<String>,
            status: String,
            event_count: i64,
            tool_calls: i64,
            tool_failures: i64,
            error_count: i64,
            input_tokens: i64,
            output_tokens: i64,
            cost_usd: f64,
            state: String,
            state_since: Option<$time>,
            waiting_on: Option<String>,
            state_detail: Option<String>,
            current_tool: Option<String>,
            subagents: i64,
        }

        impl SessionRow {
            pub(super) fn into_summary(
                self,
            ) -> Result<$crate::model::sessions::SessionSummary, $crate::store::StoreError> {
                use $crate::store::rows::ToModel;
                let first_seen = self.first_seen.to_model("first_seen")?;
                Ok($crate::model::sessions::SessionSummary {
                    session_id: self.session_id.to_model("session_id")?,
                    source_app: self.source_app,
                    first_seen,
                    state: $crate::model::session_state::SessionState::parse(&self.state)
                        .ok_or_else(|| $crate::store::query::corrupt("state", &self.state))?,
                    state_since: match self.state_since {
                        Some(t) => t.to_model("state_since")?,
                        None => first_seen,
                    },
                    waiting_on: self.waiting_on,
                    state_detail: self.state_detail,
                    current_tool: self.current_tool,
                    running_subagents: self.subagents,
                    last_seen: self.last_seen.to_model("last_seen")?,
                    cwd: self.cwd,
                    model: self.model,
                    status: self.status,
                    totals: $crate::model::sessions::SessionTotals {
                        event_count: self.event_count,
                        tool_calls: self.tool_calls,
                        tool_failures: self.tool_failures,
                        error_count: self.error_count,
                        input_tokens: self.input_tokens,
                        output_tokens: self.output_tokens,
                        cost_usd: self.cost_usd,
                    },
                })
            }
        }
    };
}

pub(super) use {event_row, session_row};
