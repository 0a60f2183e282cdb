//! The read side: events with filters and cursor pagination, sessions, one session's timeline, health.

pub mod dashboard;
pub mod web;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::model::StoredEvent;
use crate::model::sessions::SessionSummary;
use crate::model::tool_calls::{ToolCall, pair_tool_calls};
use crate::state::ReadState;
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
    State(state): State<ReadState>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    Ok(Json(state.store.events(query).await?).into_response())
}

pub async fn sessions(
    State(state): State<ReadState>,
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
    State(state): State<ReadState>,
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

pub async fn readyz(State(state): State<ReadState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct TranscriptQuery {
    pub agent_id: Option<String>,
}

/// `GET /api/v1/observability/sessions/{id}/transcript`: the session's transcript entries, oldest first.
pub async fn transcript(
    State(state): State<ReadState>,
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
