//! `serve --redact-pattern`, `--drop-prompts` and `--drop-tool-output`: applied to hook payloads and transcripts
//! before storage, as the events and transcript APIs show; a bad pattern stops the start.

mod common;

use common::Server;
use serde_json::{Value, json};
use uuid::Uuid;

async fn stored_payloads(server: &Server, session: &str) -> Vec<Value> {
    server
        .all_events(&format!("session_id={session}"))
        .await
        .into_iter()
        .map(|e| e["payload"].clone())
        .collect()
}

async fn post_hook(server: &Server, body: Value) {
    let (status, resp) = server.post_json("/api/v1/observability/event", &body).await;
    assert_eq!(status, 200, "{resp}");
}

fn hooks(session: &str) -> [Value; 2] {
    [
        json!({"session_id": session, "hook_event_name": "UserPromptSubmit",
               "prompt": "deploy build ACME-4242-ZZ to prod, ticket ACME-1"}),
        json!({"session_id": session, "hook_event_name": "PostToolUse", "tool_name": "Bash",
               "tool_use_id": "toolu_1", "tool_input": {"command": "cat /etc/acme/id"},
               "tool_response": {"stdout": "internal id ACME-9999-QQ", "stderr": ""}}),
    ]
}

fn transcript(session: &str) -> Value {
    json!({"session_id": session, "entries": [
        {"uuid": "u1", "type": "user", "timestamp": "2026-11-25T10:00:00Z",
         "message": {"role": "user", "content": "please look at ACME-1234-AB"}},
        {"uuid": "u2", "parentUuid": "u1", "type": "assistant", "timestamp": "2026-11-25T10:00:01Z",
         "message": {"role": "assistant", "content": [{"type": "text", "text": "Looking at ACME-5555-CD now"}]}},
        {"uuid": "u3", "parentUuid": "u2", "type": "user", "timestamp": "2026-11-25T10:00:02Z",
         "message": {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found ACME-7777-EF"}]},
         "toolUseResult": {"stdout": "found ACME-7777-EF"}}
    ]})
}

async fn stored_transcript(server: &Server, session: &str) -> Vec<Value> {
    let (status, body) = server
        .post_json("/api/v1/observability/transcripts", &transcript(session))
        .await;
    assert_eq!(status, 200, "{body}");
    let id = hivewatch::model::ids::session_uuid(session);
    let got = server
        .get(&format!("/api/v1/observability/sessions/{id}/transcript"))
        .await;
    got["entries"].as_array().expect("entries").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_patterns_redact_payloads_and_transcripts() {
    let server = Server::start_with(&[
        "--redact-pattern",
        r"ACME-\d{4}-[A-Z]{2}",
        "--redact-pattern",
        "ticket ACME-1$",
    ]);
    let session = Uuid::new_v4().to_string();
    for h in hooks(&session) {
        post_hook(&server, h).await;
    }
    let payloads = stored_payloads(&server, &session).await;
    let text = serde_json::to_string(&payloads).unwrap();
    assert!(
        !text.contains("ACME-4242") && !text.contains("ACME-9999"),
        "{text}"
    );
    assert!(!text.contains("ticket ACME-1"), "{text}");
    assert!(
        text.contains("deploy build [REDACTED] to prod, [REDACTED]"),
        "{text}"
    );
    assert!(text.contains("internal id [REDACTED]"), "{text}");
    // Without the drop flags, prompts and output are otherwise kept.
    assert!(text.contains("cat /etc/acme/id"), "{text}");

    let entries = stored_transcript(&server, &session).await;
    let text = serde_json::to_string(&entries).unwrap();
    assert_eq!(entries.len(), 3, "{text}");
    for id in ["1234", "5555", "7777"] {
        assert!(!text.contains(&format!("ACME-{id}")), "{text}");
    }
    assert!(text.contains("please look at [REDACTED]"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn patterns_from_the_environment_are_one_per_line() {
    let server = Server::start_with_env(
        &[],
        &[("HIVEWATCH_REDACT_PATTERNS", "ACME-4242-ZZ\nACME-\\d{4}-QQ")],
    );
    let session = Uuid::new_v4().to_string();
    for h in hooks(&session) {
        post_hook(&server, h).await;
    }
    let text = serde_json::to_string(&stored_payloads(&server, &session).await).unwrap();
    assert!(
        !text.contains("ACME-4242-ZZ") && !text.contains("ACME-9999-QQ"),
        "{text}"
    );
    assert!(text.contains("ticket ACME-1"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_prompts_and_tool_output() {
    let server = Server::start_with(&["--drop-prompts", "--drop-tool-output"]);
    let session = Uuid::new_v4().to_string();
    for h in hooks(&session) {
        post_hook(&server, h).await;
    }
    let payloads = stored_payloads(&server, &session).await;
    let prompt = payloads
        .iter()
        .find(|p| p["hook_event_name"] == "UserPromptSubmit")
        .expect("prompt event");
    assert_eq!(prompt["prompt"], "[dropped]");
    let tool = payloads
        .iter()
        .find(|p| p["hook_event_name"] == "PostToolUse")
        .expect("tool event");
    assert_eq!(tool["tool_response"], "[dropped]");
    // The tool's input is neither a prompt nor output: it stays.
    assert_eq!(tool["tool_input"]["command"], "cat /etc/acme/id");

    let entries = stored_transcript(&server, &session).await;
    let by_uuid = |u: &str| {
        entries
            .iter()
            .find(|e| e["uuid"] == u)
            .unwrap_or_else(|| panic!("entry {u}: {entries:?}"))
            .clone()
    };
    assert_eq!(by_uuid("u1")["content"], "[dropped]");
    assert_eq!(
        by_uuid("u2")["content"][0]["text"],
        "Looking at ACME-5555-CD now",
        "assistant text is not a prompt"
    );
    assert_eq!(by_uuid("u3")["content"][0]["content"], "[dropped]");
    assert_eq!(by_uuid("u3")["content"][0]["tool_use_id"], "toolu_1");
}

#[test]
fn a_bad_pattern_stops_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--redact-pattern",
            "ok-[0-9]+",
            "--redact-pattern",
            "broken([",
        ])
        .env_remove("HIVEWATCH_DATABASE_URL")
        .output()
        .expect("run hivewatch");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--redact-pattern \"broken([\" is not a valid regex"),
        "{stderr}"
    );
}
