//! `POST /api/v1/observability/event`: a Claude Code hook payload as is (a valid `type: "http"` hook target),
//! the seed API's envelope, or a JSON array of either (how `hivewatch hook` delivers its spool).
//!
//! What the payload cannot say travels beside it: the headers `X-Hivewatch-Event-Id`, `X-Hivewatch-Time`,
//! `X-Hivewatch-Source-App`, `X-Hivewatch-Agent-Id` and `traceparent`, or per item a `_hivewatch` object with the
//! keys `event_id`, `time`, `source_app`, `agent_id`, `traceparent`. Claude Code parses the answer of an http
//! hook as hook output, so a single payload is answered 200 with an empty body: nothing that could steer the
//! agent (for `PreCompact` even `{}` would: the body is appended to the compaction instructions).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{IngestError, read_body};
use crate::model::AgentEvent;
use crate::model::hook::{HookContext, json_kind, normalize_hook};
use crate::model::limits::Limits;
use crate::state::IngestState;

pub const EVENT_ID_HEADER: &str = "x-hivewatch-event-id";
pub const TIME_HEADER: &str = "x-hivewatch-time";
pub const SOURCE_APP_HEADER: &str = "x-hivewatch-source-app";
pub const AGENT_ID_HEADER: &str = "x-hivewatch-agent-id";
/// The per-item field that carries the sender's context inside a payload.
pub const CONTEXT_FIELD: &str = "_hivewatch";

pub fn error_response(err: &IngestError) -> Response {
    err.http_response(Json(json!({ "error": err.to_string() })))
}

pub async fn handler(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    let started = std::time::Instant::now();
    let result = receive(&state, &headers, body).await;
    if let Err(IngestError::BadRequest(_)) = &result {
        state.instruments.rejected("hook", "invalid", 1);
    }
    answer(&state, "hook", started, result)
}

/// A JSON endpoint's answer (hooks, transcripts), counted: the response, or the error as `{"error": …}`.
pub fn answer(
    state: &IngestState,
    signal: &'static str,
    started: std::time::Instant,
    result: Result<Response, IngestError>,
) -> Response {
    let outcome = result.as_ref().map(|_| 0);
    super::record_request(&state.instruments, "http", signal, started, outcome);
    result.unwrap_or_else(|e| error_response(&e))
}

async fn receive(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(IngestError::UnsupportedMediaType(format!(
                "content-type must be application/json, got {ct:?}"
            )));
        }
    }
    let (bytes, hold) = read_body(state, headers, body).await?;
    let base = context_from_headers(headers)?;
    let normalized = normalize_body(&bytes, &base, &state.limits, Utc::now())?;
    drop(bytes);
    match normalized {
        HookBody::One(event) => {
            super::submit(&state.ingest(), vec![*event], "hook", hold).await?;
            // An empty body: Claude Code takes an http hook's answer for hook output, and for some events the
            // body itself (a PreCompact answer of `{}` would be appended to the compaction instructions).
            Ok(StatusCode::OK.into_response())
        }
        HookBody::Batch { events, errors } => {
            let accepted = events.len();
            state
                .instruments
                .rejected("hook", "invalid", errors.len() as u64);
            if let Some(first) = errors.first() {
                // The sender (a spool flush, usually) reads only the status: say here what was refused.
                tracing::warn!(rejected = errors.len(), accepted, first = %first, "hook batch items refused");
            }
            super::submit(&state.ingest(), events, "hook", hold).await?;
            Ok(
                Json(json!({ "accepted": accepted, "rejected": errors.len(), "errors": errors }))
                    .into_response(),
            )
        }
    }
}

/// A hook request body, normalized.
#[derive(Debug)]
pub enum HookBody {
    /// A single payload: accepted or refused whole.
    One(Box<AgentEvent>),
    /// A JSON array (a spool flush): the good items, and a message for each refused one.
    Batch {
        events: Vec<AgentEvent>,
        errors: Vec<String>,
    },
}

