//! Transcript entries: stored once per (session, entry uuid), however often they are shipped.

mod common;

use common::{FIXTURES, Server};
use serde_json::{Value, json};

fn lines(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(format!("{FIXTURES}/{rel}"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_transcripts_are_stored_once_with_roles_models_and_tokens() {
    let server = Server::start();
    let session = "1d03709e-189a-498d-a6ca-69950cf4473b";
    let main = lines("transcripts/1d03709e-189a-498d-a6ca-69950cf4473b.jsonl");
    let sub = lines(
        "transcripts/1d03709e-189a-498d-a6ca-69950cf4473b/subagents/agent-a828a481a9d4da57f.jsonl",
    );
    let with_uuid = |ls: &[Value]| ls.iter().filter(|l| l.get("uuid").is_some()).count();

    for _ in 0..2 {
        let (status, body) = server
            .post_json(
                "/api/v1/observability/transcripts",
                &json!({"session_id": session, "entries": main}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["accepted"].as_u64().unwrap() as usize,
            with_uuid(&main)
        );
        assert_eq!(
            body["skipped"].as_u64().unwrap() as usize,
            main.len() - with_uuid(&main)
        );
        let (status, _) = server
            .post_json(
                "/api/v1/observability/transcripts",
                &json!({"session_id": session, "agent_id": "a828a481a9d4da57f", "entries": sub}),
            )
            .await;
        assert_eq!(status, 200);
    }
    // The second shipment stored nothing new.
    let (_, again) = server
        .post_json(
            "/api/v1/observability/transcripts",
            &json!({"session_id": session, "entries": main}),
        )
        .await;
    assert_eq!(again["stored"], 0);

    let all = server
        .get(&format!(
            "/api/v1/observability/sessions/{session}/transcript"
        ))
        .await;
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), with_uuid(&main) + with_uuid(&sub));
    let mut uuids: Vec<&str> = entries
        .iter()
        .map(|e| e["uuid"].as_str().unwrap())
        .collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), entries.len(), "each entry once");

    let subagent = server
        .get(&format!(
            "/api/v1/observability/sessions/{session}/transcript?agent_id=a828a481a9d4da57f"
        ))
        .await;
    assert_eq!(
        subagent["entries"].as_array().unwrap().len(),
        with_uuid(&sub)
    );

    // Roles, models and token counts come from the message.
    let assistant = entries
        .iter()
        .find(|e| e["role"] == "assistant")
        .expect("an assistant entry");
    assert!(assistant["model"].is_string());
    assert!(assistant["output_tokens"].as_i64().is_some());
    assert!(entries.iter().any(|e| e["role"] == "user"));
    let first_user = main.iter().find(|l| l["type"] == "user").unwrap();
    let stored = entries
        .iter()
        .find(|e| e["uuid"] == first_user["uuid"])
        .unwrap();
    assert_eq!(stored["content"], first_user["message"]["content"]);
    assert_eq!(stored["parent_uuid"], first_user["parentUuid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn transcript_secrets_are_redacted_and_bad_bodies_refused() {
    let server = Server::start();
    let entry = json!({"uuid": "u-1", "type": "user", "timestamp": "2026-11-25T16:55:31.136Z",
        "message": {"role": "user", "content": "use key sk-ant-api03-abcdefghijklmnopqrstuvwxyz please"}});
    let (status, _) = server
        .post_json(
            "/api/v1/observability/transcripts",
            &json!({"session_id": "s-redact", "entries": [entry]}),
        )
        .await;
    assert_eq!(status, 200);
    let session = server.get("/api/v1/observability/sessions?limit=10").await;
    assert!(
        session["sessions"].as_array().unwrap().is_empty(),
        "a transcript alone makes no session row"
    );
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::from_u128(0x6869_7665_7761_7463_6800_0000_0000_0001),
        b"s-redact",
    );
    let stored = server
        .get(&format!("/api/v1/observability/sessions/{id}/transcript"))
        .await;
    let content = stored["entries"][0]["content"].as_str().unwrap();
    assert_eq!(content, "use key [REDACTED] please");

    let (status, body) = server
        .post_json("/api/v1/observability/transcripts", &json!({"entries": []}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("transcript has no `session_id`"))
    );
    let (status, _) = server
        .post_json(
            "/api/v1/observability/transcripts",
            &json!({"session_id": "s", "entries": 5}),
        )
        .await;
    assert_eq!(status, 400);
}
