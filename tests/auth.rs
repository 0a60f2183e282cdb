//! Bearer tokens for ingest and reads, on both transports, and the refusal to listen beyond loopback without them.

mod common;

use std::process::Command;

use common::{Server, client};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use serde_json::json;
use uuid::Uuid;

const INGEST: &str = "ingest-7f3a9c";
const READ: &str = "read-51be02";

fn start() -> Server {
    Server::start_with(&["--ingest-token", INGEST, "--read-token", READ])
}

async fn post_hook(server: &Server, token: Option<&str>) -> u16 {
    let mut req = client()
        .post(server.url("/api/v1/observability/event"))
        .json(&json!({"session_id": Uuid::new_v4(), "hook_event_name": "Stop"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> u16 {
    let mut req = client().get(server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_and_reads_each_need_their_own_token() {
    let server = start();
    assert_eq!(post_hook(&server, None).await, 401);
    assert_eq!(
        post_hook(&server, Some(READ)).await,
        401,
        "the read token does not ingest"
    );
    assert_eq!(post_hook(&server, Some(INGEST)).await, 200);
    let resp = client()
        .post(server.url("/v1/logs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert!(resp.text().await.unwrap().contains("--ingest-token"));

    for path in [
        "/api/v1/observability/events",
        "/api/v1/observability/sessions",
        "/metrics",
    ] {
        assert_eq!(get(&server, path, None).await, 401, "{path}");
        assert_eq!(get(&server, path, Some(INGEST)).await, 401, "{path}");
        assert_eq!(get(&server, path, Some(READ)).await, 200, "{path}");
    }
    // Browsers cannot set headers on a WebSocket: the read token may come as a query parameter.
    let url = |token: &str| {
        format!(
            "{}/observability/dashboard/stream?access_token={token}",
            server.http.replacen("http://", "ws://", 1)
        )
    };
    assert!(
        tokio_tungstenite::connect_async(url("wrong"))
            .await
            .is_err()
    );
    assert!(tokio_tungstenite::connect_async(url(READ)).await.is_ok());
    // Health checks stay open for orchestrators.
    assert_eq!(get(&server, "/healthz", None).await, 200);
    assert_eq!(get(&server, "/readyz", None).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_ingest_needs_the_token_in_its_authorization_metadata() {
    let server = start();
    let mut grpc = LogsServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let err = grpc
        .export(ExportLogsServiceRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {INGEST}").parse().unwrap());
    grpc.export(req).await.expect("with the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_and_the_hook_carry_their_tokens() {
    let server = start();
    let session = Uuid::new_v4();
    let state = tempfile::tempdir().unwrap();
    let hook = |token: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hivewatch"))
            .args(["hook", "--endpoint", &server.http])
            .env("HIVEWATCH_INGEST_TOKEN", token)
            .env("HIVEWATCH_STATE_DIR", state.path())
            .env("HIVEWATCH_CONFIG_DIR", state.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let payload = json!({"session_id": session, "hook_event_name": "Notification"}).to_string();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "the hook exits 0 whatever happens"
        );
    };
    hook(INGEST);
    let query = |token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hivewatch"));
        cmd.args([
            "query",
            "events",
            "--endpoint",
            &server.http,
            "--session-id",
            &session.to_string(),
        ]);
        cmd.env_remove("HIVEWATCH_READ_TOKEN");
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        cmd.output().unwrap()
    };
    let denied = query(None);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    let out = query(Some(READ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "the hook's event"
    );
}

#[test]
fn listening_beyond_loopback_without_tokens_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hivewatch"))
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "0.0.0.0:0",
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .env_remove("HIVEWATCH_INGEST_TOKEN")
            .env_remove("HIVEWATCH_READ_TOKEN")
            .output()
            .unwrap()
    };
    let out = serve(&["--read-token", READ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0.0.0.0") && stderr.contains("--ingest-token"),
        "{stderr}"
    );
    assert!(!stderr.contains(READ), "a token leaked: {stderr}");
    assert!(stderr.contains("--insecure-no-auth"));
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_no_auth_opens_a_non_loopback_listener_on_purpose() {
    let server = Server::start_with(&["--http-addr", "0.0.0.0:0", "--insecure-no-auth"]);
    assert!(server.http.contains("0.0.0.0"), "{}", server.http);
    let port = server.http.rsplit(':').next().unwrap();
    let local = format!("http://127.0.0.1:{port}/api/v1/observability/sessions");
    assert_eq!(client().get(local).send().await.unwrap().status(), 200);
}
