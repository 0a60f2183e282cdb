//! Rows of the Postgres tables as Diesel reads them, and their conversion to the model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::schema::chat_transcripts;

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

crate::store::rows::event_row!(
    diesel::pg::Pg,
    uuid = Uuid,
    time = DateTime<Utc>,
    latency = i32,
    json = Value
);
crate::store::rows::session_row!(diesel::pg::Pg, uuid = Uuid, time = DateTime<Utc>);
