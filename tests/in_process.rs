//! The whole server in the test's process (`app::serve`): an event committed at once is counted, read back, seen
//! by the live hub, and a staged shutdown returns cleanly.

mod common;

use common::in_process::InProcess;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_event_committed_first_is_counted_stored_and_the_shutdown_is_clean() {
    let server = InProcess::start(&[]).await;
    let http = reqwest::Client::new();
    let session = uuid::Uuid::new_v4();
    // The very first request after the listeners opened: metrics are set up before them, so it is counted.
    let resp = http
        .post(server.url("/api/v1/observability/event"))
        .json(&json!({"session_id": session.to_string(), "hook_event_name": "Stop", "cwd": "/w/demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");

    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("hivewatch_events_total{") && l.contains("event_type=\"Stop\""))
        .unwrap_or_else(|| panic!("no Stop count in /metrics:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    for gauge in [
        "hivewatch_pipeline_queue_capacity",
        "hivewatch_store_pool_connections",
        "hivewatch_websocket_connections",
        "hivewatch_process_resident_memory_bytes",
    ] {
        assert!(
            metrics.contains(gauge),
            "{gauge} is registered by its component:\n{metrics}"
        );
    }

    let page: serde_json::Value = http
        .get(server.url(&format!(
            "/api/v1/observability/events?session_id={session}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"][0]["event_type"], "Stop");
    assert_eq!(page["events"][0]["source_app"], "demo");

    server
        .stop()
        .await
        .expect("serve returns Ok after a staged shutdown");
}