/// Decodes and normalizes a hook request body: one payload or an array of them, each checked against the limits.
pub fn normalize_body(
    bytes: &[u8],
    base: &HookContext,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<HookBody, IngestError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(IngestError::BadRequest(format!(
            "body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        )));
    }
    // What the headers say is copied into every item: identifiers only, never documents.
    check_context_ids(limits, base, "header ").map_err(IngestError::BadRequest)?;
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| IngestError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let one = |item: Value| -> Result<AgentEvent, String> {
        limits.check_json(&item).map_err(|e| e.to_string())?;
        let (item, ctx) = item_context(item, base)?;
        check_context_ids(limits, &ctx, "")?;
        normalize_hook(item, &ctx, now).map_err(|e| e.to_string())
    };
    match value {
        Value::Array(items) => {
            limits
                .check_items(items.len(), "hook events")
                .map_err(IngestError::TooLarge)?;
            let mut events = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match one(item) {
                    Ok(ev) => events.push(ev),
                    Err(e) => errors.push(format!("item {i}: {e}")),
                }
            }
            if events.is_empty() && !errors.is_empty() {
                return Err(IngestError::BadRequest(errors.join("; ")));
            }
            Ok(HookBody::Batch { events, errors })
        }
        item => one(item)
            .map(|ev| HookBody::One(Box::new(ev)))
            .map_err(IngestError::BadRequest),
    }
}

/// The sender's identifiers (from headers, or an item's `_hivewatch`) are of identifier size.
fn check_context_ids(limits: &Limits, ctx: &HookContext, from: &str) -> Result<(), String> {
    for (name, value) in [
        (SOURCE_APP_HEADER, &ctx.source_app),
        (AGENT_ID_HEADER, &ctx.agent_id),
        ("traceparent", &ctx.traceparent),
    ] {
        if let Some(v) = value {
            limits.check_id(&format!("{from}{name}"), v)?;
        }
    }
    Ok(())
}

fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, IngestError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| IngestError::BadRequest(format!("header {name} is not text")))
        })
        .transpose()
}

fn context_from_headers(headers: &HeaderMap) -> Result<HookContext, IngestError> {
    let event_id = header_str(headers, EVENT_ID_HEADER)?
        .map(|s| {
            parse_event_id(s)
                .map_err(|e| IngestError::BadRequest(format!("header {EVENT_ID_HEADER}: {e}")))
        })
        .transpose()?;
    let created_at = header_str(headers, TIME_HEADER)?
        .map(|s| {
            parse_time(s).map_err(|e| IngestError::BadRequest(format!("header {TIME_HEADER}: {e}")))
        })
        .transpose()?;
    Ok(HookContext {
        event_id,
        created_at,
        source_app: header_str(headers, SOURCE_APP_HEADER)?.map(str::to_string),
        agent_id: header_str(headers, AGENT_ID_HEADER)?.map(str::to_string),
        traceparent: header_str(headers, "traceparent")?.map(str::to_string),
    })
}

/// Takes the `_hivewatch` object out of an item; its fields win over the request's headers.
fn item_context(mut item: Value, base: &HookContext) -> Result<(Value, HookContext), String> {
    let mut ctx = base.clone();
    let Some(obj) = item.as_object_mut() else {
        return Err(format!(
            "hook payload must be a JSON object, got {}",
            json_kind(&item)
        ));
    };
    let Some(extra) = obj.remove(CONTEXT_FIELD) else {
        return Ok((item, ctx));
    };
    let Value::Object(extra) = extra else {
        return Err(format!("`{CONTEXT_FIELD}` must be an object"));
    };
    let text = |k: &str| -> Result<Option<String>, String> {
        match extra.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{CONTEXT_FIELD}.{k}` must be a string")),
        }
    };
    if let Some(id) = text("event_id")? {
        ctx.event_id =
            Some(parse_event_id(&id).map_err(|e| format!("`{CONTEXT_FIELD}.event_id`: {e}"))?);
    }
    match extra.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            ctx.created_at =
                Some(parse_time(s).map_err(|e| format!("`{CONTEXT_FIELD}.time`: {e}"))?)
        }
        Some(Value::Number(n)) => {
            ctx.created_at = n
                .as_i64()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        }
        Some(_) => {
            return Err(format!(
                "`{CONTEXT_FIELD}.time` must be RFC 3339 text or epoch milliseconds"
            ));
        }
    }
    if let Some(v) = text("source_app")? {
        ctx.source_app = Some(v);
    }
    if let Some(v) = text("agent_id")? {
        ctx.agent_id = Some(v);
    }
    if let Some(v) = text("traceparent")? {
        ctx.traceparent = Some(v);
    }
    Ok((item, ctx))
}

fn parse_event_id(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s.trim()).map_err(|_| format!("{s:?} is not a UUID"))
}

/// RFC 3339, or milliseconds since the epoch.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| format!("{s:?} is out of range"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor epoch milliseconds"))
}
