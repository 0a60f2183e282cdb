//! The command line as a user runs it: configuration from flags and `HIVEWATCH_*` variables, clear start-up
//! errors, `migrate`, `query`.

mod common;

use std::process::Command;

use common::Server;
use serde_json::json;

fn hivewatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hivewatch"));
    c.env_remove("HIVEWATCH_DATABASE_URL");
    c
}

#[test]
fn bad_configuration_fails_before_binding_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = hivewatch()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("HIVEWATCH_DATA_DIR", dir.path())
        .env("HIVEWATCH_DATABASE_URL", "mysql://root@localhost/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL scheme \"mysql\""),
        "{err}"
    );
    assert!(!err.contains("root@"), "no URL in messages: {err}");

    let out = hivewatch()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:4999",
            "--http-addr",
            "127.0.0.1:4999",
        ])
        .env("HIVEWATCH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give them different ports"));

    // A port in use is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = hivewatch()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("HIVEWATCH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port} (--http-addr)")),
        "{err}"
    );
}

#[test]
fn environment_variables_configure_serve_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("custom.db");
    let out = hivewatch()
        .arg("migrate")
        .env("HIVEWATCH_DATABASE_URL", format!("sqlite:{}", db.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema up to date"));
    assert!(db.exists());

    let out = hivewatch().arg("version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hivewatch {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_prints_events_and_sessions_from_a_running_hivewatch() {
    let server = Server::start();
    let session = "7f7c2b9e-1d1a-4c55-9a51-0c1c2d3e4f50";
    for name in ["SessionStart", "PreToolUse"] {
        let (status, _) = server
            .post_json(
                "/api/v1/observability/event",
                &json!({"session_id": session, "hook_event_name": name, "tool_name": "Grep", "tool_use_id": "tq",
                        "cwd": "/src/queryapp"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let run = |args: &[&str]| {
        let out = hivewatch()
            .arg("query")
            .args(args)
            .args(["--endpoint", &server.http])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<serde_json::Value> = run(&["events", "--session-id", session, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["tool_name"], "Grep");
    let table = run(&["sessions"]);
    assert!(
        table.contains(session) && table.contains("queryapp"),
        "{table}"
    );
    let one = run(&["session", session]);
    assert!(one.contains("Grep") && one.contains("running"), "{one}");

    let out = hivewatch()
        .args(["query", "sessions", "--endpoint", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach hivewatch"));
}
