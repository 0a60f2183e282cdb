//! OTLP export of the spans hivewatch assembles from hook events, through the opentelemetry-otlp exporter.
//!
//! Committed hook events are folded into spans with the design's deterministic ids (the model already computed
//! each event's `span_id` and `parent_span_id`): a tool span per PostToolUse/PostToolUseFailure (start = its
//! time minus `latency_ms`), a turn span per UserPromptSubmit → Stop, a subagent span per SubagentStart →
//! SubagentStop, a session span per SessionStart → SessionEnd, or, when no SessionEnd comes, after the session has
//! been idle for `session_idle`. Trace id = session id.
//!
//! Export never slows ingest: the committer hands batches over without waiting (a full queue drops them, counted),
//! spans are batched (up to `BATCH` or every `FLUSH_EVERY`) and retried a few times with back-off, then dropped and
//! counted.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId,
    TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::model::{Source, SpanId, StoredEvent};

/// Committed batches waiting for the assembler.
const QUEUE: usize = 1024;
/// Spans per export call.
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub endpoint: String,
    pub protocol: ExportProtocol,
    /// A session with no event for this long gets its session span without a SessionEnd.
    pub session_idle: Duration,
    /// Also export the spans other senders sent (OTLP traces), with their own ids, names, times and attributes.
    pub forward_spans: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportProtocol {
    /// OTLP/gRPC (the endpoint is `http://host:4317`).
    Grpc,
    /// OTLP/HTTP protobuf (the endpoint is the full `…/v1/traces` URL).
    Http,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failures: AtomicU64,
}

/// The committer's handle: hands committed batches to the assembler without waiting.
#[derive(Clone, Debug)]
pub struct ExportFeed {
    tx: mpsc::Sender<Arc<[StoredEvent]>>,
    stats: Arc<ExportStats>,
}

impl ExportFeed {
    pub fn send(&self, events: Arc<[StoredEvent]>) {
        let n = events.len() as u64;
        if self.tx.try_send(events).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Builds the exporter and starts the assembler; fails on a configuration the exporter refuses.
pub fn start(
    config: ExportConfig,
) -> anyhow::Result<(ExportFeed, Arc<ExportStats>, tokio::task::JoinHandle<()>)> {
    let exporter = match config.protocol {
        ExportProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()?,
        ExportProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(config.endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()?,
    };
    let mut exporter = exporter;
    exporter.set_resource(
        &Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "hivewatch"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build(),
    );
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ExportStats::default());
    let task = tokio::spawn(run(exporter, rx, config, stats.clone()));
    Ok((
        ExportFeed {
            tx,
            stats: stats.clone(),
        },
        stats,
        task,
    ))
}

async fn run(
    exporter: opentelemetry_otlp::SpanExporter,
    mut rx: mpsc::Receiver<Arc<[StoredEvent]>>,
    config: ExportConfig,
    stats: Arc<ExportStats>,
) {
    let mut assembler = Assembler {
        forward_spans: config.forward_spans,
        ..Default::default()
    };
    let mut pending: Vec<SpanData> = Vec::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut sweep = tokio::time::interval(config.session_idle.min(Duration::from_secs(30)));
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(batch) => {
                    for ev in batch.iter() {
                        assembler.add(ev, &mut pending);
                    }
                }
                None => break,
            },
            _ = flush.tick() => {}
            _ = sweep.tick() => assembler.close_idle(Utc::now(), config.session_idle, &mut pending),
        }
        while pending.len() >= BATCH || (!pending.is_empty() && rx.is_empty()) {
            let take = pending.len().min(BATCH);
            let batch: Vec<SpanData> = pending.drain(..take).collect();
            export_with_retry(&exporter, batch, &stats).await;
        }
    }
    // Shutting down: what is finished goes out; open sessions are not closed early.
    while !pending.is_empty() {
        let take = pending.len().min(BATCH);
        let batch: Vec<SpanData> = pending.drain(..take).collect();
        export_with_retry(&exporter, batch, &stats).await;
    }
}

async fn export_with_retry(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: Vec<SpanData>,
    stats: &ExportStats,
) {
    let n = batch.len() as u64;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        match exporter.export(batch.clone()).await {
            Ok(()) => {
                stats.exported.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if attempt == ATTEMPTS {
                    tracing::warn!(error = %e, spans = n, "OTLP export failed; spans dropped");
                    stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Open spans of the sessions this process has seen.
#[derive(Default)]
struct Assembler {
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
    fn add(&mut self, se: &StoredEvent, out: &mut Vec<SpanData>) {
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
                seen: Utc::now(),
                turns: HashMap::new(),
                agents: HashMap::new(),
            });
        state.first = state.first.min(ev.created_at);
        state.last = state.last.max(ev.created_at);
        state.seen = Utc::now();
        let at = ev.created_at;
        match ev.event_type.as_str() {
            "SessionStart" => state.started = Some(at),
            "UserPromptSubmit" => {
                if let Some(p) = &ev.prompt_id {
                    state.turns.insert(p.clone(), at);
                }
            }
            "SubagentStart" => {
                state.agents.insert(ev.agent_id.clone(), at);
            }
            "PostToolUse" | "PostToolUseFailure" => {
                let start = ev
                    .latency_ms
                    .map(|ms| at - chrono::Duration::milliseconds(ms))
                    .unwrap_or(at);
                let tool = ev.tool_name.as_deref().unwrap_or("unknown");
                let mut attrs = common_attributes(se, "execute_tool");
                attrs.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
                if let Some(id) = &ev.tool_use_id {
                    attrs.push(KeyValue::new("gen_ai.tool.call.id", id.clone()));
                }
                if let Some(ms) = ev.latency_ms {
                    attrs.push(KeyValue::new("hivewatch.latency_ms", ms));
                }
                let failed = ev.event_type == "PostToolUseFailure";
                out.push(span(
                    se,
                    format!("execute_tool {tool}"),
                    start,
                    at,
                    attrs,
                    failed,
                ));
            }
            "Stop" | "StopFailure" => {
                if let Some(p) = &ev.prompt_id {
                    let start = state.turns.remove(p).unwrap_or(at);
                    let attrs = common_attributes(se, "invoke_agent");
                    let failed = ev.event_type == "StopFailure";
                    out.push(span(se, "turn".to_string(), start, at, attrs, failed));
                }
            }
            "SubagentStop" => {
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
            "SessionEnd" => {
                if let Some(state) = self.sessions.remove(&ev.session_id) {
                    out.push(session_span(ev.session_id, &state, at, Some(se)));
                }
            }
            _ => {}
        }
    }

    /// Closes sessions that have been quiet for `idle`: their session span ends at their last event.
    fn close_idle(&mut self, now: DateTime<Utc>, idle: Duration, out: &mut Vec<SpanData>) {
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
