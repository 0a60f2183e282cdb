//! OTLP spans and log records into `AgentEvent`s: one path for gRPC, protobuf over HTTP and JSON over HTTP.
//!
//! A record with a bad id is rejected alone and reported back through OTLP `partial_success`; the rest of the
//! batch is kept.

use chrono::{DateTime, TimeZone, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::EventType;
use super::event::{AgentEvent, Severity, Source, Status};
use super::ids::{IdError, SpanId, TraceId, content_uuid, session_uuid};
use super::limits::Limits;

/// The outcome of normalizing one export request.
#[derive(Debug, Default)]
pub struct Normalized {
    pub events: Vec<AgentEvent>,
    /// Items in the request, accepted or not.
    pub total: usize,
    pub rejected: usize,
    /// The first rejection, as a message that names the item and the problem.
    pub first_error: Option<String>,
}

impl Normalized {
    fn reject(&mut self, what: String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    /// A message for `partial_success.error_message` or a 400: the first problem and how many there were.
    pub fn error_message(&self) -> String {
        match (&self.first_error, self.rejected) {
            (Some(first), 1) => first.clone(),
            (Some(first), n) => format!("{first} (and {} more rejected)", n - 1),
            (None, _) => String::new(),
        }
    }
}

/// Attributes of the resource an item came from, resolved once per resource.
struct ResourceInfo {
    attrs: Map<String, Value>,
    service_name: Option<String>,
    agent_id: Option<String>,
    session: Option<String>,
    digest: Vec<u8>,
}

impl ResourceInfo {
    fn of(resource: Option<&Resource>) -> Self {
        let attributes = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let attrs = attributes_to_json(attributes);
        let s = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_string);
        let mut digest = Vec::new();
        for kv in attributes {
            kv.encode(&mut digest)
                .expect("encoding into a Vec cannot fail");
        }
        ResourceInfo {
            service_name: s("service.name"),
            agent_id: s("gen_ai.agent.id").or_else(|| s("service.instance.id")),
            session: s("session.id").or_else(|| s("gen_ai.conversation.id")),
            attrs,
            digest,
        }
    }
}

/// The well-known attributes of one record, lifted out of its attribute map.
struct Lifted {
    session_id: Uuid,
    agent_id: String,
    prompt_id: Option<String>,
    tool_name: Option<String>,
    tool_use_id: Option<String>,
    failed: bool,
    model: Option<String>,
    mcp_server: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    commit: Option<String>,
}

fn lift(attrs: &Map<String, Value>, res: &ResourceInfo, trace_id: Option<TraceId>) -> Lifted {
    let s = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let session_id = s("session.id")
        .or_else(|| s("gen_ai.conversation.id"))
        .or_else(|| res.session.clone())
        .map(|raw| session_uuid(&raw))
        .or_else(|| trace_id.map(|t| Uuid::from_bytes(t.0)))
        .unwrap_or(Uuid::nil());
    // `vcs.*` (OpenTelemetry's VCS conventions) on the record, else on the resource.
    let vcs = |k: &str| {
        s(k).or_else(|| {
            res.attrs
                .get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
    };
    let tool_name = s("tool_name").or_else(|| s("gen_ai.tool.name"));
    Lifted {
        model: s("model")
            .or_else(|| s("gen_ai.response.model"))
            .or_else(|| s("gen_ai.request.model")),
        mcp_server: super::hook::mcp_server_of(
            attrs
                .get("mcp_server_name")
                .or_else(|| attrs.get("mcp_server")),
            tool_name.as_deref(),
        ),
        repo: vcs("vcs.repository.url.full").and_then(|u| super::vcs::normalize_repo_url(&u)),
        branch: vcs("vcs.ref.head.name"),
        commit: vcs("vcs.ref.head.revision"),
        session_id,
        agent_id: s("gen_ai.agent.id")
            .or_else(|| s("agent_id"))
            .or_else(|| res.agent_id.clone())
            .unwrap_or_else(|| "main".into()),
        prompt_id: s("prompt.id").or_else(|| s("gen_ai.prompt.id")),
        tool_name,
        tool_use_id: s("tool_use_id").or_else(|| s("gen_ai.tool.call.id")),
        failed: attrs.get("success").and_then(Value::as_bool) == Some(false),
    }
}

/// Why a whole resource is refused: each of its `items` is refused with this message. Every item gets a copy of
/// the resource's attributes, so their size times the items is bounded too.
fn resource_problem(
    limits: &Limits,
    resource: Option<&Resource>,
    info: &ResourceInfo,
    items: usize,
) -> Option<String> {
    let attributes = resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default();
    limits
        .check_attributes("resource.attributes", attributes)
        .and_then(|()| limits.check_copies("resource.attributes", info.digest.len(), items))
        .err()
        .map(|e| e.to_string())
}

fn scope_problem(
    limits: &Limits,
    scope: Option<&InstrumentationScope>,
    items: usize,
) -> Option<String> {
    let scope = scope?;
    limits
        .check_text("scope.name", &scope.name)
        .and_then(|()| limits.check_text("scope.version", &scope.version))
        .and_then(|()| limits.check_attributes("scope.attributes", &scope.attributes))
        .and_then(|()| limits.check_copies("scope", scope.name.len() + scope.version.len(), items))
        .err()
        .map(|e| e.to_string())
}

/// A name to show in a message: never the whole of a huge one.
fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    if name.len() <= SHOWN {
        return format!("{name:?}");
    }
    let cut = (0..=SHOWN)
        .rev()
        .find(|&i| name.is_char_boundary(i))
        .unwrap_or(0);
    format!("{:?}...", &name[..cut])
}

/// The walk both signals share: every item of every scope of every resource (`parts` and `items` say where
/// they are in the request), each refused alone when its resource or scope is over a limit (they are copied into
/// it), else turned into an event by `item`; `label` names an item in a refusal.
fn walk<'a, R, S: 'a, T: 'a>(
    limits: &Limits,
    resources: &'a [R],
    parts: impl Fn(&'a R) -> (Option<&'a Resource>, &'a [S]),
    items: impl Fn(&'a S) -> (Option<&'a InstrumentationScope>, &'a [T]),
    mut item: impl FnMut(&T, &ResourceInfo, Option<&Value>) -> Result<AgentEvent, String>,
    label: impl Fn(usize, &T) -> String,
) -> Normalized {
    let mut out = Normalized::default();
    for r in resources {
        let (resource, scopes) = parts(r);
        let res = ResourceInfo::of(resource);
        let count = scopes.iter().map(|s| items(s).1.len()).sum();
        let res_problem = resource_problem(limits, resource, &res, count);
        for s in scopes {
            let (scope, list) = items(s);
            let problem = res_problem
                .clone()
                .or_else(|| scope_problem(limits, scope, list.len()));
            let scope = scope.map(|s| scope_json(&s.name, &s.version));
            for it in list {
                let index = out.total;
                out.total += 1;
                let result = match &problem {
                    Some(p) => Err(p.clone()),
                    None => item(it, &res, scope.as_ref()),
                };
                match result {
                    Ok(ev) => out.events.push(ev),
                    Err(e) => out.reject(format!("{}: {e}", label(index, it))),
                }
            }
        }
    }
    out
}

pub fn normalize_traces(
    req: &ExportTraceServiceRequest,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Normalized {
    walk(
        limits,
        &req.resource_spans,
        |rs| (rs.resource.as_ref(), &rs.scope_spans),
        |ss| (ss.scope.as_ref(), &ss.spans),
        |span, res, scope| {
            span_limits(limits, span).map_err(|e| e.to_string())?;
            span_event(span, res, scope, now).map_err(|e| e.to_string())
        },
        |index, span| format!("span {index} ({})", shown(&span.name)),
    )
}

pub fn normalize_logs(
    req: &ExportLogsServiceRequest,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Normalized {
    let mut encoded = Vec::new();
    walk(
        limits,
        &req.resource_logs,
        |rl| (rl.resource.as_ref(), &rl.scope_logs),
        |sl| (sl.scope.as_ref(), &sl.log_records),
        |record, res, scope| {
            log_limits(limits, record).map_err(|e| e.to_string())?;
            encoded.clear();
            record
                .encode(&mut encoded)
                .expect("encoding into a Vec cannot fail");
            log_event(record, &encoded, res, scope, now).map_err(|e| e.to_string())
        },
        |index, _| format!("log record {index}"),
    )
}

fn span_limits(limits: &Limits, span: &Span) -> Result<(), super::limits::LimitError> {
    limits.check_text("name", &span.name)?;
    limits.check_attributes("attributes", &span.attributes)?;
    for (i, e) in span.events.iter().enumerate() {
        limits.check_text(&format!("events[{i}].name"), &e.name)?;
        limits.check_attributes(&format!("events[{i}].attributes"), &e.attributes)?;
    }
    if let Some(st) = &span.status {
        limits.check_text("status.message", &st.message)?;
    }
    Ok(())
}

fn log_limits(limits: &Limits, record: &LogRecord) -> Result<(), super::limits::LimitError> {
    limits.check_attributes("attributes", &record.attributes)?;
    if let Some(body) = &record.body {
        limits.check_value("body", body)?;
    }
    limits.check_text("severity_text", &record.severity_text)?;
    limits.check_text("event_name", &record.event_name)
}

fn span_event(
    span: &Span,
    res: &ResourceInfo,
    scope: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<AgentEvent, IdError> {
    let trace_id = TraceId::from_wire("trace_id", &span.trace_id)?.ok_or(IdError::Length {
        field: "trace_id",
        expected: 16,
        got: 0,
    })?;
    let span_id = SpanId::from_wire("span_id", &span.span_id)?.ok_or(IdError::Length {
        field: "span_id",
        expected: 8,
        got: 0,
    })?;
    let parent_span_id = SpanId::from_wire("parent_span_id", &span.parent_span_id)?;
    let attrs = attributes_to_json(&span.attributes);
    let lifted = lift(&attrs, res, Some(trace_id));
    let status_code = span.status.as_ref().map(|s| s.code).unwrap_or_default();
    let failed = status_code == StatusCode::Error as i32 || lifted.failed;
    let latency_ms = (span.end_time_unix_nano >= span.start_time_unix_nano
        && span.end_time_unix_nano > 0)
        .then(|| ((span.end_time_unix_nano - span.start_time_unix_nano) / 1_000_000) as i64);

    let mut payload = Map::new();
    payload.insert("name".into(), Value::String(span.name.clone()));
    payload.insert("kind".into(), Value::from(span.kind));
    payload.insert("attributes".into(), Value::Object(attrs));
    payload.insert("resource".into(), Value::Object(res.attrs.clone()));
    if let Some(scope) = scope {
        payload.insert("scope".into(), scope.clone());
    }
    if let Some(st) = &span.status {
        payload.insert(
            "status".into(),
            serde_json::json!({"code": st.code, "message": st.message}),
        );
    }
    payload.insert(
        "start_time_unix_nano".into(),
        Value::from(span.start_time_unix_nano),
    );
    payload.insert(
        "end_time_unix_nano".into(),
        Value::from(span.end_time_unix_nano),
    );
    if !span.events.is_empty() {
        let events = span
            .events
            .iter()
            .map(|e| {
                serde_json::json!({"name": e.name, "time_unix_nano": e.time_unix_nano,
                                   "attributes": attributes_to_json(&e.attributes)})
            })
            .collect();
        payload.insert("events".into(), Value::Array(events));
    }
    if !span.links.is_empty() {
        // A link with ids of the wrong length refuses its span, like the span's own ids.
        let missing = |field, expected| IdError::Length {
            field,
            expected,
            got: 0,
        };
        let mut links = Vec::with_capacity(span.links.len());
        for l in &span.links {
            let trace = TraceId::from_wire("links.trace_id", &l.trace_id)?
                .ok_or_else(|| missing("links.trace_id", 16))?;
            let linked = SpanId::from_wire("links.span_id", &l.span_id)?
                .ok_or_else(|| missing("links.span_id", 8))?;
            links.push(
                serde_json::json!({"trace_id": hex::encode(trace.0), "span_id": hex::encode(linked.0)}),
            );
        }
        payload.insert("links".into(), Value::Array(links));
    }

    // The id's time part is the span's end (its start when it has none): spans reach hivewatch as they end, so
    // the ids of one export are close together however long each span ran. The content hashed is the same.
    let event_id = content_uuid(
        span.end_time_unix_nano.max(span.start_time_unix_nano) / 1_000_000,
        &[
            b"span",
            &trace_id.0,
            &span_id.0,
            &span.start_time_unix_nano.to_le_bytes(),
            span.name.as_bytes(),
        ],
    );
    Ok(AgentEvent {
        event_id,
        event_type: EventType::Span,
        source: Source::OtlpSpan,
        session_id: lifted.session_id,
        agent_id: lifted.agent_id,
        source_app: res.service_name.clone().unwrap_or_else(|| "unknown".into()),
        prompt_id: lifted.prompt_id,
        tool_name: lifted.tool_name,
        tool_use_id: lifted.tool_use_id,
        trace_id,
        span_id: Some(span_id),
        parent_span_id,
        status: if failed { Status::Error } else { Status::Ok },
        severity: if failed {
            Severity::Error
        } else {
            Severity::Info
        },
        latency_ms,
        model: lifted.model,
        mcp_server: lifted.mcp_server,
        repo: lifted.repo,
        branch: lifted.branch,
        commit: lifted.commit,
        created_at: nanos_to_time(span.start_time_unix_nano).unwrap_or(now),
        received_at: now,
        payload: Value::Object(payload),
    })
}

/// Spans in a request, before any is decoded further.
pub fn count_spans(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Log records in a request.
pub fn count_log_records(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum()
}

fn log_event(
    record: &LogRecord,
    encoded: &[u8],
    res: &ResourceInfo,
    scope: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<AgentEvent, IdError> {
    let trace = TraceId::from_wire("trace_id", &record.trace_id)?;
    let span_id = SpanId::from_wire("span_id", &record.span_id)?;
    let mut attrs = attributes_to_json(&record.attributes);
    structure_settings(&mut attrs);
    let lifted = lift(&attrs, res, trace);
    let event_type = attrs
        .get("event.name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| (!record.event_name.is_empty()).then(|| record.event_name.clone()))
        .unwrap_or_else(|| "log".into());
    let severity = Severity::from_otlp_number(record.severity_number)
        .or_else(|| Severity::parse(&record.severity_text))
        .unwrap_or(Severity::Info);
    let event_type = EventType::from(event_type);
    let failed = lifted.failed
        || severity >= Severity::Error
        || event_type == EventType::ApiError
        || event_type.as_str().ends_with("api_error");
    let severity = if failed {
        severity.max(Severity::Error)
    } else {
        severity
    };
    let latency_ms = attrs
        .get("duration_ms")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
    let created_at = nanos_to_time(record.time_unix_nano)
        .or_else(|| nanos_to_time(record.observed_time_unix_nano))
        .unwrap_or(now);

    let mut payload = Map::new();
    if let Some(body) = &record.body {
        payload.insert("body".into(), any_value_to_json(body));
    }
    payload.insert("attributes".into(), Value::Object(attrs));
    payload.insert("resource".into(), Value::Object(res.attrs.clone()));
    if let Some(scope) = scope {
        payload.insert("scope".into(), scope.clone());
    }
    if !record.severity_text.is_empty() {
        payload.insert(
            "severity_text".into(),
            Value::String(record.severity_text.clone()),
        );
    }

    Ok(AgentEvent {
        // Records may repeat time, body and trace context and differ only in attributes: hash all of it.
        // The id's time part comes from the record, never from arrival, so that a retry gets the same id.
        event_id: content_uuid(
            record.time_unix_nano.max(record.observed_time_unix_nano) / 1_000_000,
            &[b"log", &res.digest, encoded],
        ),
        event_type,
        source: Source::OtlpLog,
        session_id: lifted.session_id,
        agent_id: lifted.agent_id,
        source_app: res.service_name.clone().unwrap_or_else(|| "unknown".into()),
        prompt_id: lifted.prompt_id,
        tool_name: lifted.tool_name,
        tool_use_id: lifted.tool_use_id,
        trace_id: trace.unwrap_or_else(|| TraceId(*lifted.session_id.as_bytes())),
        span_id,
        parent_span_id: None,
        status: if failed { Status::Error } else { Status::Ok },
        severity,
        latency_ms,
        model: lifted.model,
        mcp_server: lifted.mcp_server,
        repo: lifted.repo,
        branch: lifted.branch,
        commit: lifted.commit,
        created_at,
        received_at: now,
        payload: Value::Object(payload),
    })
}

/// Claude Code's `managed_settings_resolved` can carry the resolved settings as JSON text
/// (`managed_settings.settings`, with `OTEL_LOG_MANAGED_SETTINGS`): configuration, whose `env` and helpers hold
/// secrets. Kept as the JSON it is, so that redaction sees its keys (`ANTHROPIC_API_KEY`, `password`, …) and
/// not one opaque string; text that is not a JSON object (a truncated copy) stays text, redacted as text.
fn structure_settings(attrs: &mut Map<String, Value>) {
    let Some(Value::String(text)) = attrs.get("managed_settings.settings") else {
        return;
    };
    if let Ok(settings @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        attrs.insert("managed_settings.settings".into(), settings);
    }
}

/// Metrics carry no events; they are checked and counted (data points in the request).
pub fn count_metric_points(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

fn nanos_to_time(nanos: u64) -> Option<DateTime<Utc>> {
    if nanos == 0 {
        return None;
    }
    Utc.timestamp_opt(
        (nanos / 1_000_000_000) as i64,
        (nanos % 1_000_000_000) as u32,
    )
    .single()
}

fn scope_json(name: &str, version: &str) -> Value {
    serde_json::json!({"name": name, "version": version})
}

pub fn attributes_to_json(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value
                    .as_ref()
                    .map(any_value_to_json)
                    .unwrap_or(Value::Null),
            )
        })
        .collect()
}

pub fn any_value_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attributes_to_json(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex::encode(b)),
        // An index into a profiles string table: meaningless outside a profile.
        Some(any_value::Value::StringValueStrindex(i)) => Value::from(*i),
    }
}
