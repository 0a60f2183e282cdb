//! The Postgres back-end against a real Postgres: replicas sharing one database, an outage while ingesting,
//! a clear error at start, retention.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::services::{TestPostgres, fresh_database};
use common::{Server, client};
use serde_json::{Value, json};
use uuid::Uuid;

/// Posts one hook payload with its id and time stamp as the hook client sends them; returns the status (0 when
/// the connection failed).
async fn post_hook(server: &Server, body: &Value, id: Uuid, at: DateTime<Utc>) -> u16 {
    client()
        .post(server.url("/api/v1/observability/event"))
        .header("x-hivewatch-event-id", id.to_string())
        .header("x-hivewatch-time", at.to_rfc3339())
        .json(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn tool_event(session: Uuid, name: &str, tool_use_id: &str) -> Value {
    json!({
        "session_id": session,
        "hook_event_name": name,
        "tool_name": "Bash",
        "tool_use_id": tool_use_id,
        "cwd": "/work/app",
        "tool_input": {"command": "cargo test"},
    })
}

fn pg(url: &str) -> Vec<String> {
    vec!["--database-url".into(), url.into()]
}

fn start(extra: &[String]) -> Server {
    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
    Server::start_with(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_on_one_replica_and_post_on_another_pair_into_one_tool_call() {
    let db = fresh_database().await;
    let (a, b) = (start(&pg(&db)), start(&pg(&db)));
    let session = Uuid::new_v4();
    let t0: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
    // 50 calls: Pre to A and Post to B, sent at the same time, so that either half may be stored first.
    let sends = (0..50).map(|i| {
        let (a, b) = (&a, &b);
        async move {
            let id = format!("toolu_{i:03}");
            let pre_at = t0 + chrono::Duration::seconds(i);
            let post_at = pre_at + chrono::Duration::milliseconds(100 + i * 10);
            let (pre_body, post_body) = (
                tool_event(session, "PreToolUse", &id),
                tool_event(session, "PostToolUse", &id),
            );
            let (pre, post) = tokio::join!(
                post_hook(a, &pre_body, Uuid::new_v4(), pre_at),
                post_hook(b, &post_body, Uuid::new_v4(), post_at),
            );
            assert_eq!((pre, post), (200, 200));
        }
    });
    futures_util::future::join_all(sends).await;

    for server in [&a, &b] {
        let timeline = server
            .get(&format!("/api/v1/observability/sessions/{session}"))
            .await;
        let calls = timeline["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 50, "{timeline:#}");
        for call in calls {
            let i: i64 = call["tool_use_id"].as_str().unwrap()[6..].parse().unwrap();
            assert_eq!(call["status"], "ok");
            assert_eq!(call["latency_ms"], 100 + i * 10, "{call:#}");
        }
        assert_eq!(timeline["event_count"], 100);
        assert_eq!(timeline["tool_call_count"], 50);
        // The stored Post rows carry the latency too, not only the paired view.
        let posts = server
            .all_events(&format!("session_id={session}&event_type=PostToolUse"))
            .await;
        assert_eq!(posts.len(), 50);
        assert!(posts.iter().all(|p| p["latency_ms"].is_i64()), "{posts:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_complete_whichever_replica_saw_which_event() {
    let db = fresh_database().await;
    let replicas = [start(&pg(&db)), start(&pg(&db)), start(&pg(&db))];
    let session = Uuid::new_v4();
    let t0: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
    let mut sends = Vec::new();
    let names = [
        "SessionStart",
        "UserPromptSubmit",
        "Notification",
        "Stop",
        "SessionEnd",
    ];
    for (i, name) in names.iter().enumerate() {
        for copy in 0..4 {
            let body = json!({"session_id": session, "hook_event_name": name, "cwd": "/work/app"});
            let server = &replicas[(i + copy) % 3];
            let at = t0 + chrono::Duration::seconds((i * 10 + copy) as i64);
            sends.push(async move { post_hook(server, &body, Uuid::new_v4(), at).await });
        }
    }
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for server in &replicas {
        let s = server
            .get(&format!("/api/v1/observability/sessions/{session}"))
            .await;
        assert_eq!(s["event_count"], 20, "{s:#}");
        assert_eq!(s["status"], "ended");
        assert_eq!(s["first_seen"], "2026-11-25T12:00:00Z");
        assert_eq!(s["last_seen"], "2026-11-25T12:00:43Z");
        assert_eq!(s["cwd"], "/work/app");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_delivery_to_another_replica_is_stored_once() {
    let db = fresh_database().await;
    let (a, b) = (start(&pg(&db)), start(&pg(&db)));
    let session = Uuid::new_v4();
    let now = Utc::now();
    let ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    // Every event delivered to both replicas at once, as a client retrying after a lost answer would.
    let sends = ids.iter().map(|id| {
        let (a, b) = (&a, &b);
        async move {
            let body = json!({"session_id": session, "hook_event_name": "Notification"});
            tokio::join!(post_hook(a, &body, *id, now), post_hook(b, &body, *id, now))
        }
    });
    for (x, y) in futures_util::future::join_all(sends).await {
        assert_eq!((x, y), (200, 200));
    }
    let stored = a.all_events(&format!("session_id={session}")).await;
    let unique: HashSet<&str> = stored
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!((stored.len(), unique.len()), (200, 200));
    let s = b
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert_eq!(s["event_count"], 200, "the session counts each event once");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_unreachable_at_start_is_a_clear_error_and_a_non_zero_exit() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--database-url")
        .arg(format!(
            "postgres://hivewatch:s3cret-pw@127.0.0.1:{port}/events"
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot connect to Postgres at 127.0.0.1:{port}/events"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password leaked: {stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));

    let out = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["migrate", "--database-url"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/events"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to Postgres"));
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_the_schema_the_design_names() {
    let db = fresh_database().await;
    let out = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["migrate", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Twice is fine.
    let again = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["migrate", "--database-url", &db])
        .output()
        .unwrap();
    assert!(again.status.success());

    let columns = common::services::query_rows(
        &db,
        "SELECT column_name || ' ' || data_type AS v FROM information_schema.columns \
         WHERE table_name = 'agent_events' ORDER BY ordinal_position",
    )
    .await;
    for expected in [
        "id bigint",
        "session_id uuid",
        "agent_id text",
        "event_type character varying",
        "payload jsonb",
        "latency_ms integer",
        "created_at timestamp with time zone",
        "event_id uuid",
    ] {
        assert!(
            columns.iter().any(|c| c == expected),
            "{expected}: {columns:?}"
        );
    }
    let indexes = common::services::query_rows(
        &db,
        "SELECT indexdef AS v FROM pg_indexes WHERE tablename = 'agent_events'",
    )
    .await;
    for expected in [
        "idx_events_session ON public.agent_events USING btree (session_id)",
        "idx_events_type_time ON public.agent_events USING btree (event_type, created_at)",
        "UNIQUE INDEX idx_events_event_id ON public.agent_events USING btree (event_id)",
    ] {
        assert!(
            indexes.iter().any(|i| i.contains(expected)),
            "{expected}: {indexes:?}"
        );
    }
    let seq_default = common::services::query_rows(
        &db,
        "SELECT column_default AS v FROM information_schema.columns \
         WHERE table_name = 'agent_events' AND column_name = 'id'",
    )
    .await;
    assert!(
        seq_default[0].starts_with("nextval("),
        "BIGSERIAL: {seq_default:?}"
    );
    for table in ["chat_transcripts", "sessions", "tool_calls", "event_outbox"] {
        let n = common::services::query_rows(
            &db,
            &format!("SELECT count(*)::text AS v FROM information_schema.tables WHERE table_name = '{table}'"),
        )
        .await;
        assert_eq!(n, ["1"], "{table}");
    }
}

/// Senders that retry until acknowledged, as OTLP exporters and the hook spool do; records what was acknowledged.
async fn send_until_acked(
    server: &Server,
    session: Uuid,
    ids: Vec<Uuid>,
    acked: &tokio::sync::Mutex<Vec<Uuid>>,
    refused: &AtomicBool,
) {
    for id in ids {
        let body = json!({"session_id": session, "hook_event_name": "Notification", "message": "build finished"});
        loop {
            match post_hook(server, &body, id, Utc::now()).await {
                200 => {
                    acked.lock().await.push(id);
                    break;
                }
                503 => {
                    refused.store(true, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_during_ingest_loses_nothing_acknowledged() {
    let pg_server = TestPostgres::start();
    let server = start(&pg(&pg_server.url()));
    let session = Uuid::new_v4();
    let acked = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicBool::new(false));
    let all: Vec<Uuid> = (0..1200).map(|_| Uuid::now_v7()).collect();
    let senders: Vec<_> = all
        .chunks(100)
        .map(|chunk| {
            let (server, acked, refused) = (&server, acked.clone(), refused.clone());
            let chunk = chunk.to_vec();
            async move { send_until_acked(server, session, chunk, &acked, &refused).await }
        })
        .collect();
    let crash = async {
        // Let some events in, crash Postgres (no clean shutdown), keep it down a while, bring it back.
        loop {
            if acked.lock().await.len() >= 300 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pg_server.stop_immediate();
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg_server.start_again();
    };
    tokio::join!(futures_util::future::join_all(senders), crash);

    assert!(
        refused.load(Ordering::Relaxed),
        "ingest must answer 503 while Postgres is down"
    );
    let acked = acked.lock().await.clone();
    assert_eq!(
        acked.len(),
        all.len(),
        "clients retried until everything was acknowledged"
    );
    let stored = server.all_events(&format!("session_id={session}")).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &stored {
        *counts
            .entry(e["event_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let found = acked
        .iter()
        .filter(|id| counts.contains_key(&id.to_string()))
        .count();
    common::FaultReport {
        fault: "postgres_restart",
        action: "Postgres stopped (immediate) under load of 12 senders, down 2 s, started again; \
                 clients retry on 503",
        sent: all.len(),
        acked: acked.len(),
        stored: found,
        lost: acked.len() - found,
        duplicated: counts.values().filter(|n| **n > 1).count(),
    }
    .print_for("postgres");
    for id in &acked {
        assert_eq!(
            counts.get(&id.to_string()),
            Some(&1),
            "acknowledged event {id} stored once"
        );
    }
    assert_eq!(stored.len(), all.len());
    let log = server.stderr_log();
    assert!(log.contains("commit failed"), "{log}");
    assert!(log.contains("store available again"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_events_on_postgres() {
    let db = fresh_database().await;
    retention_deletes_old_events(pg(&db)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_events_on_sqlite() {
    retention_deletes_old_events(Vec::new()).await;
}

async fn retention_deletes_old_events(mut args: Vec<String>) {
    args.extend(["--retention", "7d", "--retention-interval", "300ms"].map(String::from));
    let server = start(&args);
    let (old_session, new_session) = (Uuid::new_v4(), Uuid::new_v4());
    let long_ago = Utc::now() - chrono::Duration::days(30);
    let recent = Utc::now() - chrono::Duration::days(1);
    for i in 0..20 {
        let (session, at) = if i % 2 == 0 {
            (old_session, long_ago)
        } else {
            (new_session, recent)
        };
        let body = tool_event(session, "PostToolUse", &format!("toolu_{i}"));
        assert_eq!(post_hook(&server, &body, Uuid::now_v7(), at).await, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let old = server
            .all_events(&format!("session_id={old_session}"))
            .await;
        if old.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old events never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server
            .all_events(&format!("session_id={new_session}"))
            .await
            .len(),
        10
    );
    let gone = client()
        .get(server.url(&format!("/api/v1/observability/sessions/{old_session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status().as_u16(),
        404,
        "the old session went with its events"
    );
    assert!(server.stderr_log().contains("retention: deleted"));
}

/// Values a sender can put in an event that no database column takes as they are.
async fn hostile_values_are_stored(args: Vec<String>) {
    let server = start(&args);
    let session = Uuid::new_v4();
    let odd = json!([
        {"session_id": session, "hook_event_name": "Notification", "message": "nul \u{0} inside", "k\u{0}": "v"},
        {"session_id": session, "hook_event_name": format!("Custom{}", "x".repeat(300))},
        {"session_id": session, "hook_event_name": "PostToolUse", "tool_use_id": "t1", "tool_name": "Bash", "duration_ms": 9e18},
    ]);
    let (status, body) = server.post_json("/api/v1/observability/event", &odd).await;
    assert_eq!(status, 200, "{body}");
    // Token totals that would overflow, and a cost that is not a number, from native telemetry.
    let mut logs = common::fixture("otlp-json/export_logs.json");
    for rl in logs["resourceLogs"].as_array_mut().unwrap() {
        for sl in rl["scopeLogs"].as_array_mut().unwrap() {
            for r in sl["logRecords"].as_array_mut().unwrap() {
                for a in r["attributes"].as_array_mut().unwrap() {
                    match a["key"].as_str().unwrap() {
                        "session.id" => a["value"] = json!({"stringValue": session.to_string()}),
                        "input_tokens" => {
                            a["value"] = json!({"stringValue": "9000000000000000000"})
                        }
                        "cost_usd" => a["value"] = json!({"stringValue": "NaN"}),
                        _ => {}
                    }
                }
            }
        }
    }
    for _ in 0..2 {
        let (status, body) = server.post_json("/v1/logs", &logs).await;
        assert_eq!(status, 200, "{body}");
    }
    let stored = server.all_events(&format!("session_id={session}")).await;
    assert!(stored.len() >= 3);
    let note = stored
        .iter()
        .find(|e| e["event_type"] == "Notification")
        .unwrap();
    assert_eq!(note["payload"]["message"], "nul  inside");
    assert_eq!(note["payload"]["k"], "v");
    assert!(
        stored
            .iter()
            .any(|e| e["event_type"].as_str().unwrap().len() == 200)
    );
    let s = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert!(s["input_tokens"].as_i64().unwrap() >= 0, "{s:#}");
    assert!(s["cost_usd"].as_f64().unwrap().is_finite());
    // And the store takes ordinary events afterwards.
    let (status, _) = server
        .post_json(
            "/api/v1/observability/event",
            &json!({"session_id": session, "hook_event_name": "Stop"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_are_stored_on_postgres() {
    let db = fresh_database().await;
    hostile_values_are_stored(pg(&db)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_are_stored_on_sqlite() {
    hostile_values_are_stored(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_id_twice_in_a_batch_counts_once() {
    for args in [pg(&fresh_database().await), Vec::new()] {
        let server = start(&args);
        let session = Uuid::new_v4();
        let id = Uuid::now_v7();
        // The header's id applies to every item of the array: the second is a duplicate of the first.
        let items = json!([
            tool_event(session, "PreToolUse", "t1"),
            tool_event(session, "PostToolUse", "t1"),
        ]);
        let resp = client()
            .post(server.url("/api/v1/observability/event"))
            .header("x-hivewatch-event-id", id.to_string())
            .json(&items)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let s = server
            .get(&format!("/api/v1/observability/sessions/{session}"))
            .await;
        assert_eq!(s["event_count"], 1, "{args:?}: {s:#}");
        assert_eq!(s["tool_call_count"], 0, "{args:?}: only the Pre was stored");
        let stored = server.all_events(&format!("session_id={session}")).await;
        assert_eq!(stored.len(), 1);
        assert!(stored[0]["latency_ms"].is_null(), "{args:?}");
    }
}
