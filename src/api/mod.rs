//! The read side: events with filters and cursor pagination, sessions, one session's timeline, health.

pub mod live;
pub mod web;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{AppState, read_body};
use crate::model::StoredEvent;
use crate::model::sessions::SessionSummary;
use crate::model::tool_calls::{ToolCall, pair_tool_calls};
use crate::model::transcripts::TranscriptEntry;
use crate::receiver::IngestError;
use crate::store::{EventQuery, MAX_LIMIT, SessionQuery, StoreError};

/// Events a session timeline returns at most.
const TIMELINE_CAP: usize = 20_000;

pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadQuery(m) | StoreError::Rejected(m) => {
                ApiError(StatusCode::BAD_REQUEST, m)
            }
            StoreError::Unavailable(_) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            StoreError::Internal(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.body_text())
    }
}

pub async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    Ok(Json(state.store.events(query).await?).into_response())
}

pub async fn sessions(
    State(state): State<AppState>,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    Ok(Json(json!({ "sessions": state.store.sessions(query).await? })).into_response())
}

#[derive(Serialize)]
pub struct Timeline {
    #[serde(flatten)]
    pub session: SessionSummary,
    pub tool_calls: Vec<ToolCall>,
    pub events: Vec<StoredEvent>,
    /// True when the session holds more events than one timeline returns.
    pub truncated: bool,
}

pub async fn session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("session id {id:?} is not a UUID"),
        )
    })?;
    let Some(session) = state.store.session(id).await? else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no session {id}")));
    };
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .store
            .events(EventQuery {
                session_id: Some(id),
                limit: Some(MAX_LIMIT),
                cursor,
                ..Default::default()
            })
            .await?;
        events.extend(page.events);
        cursor = page.next_cursor;
        if cursor.is_none() || events.len() >= TIMELINE_CAP {
            break;
        }
    }
    let truncated = cursor.is_some();
    let tool_calls = pair_tool_calls(&events);
    Ok(Json(Timeline {
        session,
        tool_calls,
        events,
        truncated,
    })
    .into_response())
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `POST /api/v1/observability/transcripts`: `{"session_id", "agent_id", "entries": [transcript lines]}`.
/// Entries without a `uuid` are skipped; entries already stored are not stored again.
pub async fn add_transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let result = receive_transcript(&state, &headers, body).await;
    crate::receiver::record_request("http", "transcripts", started, result.as_ref().map(|_| 0));
    match result {
        Ok(resp) => resp,
        Err(e) => crate::receiver::hook_http::error_response(&e),
    }
}

async fn receive_transcript(
    state: &AppState,
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

#[derive(Debug, Deserialize)]
pub struct TranscriptQuery {
    pub agent_id: Option<String>,
}

/// `GET /api/v1/observability/sessions/{id}/transcript`: the session's transcript entries, oldest first.
pub async fn transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TranscriptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("session id {id:?} is not a UUID"),
        )
    })?;
    let entries = state.store.transcript(id, query.agent_id).await?;
    Ok(Json(json!({ "entries": entries })).into_response())
}
