//! Bad input gets a clear error that names the problem; good items beside bad ones are kept; an unavailable
//! store or a full queue answers 503 with Retry-After (gRPC UNAVAILABLE), and hivewatch recovers by itself.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Server, StoreLock, client};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use uuid::Uuid;

/// `google.rpc.Status` as OTLP/HTTP answers errors in protobuf.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn span(trace_id: Vec<u8>, span_id: Vec<u8>, session: &str) -> Span {
    Span {
        trace_id,
        span_id,
        name: "work".into(),
        start_time_unix_nano: 1_800_000_000_000_000_000,
        end_time_unix_nano: 1_800_000_000_500_000_000,
        attributes: vec![KeyValue {
            key: "session.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(session.into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
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

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| panic!("JSON answer, got {:?}", String::from_utf8_lossy(bytes)))
}

fn assert_no_panic(server: &Server) {
    let log = server.stderr_log();
    assert!(!log.contains("panicked"), "hivewatch panicked:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_and_content_types_are_refused_with_their_reason() {
    let server = Server::start();

    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        vec![0xff, 0xff, 0xff, 0x01],
    )
    .await;
    assert_eq!(status, 400);
    let err = RpcStatus::decode(body.as_slice()).expect("google.rpc.Status in protobuf");
    assert_eq!(err.code, 3, "INVALID_ARGUMENT");
    assert!(
        err.message.contains("not a valid OTLP protobuf"),
        "{}",
        err.message
    );

    let (status, body) = post(
        &server,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": [".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("not valid OTLP/JSON")
    );

    let (status, body) = post(
        &server,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": \"\xff\xfe\"}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8")
    );

    let (status, body) = post(&server, "/v1/traces", "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("content-type must be")
    );

    let resp = client()
        .post(server.url("/v1/metrics"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415, "missing content-type");

    // Enum names are not OTLP/JSON (the spec wants the integer).
    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/json",
        serde_json::to_vec(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0102030405060708090a0b0c0d0e0f10",
            "spanId": "0102030405060708", "name": "x", "kind": "SPAN_KIND_SERVER"}]}]}]}))
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("OTLP/JSON")
    );

    // The hook endpoint.
    let hook = "/api/v1/observability/event";
    let (status, body) = server
        .post_json(hook, &json!({"hook_event_name": "Stop"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("hook payload has no `session_id`"))
    );
    let (status, body) = server.post_json(hook, &json!({"session_id": "s1"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("hook payload has no `hook_event_name`"))
    );
    let (status, body) = post(&server, hook, "application/json", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let (status, body) = post(
        &server,
        hook,
        "application/json",
        b"{\"session_id\": \"\xc3\x28\"}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(json_of(&body)["error"].as_str().unwrap().contains("UTF-8"));
    let (status, _) = post(
        &server,
        hook,
        "application/x-www-form-urlencoded",
        b"a=b".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let resp = client()
        .post(server.url(hook))
        .header("x-hivewatch-event-id", "not-a-uuid")
        .json(&json!({"session_id": "s", "hook_event_name": "Stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("x-hivewatch-event-id"));

    // Nothing of the above was stored.
    assert!(server.all_events("").await.is_empty());
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_of_the_wrong_length_reject_only_their_items() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let good = || {
        span(
            (1..=16).collect(),
            vec![Uuid::new_v4().as_bytes()[0] | 1; 8],
            &session,
        )
    };

    // Every item bad: 400 naming the problem.
    let all_bad = traces(vec![span(vec![1; 5], vec![1; 8], &session)]);
    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        all_bad.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let msg = RpcStatus::decode(body.as_slice()).unwrap().message;
    assert!(msg.contains("trace_id must be 16 bytes, got 5"), "{msg}");

    // Some bad: the good ones are stored, the rest reported in partial_success.
    let mut g = good();
    g.span_id = vec![7; 8];
    let mixed = traces(vec![
        g,
        span((1..=16).collect(), vec![1; 3], &session),
        span(vec![0; 16], vec![2; 8], &session),
    ]);
    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        mixed.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let answer =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            body.as_slice(),
        )
        .unwrap();
    let partial = answer.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("span_id must be 8 bytes, got 3"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("1 more"),
        "{}",
        partial.error_message
    );
    let stored = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["span_id"], "0707070707070707");

    // The same over JSON: hex ids of the wrong length.
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "0102", "spanId": "0102030405060708", "name": "short trace id"}]}]}]});
    let (status, answer) = post(
        &server,
        "/v1/traces",
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json_of(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("trace_id must be 16 bytes, got 2")
    );

    // And over gRPC: INVALID_ARGUMENT when all are bad, partial_success when some are.
    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let err = grpc.export(all_bad).await.expect_err("all items bad");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("trace_id must be 16 bytes"),
        "{}",
        err.message()
    );
    let mut g = good();
    g.span_id = vec![9; 8];
    let answer = grpc
        .export(traces(vec![g, span(vec![3; 16], vec![], &session)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.partial_success.unwrap().rejected_spans, 1);
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        2
    );

    // A hook batch with a bad item stores the good ones.
    let (status, body) = server
        .post_json(
            "/api/v1/observability/event",
            &json!([{"session_id": session, "hook_event_name": "Stop"}, {"hook_event_name": "Stop"}, 42]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["accepted"].as_i64(), body["rejected"].as_i64()),
        (Some(1), Some(2))
    );
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("item 1: hook payload has no `session_id`")
    );
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        3
    );
    assert_no_panic(&server);
}

