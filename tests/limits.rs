//! Limits on events per request, attributes per item, attribute length and nesting: a request over the item limit
//! is refused whole (413 / RESOURCE_EXHAUSTED); an item over an attribute limit is refused alone, its neighbours
//! kept, and the message names the attribute, the figure and the option that raises it.

mod common;

use common::{Server, client};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use uuid::Uuid;

/// Small limits, so that tests reach them with small requests.
const LIMITS: &[&str] = &[
    "--max-events-per-request",
    "50",
    "--max-attributes",
    "20",
    "--max-attribute-bytes",
    "1000",
    "--max-depth",
    "8",
];

/// `google.rpc.Status`, how OTLP/HTTP answers errors in protobuf.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn text_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn span(session: &str, n: u8, extra: Vec<KeyValue>) -> Span {
    let mut attributes = vec![text_kv("session.id", session)];
    attributes.extend(extra);
    Span {
        trace_id: Uuid::new_v4().as_bytes().to_vec(),
        span_id: vec![n.max(1); 8],
        name: format!("span {n}"),
        start_time_unix_nano: 1_800_000_000_000_000_000 + u64::from(n),
        end_time_unix_nano: 1_800_000_000_500_000_000,
        attributes,
        ..Default::default()
    }
}

fn traces(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn many_attributes(n: usize) -> Vec<KeyValue> {
    (0..n).map(|i| text_kv(&format!("attr.{i}"), "v")).collect()
}

fn nested(levels: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::StringValue("bottom".into())),
    };
    for _ in 0..levels {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    v
}

