//! Real OpenTelemetry SDK clients (opentelemetry-otlp over gRPC, HTTP protobuf and HTTP JSON) against a running
//! hivewatch, read back through the query API.
//!
//! An export is acknowledged only once its events are committed, so every read below happens right after the
//! provider's shutdown returns, with no waiting: an event missing at that point is a durability bug.

mod common;

use std::time::{Duration, SystemTime};

use common::Server;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanContext, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, Protocol, SpanExporter, WithExportConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};
use uuid::Uuid;

/// The exporters' transport, as an application would configure it.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// OTLP/gRPC with gzip-compressed messages.
    GrpcGzip,
    HttpProtobuf,
    HttpJson,
}

fn span_exporter(server: &Server, transport: Transport) -> SpanExporter {
    let built = match transport {
        Transport::GrpcGzip => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(server.grpc.clone())
            .with_compression(Compression::Gzip)
            .with_timeout(Duration::from_secs(10))
            .build(),
        Transport::HttpProtobuf | Transport::HttpJson => SpanExporter::builder()
            .with_http()
            .with_endpoint(server.url("/v1/traces"))
            .with_protocol(http_protocol(transport))
            .with_timeout(Duration::from_secs(10))
            .build(),
    };
    built.unwrap_or_else(|e| panic!("build the {transport:?} span exporter: {e}"))
}

fn log_exporter(server: &Server, transport: Transport) -> LogExporter {
    let built = match transport {
        Transport::GrpcGzip => LogExporter::builder()
            .with_tonic()
            .with_endpoint(server.grpc.clone())
            .with_compression(Compression::Gzip)
            .with_timeout(Duration::from_secs(10))
            .build(),
        Transport::HttpProtobuf | Transport::HttpJson => LogExporter::builder()
            .with_http()
            .with_endpoint(server.url("/v1/logs"))
            .with_protocol(http_protocol(transport))
            .with_timeout(Duration::from_secs(10))
            .build(),
    };
    built.unwrap_or_else(|e| panic!("build the {transport:?} log exporter: {e}"))
}

fn http_protocol(transport: Transport) -> Protocol {
    match transport {
        Transport::HttpJson => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    }
}

fn resource(service_name: &'static str) -> Resource {
    Resource::builder().with_service_name(service_name).build()
}

/// Runs SDK code that exports synchronously (the simple processors block on each export) on a blocking thread
/// that still sees the Tokio runtime, which the gRPC and async HTTP clients need.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("SDK task")
}

/// `00000000-0000-0000-0000-000000000000` spelling of a 32-hex-digit trace id.
fn trace_id_as_uuid(trace_hex: &str) -> String {
    let bytes: [u8; 16] = hex::decode(trace_hex)
        .expect("trace id is hex")
        .try_into()
        .expect("trace id is 16 bytes");
    Uuid::from_bytes(bytes).to_string()
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn by_name<'a>(events: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["payload"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one span named {name:?} expected in {events:#?}"
    );
    found[0]
}

/// What the SDK knows about a span it emitted.
struct Emitted {
    trace_id: String,
    span_id: String,
}

