//! OTLP export of assembled agent spans, received by a second hivewatch (a real OTLP receiver built on
//! opentelemetry-proto): trace ids, names, parents, GenAI attributes and durations.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Server, client};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// `H(tag, id)` of the design, as hex.
fn h(tag: &str, id: &str) -> String {
    hex::encode(&Sha256::digest(format!("{tag}:{id}").as_bytes())[..8])
}

async fn hook(server: &Server, at: DateTime<Utc>, body: Value) {
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .header("x-hivewatch-time", at.to_rfc3339())
        .header("x-hivewatch-source-app", "shop")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// The spans the receiver stored for `session`, by name, once there are `n`.
async fn spans(receiver: &Server, session: Uuid, n: usize) -> HashMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = receiver
            .all_events(&format!("session_id={session}&source=otlp_span"))
            .await;
        if got.len() >= n {
            assert_eq!(got.len(), n, "{got:#?}");
            return got
                .into_iter()
                .map(|s| (s["payload"]["name"].as_str().unwrap().to_string(), s))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} spans arrived: {got:#?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_exported_as_one_trace_with_the_designed_structure() {
    let receiver = Server::start();
    let exporter = Server::start_with(&["--otlp-export-endpoint", &receiver.grpc]);
    let s = Uuid::new_v4();
    let sid = s.to_string();
    let now = Utc::now() - chrono::Duration::minutes(5);
    let t0 = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap();
    let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
    let base = |name: &str| json!({"session_id": s, "hook_event_name": name, "cwd": "/w/shop"});
    let with = |name: &str, extra: Value| {
        let mut v = base(name);
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    hook(&exporter, at(0), base("SessionStart")).await;
    hook(
        &exporter,
        at(100),
        with(
            "UserPromptSubmit",
            json!({"prompt_id": "p1", "prompt": "fix it"}),
        ),
    )
    .await;
    let bash = json!({"prompt_id": "p1", "tool_name": "Bash", "tool_use_id": "toolu_1"});
    hook(&exporter, at(200), with("PreToolUse", bash.clone())).await;
    hook(&exporter, at(1000), with("PostToolUse", bash)).await;
    let agent = json!({"prompt_id": "p1", "agent_id": "agent-7", "agent_type": "Explore"});
    hook(&exporter, at(1100), with("SubagentStart", agent.clone())).await;
    let read = json!({"prompt_id": "p1", "agent_id": "agent-7", "tool_name": "Read", "tool_use_id": "toolu_2"});
    hook(&exporter, at(1200), with("PreToolUse", read.clone())).await;
    hook(&exporter, at(1450), with("PostToolUseFailure", read)).await;
    hook(&exporter, at(1500), with("SubagentStop", agent)).await;
    hook(
        &exporter,
        at(2000),
        with("Stop", json!({"prompt_id": "p1"})),
    )
    .await;
    hook(&exporter, at(2100), base("SessionEnd")).await;

    let got = spans(&receiver, s, 5).await;
    let session = &got["invoke_agent shop"];
    let turn = &got["turn"];
    let bash = &got["execute_tool Bash"];
    let subagent = &got["invoke_agent Explore"];
    let read = &got["execute_tool Read"];
    for span in got.values() {
        assert_eq!(
            span["trace_id"],
            sid.replace('-', ""),
            "trace id = session id"
        );
        assert_eq!(span["session_id"], sid);
        let attrs = &span["payload"]["attributes"];
        assert_eq!(attrs["gen_ai.conversation.id"], sid);
        assert!(attrs["gen_ai.operation.name"].is_string());
    }
    assert_eq!(session["span_id"], h("session", &sid));
    assert!(session["parent_span_id"].is_null());
    assert_eq!(
        (turn["span_id"].as_str(), turn["parent_span_id"].as_str()),
        (Some(&*h("turn", "p1")), Some(&*h("session", &sid)))
    );
    assert_eq!(bash["span_id"], h("tool", "toolu_1"));
    assert_eq!(bash["parent_span_id"], h("turn", "p1"));
    assert_eq!(subagent["span_id"], h("agent", "agent-7"));
    assert_eq!(subagent["parent_span_id"], h("turn", "p1"));
    assert_eq!(read["span_id"], h("tool", "toolu_2"));
    assert_eq!(
        read["parent_span_id"],
        h("agent", "agent-7"),
        "a subagent's tool is its child"
    );

    assert_eq!(
        bash["payload"]["attributes"]["gen_ai.operation.name"],
        "execute_tool"
    );
    assert_eq!(bash["payload"]["attributes"]["gen_ai.tool.name"], "Bash");
    assert_eq!(
        bash["payload"]["attributes"]["gen_ai.tool.call.id"],
        "toolu_1"
    );
    assert_eq!(
        subagent["payload"]["attributes"]["gen_ai.agent.name"],
        "Explore"
    );
    assert_eq!(
        subagent["payload"]["attributes"]["gen_ai.agent.id"],
        "agent-7"
    );
    assert_eq!(read["status"], "error", "the failed tool call");
    assert_eq!(bash["status"], "ok");

    // Tool span durations are the stored latencies; the others span their start and end events.
    let posts = exporter
        .all_events(&format!("session_id={s}&event_type=PostToolUse"))
        .await;
    assert_eq!(posts[0]["latency_ms"], 800);
    assert_eq!(bash["latency_ms"], 800);
    assert_eq!(read["latency_ms"], 250);
    assert_eq!(turn["latency_ms"], 1900);
    assert_eq!(subagent["latency_ms"], 400);
    assert_eq!(session["latency_ms"], 2100);
    assert_eq!(
        bash["created_at"],
        at(200).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );

    let metrics = client()
        .get(exporter.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hivewatch_export_spans_exported_total 5"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_without_session_end_exports_its_tools_then_its_session_after_idling() {
    let receiver = Server::start();
    let exporter = Server::start_with(&[
        "--otlp-export-endpoint",
        &receiver.grpc,
        "--otlp-export-session-idle",
        "2s",
    ]);
    let s = Uuid::new_v4();
    let t0 = Utc::now();
    let tool = json!({"session_id": s, "hook_event_name": "PreToolUse", "tool_name": "Grep", "tool_use_id": "toolu_9"});
    hook(&exporter, t0, tool.clone()).await;
    let mut post = tool;
    post["hook_event_name"] = json!("PostToolUse");
    hook(&exporter, t0 + chrono::Duration::milliseconds(300), post).await;
    // The tool span first, without waiting for the session to end.
    let got = spans(&receiver, s, 1).await;
    assert!(got.contains_key("execute_tool Grep"));
    // Then, after two idle seconds, the session span, ending at the last event.
    let got = spans(&receiver, s, 2).await;
    let session = &got["invoke_agent shop"];
    assert_eq!(session["latency_ms"], 300);
    assert_eq!(
        session["payload"]["attributes"]["hivewatch.session_ended"],
        false
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_export_endpoint_never_slows_ingest() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = Server::start_with(&[
        "--otlp-export-endpoint",
        &format!("http://127.0.0.1:{port}"),
    ]);
    let s = Uuid::new_v4();
    let started = Instant::now();
    for i in 0..50 {
        let body = json!({"session_id": s, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": format!("t{i}")});
        hook(&exporter, Utc::now(), body).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ingest kept its pace"
    );
    assert_eq!(
        exporter.all_events(&format!("session_id={s}")).await.len(),
        50
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_from_other_senders_are_forwarded_as_they_came_when_asked() {
    let receiver = Server::start();
    let exporter = Server::start_with(&[
        "--otlp-export-endpoint",
        &receiver.grpc,
        "--otlp-export-forward-spans",
    ]);
    let traces = common::fixture("otlp-json/export_traces.json");
    let (status, _) = exporter.post_json("/v1/traces", &traces).await;
    assert_eq!(status, 200);
    let sent = exporter.all_events("source=otlp_span").await;
    assert!(!sent.is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = receiver.all_events("source=otlp_span").await;
        if got.len() >= sent.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(got.len(), sent.len());
    let by_span: HashMap<&str, &Value> = got
        .iter()
        .map(|e| (e["span_id"].as_str().unwrap(), e))
        .collect();
    for s in &sent {
        let r = by_span[s["span_id"].as_str().unwrap()];
        for field in [
            "trace_id",
            "parent_span_id",
            "session_id",
            "latency_ms",
            "created_at",
            "status",
        ] {
            assert_eq!(r[field], s[field], "{field}");
        }
        assert_eq!(r["payload"]["name"], s["payload"]["name"]);
        assert_eq!(r["payload"]["kind"], s["payload"]["kind"]);
    }
}
