//! Hook events folded into spans, with the design's deterministic ids (the model already computed each event's
//! `span_id` and `parent_span_id`): a tool span per PostToolUse/PostToolUseFailure (start = its time minus
//! `latency_ms`), a turn span per UserPromptSubmit → Stop, a subagent span per SubagentStart → SubagentStop, a session
//! span per SessionStart → SessionEnd, or, when no SessionEnd comes, after the session has been idle. Pure: no I/O,
//! no clock but the `now` it is given.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId,
    TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::Value;
use uuid::Uuid;

use crate::model::tool_calls::started_at;
use crate::model::{EventType, Source, SpanId, StoredEvent};

/// Open spans of the sessions this process has seen.
#[derive(Default)]
pub(super) struct Assembler {
    sessions: HashMap<Uuid, SessionState>,
    forward_spans: bool,
}

struct SessionState {
    source_app: String,
    started: Option<DateTime<Utc>>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    /// When this process last saw an event of the session (for the idle close).
    seen: DateTime<Utc>,
    turns: HashMap<String, DateTime<Utc>>,
    agents: HashMap<String, DateTime<Utc>>,
}

fn to_system(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

fn text<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Assembler {
    pub(super) fn new(forward_spans: bool) -> Assembler {
        Assembler {
            forward_spans,
            ..Default::default()
        }
    }

    /// Folds one committed event in; the spans it finishes go to `out`.
    pub(super) fn add(&mut self, se: &StoredEvent, now: DateTime<Utc>, out: &mut Vec<SpanData>) {
        let ev = &se.event;
        if ev.source == Source::OtlpSpan && self.forward_spans {
            out.push(forwarded(se));
            return;
        }
        if !matches!(ev.source, Source::Hook | Source::Api) {
            return;
        }
        let state = self
            .sessions
            .entry(ev.session_id)
            .or_insert_with(|| SessionState {
                source_app: ev.source_app.clone(),
                started: None,
                first: ev.created_at,
                last: ev.created_at,
                seen: now,
                turns: HashMap::new(),
                agents: HashMap::new(),
            });
        state.first = state.first.min(ev.created_at);
        state.last = state.last.max(ev.created_at);
        state.seen = now;
        let at = ev.created_at;
        match ev.event_type {
            EventType::SessionStart => state.started = Some(at),
            EventType::UserPromptSubmit => {
                if let Some(p) = &ev.prompt_id {
                    state.turns.insert(p.clone(), at);
                }
            }
            EventType::SubagentStart => {
                state.agents.insert(ev.agent_id.clone(), at);
            }
            EventType::PostToolUse | EventType::PostToolUseFailure => {
                let start = started_at(at, ev.latency_ms);
                let tool = ev.tool_name.as_deref().unwrap_or("unknown");
                let mut attrs = common_attributes(se, "execute_tool");
                attrs.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
                if let Some(id) = &ev.tool_use_id {
                    attrs.push(KeyValue::new("gen_ai.tool.call.id", id.clone()));
                }
                if let Some(ms) = ev.latency_ms {
                    attrs.push(KeyValue::new("hivewatch.latency_ms", ms));
                }
                let failed = ev.event_type == EventType::PostToolUseFailure;
                out.push(span(
                    se,
                    format!("execute_tool {tool}"),
                    start,
                    at,
                    attrs,
                    failed,
                ));
            }
            EventType::Stop | EventType::StopFailure => {
                if let Some(p) = &ev.prompt_id {
                    let start = state.turns.remove(p).unwrap_or(at);
                    let attrs = common_attributes(se, "invoke_agent");
                    let failed = ev.event_type == EventType::StopFailure;
                    out.push(span(se, "turn".to_string(), start, at, attrs, failed));
                }
            }
            EventType::SubagentStop => {
                let start = state.agents.remove(&ev.agent_id).unwrap_or(at);
                let agent_type = text(&ev.payload, "agent_type").unwrap_or("subagent");
                let mut attrs = common_attributes(se, "invoke_agent");
                attrs.push(KeyValue::new("gen_ai.agent.name", agent_type.to_string()));
                out.push(span(
                    se,
                    format!("invoke_agent {agent_type}"),
                    start,
                    at,
                    attrs,
                    false,
                ));
            }
            EventType::SessionEnd => {
                if let Some(state) = self.sessions.remove(&ev.session_id) {
                    out.push(session_span(ev.session_id, &state, at, Some(se)));
                }
            }
            _ => {}
        }
    }

    /// Closes sessions that have been quiet for `idle`: their session span ends at their last event.
    pub(super) fn close_idle(
        &mut self,
        now: DateTime<Utc>,
        idle: Duration,
        out: &mut Vec<SpanData>,
    ) {
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let quiet: Vec<Uuid> = self
            .sessions
            .iter()
            .filter(|(_, s)| now - s.seen >= idle)
            .map(|(id, _)| *id)
            .collect();
        for id in quiet {
            if let Some(state) = self.sessions.remove(&id) {
                let end = state.last;
                out.push(session_span(id, &state, end, None));
            }
        }
    }
}

/// A received span as it came: its ids, name, kind, times, status and attributes.
fn forwarded(se: &StoredEvent) -> SpanData {
    let ev = &se.event;
    let p = &ev.payload;
    let nanos = |k: &str| {
        p.get(k)
            .and_then(Value::as_u64)
            .map(|n| SystemTime::UNIX_EPOCH + Duration::from_nanos(n))
    };
    let attributes = p
        .get("attributes")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => KeyValue::new(k.clone(), s.clone()),
                    Value::Bool(b) => KeyValue::new(k.clone(), *b),
                    Value::Number(n) if n.is_i64() => {
                        KeyValue::new(k.clone(), n.as_i64().unwrap_or(0))
                    }
                    Value::Number(n) => KeyValue::new(k.clone(), n.as_f64().unwrap_or(0.0)),
                    other => KeyValue::new(k.clone(), other.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    let start = nanos("start_time_unix_nano").unwrap_or_else(|| to_system(ev.created_at));
    let end = nanos("end_time_unix_nano").unwrap_or(start);
    let mut data = build(
        OtelTraceId::from_bytes(ev.trace_id.0),
        otel_span_id(ev.span_id),
        otel_span_id(ev.parent_span_id),
        text(p, "name").unwrap_or("span").to_string(),
        ev.created_at,
        ev.created_at,
        attributes,
        ev.status == crate::model::Status::Error,
        Vec::new(),
    );
    data.start_time = start;
    data.end_time = end.max(start);
    data.span_kind = match p.get("kind").and_then(Value::as_i64) {
        Some(2) => SpanKind::Server,
        Some(3) => SpanKind::Client,
        Some(4) => SpanKind::Producer,
        Some(5) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    data
}

fn common_attributes(se: &StoredEvent, operation: &'static str) -> Vec<KeyValue> {
    let ev = &se.event;
    let mut attrs = vec![
        KeyValue::new("gen_ai.operation.name", operation),
        KeyValue::new("gen_ai.conversation.id", ev.session_id.to_string()),
        KeyValue::new("session.id", ev.session_id.to_string()),
        KeyValue::new("gen_ai.agent.id", ev.agent_id.clone()),
        KeyValue::new("hivewatch.source_app", ev.source_app.clone()),
    ];
    if let Some(p) = &ev.prompt_id {
        attrs.push(KeyValue::new("prompt.id", p.clone()));
    }
    attrs
}

fn otel_span_id(id: Option<SpanId>) -> OtelSpanId {
    id.map_or(OtelSpanId::INVALID, |s| OtelSpanId::from_bytes(s.0))
}

/// The native span a hook saw in `TRACEPARENT`, as a link.
fn native_link(payload: &Value) -> Option<opentelemetry::trace::Link> {
    let tp = text(payload, "hivewatch.traceparent")?;
    let mut parts = tp.split('-');
    let (_, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    let trace = OtelTraceId::from_hex(trace).ok()?;
    let span = OtelSpanId::from_hex(span).ok()?;
    let ctx = SpanContext::new(
        trace,
        span,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Some(opentelemetry::trace::Link::new(ctx, Vec::new(), 0))
}

fn span(
    se: &StoredEvent,
    name: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attributes: Vec<KeyValue>,
    failed: bool,
) -> SpanData {
    let ev = &se.event;
    build(
        OtelTraceId::from_bytes(ev.trace_id.0),
        otel_span_id(ev.span_id),
        otel_span_id(ev.parent_span_id),
        name,
        start,
        end,
        attributes,
        failed,
        native_link(&ev.payload).into_iter().collect(),
    )
}

fn session_span(
    session: Uuid,
    state: &SessionState,
    end: DateTime<Utc>,
    closing: Option<&StoredEvent>,
) -> SpanData {
    let start = state.started.unwrap_or(state.first);
    let attributes = vec![
        KeyValue::new("gen_ai.operation.name", "invoke_agent"),
        KeyValue::new("gen_ai.conversation.id", session.to_string()),
        KeyValue::new("session.id", session.to_string()),
        KeyValue::new("gen_ai.agent.name", state.source_app.clone()),
        KeyValue::new("hivewatch.source_app", state.source_app.clone()),
        KeyValue::new("hivewatch.session_ended", closing.is_some()),
    ];
    let links = closing
        .and_then(|se| native_link(&se.event.payload))
        .into_iter()
        .collect();
    build(
        OtelTraceId::from_bytes(*session.as_bytes()),
        OtelSpanId::from_bytes(SpanId::derived("session", &session.to_string()).0),
        OtelSpanId::INVALID,
        format!("invoke_agent {}", state.source_app),
        start,
        end,
        attributes,
        false,
        links,
    )
}

#[allow(clippy::too_many_arguments)]
fn build(
    trace_id: OtelTraceId,
    span_id: OtelSpanId,
    parent: OtelSpanId,
    name: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attributes: Vec<KeyValue>,
    failed: bool,
    links: Vec<opentelemetry::trace::Link>,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(name),
        start_time: to_system(start),
        end_time: to_system(end.max(start)),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: {
            let mut l = SpanLinks::default();
            l.links = links;
            l
        },
        status: if failed {
            Status::error("failed")
        } else {
            Status::Ok
        },
        instrumentation_scope: InstrumentationScope::builder("hivewatch")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};

    const SESSION: &str = "0fbc6975-e498-4c0d-a2a2-497077c17a19";

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn event(v: serde_json::Value, ms: i64) -> StoredEvent {
        let ctx = HookContext {
            created_at: Some(at(ms)),
            ..Default::default()
        };
        let mut v = v;
        v["session_id"] = json!(SESSION);
        StoredEvent {
            id: ms,
            event: normalize_hook(v, &ctx, at(ms)).unwrap(),
        }
    }

    fn run(events: &[StoredEvent]) -> (Assembler, Vec<SpanData>) {
        let mut a = Assembler::new(false);
        let mut out = Vec::new();
        for e in events {
            a.add(e, at(0), &mut out);
        }
        (a, out)
    }

    #[test]
    fn a_session_becomes_a_tree_of_spans() {
        let events = [
            event(
                json!({"hook_event_name": "SessionStart", "source_app": "demo"}),
                0,
            ),
            event(
                json!({"hook_event_name": "UserPromptSubmit", "prompt_id": "p1"}),
                100,
            ),
            event(
                json!({"hook_event_name": "PostToolUse", "prompt_id": "p1", "tool_name": "Bash",
                         "tool_use_id": "t1", "duration_ms": 300}),
                900,
            ),
            event(json!({"hook_event_name": "Stop", "prompt_id": "p1"}), 1000),
            event(json!({"hook_event_name": "SessionEnd"}), 2000),
        ];
        let (a, spans) = run(&events);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["execute_tool Bash", "turn", "invoke_agent demo"]);
        let tool = &spans[0];
        assert_eq!(
            (tool.start_time, tool.end_time),
            (to_system(at(600)), to_system(at(900)))
        );
        let turn = &spans[1];
        assert_eq!(
            (turn.start_time, turn.end_time),
            (to_system(at(100)), to_system(at(1000)))
        );
        assert_eq!(tool.parent_span_id, turn.span_context.span_id());
        let session = &spans[2];
        assert_eq!(
            session.span_context.trace_id().to_bytes(),
            *Uuid::parse_str(SESSION).unwrap().as_bytes()
        );
        assert_eq!(turn.parent_span_id, session.span_context.span_id());
        assert!(a.sessions.is_empty(), "an ended session is forgotten");
    }

    #[test]
    fn a_failed_tool_is_an_error_and_a_subagent_spans_its_start_to_stop() {
        let events = [
            event(
                json!({"hook_event_name": "SubagentStart", "agent_id": "a1", "agent_type": "Explore"}),
                0,
            ),
            event(
                json!({"hook_event_name": "PostToolUseFailure", "agent_id": "a1", "tool_name": "Read",
                         "tool_use_id": "t2"}),
                50,
            ),
            event(
                json!({"hook_event_name": "SubagentStop", "agent_id": "a1", "agent_type": "Explore"}),
                80,
            ),
        ];
        let (_, spans) = run(&events);
        assert_eq!(spans[0].status, Status::error("failed"));
        // No latency known: the tool span is an instant at its Post.
        assert_eq!(spans[0].start_time, spans[0].end_time);
        assert_eq!(spans[1].name, "invoke_agent Explore");
        assert_eq!(
            (spans[1].start_time, spans[1].end_time),
            (to_system(at(0)), to_system(at(80)))
        );
        assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    }

    #[test]
    fn an_idle_session_is_closed_at_its_last_event() {
        let events = [
            event(json!({"hook_event_name": "SessionStart"}), 0),
            event(json!({"hook_event_name": "Notification"}), 500),
        ];
        let (mut a, spans) = run(&events);
        assert!(spans.is_empty());
        let mut out = Vec::new();
        // Seen at 0 (the `now` of `run`): not idle yet a minute later with a two-minute bound.
        a.close_idle(at(60_000), Duration::from_secs(120), &mut out);
        assert!(out.is_empty());
        a.close_idle(at(180_000), Duration::from_secs(120), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].start_time, out[0].end_time),
            (to_system(at(0)), to_system(at(500)))
        );
        assert!(
            out[0]
                .attributes
                .contains(&KeyValue::new("hivewatch.session_ended", false))
        );
    }
}
