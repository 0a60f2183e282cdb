//! Test harness: the real `hivewatch` binary on free ports with its own data directory, and a real HTTP client.
#![allow(dead_code)]

pub mod anthropic;
pub mod claude;
pub mod in_process;
pub mod services;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-code");

pub fn fixture(rel: &str) -> Value {
    let path = Path::new(FIXTURES).join(rel);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).expect("fixture exists")
}

/// A running `hivewatch serve`.
pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub http: String,
    pub grpc: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts on an existing data directory (a restart); the caller keeps the directory alive.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        Self::start_in_with_env(dir, extra, &[])
    }

    /// Starts with extra environment variables (a log filter, say) and its own data directory.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in_with_env(tmp.path(), extra, env);
        s._tmp = Some(tmp);
        s
    }

    pub fn start_in_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_wrapped(&[], dir, extra, env)
    }

    /// Starts `wrapper... hivewatch serve ...` on `dir`: the wrapper (`nsenter -t PID -m --`, say) runs the binary
    /// with its arguments and must exec it, so that the signals of `terminate` and `kill9` reach hivewatch itself.
    /// An empty wrapper is a plain start.
    pub fn start_wrapped(
        wrapper: &[&str],
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let backend = store_backend_args(dir, extra);
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .chain(backend.iter().map(String::as_str))
            .collect();
        let extra = extra.as_slice();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .or_else(|_| {
                std::fs::create_dir_all(dir)?;
                std::fs::File::create(dir.join("stderr.log"))
            })
            .expect("stderr log");
        let binary = env!("CARGO_BIN_EXE_hivewatch");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            // Free ports unless the caller pins one (clap takes each flag once).
            .args(
                ["--grpc-addr", "--http-addr"]
                    .into_iter()
                    .filter(|flag| !extra.contains(flag))
                    .flat_map(|flag| [flag, "127.0.0.1:0"]),
            )
            .args(extra)
            .env_remove("HIVEWATCH_DATABASE_URL")
            .env("HIVEWATCH_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn hivewatch");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let (mut grpc, mut http) = (None, None);
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                let addr = line
                    .split("://")
                    .nth(1)
                    .map(|r| r.split_whitespace().next().unwrap_or("").to_string());
                if line.contains("OTLP gRPC") {
                    grpc = addr;
                } else if line.contains("OTLP HTTP") {
                    http = addr;
                }
                if let (Some(g), Some(h)) = (&grpc, &http) {
                    let _ = tx.send((g.clone(), h.clone()));
                    break;
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let (grpc, http) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("hivewatch did not print its addresses within 30 s; stderr:\n{log}");
            }
        };
        Server {
            child: Some(child),
            data_dir: dir.to_path_buf(),
            http: format!("http://{http}"),
            grpc: format!("http://{grpc}"),
            _tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http, path)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hivewatch did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("stderr.log")).unwrap_or_default()
    }

    /// What `GET /metrics` serves, as text.
    pub async fn metrics_text(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text")
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = client().get(self.url(path)).send().await.expect("GET");
        let status = resp.status();
        let body = resp.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// All events matching `query` (a query string without `cursor`), following cursors.
    pub async fn all_events(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/observability/events?limit=1000&{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await;
            out.extend(
                page["events"]
                    .as_array()
                    .expect("events array")
                    .iter()
                    .cloned(),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = client()
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits until `path` answers 200 (the HTTP listener is up by the time addresses are printed, but a
    /// restarted store may still be opening).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client().get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "hivewatch never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The store the suite runs against: SQLite in the data directory by default; with `HIVEWATCH_TEST_STORE=postgres`
/// (scripts/test.sh runs the store-facing tests a second time so), a fresh Postgres database per data directory,
/// kept across restarts on the same directory. A test that names its own `--database-url` keeps it.
pub fn store_backend_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    if extra.contains(&"--database-url") || !postgres_mode() {
        return Vec::new();
    }
    let remembered = dir.join("test-database-url");
    let url = match std::fs::read_to_string(&remembered) {
        Ok(url) => url,
        Err(_) => {
            // Callers may be inside a runtime: create the database from a thread with its own.
            let url = std::thread::spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(services::fresh_database())
            })
            .join()
            .expect("create a test database");
            std::fs::create_dir_all(dir).expect("data dir");
            std::fs::write(&remembered, &url).expect("remember the database");
            url
        }
    };
    vec!["--database-url".into(), url]
}

/// Holds the store's write lock from outside, as another process, a migration or a stuck disk would: commits
/// wait (and after the store's lock timeout fail with 503) until it is released.
pub enum StoreLock {
    Sqlite(diesel::SqliteConnection),
    Postgres(Box<diesel_async::AsyncPgConnection>),
}

impl StoreLock {
    pub async fn hold(server: &Server) -> StoreLock {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};
        match std::fs::read_to_string(server.data_dir.join("test-database-url")) {
            Ok(url) => {
                let mut conn = diesel_async::AsyncPgConnection::establish(&url)
                    .await
                    .expect("connect to the test database");
                conn.batch_execute("BEGIN; LOCK TABLE agent_events IN ACCESS EXCLUSIVE MODE")
                    .await
                    .expect("lock agent_events");
                StoreLock::Postgres(Box::new(conn))
            }
            Err(_) => {
                let path = server.data_dir.join("hivewatch.db");
                let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
                StoreLock::Sqlite(conn)
            }
        }
    }

    pub async fn release(self) {
        use diesel::connection::SimpleConnection;
        use diesel_async::SimpleAsyncConnection;
        match self {
            StoreLock::Sqlite(mut c) => c.batch_execute("ROLLBACK").unwrap(),
            StoreLock::Postgres(mut c) => c.batch_execute("ROLLBACK").await.unwrap(),
        }
    }
}

/// True when the suite runs against Postgres (`HIVEWATCH_TEST_STORE=postgres`).
pub fn postgres_mode() -> bool {
    std::env::var("HIVEWATCH_TEST_STORE").is_ok_and(|s| s == "postgres")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// What a fault test did and how many events went where, printed as one `FAULT-REPORT {json}` line on stderr.
/// `scripts/faults.sh` runs the fault tests and collects these lines into the table of docs/RELIABILITY.md.
pub struct FaultReport<'a> {
    /// Short name of the fault (`sigkill`, `postgres_restart`, ...).
    pub fault: &'a str,
    /// What was done, in a few words.
    pub action: &'a str,
    pub sent: usize,
    /// Answered with success (2xx, gRPC OK).
    pub acked: usize,
    /// Acknowledged events found in the store afterwards (each counted once).
    pub stored: usize,
    /// Acknowledged events missing from the store (or the sink the test is about).
    pub lost: usize,
    /// Acknowledged events found more than once.
    pub duplicated: usize,
}

impl FaultReport<'_> {
    /// Prints the report for the store the suite runs on (SQLite, or Postgres in the Postgres pass).
    pub fn print(&self) {
        self.print_for(if postgres_mode() {
            "postgres"
        } else {
            "sqlite"
        });
    }

    /// Prints the report for a test that picks its store itself.
    pub fn print_for(&self, store: &str) {
        let line = serde_json::json!({
            "fault": self.fault,
            "action": self.action,
            "sent": self.sent,
            "acked": self.acked,
            "stored": self.stored,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "store": store,
        });
        eprintln!("FAULT-REPORT {line}");
    }
}

