//! Durability of acknowledged events: a 2xx answer means committed, so whatever was acknowledged survives
//! `kill -9` and SIGTERM, and is stored exactly once however often it is delivered.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};
use uuid::Uuid;

const HOOK_PATH: &str = "/api/v1/observability/event";

/// What one sender got acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Event ids of hook posts answered 2xx.
    hooks: Vec<Uuid>,
    /// `seq` attributes of OTLP log records whose request was answered 2xx.
    log_seqs: Vec<String>,
    /// Requests that got no 2xx answer (refused, reset, or an error status).
    failed: usize,
    /// Events (hook payloads and log records) sent, acknowledged or not.
    sent: usize,
}

impl Acked {
    fn merge(&mut self, other: Acked) {
        self.hooks.extend(other.hooks);
        self.log_seqs.extend(other.log_seqs);
        self.failed += other.failed;
        self.sent += other.sent;
    }

    fn records(&self) -> usize {
        self.hooks.len() + self.log_seqs.len()
    }
}

/// Posts one hook payload with a fresh event id and session; `Some(id)` when it was acknowledged.
async fn send_hook(client: &reqwest::Client, http: &str, app: &str, tag: &str) -> Option<Uuid> {
    let event_id = Uuid::new_v4();
    let body = json!({
        "session_id": Uuid::new_v4().to_string(),
        "hook_event_name": "PreToolUse",
        "cwd": "/home/dev/projects/durability",
        "tool_name": "Bash",
        "tool_use_id": format!("toolu_{tag}"),
        "tool_input": {"command": format!("echo {tag}")},
    });
    let resp = client
        .post(format!("{http}{HOOK_PATH}"))
        .header("x-hivewatch-event-id", event_id.to_string())
        .header("x-hivewatch-source-app", app)
        .json(&body)
        .send()
        .await
        .ok()?;
    resp.status().is_success().then_some(event_id)
}

/// Posts one OTLP/JSON logs request of 5 records, each with a unique `seq`; the seqs when acknowledged.
async fn send_logs(
    client: &reqwest::Client,
    http: &str,
    app: &str,
    tag: &str,
) -> Option<Vec<String>> {
    let session = Uuid::new_v4().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let seqs: Vec<String> = (0..5).map(|k| format!("{tag}-{k}")).collect();
    let records: Vec<Value> = seqs
        .iter()
        .map(|seq| {
            json!({
                "timeUnixNano": now.to_string(),
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": "tool finished"},
                "attributes": [
                    {"key": "event.name", "value": {"stringValue": "tool_result"}},
                    {"key": "session.id", "value": {"stringValue": session}},
                    {"key": "tool_name", "value": {"stringValue": "Read"}},
                    {"key": "seq", "value": {"stringValue": seq}},
                ],
            })
        })
        .collect();
    let body = json!({
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": app}}]},
            "scopeLogs": [{"scope": {"name": "hivewatch-durability"}, "logRecords": records}],
        }]
    });
    let resp = client
        .post(format!("{http}/v1/logs"))
        .json(&body)
        .send()
        .await
        .ok()?;
    resp.status().is_success().then_some(seqs)
}

/// One request of sender `sender`, number `n`: even numbers are hook posts, odd ones OTLP log exports.
async fn send_one(
    client: &reqwest::Client,
    http: &str,
    app: &str,
    sender: &str,
    n: usize,
    acked: &mut Acked,
) -> bool {
    let tag = format!("{sender}-{n}");
    acked.sent += if n.is_multiple_of(2) { 1 } else { 5 };
    let ok = if n.is_multiple_of(2) {
        send_hook(client, http, app, &tag)
            .await
            .map(|id| acked.hooks.push(id))
    } else {
        send_logs(client, http, app, &tag)
            .await
            .map(|seqs| acked.log_seqs.extend(seqs))
    };
    if ok.is_none() {
        acked.failed += 1;
    }
    ok.is_some()
}