impl From<&SpanContext> for Emitted {
    fn from(sc: &SpanContext) -> Self {
        Emitted {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_gzip_spans_keep_trace_tree_and_tool_fields() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let exporter = span_exporter(&server, Transport::GrpcGzip);

    let sid = session.clone();
    let (parent, read, bash) = blocking(move || {
        let provider = SdkTracerProvider::builder()
            .with_resource(resource("otel-sdk-test-grpc"))
            .with_simple_exporter(exporter)
            .build();
        let tracer = provider.tracer("hivewatch-tests");
        let t0 = SystemTime::now();

        let mut parent = tracer
            .span_builder("agent.turn")
            .with_start_time(t0)
            .with_attributes([KeyValue::new("session.id", sid.clone())])
            .start(&tracer);
        let parent_ctx = parent.span_context().clone();
        let cx = Context::new().with_remote_span_context(parent_ctx.clone());

        let mut read = tracer
            .span_builder("tool.read")
            .with_start_time(t0 + Duration::from_millis(10))
            .with_attributes([
                KeyValue::new("session.id", sid.clone()),
                KeyValue::new("tool_name", "Read"),
            ])
            .start_with_context(&tracer, &cx);
        read.end_with_timestamp(t0 + Duration::from_millis(60));

        let mut bash = tracer
            .span_builder("tool.bash")
            .with_start_time(t0 + Duration::from_millis(100))
            .with_attributes([
                KeyValue::new("session.id", sid.clone()),
                KeyValue::new("tool_name", "Bash"),
                KeyValue::new("gen_ai.tool.call.id", "toolu_x1"),
            ])
            .start_with_context(&tracer, &cx);
        bash.set_status(Status::error("exit status 3"));
        bash.end_with_timestamp(t0 + Duration::from_millis(350));

        parent.end_with_timestamp(t0 + Duration::from_millis(500));
        let emitted = (
            Emitted::from(&parent_ctx),
            Emitted::from(read.span_context()),
            Emitted::from(bash.span_context()),
        );
        provider.shutdown().expect("tracer provider shutdown");
        emitted
    })
    .await;

    let events = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(events.len(), 3, "three spans expected: {events:#?}");
    for ev in &events {
        assert_eq!(ev["source"], "otlp_span", "{ev:#}");
        assert_eq!(ev["event_type"], "span", "{ev:#}");
        assert_eq!(ev["source_app"], "otel-sdk-test-grpc", "{ev:#}");
        assert_eq!(ev["session_id"], session.as_str(), "{ev:#}");
        assert_eq!(ev["trace_id"], parent.trace_id.as_str(), "{ev:#}");
    }
    assert_eq!(read.trace_id, parent.trace_id);
    assert_eq!(bash.trace_id, parent.trace_id);

    let p = by_name(&events, "agent.turn");
    assert_eq!(p["span_id"], parent.span_id.as_str());
    assert!(p["parent_span_id"].is_null(), "a root span: {p:#}");
    assert_eq!(p["latency_ms"], 500);
    assert_eq!(p["status"], "ok");

    let r = by_name(&events, "tool.read");
    assert_eq!(r["span_id"], read.span_id.as_str());
    assert_eq!(r["parent_span_id"], parent.span_id.as_str());
    assert_eq!(r["tool_name"], "Read");
    assert!(r["tool_use_id"].is_null(), "{r:#}");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["severity"], "info");
    assert_eq!(r["latency_ms"], 50);

    let b = by_name(&events, "tool.bash");
    assert_eq!(b["span_id"], bash.span_id.as_str());
    assert_eq!(b["parent_span_id"], parent.span_id.as_str());
    assert_eq!(b["tool_name"], "Bash");
    assert_eq!(b["tool_use_id"], "toolu_x1");
    assert_eq!(b["status"], "error");
    assert_eq!(b["severity"], "error");
    assert_eq!(b["latency_ms"], 250);
    assert_eq!(
        b["payload"]["attributes"]["gen_ai.tool.call.id"],
        "toolu_x1"
    );
    assert_eq!(
        b["payload"]["resource"]["service.name"],
        "otel-sdk-test-grpc"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_protobuf_span_without_session_uses_its_trace_id() {
    let server = Server::start();
    let exporter = span_exporter(&server, Transport::HttpProtobuf);

    let (root, child) = blocking(move || {
        let provider = SdkTracerProvider::builder()
            .with_resource(resource("otel-sdk-test-http"))
            .with_simple_exporter(exporter)
            .build();
        let tracer = provider.tracer("hivewatch-tests");
        let mut root = tracer
            .span_builder("claude_code.interaction")
            .with_attributes([KeyValue::new("user_prompt_length", 42_i64)])
            .start(&tracer);
        let cx = Context::new().with_remote_span_context(root.span_context().clone());
        let mut child = tracer
            .span_builder("claude_code.tool")
            .with_attributes([KeyValue::new("gen_ai.tool.name", "Grep")])
            .start_with_context(&tracer, &cx);
        child.end();
        root.end();
        let emitted = (
            Emitted::from(root.span_context()),
            Emitted::from(child.span_context()),
        );
        provider.shutdown().expect("tracer provider shutdown");
        emitted
    })
    .await;

    let session = trace_id_as_uuid(&root.trace_id);
    assert_eq!(session.len(), 36);
    assert_eq!(session.replace('-', ""), root.trace_id);

    let events = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(
        events.len(),
        2,
        "both spans of the trace expected: {events:#?}"
    );
    for ev in &events {
        assert_eq!(ev["source"], "otlp_span", "{ev:#}");
        assert_eq!(ev["event_type"], "span", "{ev:#}");
        assert_eq!(ev["source_app"], "otel-sdk-test-http", "{ev:#}");
        assert_eq!(ev["session_id"], session.as_str(), "{ev:#}");
        assert_eq!(ev["trace_id"], root.trace_id.as_str(), "{ev:#}");
        assert!(
            ev["latency_ms"].as_i64().is_some_and(|ms| ms >= 0),
            "{ev:#}"
        );
    }
    let r = by_name(&events, "claude_code.interaction");
    assert_eq!(r["span_id"], root.span_id.as_str());
    assert!(r["parent_span_id"].is_null(), "{r:#}");
    assert_eq!(r["payload"]["attributes"]["user_prompt_length"], 42);
    let c = by_name(&events, "claude_code.tool");
    assert_eq!(c["span_id"], child.span_id.as_str());
    assert_eq!(c["parent_span_id"], root.span_id.as_str());
    assert_eq!(c["tool_name"], "Grep", "gen_ai.tool.name is a tool name");

    // The same events through the service name.
    let by_app = server.all_events("source_app=otel-sdk-test-http").await;
    assert_eq!(by_app.len(), 2, "{by_app:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_json_spans_share_a_session_by_conversation_id() {
    let server = Server::start();
    let exporter = span_exporter(&server, Transport::HttpJson);

    let emitted = blocking(move || {
        let provider = SdkTracerProvider::builder()
            .with_resource(resource("otel-sdk-test-json"))
            .with_simple_exporter(exporter)
            .build();
        let tracer = provider.tracer("hivewatch-tests");
        // Two separate traces of one conversation, and one trace of another conversation.
        let mut out = Vec::new();
        for (name, conversation) in [
            ("chat.first", "conv-123"),
            ("chat.second", "conv-123"),
            ("chat.other", "conv-456"),
        ] {
            let mut span = tracer
                .span_builder(name)
                .with_attributes([
                    KeyValue::new("gen_ai.conversation.id", conversation),
                    KeyValue::new("gen_ai.operation.name", "chat"),
                ])
                .start(&tracer);
            span.end();
            out.push((name, Emitted::from(span.span_context())));
        }
        provider.shutdown().expect("tracer provider shutdown");
        out
    })
    .await;
    assert_ne!(
        emitted[0].1.trace_id, emitted[1].1.trace_id,
        "root spans start separate traces"
    );

    let events = server.all_events("source_app=otel-sdk-test-json").await;
    assert_eq!(events.len(), 3, "{events:#?}");
    for (name, em) in &emitted {
        let ev = by_name(&events, name);
        assert_eq!(ev["source"], "otlp_span");
        assert_eq!(ev["event_type"], "span");
        assert_eq!(ev["trace_id"], em.trace_id.as_str(), "{ev:#}");
        assert_eq!(ev["span_id"], em.span_id.as_str(), "{ev:#}");
        let sid = s(&ev["session_id"]);
        Uuid::parse_str(sid).unwrap_or_else(|_| panic!("session id {sid:?} is not a UUID"));
        assert_ne!(
            sid,
            trace_id_as_uuid(&em.trace_id),
            "the conversation, not the trace, names the session"
        );
    }
    let first = by_name(&events, "chat.first");
    let second = by_name(&events, "chat.second");
    let other = by_name(&events, "chat.other");
    assert_eq!(
        first["session_id"], second["session_id"],
        "one conversation, one session"
    );
    assert_ne!(first["session_id"], other["session_id"]);
    assert_eq!(
        first["payload"]["attributes"]["gen_ai.conversation.id"],
        "conv-123"
    );
    assert_eq!(
        second["payload"]["attributes"]["gen_ai.conversation.id"],
        "conv-123"
    );
    assert_eq!(
        other["payload"]["attributes"]["gen_ai.conversation.id"],
        "conv-456"
    );

    let in_session = server
        .all_events(&format!("session_id={}", s(&first["session_id"])))
        .await;
    let mut names: Vec<&str> = in_session
        .iter()
        .map(|e| s(&e["payload"]["name"]))
        .collect();
    names.sort();
    assert_eq!(names, ["chat.first", "chat.second"]);
}

/// Emits three records through the Logs API over `transport` and checks how each was stored.
async fn logs_round_trip(transport: Transport, service_name: &'static str) {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let exporter = log_exporter(&server, transport);

    let sid = session.clone();
    blocking(move || {
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource(service_name))
            .with_simple_exporter(exporter)
            .build();
        let logger = provider.logger("hivewatch-tests");

        let mut failed = logger.create_log_record();
        failed.set_timestamp(SystemTime::now());
        failed.set_severity_number(Severity::Error);
        failed.set_severity_text("ERROR");
        failed.set_body(AnyValue::from("Read failed: no such file"));
        failed.add_attributes([
            ("event.name", AnyValue::from("tool_result")),
            ("session.id", AnyValue::from(sid.clone())),
            ("tool_name", AnyValue::from("Read")),
            ("duration_ms", AnyValue::Int(12)),
            ("seq", AnyValue::Int(1)),
        ]);
        logger.emit(failed);

        let mut ok = logger.create_log_record();
        ok.set_timestamp(SystemTime::now());
        ok.set_severity_number(Severity::Info);
        ok.set_severity_text("INFO");
        ok.set_body(AnyValue::from("Read done"));
        ok.add_attributes([
            ("event.name", AnyValue::from("tool_result")),
            ("session.id", AnyValue::from(sid.clone())),
            ("tool_name", AnyValue::from("Read")),
            ("duration_ms", AnyValue::Int(12)),
            ("seq", AnyValue::Int(2)),
        ]);
        logger.emit(ok);

        // No `event.name` attribute: the record's own event name is the event type.
        let mut named = logger.create_log_record();
        named.set_timestamp(SystemTime::now());
        named.set_event_name("user_prompt");
        named.set_severity_number(Severity::Info);
        named.set_body(AnyValue::from("prompt submitted"));
        named.add_attributes([
            ("session.id", AnyValue::from(sid.clone())),
            ("seq", AnyValue::Int(3)),
        ]);
        logger.emit(named);

        provider.shutdown().expect("logger provider shutdown");
    })
    .await;

    let events = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(
        events.len(),
        3,
        "{transport:?}: three records expected: {events:#?}"
    );
    let by_seq = |seq: i64| -> &Value {
        events
            .iter()
            .find(|e| e["payload"]["attributes"]["seq"] == seq)
            .unwrap_or_else(|| panic!("{transport:?}: no record with seq {seq} in {events:#?}"))
    };
    for ev in &events {
        assert_eq!(ev["source"], "otlp_log", "{transport:?}: {ev:#}");
        assert_eq!(ev["source_app"], service_name, "{transport:?}: {ev:#}");
        assert_eq!(ev["session_id"], session.as_str(), "{transport:?}: {ev:#}");
    }

    let failed = by_seq(1);
    assert_eq!(failed["event_type"], "tool_result", "{failed:#}");
    assert_eq!(failed["tool_name"], "Read");
    assert_eq!(failed["latency_ms"], 12);
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["severity"], "error");
    assert_eq!(failed["payload"]["body"], "Read failed: no such file");
    assert_eq!(failed["payload"]["attributes"]["duration_ms"], 12);

    let ok = by_seq(2);
    assert_eq!(ok["event_type"], "tool_result", "{ok:#}");
    assert_eq!(ok["tool_name"], "Read");
    assert_eq!(ok["latency_ms"], 12);
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["severity"], "info");
    assert_eq!(ok["payload"]["body"], "Read done");

    let named = by_seq(3);
    assert_eq!(named["event_type"], "user_prompt", "{named:#}");
    assert!(named["tool_name"].is_null(), "{named:#}");
    assert_eq!(named["status"], "ok");
    assert_eq!(named["severity"], "info");

    let results = server
        .all_events(&format!("event_type=tool_result&source_app={service_name}"))
        .await;
    assert_eq!(results.len(), 2, "{transport:?}: {results:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_gzip_logs_become_typed_events() {
    logs_round_trip(Transport::GrpcGzip, "otel-sdk-test-logs-grpc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_protobuf_logs_become_typed_events() {
    logs_round_trip(Transport::HttpProtobuf, "otel-sdk-test-logs-http").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_otlp_json_export_stores_each_span_once() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let attrs = json!([{"key": "session.id", "value": {"stringValue": session}}]);
    let body = json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "otel-sdk-test-retry"}}
            ]},
            "scopeSpans": [{
                "scope": {"name": "hivewatch-tests", "version": "1"},
                "spans": [
                    {
                        "traceId": trace_id,
                        "spanId": "eee19b7ec3c1b174",
                        "name": "retry.parent",
                        "kind": 1,
                        "startTimeUnixNano": "1700000000000000000",
                        "endTimeUnixNano": "1700000000900000000",
                        "attributes": attrs
                    },
                    {
                        "traceId": trace_id,
                        "spanId": "eee19b7ec3c1b175",
                        "parentSpanId": "eee19b7ec3c1b174",
                        "name": "retry.child",
                        "kind": 1,
                        "startTimeUnixNano": "1700000000100000000",
                        "endTimeUnixNano": "1700000000400000000",
                        "attributes": attrs
                    }
                ]
            }]
        }]
    });
    let bytes = serde_json::to_vec(&body).expect("encode");
    let client = common::client();
    for attempt in 1..=2 {
        let resp = client
            .post(server.url("/v1/traces"))
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .expect("POST /v1/traces");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "attempt {attempt}: {status}: {text}");
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("attempt {attempt}: answer is not JSON ({e}): {text}"));
        let rejected = answer
            .pointer("/partialSuccess/rejectedSpans")
            .or_else(|| answer.pointer("/partial_success/rejected_spans"));
        assert!(
            rejected.is_none_or(|r| r.as_i64() == Some(0) || r.as_str() == Some("0")),
            "attempt {attempt}: nothing may be rejected: {text}"
        );
    }

    let events = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(
        events.len(),
        2,
        "a retried export stores nothing new: {events:#?}"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| s(&e["event_id"])).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{events:#?}");
    let child = by_name(&events, "retry.child");
    assert_eq!(child["parent_span_id"], "eee19b7ec3c1b174");
    assert_eq!(child["trace_id"], trace_id);
    assert_eq!(child["latency_ms"], 300);
    assert_eq!(child["source_app"], "otel-sdk-test-retry");

    let timeline = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert_eq!(timeline["event_count"], 2, "{timeline:#}");
}
