//! Every recorded Claude Code payload replayed through the real endpoints, checked field by field.

mod common;

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use common::{Server, client, fixture, fixture_bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const HOOK_EVENTS: [&str; 19] = [
    "InstructionsLoaded",
    "Notification",
    "PermissionRequest",
    "PostCompact",
    "PostToolBatch",
    "PostToolUse",
    "PostToolUseFailure",
    "PreCompact",
    "PreToolUse",
    "SessionEnd",
    "SessionStart",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "TaskCompleted",
    "TaskCreated",
    "UserPromptExpansion",
    "UserPromptSubmit",
];

/// `H(tag, id)` of the design: first 8 bytes of SHA-256 over "tag:id", as hex.
fn h(tag: &str, id: &str) -> String {
    hex::encode(&Sha256::digest(format!("{tag}:{id}").as_bytes())[..8])
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hook_fixture_is_stored_field_by_field() {
    let server = Server::start();
    let http = client();
    let base: DateTime<Utc> = "2026-11-25T16:00:00Z".parse().unwrap();
    // Posted one by one in file order (PostToolUse before PreToolUse: a Post may arrive first).
    let mut sent: Vec<(Uuid, DateTime<Utc>, Value)> = Vec::new();
    for name in HOOK_EVENTS {
        let items = fixture(&format!("hooks/{name}.json"));
        for item in items.as_array().unwrap() {
            let id = Uuid::new_v4();
            let at = base + Duration::milliseconds(sent.len() as i64 * 10);
            let resp = http
                .post(server.url("/api/v1/observability/event"))
                .header("x-hivewatch-event-id", id.to_string())
                .header("x-hivewatch-time", at.to_rfc3339())
                .json(item)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{name}");
            // Claude Code reads an http hook's answer as hook output (for PreCompact the body itself becomes
            // compaction instructions): it must say nothing at all.
            assert_eq!(resp.text().await.unwrap(), "");
            sent.push((id, at, item.clone()));
        }
    }

    let stored = server.all_events("source=hook").await;
    let by_id: HashMap<&str, &Value> = stored
        .iter()
        .map(|e| (s(e, "event_id").unwrap(), e))
        .collect();
    assert_eq!(
        stored.len(),
        sent.len(),
        "one stored event per posted payload"
    );

    for (id, at, item) in &sent {
        let ev = by_id
            .get(id.to_string().as_str())
            .unwrap_or_else(|| panic!("event {id} stored"));
        let name = s(item, "hook_event_name").unwrap();
        let session = s(item, "session_id").unwrap();
        assert_eq!(s(ev, "event_type"), Some(name));
        assert_eq!(s(ev, "source"), Some("hook"));
        assert_eq!(s(ev, "session_id"), Some(session));
        assert_eq!(
            s(ev, "trace_id").unwrap(),
            session.replace('-', ""),
            "trace id = session id bytes"
        );
        assert_eq!(
            s(ev, "source_app"),
            Some("demo"),
            "source app defaults to the cwd's name"
        );
        assert_eq!(
            s(ev, "agent_id"),
            Some(s(item, "agent_id").unwrap_or("main"))
        );
        for k in ["prompt_id", "tool_name", "tool_use_id"] {
            assert_eq!(s(ev, k), s(item, k), "{name}.{k}");
        }
        let created: DateTime<Utc> = s(ev, "created_at").unwrap().parse().unwrap();
        assert_eq!(created, *at, "created_at is the sender's stamp");
        let failure = name.ends_with("Failure");
        assert_eq!(
            s(ev, "status"),
            Some(if failure { "error" } else { "ok" }),
            "{name}"
        );
        let severity = match name {
            _ if failure => "error",
            "Notification" | "PermissionRequest" => "warn",
            _ => "info",
        };
        assert_eq!(s(ev, "severity"), Some(severity), "{name}");
        assert_eq!(&ev["payload"], item, "payload kept as sent");

        // Span ids of the design: tool span under subagent, else turn, else session.
        let agent = s(item, "agent_id").filter(|a| !a.is_empty());
        let session_span = h("session", session);
        let turn = s(item, "prompt_id").map(|p| h("turn", p));
        let owner = agent
            .map(|a| h("agent", a))
            .or(turn.clone())
            .unwrap_or(session_span.clone());
        let (span, parent) = match (name, s(item, "tool_use_id")) {
            ("SessionStart" | "SessionEnd", _) => (session_span.clone(), None),
            ("UserPromptSubmit" | "Stop" | "StopFailure", _) if turn.is_some() => {
                (turn.clone().unwrap(), Some(session_span.clone()))
            }
            ("SubagentStart" | "SubagentStop", _) if agent.is_some() => (
                h("agent", agent.unwrap()),
                Some(turn.clone().unwrap_or(session_span.clone())),
            ),
            (_, Some(tool)) => (h("tool", tool), Some(owner.clone())),
            (_, None) => (owner.clone(), None),
        };
        assert_eq!(s(ev, "span_id"), Some(span.as_str()), "{name} span id");
        assert_eq!(
            s(ev, "parent_span_id"),
            parent.as_deref(),
            "{name} parent span id"
        );
        if name.starts_with("PostToolUse") {
            assert_eq!(
                ev["latency_ms"], item["duration_ms"],
                "{name} latency from duration_ms"
            );
        }
    }

    // Timelines pair Pre and Post by tool_use_id, also when Post came first.
    let ok = server
        .get("/api/v1/observability/sessions/0fbc6975-e498-4c0d-a2a2-497077c17a19")
        .await;
    let bash = ok["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tool_use_id"] == "toolu_183802d7c00548d68bda7b83")
        .expect("paired Bash call");
    assert_eq!(
        (
            bash["tool_name"].as_str(),
            bash["latency_ms"].as_i64(),
            bash["status"].as_str()
        ),
        (Some("Bash"), Some(42), Some("ok"))
    );
    assert!(bash["started_at"].is_string() && bash["finished_at"].is_string());
    // Status follows the latest lifecycle event by time: SessionEnd ends, a later SessionStart (resume) revives.
    let last_lifecycle = sent
        .iter()
        .filter(|(_, _, i)| i["session_id"] == "0fbc6975-e498-4c0d-a2a2-497077c17a19")
        .filter_map(|(_, at, i)| match s(i, "hook_event_name") {
            Some("SessionEnd") => Some((*at, "ended")),
            Some("SessionStart") => Some((*at, "active")),
            _ => None,
        })
        .max()
        .unwrap();
    assert_eq!(ok["status"], last_lifecycle.1);

    let failed = server
        .get("/api/v1/observability/sessions/04128219-b9d9-4a0f-898a-7a3abb4d3e00")
        .await;
    let call = &failed["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tool_use_id"] == "toolu_d48d22869260437182bd91e4")
        .unwrap()
        .clone();
    assert_eq!(
        (call["status"].as_str(), call["latency_ms"].as_i64()),
        (Some("error"), Some(81))
    );
    assert_eq!(failed["tool_failures"], 1);
    assert!(failed["error_count"].as_i64().unwrap() >= 1);

    // Subagent tool calls belong to the subagent.
    let sub = server
        .all_events("session_id=1d03709e-189a-498d-a6ca-69950cf4473b&agent_id=a828a481a9d4da57f")
        .await;
    assert!(sub.iter().any(|e| e["event_type"] == "SubagentStart"));
    assert!(
        sub.iter()
            .any(|e| e["tool_use_id"] == "toolu_2d4903094a91405a9b83a33f")
    );

    // The sessions list counts what was stored.
    let sessions = server
        .get("/api/v1/observability/sessions?limit=1000")
        .await;
    let total: i64 = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["event_count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, sent.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_and_post_pair_in_any_order_and_post_alone_keeps_its_duration() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let post = |id: &str, t: &str| {
        serde_json::json!({"session_id": session, "hook_event_name": "PostToolUse", "tool_name": "Read",
                           "tool_use_id": id, "_hivewatch": {"time": t}})
    };
    let pre = |id: &str, t: &str| {
        serde_json::json!({"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Read",
                           "tool_use_id": id, "_hivewatch": {"time": t}})
    };
    let path = "/api/v1/observability/event";
    // In order, in separate requests.
    assert_eq!(
        server
            .post_json(path, &pre("t1", "2026-11-25T10:00:00Z"))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post_json(path, &post("t1", "2026-11-25T10:00:01.250Z"))
            .await
            .0,
        200
    );
    // Post first, then Pre.
    assert_eq!(
        server
            .post_json(path, &post("t2", "2026-11-25T10:00:05Z"))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post_json(path, &pre("t2", "2026-11-25T10:00:04.500Z"))
            .await
            .0,
        200
    );
    // Both in one batch.
    let (status, body) = server
        .post_json(
            path,
            &serde_json::json!([
                post("t3", "2026-11-25T10:00:09Z"),
                pre("t3", "2026-11-25T10:00:08Z")
            ]),
        )
        .await;
    assert_eq!((status, body["accepted"].as_i64()), (200, Some(2)));
    // Post alone, with the duration Claude Code reports.
    let mut alone = post("t4", "2026-11-25T10:00:20Z");
    alone["duration_ms"] = 77.into();
    assert_eq!(server.post_json(path, &alone).await.0, 200);

    let posts = server
        .all_events(&format!("session_id={session}&event_type=PostToolUse"))
        .await;
    let latency: HashMap<&str, i64> = posts
        .iter()
        .map(|e| {
            (
                s(e, "tool_use_id").unwrap(),
                e["latency_ms"].as_i64().expect("latency set"),
            )
        })
        .collect();
    assert_eq!(
        latency,
        HashMap::from([("t1", 1250), ("t2", 500), ("t3", 1000), ("t4", 77)])
    );

    let timeline = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    let calls = timeline["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 4);
    let t4 = calls.iter().find(|c| c["tool_use_id"] == "t4").unwrap();
    assert_eq!(
        t4["started_at"]
            .as_str()
            .map(|t| t.parse::<DateTime<Utc>>().unwrap()),
        Some("2026-11-25T10:00:19.923Z".parse().unwrap())
    );
}

fn count_records(v: &Value, outer: &str, scope: &str, items: &str) -> usize {
    v[outer]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r[scope].as_array().unwrap())
        .map(|sc| sc[items].as_array().unwrap().len())
        .sum()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn native_otlp_exports_replay_over_json_protobuf_and_grpc_without_duplicates() {
    let server = Server::start();
    let http = client();
    let logs_json = fixture("otlp-json/export_logs.json");
    let traces_json = fixture("otlp-json/export_traces.json");
    let n_logs = count_records(&logs_json, "resourceLogs", "scopeLogs", "logRecords");
    let n_spans = count_records(&traces_json, "resourceSpans", "scopeSpans", "spans");

    for (path, file) in [
        ("/v1/logs", "otlp-json/export_logs.json"),
        ("/v1/traces", "otlp-json/export_traces.json"),
        ("/v1/metrics", "otlp-json/export_metrics.json"),
    ] {
        let resp = http
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(fixture_bytes(file))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body.get("partialSuccess").is_none_or(Value::is_null),
            "{path}: {body}"
        );
    }

    let logs = server.all_events("source=otlp_log").await;
    let spans = server.all_events("source=otlp_span").await;
    let logs: Vec<&Value> = logs.iter().collect();
    let spans: Vec<&Value> = spans.iter().collect();
    assert_eq!(
        logs.len(),
        n_logs,
        "every log record stored, none collapsed"
    );
    assert_eq!(spans.len(), n_spans);

    // Logs: session from `session.id`, type from `event.name`, trace context kept.
    let records: Vec<&Value> = logs_json["resourceLogs"][0]["scopeLogs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["logRecords"].as_array().unwrap())
        .collect();
    for rec in &records {
        let attr = |k: &str| {
            rec["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        let seq = attr("event.sequence").unwrap()["intValue"].clone();
        let ev = logs
            .iter()
            .find(|e| e["payload"]["attributes"]["event.sequence"] == seq)
            .unwrap_or_else(|| panic!("record with event.sequence {seq}"));
        assert_eq!(ev["event_type"], attr("event.name").unwrap()["stringValue"]);
        assert_eq!(ev["session_id"], attr("session.id").unwrap()["stringValue"]);
        assert_eq!(ev["source_app"], "claude-code");
        if let Some(t) = rec["traceId"].as_str() {
            assert_eq!(ev["trace_id"], t);
            assert_eq!(ev["span_id"], rec["spanId"]);
        }
        if let Some(p) = attr("prompt.id") {
            assert_eq!(ev["prompt_id"], p["stringValue"]);
        }
        if let Some(t) = attr("tool_use_id") {
            assert_eq!(ev["tool_use_id"], t["stringValue"]);
        }
    }

    // Spans: ids as sent, tool ids lifted, duration as latency.
    for span in traces_json["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
    {
        let ev = spans
            .iter()
            .find(|e| e["span_id"] == span["spanId"])
            .expect("span stored");
        assert_eq!(ev["trace_id"], span["traceId"]);
        assert_eq!(ev["parent_span_id"], span["parentSpanId"]);
        assert_eq!(ev["event_type"], "span");
        assert_eq!(ev["payload"]["name"], span["name"]);
        assert_eq!(ev["session_id"], "0fbc6975-e498-4c0d-a2a2-497077c17a19");
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert_eq!(ev["latency_ms"].as_u64(), Some((end - start) / 1_000_000));
        if span["name"] == "claude_code.tool" {
            assert_eq!(ev["tool_name"], "Bash");
            assert_eq!(ev["tool_use_id"], "toolu_183802d7c00548d68bda7b83");
        }
    }

    // The same exports again, as gzipped protobuf over HTTP and over gRPC: nothing new is stored.
    let logs_req: ExportLogsServiceRequest = serde_json::from_value(logs_json.clone()).unwrap();
    let traces_req: ExportTraceServiceRequest =
        serde_json::from_value(traces_json.clone()).unwrap();
    for (path, body) in [
        ("/v1/logs", logs_req.encode_to_vec()),
        ("/v1/traces", traces_req.encode_to_vec()),
    ] {
        let resp = http
            .post(server.url(path))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(gzip(&body))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let answer =
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(
                resp.bytes().await.unwrap(),
            )
            .expect("protobuf answer to a protobuf request");
        assert!(answer.partial_success.is_none());
    }
    let mut logs_client = LogsServiceClient::connect(server.grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    logs_client
        .export(logs_req)
        .await
        .expect("gRPC logs export");
    let mut trace_client = TraceServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    trace_client
        .export(traces_req)
        .await
        .expect("gRPC trace export");

    let all = server
        .all_events("session_id=0fbc6975-e498-4c0d-a2a2-497077c17a19")
        .await;
    let otlp = all.iter().filter(|e| e["source"] != "hook").count();
    let logs_in_session = logs
        .iter()
        .filter(|e| e["session_id"] == "0fbc6975-e498-4c0d-a2a2-497077c17a19")
        .count();
    assert_eq!(
        otlp,
        logs_in_session + n_spans,
        "retried exports stored nothing twice"
    );

    // Native telemetry feeds the session row: model, tokens and cost from api_request.
    let session = server
        .get("/api/v1/observability/sessions/0fbc6975-e498-4c0d-a2a2-497077c17a19")
        .await;
    assert!(session["input_tokens"].as_i64().unwrap() > 0);
    assert!(session["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(session["model"].as_str().unwrap().starts_with("claude-"));
}

/// The newest Claude Code's hook inputs (recorded from 2.1.337 by tests/claude_code.rs, and those built from its
/// schemas where the offline runs cannot make it send them) and native records: every event stored, and the new
/// events and fields modeled, not only kept in the payload.
#[tokio::test(flavor = "multi_thread")]
async fn the_newest_claude_code_events_and_fields_are_modeled() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code-2.1.337");
    let read = |rel: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
        )
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let mut payloads: Vec<Value> = Vec::new();
    for entry in std::fs::read_dir(dir.join("hooks")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        payloads.extend(
            read(&format!("hooks/{name}"))
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    let recorded = payloads.len();
    payloads.extend(
        read("constructed/hooks.json")
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );

    let server = Server::start();
    let http = client();
    let resp = http
        .post(server.url("/api/v1/observability/event"))
        .json(&payloads)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(payloads.len() as u64), Some(0)),
        "{answer}"
    );
    assert!(recorded > 20, "the recorded 2.1.337 fixtures: {recorded}");
    let logs = std::fs::read(dir.join("constructed/export_logs.json")).unwrap();
    let resp = http
        .post(server.url("/v1/logs"))
        .header("content-type", "application/json")
        .body(logs)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let hooks = server.all_events("source=hook").await;
    assert_eq!(hooks.len(), payloads.len());
    let one = |t: &str| {
        hooks
            .iter()
            .find(|e| e["event_type"] == t)
            .unwrap_or_else(|| panic!("no {t} stored"))
    };
    // A model switch names the session's new model.
    let switch = one("PostModelSwitch");
    assert_eq!(switch["model"], "claude-sonnet-4-5");
    let session = s(switch, "session_id").unwrap();
    let view = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert_eq!(
        view["model"], "claude-sonnet-4-5",
        "the session's model follows the switch"
    );
    // A skill's shell command is a tool event of its own, never a call left running.
    let skill = one("PreSkillShellCommand");
    assert_eq!(
        (s(skill, "tool_name"), s(skill, "payload")),
        (Some("Bash"), None)
    );
    let skill_view = server
        .get(&format!(
            "/api/v1/observability/sessions/{}",
            s(skill, "session_id").unwrap()
        ))
        .await;
    assert!(
        skill_view["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "running"),
        "{skill_view}"
    );
    // The MCP server is a field of its own, and a filter.
    let mcp = server.all_events("mcp_server=github").await;
    let kinds: Vec<&str> = mcp.iter().filter_map(|e| s(e, "event_type")).collect();
    assert_eq!(kinds, ["PreToolUse", "PostToolUse"], "{mcp:?}");
    assert!(
        hooks
            .iter()
            .filter(|e| e["tool_name"] == "Bash")
            .all(|e| e["mcp_server"].is_null())
    );
    // Severity by what the event asks of a person.
    let notes: Vec<(&str, &str)> = hooks
        .iter()
        .filter(|e| e["event_type"] == "Notification")
        .map(|e| {
            (
                e["payload"]["notification_type"].as_str().unwrap(),
                s(e, "severity").unwrap(),
            )
        })
        .collect();
    assert!(
        notes.contains(&("agent_needs_input", "warn"))
            && notes.contains(&("agent_completed", "info")),
        "{notes:?}"
    );
    assert_eq!(one("Interrupt")["severity"], "warn");
    assert_eq!(one("Interrupt")["payload"]["reason"], "stop");
    let failures: Vec<&Value> = hooks
        .iter()
        .filter(|e| e["event_type"] == "StopFailure")
        .collect();
    assert!(
        failures
            .iter()
            .all(|e| e["status"] == "error" && e["severity"] == "error"),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|e| e["payload"]["error"] == "cloud_credential_error"),
        "{failures:?}"
    );
    assert_eq!(
        one("DirectoryAdded")["payload"]["directory"],
        "/home/dev/projects/shared-lib"
    );
    let fork = hooks
        .iter()
        .find(|e| e["payload"]["source"] == "fork")
        .expect("the forked SessionStart");
    assert_eq!(
        (
            fork["model"].as_str(),
            fork["payload"]["context_tokens"].as_i64()
        ),
        (Some("claude-opus-5-5"), Some(18231))
    );

    // Native: vcs.* lifted into fields; managed settings are configuration, redacted key by key.
    let native = server.all_events("source=otlp_log").await;
    let by = |t: &str| {
        native
            .iter()
            .find(|e| e["event_type"] == t)
            .unwrap_or_else(|| panic!("no {t}"))
    };
    let result = by("tool_result");
    assert_eq!(
        (s(result, "repo"), s(result, "branch"), s(result, "commit")),
        (
            Some("github.com/acme/widgets"),
            Some("feature/login"),
            Some("9f1c2ab4d5e6f708192a3b4c5d6e7f8091a2b3c4")
        )
    );
    let settings =
        &by("managed_settings_resolved")["payload"]["attributes"]["managed_settings.settings"];
    assert_eq!(
        settings["env"]["ANTHROPIC_API_KEY"], "[REDACTED]",
        "{settings}"
    );
    assert_eq!(settings["env"]["DB_PASSWORD"], "[REDACTED]", "{settings}");
    assert_eq!(
        settings["env"]["HTTP_PROXY"], "http://proxy.internal:3128",
        "{settings}"
    );
    assert_eq!(settings["permissions"]["deny"][0], "Read(./.env)");
    let safety = by("safety_event");
    assert_eq!(
        (s(safety, "tool_name"), s(safety, "tool_use_id")),
        (Some("Bash"), Some("toolu_safety_1"))
    );
    assert_eq!(s(safety, "repo"), Some("github.com/acme/widgets"));
}