/// Sends until `stop` is set or a request fails (the server is gone); counts acknowledgements in `count`.
fn spawn_background_sender(
    http: String,
    app: &'static str,
    sender: String,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Acked> {
    tokio::spawn(async move {
        let client = common::client();
        let mut acked = Acked::default();
        let mut n = 0;
        // A bound on the loop so that a server that never goes away cannot hang the test.
        while !stop.load(Ordering::SeqCst) && n < 100_000 {
            if !send_one(&client, &http, app, &sender, n, &mut acked).await {
                break;
            }
            count.fetch_add(1, Ordering::SeqCst);
            n += 1;
        }
        acked
    })
}

/// Reads everything of `app` back and checks that each acknowledged record is there exactly once, and that
/// nothing at all is there twice; reports the figures for `fault` first.
async fn assert_all_acked_present_once(
    server: &Server,
    app: &str,
    acked: &Acked,
    fault: (&str, &str),
) {
    let events = server.all_events(&format!("source_app={app}")).await;

    let mut by_event_id: HashMap<&str, usize> = HashMap::new();
    let mut by_seq: HashMap<&str, usize> = HashMap::new();
    for ev in &events {
        let id = ev["event_id"].as_str().expect("event_id");
        *by_event_id.entry(id).or_default() += 1;
        match ev["source"].as_str() {
            Some("hook") => {}
            Some("otlp_log") => {
                let seq = ev["payload"]["attributes"]["seq"]
                    .as_str()
                    .unwrap_or_else(|| panic!("log record without seq: {ev:#}"));
                *by_seq.entry(seq).or_default() += 1;
            }
            other => panic!("unexpected source {other:?}: {ev:#}"),
        }
    }
    let twice: Vec<_> = by_event_id.iter().filter(|(_, n)| **n > 1).collect();
    let hooks_found = acked
        .hooks
        .iter()
        .filter(|id| by_event_id.contains_key(id.to_string().as_str()))
        .count();
    let logs_found = acked
        .log_seqs
        .iter()
        .filter(|seq| by_seq.contains_key(seq.as_str()))
        .count();
    let duplicated = twice.len() + by_seq.values().filter(|n| **n > 1).count();
    common::FaultReport {
        fault: fault.0,
        action: fault.1,
        sent: acked.sent,
        acked: acked.records(),
        stored: hooks_found + logs_found,
        lost: acked.records() - hooks_found - logs_found,
        duplicated,
    }
    .print();
    assert!(
        twice.is_empty(),
        "event ids stored more than once: {twice:?}"
    );
    let seq_twice: Vec<_> = by_seq.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        seq_twice.is_empty(),
        "log records stored more than once: {seq_twice:?}"
    );

    let lost_hooks: Vec<String> = acked
        .hooks
        .iter()
        .map(Uuid::to_string)
        .filter(|id| !by_event_id.contains_key(id.as_str()))
        .collect();
    let lost_logs: Vec<&String> = acked
        .log_seqs
        .iter()
        .filter(|seq| !by_seq.contains_key(seq.as_str()))
        .collect();
    assert!(
        lost_hooks.is_empty() && lost_logs.is_empty(),
        "acknowledged but not stored: {} of {} hook events ({:?}...), {} of {} log records ({:?}...)",
        lost_hooks.len(),
        acked.hooks.len(),
        lost_hooks.iter().take(5).collect::<Vec<_>>(),
        lost_logs.len(),
        acked.log_seqs.len(),
        lost_logs.iter().take(5).collect::<Vec<_>>(),
    );
    assert!(
        events.len() >= acked.records(),
        "{} events stored, {} acknowledged",
        events.len(),
        acked.records()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    const APP: &str = "durability-kill9";
    const SENDERS: usize = 16;
    const REQUESTS: usize = 50;
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(tmp.path(), &[]);
    let http = server.http.clone();

    // Background senders keep requests in flight up to (and through) the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let background_count = Arc::new(AtomicUsize::new(0));
    let background: Vec<_> = (0..4)
        .map(|i| {
            spawn_background_sender(
                http.clone(),
                APP,
                format!("bg{i}"),
                stop.clone(),
                background_count.clone(),
            )
        })
        .collect();

    let main: Vec<_> = (0..SENDERS)
        .map(|i| {
            let http = http.clone();
            tokio::spawn(async move {
                let client = common::client();
                let mut acked = Acked::default();
                for n in 0..REQUESTS {
                    let ok = send_one(&client, &http, APP, &format!("s{i}"), n, &mut acked).await;
                    assert!(ok, "sender {i}, request {n}: a live hivewatch refused it");
                }
                acked
            })
        })
        .collect();
    let mut acked = Acked::default();
    for task in main {
        acked.merge(task.await.expect("sender task"));
    }
    assert_eq!(acked.hooks.len(), SENDERS * REQUESTS / 2);
    assert_eq!(acked.log_seqs.len(), SENDERS * REQUESTS / 2 * 5);

    // Right after the last acknowledgement, with background requests still in flight.
    tokio::task::block_in_place(|| server.kill9());
    stop.store(true, Ordering::SeqCst);
    let mut in_flight = Acked::default();
    for task in background {
        in_flight.merge(task.await.expect("background sender"));
    }
    eprintln!(
        "acknowledged before the kill: {} hook events and {} log records from the main senders, \
         {} requests from the background senders ({} failed at the kill)",
        acked.hooks.len(),
        acked.log_seqs.len(),
        in_flight.hooks.len() + in_flight.log_seqs.len() / 5,
        in_flight.failed,
    );
    acked.merge(in_flight);

    let server = Server::start_in(tmp.path(), &[]);
    server.wait_ready().await;
    let action = "kill -9 while 4 senders have requests in flight, then restart";
    assert_all_acked_present_once(&server, APP, &acked, ("sigkill", action)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    const APP: &str = "durability-sigterm";
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(tmp.path(), &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|i| {
            spawn_background_sender(
                server.http.clone(),
                APP,
                format!("t{i}"),
                stop.clone(),
                count.clone(),
            )
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::SeqCst) < 200 {
        assert!(
            Instant::now() < deadline,
            "only {} requests acknowledged in 30 s",
            count.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The senders are still going: SIGTERM lands with requests in flight.
    let status = tokio::task::block_in_place(|| server.terminate());
    stop.store(true, Ordering::SeqCst);
    let mut acked = Acked::default();
    for task in senders {
        acked.merge(task.await.expect("sender task"));
    }
    assert!(
        status.success(),
        "hivewatch exited with {status} after SIGTERM; stderr:\n{}",
        server.stderr_log()
    );
    eprintln!(
        "acknowledged before exit: {} hook events, {} log records; {} requests failed",
        acked.hooks.len(),
        acked.log_seqs.len(),
        acked.failed
    );

    let server = Server::start_in(tmp.path(), &[]);
    server.wait_ready().await;
    let action = "SIGTERM while 8 senders have requests in flight, then restart";
    assert_all_acked_present_once(&server, APP, &acked, ("sigterm", action)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_hook_event_is_stored_once() {
    let server = Server::start();
    let session = Uuid::new_v4().to_string();
    let event_id = Uuid::new_v4().to_string();
    let body = json!({
        "session_id": session,
        "hook_event_name": "UserPromptSubmit",
        "cwd": "/home/dev/projects/retry",
        "prompt": "hello",
    });
    let client = common::client();
    let post = |id: String| {
        client
            .post(server.url(HOOK_PATH))
            .header("x-hivewatch-event-id", id)
            .json(&body)
            .send()
    };
    for attempt in 1..=2 {
        let resp = post(event_id.clone()).await.expect("POST hook");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "attempt {attempt}: {status}: {text}");
        assert_eq!(
            text, "",
            "attempt {attempt}: a hook is answered with an empty body"
        );
    }

    let events = server.all_events(&format!("session_id={session}")).await;
    assert_eq!(events.len(), 1, "one delivery, retried: {events:#?}");
    assert_eq!(events[0]["event_id"], event_id.as_str());
    assert_eq!(events[0]["event_type"], "UserPromptSubmit");
    assert_eq!(events[0]["source"], "hook");
    let timeline = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert_eq!(timeline["event_count"], 1, "{timeline:#}");

    // The same payload under another id is another event: deduplication is by id, not by content.
    let other = Uuid::new_v4().to_string();
    let resp = post(other.clone()).await.expect("POST hook");
    assert!(resp.status().is_success(), "{}", resp.status());
    let events = server.all_events(&format!("session_id={session}")).await;
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    ids.sort();
    let mut expected = vec![event_id.as_str(), other.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let timeline = server
        .get(&format!("/api/v1/observability/sessions/{session}"))
        .await;
    assert_eq!(timeline["event_count"], 2, "{timeline:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_as_soon_as_it_is_ready_is_a_clean_shutdown() {
    // The signal handlers are in place before the ports are bound: a SIGTERM at the first moment hivewatch
    // answers starts the staged shutdown (exit 0), never the default action (killed by the signal).
    for _ in 0..5 {
        let mut server = Server::start();
        let status = tokio::task::block_in_place(|| server.terminate());
        assert!(
            status.success(),
            "{status:?}; stderr:\n{}",
            server.stderr_log()
        );
    }
}
