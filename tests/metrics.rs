//! `/metrics` as Prometheus reads it: agent-level metrics from hook events, hivewatch's own, and Claude Code's
//! delta metrics re-exposed as cumulative counters.

mod common;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use common::{Server, client, fixture};
use serde_json::{Value, json};
use uuid::Uuid;

/// Samples of the exposition: `name{labels}` → value (labels as printed, sorted by the exporter).
async fn scrape(server: &Server) -> HashMap<String, f64> {
    let resp = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    resp.text()
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

async fn post_hook(server: &Server, body: Value, at: chrono::DateTime<Utc>) {
    let resp = client()
        .post(server.url("/api/v1/observability/event"))
        .header("x-hivewatch-time", at.to_rfc3339())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_failures_and_events_are_counted_with_bounded_labels() {
    let server = Server::start();
    let session = Uuid::new_v4();
    let t0 = Utc::now() - Duration::seconds(30);
    for (i, (tool, ms, fail)) in [
        ("Bash", 1200, false),
        ("Bash", 7000, true),
        ("Read", 40, false),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("toolu_{i}");
        let pre = json!({"session_id": session, "hook_event_name": "PreToolUse", "tool_name": tool, "tool_use_id": id});
        post_hook(&server, pre, t0).await;
        let name = if fail {
            "PostToolUseFailure"
        } else {
            "PostToolUse"
        };
        let post = json!({"session_id": session, "hook_event_name": name, "tool_name": tool, "tool_use_id": id});
        post_hook(&server, post, t0 + Duration::milliseconds(ms)).await;
    }
    let odd =
        json!({"session_id": session, "hook_event_name": "SomethingNew", "prompt_id": "p-42"});
    post_hook(&server, odd, t0).await;
    // A request that cannot be read.
    let bad = client()
        .post(server.url("/api/v1/observability/event"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let m = scrape(&server).await;
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("{k} missing: {m:#?}"))
    };
    assert_eq!(
        get(r#"hivewatch_tool_calls_total{status="ok",tool_name="Bash"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hivewatch_tool_calls_total{status="error",tool_name="Bash"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hivewatch_tool_calls_total{status="ok",tool_name="Read"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hivewatch_tool_duration_seconds_sum{status="error",tool_name="Bash"}"#),
        7.0
    );
    // 7 s falls in the 10 s bucket, not the 5 s one: what the "tool latency p95 > 5 s" alert reads.
    assert_eq!(
        get(r#"hivewatch_tool_duration_seconds_bucket{status="error",tool_name="Bash",le="5"}"#),
        0.0
    );
    assert_eq!(
        get(r#"hivewatch_tool_duration_seconds_bucket{status="error",tool_name="Bash",le="10"}"#),
        1.0
    );
    assert_eq!(get(r#"hivewatch_agent_failures_total{kind="tool"}"#), 1.0);
    assert_eq!(
        get(r#"hivewatch_events_total{event_type="PreToolUse",source="hook"}"#),
        3.0
    );
    assert_eq!(
        get(r#"hivewatch_events_total{event_type="other",source="hook"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hivewatch_ingest_requests_total{outcome="invalid",protocol="http",signal="hook"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hivewatch_ingest_requests_total{outcome="ok",protocol="http",signal="hook"}"#),
        7.0
    );
    assert_eq!(
        get(r#"hivewatch_events_rejected_total{reason="invalid",signal="hook"}"#),
        1.0
    );
    assert_eq!(get("hivewatch_store_batch_events_sum"), 7.0);
    assert!(get("hivewatch_process_resident_memory_bytes") > 1e6);
    assert_eq!(get(r#"hivewatch_build_info{version="0.1.0"}"#), 1.0);
    for k in m.keys() {
        for id in [session.to_string(), "toolu_0".into(), "p-42".into()] {
            assert!(!k.contains(&id), "an id as a label: {k}");
        }
    }
}

/// The recorded Claude Code metrics export with its session and the values scaled, as another session would send.
fn metrics_export(session: &str, scale: i64) -> Value {
    let mut v = fixture("otlp-json/export_metrics.json");
    for rm in v["resourceMetrics"].as_array_mut().unwrap() {
        for sm in rm["scopeMetrics"].as_array_mut().unwrap() {
            for m in sm["metrics"].as_array_mut().unwrap() {
                for dp in m["sum"]["dataPoints"].as_array_mut().unwrap() {
                    for a in dp["attributes"].as_array_mut().unwrap() {
                        if a["key"] == "session.id" {
                            a["value"] = json!({"stringValue": session});
                        }
                    }
                    if let Some(d) = dp["asDouble"].as_f64() {
                        dp["asDouble"] = json!(d * scale as f64);
                    }
                    if let Some(i) = dp["asInt"].as_str().and_then(|s| s.parse::<i64>().ok()) {
                        dp["asInt"] = json!((i * scale).to_string());
                    }
                }
            }
        }
    }
    v
}

async fn post_metrics(server: &Server, body: &Value) {
    let (status, _) = server.post_json("/v1/metrics", body).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_delta_metrics_become_cumulative_counters_across_sessions() {
    let server = Server::start();
    // Five sessions, each exporting three deltas with growing values: 1x, 2x, 3x the recording.
    for _ in 0..5 {
        let session = Uuid::new_v4().to_string();
        for scale in 1..=3 {
            post_metrics(&server, &metrics_export(&session, scale)).await;
        }
    }
    let m = scrape(&server).await;
    let model = "claude-opus-4-8[1m]";
    // The recording: 25 input and 12 output tokens, $0.000425, one session start; 5 sessions × (1+2+3).
    let get = |k: String| {
        m.get(&k)
            .copied()
            .unwrap_or_else(|| panic!("{k} missing: {m:#?}"))
    };
    assert_eq!(
        get(format!(
            r#"claude_code_token_usage_tokens_total{{model="{model}",type="input"}}"#
        )),
        25.0 * 30.0
    );
    assert_eq!(
        get(format!(
            r#"claude_code_token_usage_tokens_total{{model="{model}",type="output"}}"#
        )),
        12.0 * 30.0
    );
    let cost = get(format!(
        r#"claude_code_cost_usage_usd_total{{model="{model}"}}"#
    ));
    assert!((cost - 0.000425 * 30.0).abs() < 1e-9, "{cost}");
    assert_eq!(get("claude_code_session_count_total".into()), 30.0);
    assert!(
        m.keys()
            .all(|k| !k.contains("session_id") && !k.contains("user_id")),
        "per-session labels: {:?}",
        m.keys()
            .filter(|k| k.starts_with("claude_code"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cumulative_senders_add_their_increase_and_survive_a_reset() {
    let server = Server::start();
    let export = |value: i64, start: &str| {
        json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "other-agent"}}]},
            "scopeMetrics": [{"metrics": [{
                "name": "claude_code.lines_of_code.count",
                "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                    "attributes": [{"key": "type", "value": {"stringValue": "added"}}],
                    "startTimeUnixNano": start, "timeUnixNano": "1795600000000000000",
                    "asInt": value.to_string()
                }]}
            }]}]
        }]})
    };
    for v in [10, 25, 40] {
        post_metrics(&server, &export(v, "1795500000000000000")).await;
    }
    // The sender restarted: a new start time, counting from zero again.
    post_metrics(&server, &export(5, "1795599000000000000")).await;
    let m = scrape(&server).await;
    assert_eq!(
        m[r#"claude_code_lines_of_code_count_total{type="added"}"#],
        45.0
    );
}