/// The `hooks` block that the release before the hook contract wrote into a project's `.claude/settings.json`:
/// the bare absolute path of the binary (a failing hook on a machine without it) for 29 events, among them
/// `WorktreeCreate` and `WorktreeRemove`, which must never be hooked.
pub fn previous_release_hooks(exe: &str, source_app: &str) -> Value {
    const EVENTS: [(&str, bool); 29] = [
        ("PreToolUse", true),
        ("PostToolUse", true),
        ("PostToolUseFailure", true),
        ("PostToolBatch", false),
        ("PermissionRequest", true),
        ("PermissionDenied", true),
        ("Notification", false),
        ("UserPromptSubmit", false),
        ("UserPromptExpansion", false),
        ("Stop", false),
        ("StopFailure", false),
        ("SubagentStart", false),
        ("SubagentStop", false),
        ("PreCompact", false),
        ("PostCompact", false),
        ("SessionStart", false),
        ("SessionEnd", false),
        ("InstructionsLoaded", false),
        ("TaskCreated", false),
        ("TaskCompleted", false),
        ("TeammateIdle", false),
        ("ConfigChange", false),
        ("CwdChanged", false),
        ("FileChanged", false),
        ("WorktreeCreate", false),
        ("WorktreeRemove", false),
        ("Elicitation", false),
        ("ElicitationResult", false),
        ("Setup", false),
    ];
    let handler = serde_json::json!({"type": "command", "command": format!("{exe} hook --source-app {source_app}"),
                                     "timeout": 5});
    let mut hooks = serde_json::Map::new();
    for (event, tool) in EVENTS {
        let group = if tool {
            serde_json::json!({"matcher": "*", "hooks": [handler]})
        } else {
            serde_json::json!({"hooks": [handler]})
        };
        hooks.insert(event.to_string(), serde_json::json!([group]));
    }
    Value::Object(hooks)
}