async fn post(server: &Server, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let resp = client()
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

fn hook(session: &str, tool_input: Value) -> Value {
    json!({
        "session_id": session,
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_use_id": format!("toolu_{}", Uuid::new_v4().simple()),
        "tool_input": tool_input,
    })
}

fn assert_no_panic(server: &Server) {
    let log = server.stderr_log();
    assert!(!log.contains("panicked"), "hivewatch panicked:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_item_limit_is_refused_whole() {
    let server = Server::start_with(LIMITS);
    let session = Uuid::new_v4().to_string();

    // Hook batch: 51 events, one over the limit.
    let batch: Vec<Value> = (0..51).map(|_| hook(&session, json!({}))).collect();
    let (status, body) = server
        .post_json("/api/v1/observability/event", &Value::Array(batch))
        .await;
    assert_eq!(status, 413, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("51 hook events")
            && msg.contains("at most 50")
            && msg.contains("--max-events-per-request"),
        "{msg}"
    );

    // OTLP/HTTP: 51 spans → 413 with the OTLP error body; nothing of the request is stored.
    let too_many = traces(
        vec![],
        (1..=51).map(|n| span(&session, n, vec![])).collect(),
    );
    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        too_many.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 413);
    let msg = RpcStatus::decode(body.as_slice()).unwrap().message;
    assert!(
        msg.contains("51 spans") && msg.contains("--max-events-per-request"),
        "{msg}"
    );

    // gRPC: RESOURCE_EXHAUSTED with the same message.
    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let status = grpc.export(too_many.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("51 spans"),
        "{}",
        status.message()
    );
    assert!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .is_empty()
    );

    // At the limit: accepted and stored.
    let at_limit = traces(
        vec![],
        (1..=50).map(|n| span(&session, n, vec![])).collect(),
    );
    let answer = grpc.export(at_limit).await.unwrap().into_inner();
    assert!(answer.partial_success.is_none(), "{answer:?}");
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        50
    );
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_items_over_attribute_limits_are_refused_alone() {
    let server = Server::start_with(LIMITS);
    let session = Uuid::new_v4().to_string();

    let request = traces(
        vec![text_kv("service.name", "limits-test")],
        vec![
            span(&session, 1, vec![]),
            span(&session, 2, many_attributes(20)),
            span(&session, 3, vec![text_kv("tool_input", &"x".repeat(1001))]),
            span(
                &session,
                4,
                vec![KeyValue {
                    key: "deep".into(),
                    value: Some(nested(8)),
                    ..Default::default()
                }],
            ),
            span(&session, 5, vec![text_kv("tool_input", &"x".repeat(1000))]),
        ],
    );
    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .expect("partial_success");
    assert_eq!(partial.rejected_spans, 3, "{partial:?}");
    let msg = &partial.error_message;
    assert!(
        msg.contains("span 1 (\"span 2\")")
            && msg.contains("21 attributes")
            && msg.contains("--max-attributes"),
        "{msg}"
    );
    assert!(msg.contains("2 more"), "{msg}");
    let stored = server.all_events(&format!("session_id={session}")).await;
    let mut names: Vec<&str> = stored
        .iter()
        .map(|e| e["payload"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["span 1", "span 5"]);

    // The other problems, one per request so that each message is seen.
    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    for (spans, expected) in [
        (
            vec![span(
                &session,
                6,
                vec![text_kv("tool_input", &"x".repeat(1001))],
            )],
            "attributes.tool_input: a value of 1001 bytes; at most 1000 are accepted (--max-attribute-bytes)",
        ),
        (
            vec![span(
                &session,
                7,
                vec![KeyValue {
                    key: "deep".into(),
                    value: Some(nested(8)),
                    ..Default::default()
                }],
            )],
            "attributes.deep: nested more than 8 levels deep (--max-depth)",
        ),
    ] {
        let status = grpc.export(traces(vec![], spans)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(expected), "{}", status.message());
    }

    // A resource over the limit: each of its spans is refused, naming the resource.
    let request = traces(many_attributes(21), vec![span(&session, 8, vec![])]);
    let status = grpc.export(request).await.unwrap_err();
    assert!(
        status
            .message()
            .contains("resource.attributes: 21 attributes"),
        "{}",
        status.message()
    );

    // Logs: a body nested too deep is refused, its neighbour kept (OTLP/JSON this time).
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1_800_000_000_000_000_000,
                        body: Some(nested(9)),
                        attributes: vec![text_kv("session.id", &session)],
                        ..Default::default()
                    },
                    LogRecord {
                        time_unix_nano: 1_800_000_000_000_000_001,
                        body: Some(nested(2)),
                        attributes: vec![
                            text_kv("session.id", &session),
                            text_kv("event.name", "kept"),
                        ],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, body) = post(
        &server,
        "/v1/logs",
        "application/json",
        serde_json::to_vec(&logs).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let answer: ExportLogsServiceResponse = serde_json::from_slice(&body).unwrap();
    let partial = answer.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial
            .error_message
            .contains("log record 0: body: nested more than 8 levels deep"),
        "{}",
        partial.error_message
    );
    let kept = server
        .all_events(&format!("session_id={session}&event_type=kept"))
        .await;
    assert_eq!(kept.len(), 1);
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_payloads_over_limits_are_refused_with_the_path_named() {
    let server = Server::start_with(LIMITS);
    let session = Uuid::new_v4().to_string();
    let path = "/api/v1/observability/event";

    let deep = (0..8).fold(json!("bottom"), |v, _| json!([v]));
    let wide: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!(i))).collect();
    for (tool_input, expected) in [
        (
            json!({"file_path": "/tmp/a", "content": "x".repeat(1001)}),
            "tool_input.content: a value of 1001 bytes; at most 1000 are accepted (--max-attribute-bytes)",
        ),
        (
            json!({"edits": deep}),
            "tool_input.edits: nested more than 8 levels deep (--max-depth)",
        ),
        (
            Value::Object(wide),
            "tool_input: an object of 21 keys; at most 20 are accepted (--max-attributes)",
        ),
    ] {
        let (status, body) = server.post_json(path, &hook(&session, tool_input)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], expected);
    }

    // In a batch, only the item over the limit is refused.
    let batch = json!([
        hook(&session, json!({"content": "fine"})),
        hook(&session, json!({"content": "x".repeat(5000)})),
        hook(&session, json!({"content": "x".repeat(1000)})),
    ]);
    let (status, body) = server.post_json(path, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 1);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("item 1: tool_input.content: a value of 5000 bytes"),
        "{body}"
    );
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        2
    );

    // Transcript entries: too many refuse the request, one over a limit is refused alone.
    let entry = |i: usize, text: &str| {
        json!({"uuid": Uuid::new_v4().to_string(), "type": "user", "timestamp": "2026-12-05T10:00:00Z",
               "message": {"role": "user", "content": text}, "n": i})
    };
    let too_many: Vec<Value> = (0..51).map(|i| entry(i, "hello")).collect();
    let transcripts = "/api/v1/observability/transcripts";
    let (status, body) = server
        .post_json(
            transcripts,
            &json!({"session_id": session, "entries": too_many}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("51 transcript entries"),
        "{body}"
    );
    let (status, body) = server
        .post_json(
            transcripts,
            &json!({"session_id": session, "entries": [entry(0, "hello"), entry(1, &"x".repeat(2000))]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("entry 1: message.content: a value of 2000 bytes"),
        "{body}"
    );
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_limits_take_a_large_real_tool_output() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    // A Read of a big file: half a megabyte of output in one string, a few hundred keys of structured input.
    let mut event = hook(&session, json!({"file_path": "/src/big.rs"}));
    event["hook_event_name"] = json!("PostToolUse");
    event["tool_response"] =
        json!({"type": "text", "file": {"content": "fn main() {}\n".repeat(40_000)}});
    let input: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("opt{i}"), json!(i))).collect();
    event["tool_input"] = Value::Object(input);
    let (status, body) = server
        .post_json("/api/v1/observability/event", &event)
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["payload"]["tool_response"]["file"]["content"]
            .as_str()
            .unwrap()
            .len(),
        13 * 40_000
    );
}

