//! The WebSocket live stream with real WebSocket clients: filters, backfill, commit order, filter changes,
//! heartbeats, a slow client beside a fast one, connections and broadcast, Redis-fed replicas, `hivewatch tail`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::services::{fresh_database, shared_redis, unique_stream_key};
use common::{Server, client};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &Server, query: &str) -> Socket {
    let url = format!(
        "{}/observability/dashboard/stream?{query}",
        server.http.replacen("http://", "ws://", 1)
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON message (skipping heartbeats unless asked for, and session state changes, which
/// tests/session_states.rs checks), within 10 s.
async fn next(socket: &mut Socket, heartbeats: bool) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "session_state" && (heartbeats || v["type"] != "heartbeat") {
                return v;
            }
        }
    }
}

/// Live events until `n` arrived.
async fn events(socket: &mut Socket, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next(socket, false).await;
        assert_eq!(v["type"], "event", "{v}");
        out.push(v["event"].clone());
    }
    out
}

async fn post(server: &Server, session: Uuid, name: &str, n: usize) {
    let body =
        json!({"session_id": session, "hook_event_name": name, "n": n, "cwd": "/w/live-app"});
    let (status, _) = server.post_json("/api/v1/observability/event", &body).await;
    assert_eq!(status, 200);
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_then_live_events_of_the_filter_in_commit_order() {
    let server = Server::start();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..6 {
        post(&server, if i % 2 == 0 { a } else { b }, "Notification", i).await;
    }
    let mut ws = connect(&server, &format!("session_id={a}&backfill=2")).await;
    let backfill = next(&mut ws, false).await;
    assert_eq!(backfill["type"], "backfill");
    let old = backfill["events"].as_array().unwrap();
    // The last two of A's three, oldest first.
    assert_eq!(old.len(), 2);
    assert_eq!(
        (
            old[0]["payload"]["n"].as_i64(),
            old[1]["payload"]["n"].as_i64()
        ),
        (Some(2), Some(4))
    );

    let mut sends = Vec::new();
    for i in 0..40 {
        let (server, s) = (&server, if i % 2 == 0 { a } else { b });
        sends.push(async move { post(server, s, "PreToolUse", 100 + i).await });
    }
    futures_util::future::join_all(sends).await;
    let live = events(&mut ws, 20).await;
    assert!(
        live.iter().all(|e| e["session_id"] == a.to_string()),
        "only session A"
    );
    let got = ids(&live);
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(got, sorted, "commit order");
    let stored: Vec<i64> = server
        .all_events(&format!("session_id={a}&event_type=PreToolUse"))
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort_unstable();
    assert_eq!(
        got, stored_sorted,
        "every committed event of the filter, once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_change_on_an_open_connection_and_heartbeats_arrive() {
    let server = Server::start_with(&["--live-heartbeat-secs", "1"]);
    let session = Uuid::new_v4();
    post(&server, session, "Stop", 1).await;
    post(&server, session, "Notification", 2).await;
    let mut ws = connect(&server, "backfill=10").await;
    let first = next(&mut ws, false).await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);

    let subscribe = json!({"type": "subscribe", "filters": {"event_types": ["Stop"], "sessions": [session]}, "backfill": 5});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    let backfill = next(&mut ws, false).await;
    assert_eq!(backfill["type"], "backfill");
    let old = backfill["events"].as_array().unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["event_type"], "Stop");
    post(&server, session, "Notification", 3).await;
    post(&server, session, "Stop", 4).await;
    let live = events(&mut ws, 1).await;
    assert_eq!(
        (
            live[0]["event_type"].as_str(),
            live[0]["payload"]["n"].as_i64()
        ),
        (Some("Stop"), Some(4))
    );

    let started = Instant::now();
    loop {
        let v = next(&mut ws, true).await;
        if v["type"] == "heartbeat" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    ws.send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .unwrap();
    let err = next(&mut ws, false).await;
    assert_eq!(err["type"], "error");
    assert!(err["message"].as_str().unwrap().contains("dance"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_misses_events_without_delaying_a_fast_one_or_ingest() {
    let server = Server::start();
    let session = Uuid::new_v4();
    // The slow client connects and then does not read at all.
    let mut slow = connect(&server, "backfill=0").await;
    let mut fast = connect(&server, "backfill=0").await;
    assert_eq!(next(&mut slow, false).await["type"], "backfill");
    assert_eq!(next(&mut fast, false).await["type"], "backfill");

    let total = 6000;
    let reader = tokio::spawn(async move {
        let got = events(&mut fast, total).await;
        (got, fast)
    });
    // Ingest in batches of 200 events (the hook endpoint takes arrays), every request answered.
    let big = "x".repeat(2000);
    for chunk in 0..total / 200 {
        let items: Vec<Value> = (0..200)
            .map(|i| json!({"session_id": session, "hook_event_name": "Notification", "n": chunk * 200 + i, "pad": big}))
            .collect();
        let (status, _) = server
            .post_json("/api/v1/observability/event", &Value::Array(items))
            .await;
        assert_eq!(status, 200);
    }
    let (got, _fast) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the fast client got everything in time")
        .unwrap();
    let got = ids(&got);
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!((got.len(), sorted.len()), (total, total));
    assert_eq!(
        got, sorted,
        "the fast client saw every event once, in commit order"
    );

    // The slow client, reading at last, is told it missed events.
    let mut missed = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while missed == 0 && Instant::now() < deadline {
        let v = next(&mut slow, false).await;
        if v["type"] == "missed" {
            missed = v["count"].as_u64().unwrap();
        }
    }
    assert!(missed > 0, "the slow client was told what it missed");
    let conns = server.get("/observability/dashboard/connections").await;
    let max_missed = conns["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["missed"].as_u64().unwrap())
        .max();
    assert!(max_missed >= Some(missed));
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("hivewatch_websocket_messages_dropped_total ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_listed_and_broadcasts_reach_every_client() {
    let server = Server::start();
    let session = Uuid::new_v4();
    let mut one = connect(
        &server,
        &format!("session_id={session}&event_type=Stop&backfill=0"),
    )
    .await;
    let mut two = connect(&server, "backfill=0").await;
    next(&mut one, false).await;
    next(&mut two, false).await;
    let conns = server.get("/observability/dashboard/connections").await;
    assert_eq!(conns["connections"], 2, "{conns:#}");
    let filtered = conns["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["filters"]["event_types"] == json!(["Stop"]))
        .expect("the filtered client");
    assert_eq!(filtered["filters"]["sessions"], json!([session]));

    let (status, body) = server
        .post_json(
            "/observability/dashboard/broadcast",
            &json!({"message": {"text": "deploy at 5"}}),
        )
        .await;
    assert_eq!((status, body["delivered"].as_u64()), (200, Some(2)));
    for ws in [&mut one, &mut two] {
        let v = next(ws, false).await;
        assert_eq!(
            v,
            json!({"type": "broadcast", "message": {"text": "deploy at 5"}})
        );
    }
    let bad = client()
        .get(server.url("/observability/dashboard/stream?session_id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// Two replicas on one Postgres and one Redis stream, and a client of the second following one new session (its
/// backfill read, the follower given a moment to start reading from the stream's end).
async fn two_replicas_with_redis(test: &str) -> (Server, Server, Uuid, Socket) {
    let (db, redis) = (fresh_database().await, shared_redis().await);
    let key = unique_stream_key(test);
    let args = [
        "--database-url",
        &db,
        "--redis-url",
        &redis,
        "--redis-stream-key",
        &key,
    ];
    let (a, b) = (Server::start_with(&args), Server::start_with(&args));
    let session = Uuid::new_v4();
    let mut on_b = connect(&b, &format!("session_id={session}&backfill=0")).await;
    next(&mut on_b, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (a, b, session, on_b)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_every_replicas_clients_see_every_replicas_events() {
    let (a, _b, session, mut on_b) = two_replicas_with_redis("live").await;
    for i in 0..10 {
        post(&a, session, "Notification", i).await;
    }
    let live = events(&mut on_b, 10).await;
    let ns: Vec<i64> = live
        .iter()
        .map(|e| e["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..10).collect::<Vec<_>>());
}

/// With Redis, a session's state changes reach every replica's clients, whichever replica stored the event.
#[tokio::test(flavor = "multi_thread")]
async fn with_redis_every_replicas_clients_see_every_replicas_state_changes() {
    let (a, _b, session, mut on_b) = two_replicas_with_redis("live-states").await;
    for name in ["UserPromptSubmit", "Stop"] {
        post(&a, session, name, 0).await;
    }
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while states.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, on_b.next())
            .await
            .expect("both state changes within 10 s")
            .expect("stream open")
            .expect("frame");
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "session_state" {
            assert_eq!(v["session"]["session_id"], json!(session));
            states.push(v["session"]["state"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(states, ["working", "waiting_for_input"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_prints_one_line_per_event() {
    let server = Server::start();
    let session = Uuid::new_v4();
    for i in 0..3 {
        post(&server, session, "Notification", i).await;
    }
    let body = json!({"session_id": session, "hook_event_name": "PostToolUseFailure", "tool_name": "Bash", "tool_use_id": "t1"});
    server.post_json("/api/v1/observability/event", &body).await;
    let out = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
        .args([
            "tail",
            "--endpoint",
            &server.http,
            "--session-id",
            &session.to_string(),
        ])
        .args(["--backfill", "10", "--exit-after", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[..3].iter().all(|l| l.contains("Notification")));
    assert!(
        lines[3].contains("PostToolUseFailure") && lines[3].contains("Bash FAILED"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_clients_connected_closes_them_and_exits_cleanly() {
    let mut server = Server::start_with(&["--shutdown-timeout-secs", "20"]);
    let mut ws = connect(&server, "backfill=0").await;
    next(&mut ws, false).await;
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}: {}", server.stderr_log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // The client was told goodbye.
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_named_twice_in_a_filter_gets_each_event_once() {
    let server = Server::start();
    let s = Uuid::new_v4();
    let mut ws = connect(
        &server,
        &format!("session_id={s}&session_id={s}&backfill=0"),
    )
    .await;
    next(&mut ws, false).await;
    post(&server, s, "Notification", 1).await;
    post(&server, s, "Stop", 2).await;
    let got = events(&mut ws, 2).await;
    assert_eq!(ids(&got).len(), 2);
    assert_ne!(got[0]["id"], got[1]["id"], "{got:#?}");
}
