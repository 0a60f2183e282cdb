//! The Redis stream against a real Redis (and real Postgres): every committed event published in commit order,
//! an outage that never fails ingest, and consumer groups with reclaiming.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::services::{TestRedis, fresh_database, shared_redis, unique_stream_key};
use common::{Server, client};
use redis::AsyncCommands;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use serde_json::{Value, json};
use uuid::Uuid;

fn start(db: &str, redis: &str, key: &str) -> Server {
    Server::start_with(&[
        "--database-url",
        db,
        "--redis-url",
        redis,
        "--redis-stream-key",
        key,
    ])
}

async fn post_event(server: &Server, session: Uuid, n: usize) -> u16 {
    client()
        .post(server.url("/api/v1/observability/event"))
        .header("x-hivewatch-event-id", Uuid::now_v7().to_string())
        .json(&json!({"session_id": session, "hook_event_name": "Notification", "message": format!("n{n}")}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The whole stream, oldest first: (entry fields, the event in `data`).
async fn read_stream(redis_url: &str, key: &str) -> Vec<(Value, Value)> {
    let mut conn = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let reply: StreamRangeReply = conn.xrange_all(key).await.unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let field = |k: &str| entry.get::<String>(k).unwrap_or_default();
            let data: Value = serde_json::from_str(&field("data")).unwrap();
            (
                json!({"event_id": field("event_id"), "session_id": field("session_id"), "event_type": field("event_type")}),
                data,
            )
        })
        .collect()
}

/// Row ids of the stream's events, first occurrence of each (delivery is at least once).
fn first_occurrences(stream: &[(Value, Value)]) -> Vec<i64> {
    let mut seen = HashSet::new();
    stream
        .iter()
        .map(|(_, ev)| ev["id"].as_i64().unwrap())
        .filter(|id| seen.insert(*id))
        .collect()
}

async fn wait_for_stream(redis_url: &str, key: &str, events: usize) -> Vec<(Value, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = read_stream(redis_url, key).await;
        if first_occurrences(&stream).len() >= events {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {} of {events} events",
            first_occurrences(&stream).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_committed_event_is_on_the_stream_in_commit_order() {
    let (db, redis_url) = (fresh_database().await, shared_redis().await);
    let key = unique_stream_key("commit_order");
    let server = start(&db, &redis_url, &key);
    let session = Uuid::new_v4();
    let sends = (0..400).map(|n| post_event(&server, session, n));
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200));

    let stream = wait_for_stream(&redis_url, &key, 400).await;
    let stored = server.all_events(&format!("session_id={session}")).await;
    let mut commit_order: Vec<i64> = stored.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    commit_order.sort_unstable();
    assert_eq!(first_occurrences(&stream), commit_order);
    assert_eq!(stream.len(), 400, "no repeats without an outage");
    // Each entry carries the fields consumers filter on, and the event exactly as the API serves it.
    let by_id: std::collections::HashMap<&str, &Value> = stored
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    for (fields, data) in &stream {
        let api = by_id[fields["event_id"].as_str().unwrap()];
        assert_eq!(fields["session_id"], session.to_string());
        assert_eq!(fields["event_type"], "Notification");
        assert_eq!(data["payload"], api["payload"]);
        assert_eq!(data["id"], api["id"]);
    }
}

/// The value of an unlabeled sample in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `/metrics` once `ok` holds for it (within 10 s).
async fn metrics_when(server: &Server, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = client()
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never got there:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_during_ingest_and_restarted_the_stream_catches_up_in_order() {
    let db = fresh_database().await;
    let redis = TestRedis::start();
    let key = unique_stream_key("outage");
    let server = start(&db, &redis.url(), &key);
    let session = Uuid::new_v4();
    let mut sent = 0;
    // Before, during and after the outage: ingest must accept every request all along.
    for phase in 0..3 {
        for _ in 0..10 {
            let wave = (0..30).map(|i| post_event(&server, session, sent + i));
            let statuses = futures_util::future::join_all(wave).await;
            assert!(
                statuses.iter().all(|s| *s == 200),
                "phase {phase}: {statuses:?}"
            );
            sent += 30;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match phase {
            0 => redis.stop(),
            1 => {
                // While Redis is down, /metrics says the stream is behind and by how much.
                let text = metrics_when(&server, |m| {
                    metric(m, "hivewatch_stream_behind") == Some(1.0)
                        && metric(m, "hivewatch_outbox_pending_events").is_some_and(|n| n > 0.0)
                })
                .await;
                assert!(metric(&text, "hivewatch_stream_errors_total").is_some_and(|n| n >= 1.0));
                redis.start_again();
            }
            _ => {}
        }
    }
    let stream = wait_for_stream(&redis.url(), &key, sent).await;
    let text = metrics_when(&server, |m| {
        metric(m, "hivewatch_stream_behind") == Some(0.0)
    })
    .await;
    assert!(
        metric(&text, "hivewatch_stream_published_events_total").is_some_and(|n| n >= sent as f64),
        "{text}"
    );
    let stored = server.all_events(&format!("session_id={session}")).await;
    let mut commit_order: Vec<i64> = stored.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    commit_order.sort_unstable();
    let on_stream = first_occurrences(&stream);
    let published: HashSet<i64> = on_stream.iter().copied().collect();
    let on_stream_of_stored = commit_order
        .iter()
        .filter(|id| published.contains(id))
        .count();
    common::FaultReport {
        fault: "redis_down",
        action: "Redis stopped under load for 10 waves of 30 requests, started again; \
                 figures are for the Redis stream (stored = on the stream)",
        sent,
        acked: sent,
        stored: on_stream_of_stored,
        lost: sent - on_stream_of_stored,
        duplicated: stream.len() - on_stream.len(),
    }
    .print_for("postgres");
    assert_eq!(stored.len(), sent);
    assert_eq!(
        first_occurrences(&stream),
        commit_order,
        "every event, in commit order"
    );

    let log = server.stderr_log();
    assert_eq!(
        log.matches("Redis stream is behind").count(),
        1,
        "one line per outage: {log}"
    );
    assert!(log.contains("Redis stream caught up"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_unreachable_at_start_does_not_stop_ingest() {
    let db = fresh_database().await;
    let redis = TestRedis::start();
    redis.stop();
    let key = unique_stream_key("late_redis");
    let server = start(&db, &redis.url(), &key);
    let session = Uuid::new_v4();
    for n in 0..50 {
        assert_eq!(post_event(&server, session, n).await, 200);
    }
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert!(
        ready.status().is_success(),
        "a Redis outage does not make hivewatch unready"
    );
    redis.start_again();
    let stream = wait_for_stream(&redis.url(), &key, 50).await;
    assert_eq!(first_occurrences(&stream).len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_group_reads_acknowledges_and_reclaims_a_dead_consumers_entries() {
    let (db, redis_url) = (fresh_database().await, shared_redis().await);
    let key = unique_stream_key("consumers");
    let server = start(&db, &redis_url, &key);
    let session = Uuid::new_v4();
    for n in 0..30 {
        assert_eq!(post_event(&server, session, n).await, 200);
    }
    wait_for_stream(&redis_url, &key, 30).await;

    // A consumer that reads ten entries and dies before acknowledging them.
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = conn
        .xgroup_create_mkstream(&key, "workers", "0")
        .await
        .unwrap();
    let dead: StreamReadReply = conn
        .xread_options(
            &[&key],
            &[">"],
            &StreamReadOptions::default()
                .group("workers", "dead")
                .count(10),
        )
        .await
        .unwrap();
    assert_eq!(dead.keys[0].ids.len(), 10);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The documented consumer takes them over, reads the rest, and acknowledges everything it handled.
    let out = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["consume", "--redis-url", &redis_url, "--stream-key", &key])
        .args([
            "--group",
            "workers",
            "--consumer",
            "alive",
            "--claim-idle",
            "200ms",
        ])
        .args(["--exit-after", "30", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: HashSet<&str> = lines
        .iter()
        .map(|l| l["event"]["event_id"].as_str().unwrap())
        .collect();
    let stored = server.all_events(&format!("session_id={session}")).await;
    let expected: HashSet<&str> = stored
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids, expected,
        "all 30 events, the dead consumer's 10 included"
    );

    let pending: redis::streams::StreamPendingReply = conn.xpending(&key, "workers").await.unwrap();
    assert_eq!(pending.count(), 0, "everything acknowledged");

    // Readable lines without --json, one per event.
    let server_session = session.to_string();
    let more = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["consume", "--redis-url", &redis_url, "--stream-key", &key])
        .args([
            "--group",
            "readers",
            "--consumer",
            "c1",
            "--from-start",
            "--exit-after",
            "30",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&more.stdout);
    assert_eq!(text.lines().count(), 30);
    assert!(
        text.lines()
            .all(|l| l.contains("Notification") && l.contains(&server_session)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_killed_replica_left_in_the_outbox_is_published_by_another() {
    let db = fresh_database().await;
    let redis = TestRedis::start();
    let key = unique_stream_key("takeover");
    let session = Uuid::new_v4();
    // Redis is down while the first replica commits, and it dies before Redis returns.
    redis.stop();
    let mut first = start(&db, &redis.url(), &key);
    for n in 0..40 {
        assert_eq!(post_event(&first, session, n).await, 200);
    }
    first.kill9();
    redis.start_again();
    let second = Server::start_with(&[
        "--database-url",
        &db,
        "--redis-url",
        &redis.url(),
        "--redis-stream-key",
        &key,
        "--outbox-takeover-secs",
        "1",
    ]);
    for n in 40..50 {
        assert_eq!(post_event(&second, session, n).await, 200);
    }
    let stream = wait_for_stream(&redis.url(), &key, 50).await;
    assert_eq!(first_occurrences(&stream).len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedded_store_restarted_during_a_redis_outage_publishes_its_outbox_on_return() {
    let redis = TestRedis::start();
    let key = unique_stream_key("embedded_restart");
    let data = tempfile::tempdir().unwrap();
    let session = Uuid::new_v4();
    let args = ["--redis-url", &redis.url(), "--redis-stream-key", &key];
    redis.stop();
    let mut first = Server::start_in(data.path(), &args);
    for n in 0..30 {
        assert_eq!(post_event(&first, session, n).await, 200);
    }
    first.kill9();
    let second = Server::start_in(data.path(), &args);
    redis.start_again();
    let stream = wait_for_stream(&redis.url(), &key, 30).await;
    let mut ids = first_occurrences(&stream);
    assert_eq!(ids.len(), 30);
    let in_order = ids.clone();
    ids.sort_unstable();
    assert_eq!(in_order, ids, "commit order across the restart");
    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_waits_on_an_idle_stream_until_an_event_comes() {
    let (db, redis_url) = (fresh_database().await, shared_redis().await);
    let key = unique_stream_key("idle_consumer");
    let server = start(&db, &redis_url, &key);
    let consumer = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args(["consume", "--redis-url", &redis_url, "--stream-key", &key])
        .args([
            "--group",
            "late",
            "--consumer",
            "c1",
            "--exit-after",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Several of its blocking reads come back empty first.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(post_event(&server, Uuid::new_v4(), 0).await, 200);
    let out = tokio::task::spawn_blocking(move || consumer.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