#[test]
fn limits_must_be_positive_and_depth_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        ("--max-attributes", "0", "must be positive"),
        ("--max-depth", "101", "--max-depth must be at most 100"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"))
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
                flag,
                value,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_inflight_budget_get_503_and_those_held_still_commit() {
    let server = Server::start_with(&[
        "--max-body-bytes",
        "1048576",
        "--max-inflight-bytes",
        "2097152",
    ]);
    let session = Uuid::new_v4().to_string();
    // A commit cannot finish while the lock is held: requests stay in flight, holding their bytes.
    let lock = common::StoreLock::hold(&server).await;
    let big = |n: u32| hook(&session, json!({"content": "x".repeat(900_000), "n": n}));
    let send = |body: Value| {
        let url = server.url("/api/v1/observability/event");
        tokio::spawn(async move {
            client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // The first client gives up before its answer: its request stays held until its commit all the same.
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(server.url("/api/v1/observability/event"))
        .json(&big(1))
        .send()
        .await;
    assert!(gave_up.is_err(), "{gave_up:?}");
    let second = send(big(2));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // 1.8 MB of 2 MiB held: a third such request does not fit, over HTTP or gRPC.
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .json(&big(3))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let text = resp.text().await.unwrap();
    assert!(text.contains("--max-inflight-bytes"), "{text}");
    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let request = traces(
        vec![],
        vec![span(
            &session,
            1,
            vec![text_kv("tool_input", &"y".repeat(400_000))],
        )],
    );
    let status = grpc.export(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("--max-inflight-bytes"),
        "{}",
        status.message()
    );

    // Once the commit goes through, the held requests are answered (the first one's events committed although
    // nobody waits for the answer) and the budget is free again.
    lock.release().await;
    assert_eq!(second.await.unwrap(), 200);
    let (status, body) = server
        .post_json("/api/v1/observability/event", &big(3))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        3
    );
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_each_item_gets_a_copy_of_is_bounded() {
    let server = Server::start_with(&[
        "--max-body-bytes",
        "65536",
        "--max-inflight-bytes",
        "1048576",
    ]);
    let session = Uuid::new_v4().to_string();
    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();

    // A resource of ~1 KB copied into 100 spans is ~100 KB: more than the 64 KiB the body may have.
    let resource = vec![
        text_kv("service.name", "copies"),
        text_kv("big", &"r".repeat(1000)),
    ];
    let spans = (1..=100).map(|n| span(&session, n, vec![])).collect();
    let status = grpc
        .export(traces(resource.clone(), spans))
        .await
        .unwrap_err();
    assert!(
        status.message().contains("resource.attributes: ")
            && status
                .message()
                .contains("copied into each of its 100 items")
            && status.message().contains("--max-body-bytes"),
        "{}",
        status.message()
    );
    // The same resource over a few spans is fine.
    let spans = (1..=10).map(|n| span(&session, n, vec![])).collect();
    let answer = grpc
        .export(traces(resource, spans))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.partial_success.is_none(), "{answer:?}");

    // Identifiers from headers go into every item of a batch: identifier-sized only.
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .header("x-hivewatch-agent-id", "a".repeat(300))
        .json(&json!([hook(&session, json!({}))]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "header x-hivewatch-agent-id is 300 bytes long; an identifier may have at most 256"
    );
    let (status, body) = server
        .post_json(
            "/api/v1/observability/transcripts",
            &json!({"session_id": session, "agent_id": "a".repeat(300), "entries": []}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`agent_id` is 300 bytes long"),
        "{body}"
    );

    // A span link's ids are checked like the span's own.
    let mut linked = span(&session, 50, vec![]);
    linked.links = vec![opentelemetry_proto::tonic::trace::v1::span::Link {
        trace_id: vec![1; 1000],
        span_id: vec![2; 8],
        ..Default::default()
    }];
    let status = grpc.export(traces(vec![], vec![linked])).await.unwrap_err();
    assert!(
        status
            .message()
            .contains("links.trace_id must be 16 bytes, got 1000"),
        "{}",
        status.message()
    );
    assert_no_panic(&server);
}
