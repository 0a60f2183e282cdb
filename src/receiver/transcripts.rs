//! `POST /api/v1/observability/transcripts`: `{"session_id", "agent_id", "entries": [transcript lines]}` as
//! `hivewatch flush` ships them. Entries without a `uuid` are skipped; entries already stored are not stored again.
//! Transcripts are written straight to the store: they are no events and feed no sink.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{IngestError, read_body};
use crate::model::transcripts::TranscriptEntry;
use crate::state::IngestState;
use crate::store::StoreError;

pub async fn handler(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    let started = std::time::Instant::now();
    let result = receive_transcript(&state, &headers, body).await;
    super::hook_http::answer(&state, "transcripts", started, result)
}

async fn receive_transcript(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let (bytes, _hold) = read_body(state, headers, body).await?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| IngestError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let text = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let session = text("session_id")
        .ok_or_else(|| IngestError::BadRequest("transcript has no `session_id`".into()))?;
    let session_id = crate::model::ids::session_uuid(session);
    let agent_id = text("agent_id").unwrap_or("main").to_string();
    // Both go into every entry.
    state
        .limits
        .check_id("`agent_id`", &agent_id)
        .map_err(IngestError::BadRequest)?;
    let Some(lines) = value.get("entries").and_then(Value::as_array) else {
        return Err(IngestError::BadRequest(
            "`entries` must be an array of transcript lines".into(),
        ));
    };
    let now = chrono::Utc::now();
    let total = lines.len();
    state
        .limits
        .check_items(total, "transcript entries")
        .map_err(IngestError::TooLarge)?;
    let mut errors = Vec::new();
    let entries: Vec<TranscriptEntry> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            if let Err(e) = state.limits.check_json(line) {
                errors.push(format!("entry {i}: {e}"));
                return None;
            }
            let mut line = line.clone();
            state
                .pipeline
                .redact_settings()
                .apply_transcript_line(&mut line);
            TranscriptEntry::from_line(session_id, &agent_id, line, now)
        })
        .collect();
    let accepted = entries.len();
    if let Some(first) = errors.first() {
        tracing::warn!(rejected = errors.len(), accepted, first = %first, "transcript entries refused");
    }
    let stored = state
        .store
        .add_transcript(entries)
        .await
        .map_err(|e| match e {
            StoreError::Rejected(m) => {
                IngestError::BadRequest(format!("the store refused these entries: {m}"))
            }
            e => IngestError::Unavailable(e.to_string()),
        })?;
    Ok(Json(json!({
        "accepted": accepted,
        "skipped": total - accepted - errors.len(),
        "rejected": errors.len(),
        "errors": errors,
        "stored": stored,
    }))
    .into_response())
}