/// Writes a whole request (headers, then all of `body`) before reading anything, as Python's `urllib` and
/// several OTLP exporters do, and returns the status line and the body of the answer.
fn write_all_then_read(http: &str, head: &str, body: &[u8]) -> std::io::Result<(String, String)> {
    use std::io::{BufRead, BufReader, Read};
    let mut stream = std::net::TcpStream::connect(http.trim_start_matches("http://"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer)?;
    Ok((
        status.trim().to_owned(),
        String::from_utf8_lossy(&answer).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_writes_its_whole_oversize_body_first_still_reads_the_413() {
    let server = Server::start_with(&["--max-body-bytes", "4096"]);
    // Far more than the socket buffers hold: unread, it would reset the connection under the client's write.
    let big = vec![b' '; 4 * 1024 * 1024];
    let http = server.url("");
    let declared = format!(
        "POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        big.len()
    );
    let mut chunked = Vec::new();
    for part in big.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let cases = [
        (declared, big.clone()),
        (
            "POST /api/v1/observability/event HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n"
                .to_owned(),
            chunked,
        ),
    ];
    for (head, body) in cases {
        let http = http.clone();
        let (status, answer) =
            tokio::task::spawn_blocking(move || write_all_then_read(&http, &head, &body))
                .await
                .unwrap()
                .expect("the whole body is written and the answer read, without a reset");
        assert!(status.starts_with("HTTP/1.1 413"), "{status}: {answer}");
        assert!(
            answer.contains("larger than the limit of 4096 bytes"),
            "{answer}"
        );
    }
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_get_413_whether_declared_chunked_or_compressed() {
    let server = Server::start_with(&["--max-body-bytes", "4096"]);
    let big = vec![b' '; 10_000];

    let (status, body) = post(&server, "/v1/logs", "application/json", big.clone()).await;
    assert_eq!(status, 413);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit of 4096 bytes")
    );

    // Chunked, no Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Small on the wire, large once decompressed.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 1_000_000]).unwrap();
    let resp = client()
        .post(server.url("/v1/traces"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Within the limit, chunked and without Content-Length, is fine.
    let event =
        serde_json::to_vec(&json!({"session_id": "chunked", "hook_event_name": "Stop"})).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        event.chunks(7).map(|c| Ok(c.to_vec())).collect();
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_no_panic(&server);
}

fn stop_event(session: &str) -> Value {
    json!({"session_id": session, "hook_event_name": "Stop"})
}

#[tokio::test(flavor = "multi_thread")]
async fn store_unavailable_answers_503_then_recovers() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let lock = StoreLock::hold(&server).await;

    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .json(&stop_event(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(resp.text().await.unwrap().contains("store unavailable"));

    let mut grpc = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let err = grpc
        .export(traces(vec![span(vec![5; 16], vec![5; 8], &session)]))
        .await
        .expect_err("store locked");
    assert_eq!(err.code(), tonic::Code::Unavailable);

    lock.release().await;
    // The client's retry now succeeds, with nothing lost and nothing doubled.
    let (status, _) = server
        .post_json("/api/v1/observability/event", &stop_event(&session))
        .await;
    assert_eq!(status, 200);
    grpc.export(traces(vec![span(vec![5; 16], vec![5; 8], &session)]))
        .await
        .expect("retry succeeds");
    assert_eq!(
        server
            .all_events(&format!("session_id={session}"))
            .await
            .len(),
        2
    );
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_and_queued_requests_still_commit() {
    let server = Server::start_with(&["--queue-capacity", "1"]);
    let lock = StoreLock::hold(&server).await;
    let send = |session: String| {
        let url = server.url("/api/v1/observability/event");
        tokio::spawn(async move {
            client()
                .post(url)
                .json(&stop_event(&session))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // The first request occupies the committer (blocked on the lock), the second fills the queue.
    let first = send("q1".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = send("q2".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .json(&stop_event("q3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(resp.text().await.unwrap().contains("ingest queue is full"));

    lock.release().await;
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(second.await.unwrap(), 200);
    let sessions = server.get("/api/v1/observability/sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 2);
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_are_checked() {
    let server = Server::start();
    for (path, needle) in [
        ("/api/v1/observability/events?session_id=nope", "session_id"),
        ("/api/v1/observability/events?since=yesterday", "since"),
        ("/api/v1/observability/events?cursor=abc", "cursor"),
        ("/api/v1/observability/sessions/not-a-uuid", "not a UUID"),
    ] {
        let resp = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(needle), "{path}: {body}");
    }
    let resp = client()
        .get(server.url(&format!(
            "/api/v1/observability/sessions/{}",
            Uuid::new_v4()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
