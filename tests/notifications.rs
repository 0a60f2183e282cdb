//! Notifications delivered to a local HTTP receiver by the real binary: once per wait however many sweeps and
//! replicas run, signed, redacted; after a receiver that answers 500 for a while; after a restart in the middle
//! (persisted before it is sent); with a receiver that never answers, ingest goes on; the Slack format. Runs on
//! SQLite and again on Postgres (scripts/test.sh).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::services::fresh_database;
use common::Server;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
    /// What the receiver answered.
    status: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    /// Requests answered 500 before the receiver starts accepting.
    failures: Arc<Mutex<usize>>,
    /// Never answer (a receiver that hangs).
    hang: bool,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let status = {
        let mut failures = r.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    };
    r.got.lock().unwrap().push(Delivery {
        headers,
        body,
        status: status.as_u16(),
    });
    status
}

/// Serves `receiver` on a free port; returns its URL.
async fn serve(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hivewatch", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hooks/hivewatch", axum::routing::post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

impl Receiver {
    fn accepted(&self) -> Vec<Delivery> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == 200)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` notifications were accepted, failing after 30 s with what arrived.
    async fn wait_accepted(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{n} notifications expected, got {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn flags<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut f = vec![
        "--notify-url",
        url,
        "--notify-after",
        "1s",
        "--session-sweep-interval",
        "1s",
    ];
    f.extend_from_slice(extra);
    f
}

async fn post(server: &Server, body: Value) {
    let (status, answer) = server.post_json("/api/v1/observability/event", &body).await;
    assert_eq!(status, 200, "{answer}");
}

/// A session that asks for permission through Claude Code's notification, whose text holds a secret.
async fn ask(server: &Server, session: Uuid) {
    post(
        server,
        json!({"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
               "tool_use_id": "toolu_1", "cwd": "/home/dev/projects/notify-demo",
               "tool_input": {"command": "deploy"}}),
    )
    .await;
    post(
        server,
        json!({"session_id": session, "hook_event_name": "Notification",
               "notification_type": "permission_prompt", "cwd": "/home/dev/projects/notify-demo",
               "message": "Claude needs your permission to use Bash with ANTHROPIC_API_KEY=sk-ant-api03-notifysecret0123456789abcdef"}),
    )
    .await;
}

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_is_notified_once_signed_and_without_secrets() {
    let receiver = Receiver::default();
    let url = serve(receiver.clone()).await;
    let server = Server::start_with(&flags(&url, &["--notify-secret", "team-secret"]));
    let s = Uuid::new_v4();
    ask(&server, s).await;
    let got = receiver.wait_accepted(1).await;
    let d = &got[0];
    let doc = body(d);
    assert_eq!(doc["kind"], "waiting");
    assert_eq!(doc["session_id"], json!(s));
    assert_eq!(doc["state"], "waiting_for_permission");
    assert_eq!(doc["cwd"], "/home/dev/projects/notify-demo");
    let text = doc["text"].as_str().unwrap();
    assert!(text.contains("waits for permission"), "{text}");
    assert!(
        !String::from_utf8_lossy(&d.body).contains("notifysecret"),
        "the secret reached the notification: {doc}"
    );
    // The signature is HMAC-SHA256 of the body under the shared secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"team-secret").unwrap();
    mac.update(&d.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(d.headers["x-hivewatch-signature"], expected.as_str());
    assert_eq!(d.headers["content-type"], "application/json");

    // Several more sweeps: still one notification for this wait.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.all().len(), 1, "{:?}", receiver.all());

    // The tool runs, the session asks again: a new wait, a new notification.
    post(
        &server,
        json!({"session_id": s, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1"}),
    )
    .await;
    post(
        &server,
        json!({"session_id": s, "hook_event_name": "PermissionRequest", "tool_name": "Write"}),
    )
    .await;
    let got = receiver.wait_accepted(2).await;
    assert_eq!(body(&got[1])["waiting_on"], "Write");
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("hivewatch_notifications_sent_total{kind=\"waiting\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_answers_500_for_a_while_gets_the_notification_after_backoff() {
    let receiver = Receiver {
        failures: Arc::new(Mutex::new(2)),
        ..Default::default()
    };
    let url = serve(receiver.clone()).await;
    let server = Server::start_with(&flags(&url, &[]));
    let s = Uuid::new_v4();
    post(
        &server,
        json!({"session_id": s, "hook_event_name": "StopFailure", "error": "rate_limit", "cwd": "/w/retry"}),
    )
    .await;
    let accepted = receiver.wait_accepted(1).await;
    let all = receiver.all();
    assert_eq!(
        all.iter().map(|d| d.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    // Every attempt is the same notification: one delivery id, one body.
    let ids: Vec<&str> = all
        .iter()
        .map(|d| d.headers["x-hivewatch-delivery"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(all.iter().all(|d| d.body == accepted[0].body));
    let doc = body(&accepted[0]);
    assert_eq!(
        (doc["kind"].as_str(), doc["state_detail"].as_str()),
        (Some("failed"), Some("rate_limit"))
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("hivewatch_notifications_failed_total{kind=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hivewatch_notifications_pending 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_queued_before_a_crash_is_sent_after_the_restart() {
    // The receiver is not there yet: its port is reserved, nothing listens on it.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = spare.local_addr().unwrap().port();
    drop(spare);
    let url = format!("http://127.0.0.1:{port}/hooks/hivewatch");
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start_in(dir.path(), &flags(&url, &[]));
    let s = Uuid::new_v4();
    ask(&first, s).await;
    // Queued, tried, refused: pending in the store.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = first.metrics_text().await;
        if metrics.contains("hivewatch_notifications_pending 1")
            && !metrics.contains("hivewatch_notifications_failed_total{kind=\"waiting\"} 0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "never pending: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.kill9();

    // The receiver comes up on that port; a new process on the same store sends what was pending, once.
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let app = axum::Router::new()
        .route("/hooks/hivewatch", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let second = Server::start_in(dir.path(), &flags(&url, &[]));
    let got = receiver.wait_accepted(1).await;
    assert_eq!(body(&got[0])["session_id"], json!(s));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.all().len(), 1, "{:?}", receiver.all());
    drop(second);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_send_one_notification_per_wait() {
    let db = fresh_database().await;
    let receiver = Receiver::default();
    let url = serve(receiver.clone()).await;
    let a = Server::start_with(&flags(&url, &["--database-url", &db]));
    let b = Server::start_with(&flags(&url, &["--database-url", &db]));
    let sessions: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for (i, s) in sessions.iter().enumerate() {
        ask(if i % 2 == 0 { &a } else { &b }, *s).await;
    }
    receiver.wait_accepted(4).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut notified: Vec<String> = receiver
        .all()
        .iter()
        .map(|d| body(d)["session_id"].as_str().unwrap().to_string())
        .collect();
    notified.sort();
    let mut expected: Vec<String> = sessions.iter().map(Uuid::to_string).collect();
    expected.sort();
    assert_eq!(notified, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_does_not_hold_up_ingest() {
    let receiver = Receiver {
        hang: true,
        ..Default::default()
    };
    let url = serve(receiver.clone()).await;
    let server = Server::start_with(&flags(&url, &["--notify-format", "slack"]));
    ask(&server, Uuid::new_v4()).await;
    // The notifier is stuck on its attempt (up to its timeout); every ingest request is still answered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..50 {
        post(
            &server,
            json!({"session_id": Uuid::new_v4(), "hook_event_name": "UserPromptSubmit", "prompt": i.to_string()}),
        )
        .await;
    }
    let stored = server
        .get("/api/v1/observability/sessions?state=working&limit=100")
        .await;
    assert_eq!(stored["sessions"].as_array().unwrap().len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_slack_format_is_an_incoming_webhook_text() {
    let receiver = Receiver::default();
    let url = serve(receiver.clone()).await;
    let server = Server::start_with(&flags(
        &url,
        &["--notify-format", "slack", "--notify-finished"],
    ));
    let s = Uuid::new_v4();
    post(
        &server,
        json!({"session_id": s, "hook_event_name": "SessionEnd", "reason": "exit", "cwd": "/w/slack-demo"}),
    )
    .await;
    let got = receiver.wait_accepted(1).await;
    let doc = body(&got[0]);
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["text"], "{doc}");
    let text = doc["text"].as_str().unwrap();
    assert!(
        text.contains("/w/slack-demo ended") && text.contains(&s.to_string()),
        "{text}"
    );
}
