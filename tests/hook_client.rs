//! `hivewatch hook`, `flush` and `doctor` as Claude Code and a user run them: the real binary, a real receiver
//! (the harness's `hivewatch serve`), receivers that are down, flapping or hanging, and bad input.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::Server;
use serde_json::{Value, json};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_hivewatch");

/// A hook that takes this long is hung: its real bound is the delivery timeout (250 ms by default).
const HANG: Duration = Duration::from_secs(2);
/// The same, where many debug-build hooks run at once or in a long row and may queue for the CPU.
const SLOW_MACHINE: Duration = Duration::from_secs(10);

/// Variables a developer's shell may set that would change what the binary does.
const HIVEWATCH_VARS: &[&str] = &[
    "HIVEWATCH_ENDPOINT",
    "HIVEWATCH_SOURCE_APP",
    "HIVEWATCH_INGEST_TOKEN",
    "HIVEWATCH_AGENT_ID",
    "HIVEWATCH_HOOK_TIMEOUT_MS",
    "HIVEWATCH_FLUSH_TIMEOUT_MS",
    "HIVEWATCH_SPOOL_MAX_BYTES",
    "HIVEWATCH_LOG_FORMAT",
    "TRACEPARENT",
];

/// One isolated hook-side installation: its own state, configuration and home directories.
struct Client {
    state: tempfile::TempDir,
    config: tempfile::TempDir,
    home: tempfile::TempDir,
}

/// What one invocation did, and when.
struct Run {
    out: Output,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn code(&self) -> i32 {
        self.out.status.code().expect("exited, not killed")
    }

    /// What every hook invocation must look like to Claude Code. The time limit only detects a hang: the
    /// real bound is the delivery timeout, far below it.
    fn assert_silent_success(&self) {
        self.assert_silent_success_within(HANG);
    }

    fn assert_silent_success_within(&self, limit: Duration) {
        assert_eq!(self.code(), 0, "stderr: {}", self.stderr());
        assert_eq!(self.stdout(), "", "a hook prints nothing on stdout");
        assert!(self.elapsed < limit, "took {:?}", self.elapsed);
    }
}

impl Client {
    fn new() -> Client {
        let dir = || tempfile::tempdir().expect("temp dir");
        Client {
            state: dir(),
            config: dir(),
            home: dir(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HIVEWATCH_STATE_DIR", self.state.path())
            .env("HIVEWATCH_CONFIG_DIR", self.config.path())
            .env("HOME", self.home.path())
            .current_dir(self.project());
        for v in HIVEWATCH_VARS {
            c.env_remove(v);
        }
        c
    }

    /// The working directory: a project below the home directory, as Claude Code runs hooks.
    fn project(&self) -> PathBuf {
        let dir = self.home.path().join("project");
        std::fs::create_dir_all(&dir).expect("project dir");
        dir
    }

    fn run(&self, mut cmd: Command, stdin: &[u8]) -> Run {
        let started = Utc::now();
        let clock = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hivewatch");
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = stdin.to_vec();
        // A writer thread, so that a large payload cannot deadlock against the child's output.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait");
        let elapsed = clock.elapsed();
        writer.join().expect("writer");
        Run {
            out,
            started,
            ended: Utc::now(),
            elapsed,
        }
    }

    fn hook(&self, args: &[&str], payload: &Value) -> Run {
        let run = self.run_hook(args, payload);
        run.assert_silent_success();
        run
    }

    fn run_hook(&self, args: &[&str], payload: &Value) -> Run {
        self.run(
            self.command(&[&["hook"], args].concat()),
            payload.to_string().as_bytes(),
        )
    }

    fn flush(&self, endpoint: &str) -> Run {
        self.run(self.command(&["flush", "--endpoint", endpoint]), b"")
    }

    fn spool_dir(&self) -> PathBuf {
        self.state.path().join("spool")
    }

    fn spooled(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.spool_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A port nobody listens on (bound, then released).
fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn prompt(session: Uuid, text: &str) -> Value {
    json!({
        "session_id": session.to_string(),
        "transcript_path": format!("/nonexistent/{session}.jsonl"),
        "cwd": "/home/dev/projects/demo",
        "hook_event_name": "UserPromptSubmit",
        "prompt": text,
    })
}

fn events_of(server: &Server, source_app: &str) -> Vec<Value> {
    block_on(server.all_events(&format!("source_app={source_app}")))
}

fn count_by_session(events: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in events {
        *counts
            .entry(e["session_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[test]
fn every_fixture_payload_is_delivered_with_its_stamp_and_id() {
    let server = Server::start();
    let client = Client::new();
    let mut sent = Vec::new();
    let mut dir: Vec<_> = std::fs::read_dir(Path::new(common::FIXTURES).join("hooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dir.sort();
    for file in dir {
        let rel = format!("hooks/{}", file.file_name().unwrap().to_string_lossy());
        for payload in common::fixture(&rel)
            .as_array()
            .expect("an array of payloads")
        {
            let run = client.run_hook(
                &["--endpoint", &server.http, "--source-app", "fixtures"],
                payload,
            );
            // 95 invocations in a row: a loose hang detector, so that one scheduling hiccup is not a failure.
            run.assert_silent_success_within(SLOW_MACHINE);
            sent.push((payload.clone(), run));
        }
    }
    // Under a loaded machine a delivery may exceed the hook's timeout and be spooled: flush delivers those.
    let flush = client.flush(&server.http);
    assert_eq!(flush.code(), 0, "{}", flush.stderr());

    let mut events = events_of(&server, "fixtures");
    assert_eq!(events.len(), sent.len(), "one event per invocation");
    // Invocations ran one after another, so time order pairs each event with its invocation.
    events.sort_by_key(|e| time(&e["created_at"]));
    for (event, (payload, run)) in events.iter().zip(&sent) {
        assert_eq!(event["event_type"], payload["hook_event_name"]);
        assert_eq!(event["session_id"], payload["session_id"]);
        assert_eq!(event["source_app"], "fixtures");
        let created = time(&event["created_at"]);
        assert!(
            run.started <= created && created <= run.ended,
            "created_at {created} outside the invocation's {}..{}",
            run.started,
            run.ended
        );
        let id = Uuid::parse_str(event["event_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7, "event ids are UUIDv7");
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs as i64 * 1000 + (nanos / 1_000_000) as i64,
            created.timestamp_millis(),
            "the id carries the stamp"
        );
    }
}

#[test]
fn a_receiver_that_is_down_gets_the_spool_later_exactly_once() {
    let client = Client::new();
    let mut gone = Server::start();
    let gone_url = gone.http.clone();
    gone.kill9();
    let sessions: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for s in &sessions {
        client.hook(
            &["--endpoint", &gone_url, "--source-app", "spooled"],
            &prompt(*s, "hello"),
        );
    }
    assert_eq!(client.spooled().len(), 5, "each undelivered event is kept");

    // Still down: flush says so with its exit status and keeps everything.
    let flush = client.flush(&gone_url);
    assert_eq!(flush.code(), 1);
    assert!(flush.stderr().contains("5 left"), "{}", flush.stderr());
    assert_eq!(client.spooled().len(), 5);

    let server = Server::start();
    let flush = client.flush(&server.http);
    assert_eq!(flush.code(), 0, "{}", flush.stderr());
    assert!(
        flush
            .stderr()
            .contains("flushed 5 events, 0 transcript entries; 0 left"),
        "{}",
        flush.stderr()
    );
    assert!(client.spooled().is_empty());
    let again = client.flush(&server.http);
    assert_eq!(again.code(), 0);
    assert!(again.stderr().contains("flushed 0 events"));
    let counts = count_by_session(&events_of(&server, "spooled"));
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for s in &sessions {
        assert_eq!(counts.get(&s.to_string()), Some(&1));
    }

    // Three more while it is unreachable; the next successful hook starts a background flush for them.
    for _ in 0..3 {
        client.hook(
            &["--endpoint", &gone_url, "--source-app", "spooled"],
            &prompt(Uuid::new_v4(), "later"),
        );
    }
    assert_eq!(client.spooled().len(), 3);
    client.hook(
        &[
            "--endpoint",
            &server.http,
            "--source-app",
            "spooled",
            "--timeout-ms",
            "5000",
        ],
        &prompt(Uuid::new_v4(), "now"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = events_of(&server, "spooled");
        if events.len() == 9 && client.spooled().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "background flush delivered {} of 9 events within 10 s",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let counts = count_by_session(&events_of(&server, "spooled"));
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

/// `hivewatch serve` on a fixed HTTP address, so that a restart keeps the URL the hooks use.
struct FixedServer {
    child: Child,
}

impl FixedServer {
    fn start(dir: &Path, addr: &str) -> FixedServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .expect("log");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", addr])
            .args(common::store_backend_args(dir, &[]))
            .env_remove("HIVEWATCH_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hivewatch serve");
        let server = FixedServer { child };
        let url = format!("http://{addr}/readyz");
        let deadline = Instant::now() + Duration::from_secs(30);
        block_on(async {
            loop {
                if let Ok(r) = common::client().get(&url).send().await
                    && r.status().is_success()
                {
                    return;
                }
                assert!(Instant::now() < deadline, "hivewatch never became ready");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        server
    }

    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

/// A failing test must not leave a receiver behind.
impl Drop for FixedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn concurrent_hooks_against_a_flapping_receiver_deliver_each_event_once() {
    let data = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let client = std::sync::Arc::new(Client::new());
    let mut server = Some(FixedServer::start(data.path(), &addr));

    let sessions: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    let hooks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (client, url, payload) = (client.clone(), url.clone(), prompt(*s, "flap"));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(40 * i as u64));
                let run = client.run_hook(&["--endpoint", &url, "--source-app", "flap"], &payload);
                // 50 debug-build processes at once, next to a restarting receiver, can queue for the CPU
                // on a small machine: a looser hang detector than elsewhere.
                run.assert_silent_success_within(SLOW_MACHINE);
                run
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(250));
        server.take().unwrap().kill9();
        std::thread::sleep(Duration::from_millis(150));
        server = Some(FixedServer::start(data.path(), &addr));
    }
    let spooled = hooks
        .into_iter()
        .map(|h| h.join().expect("hook thread"))
        .filter(|run| run.stderr().contains("spooled"))
        .count();
    assert!(spooled > 0, "some hooks met the receiver down");
    let flush = client.flush(&url);
    assert_eq!(flush.code(), 0, "{}", flush.stderr());
    assert!(client.spooled().is_empty());
    server.take().unwrap().kill9();

    // Read back through the harness on the same data directory.
    let reader = Server::start_in(data.path(), &[]);
    let counts = count_by_session(&events_of(&reader, "flap"));
    for s in &sessions {
        assert_eq!(
            counts.get(&s.to_string()),
            Some(&1),
            "session {s} stored once"
        );
    }
    assert_eq!(counts.len(), 50);
}

/// Accepts connections and never answers; returns its URL.
fn silent_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

#[test]
fn a_receiver_that_never_answers_costs_at_most_the_timeout() {
    let client = Client::new();
    let url = silent_receiver();
    let run = client.hook(
        &["--endpoint", &url, "--timeout-ms", "250"],
        &prompt(Uuid::new_v4(), "hang"),
    );
    assert!(
        run.elapsed < Duration::from_secs(1),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stderr().contains("no answer within 250 ms"),
        "{}",
        run.stderr()
    );
    assert_eq!(client.spooled().len(), 1);

    // The variable sets it too.
    let mut cmd = client.command(&["hook", "--endpoint", &url]);
    cmd.env("HIVEWATCH_HOOK_TIMEOUT_MS", "100");
    let run = client.run(cmd, prompt(Uuid::new_v4(), "hang").to_string().as_bytes());
    run.assert_silent_success();
    assert!(
        run.stderr().contains("no answer within 100 ms"),
        "{}",
        run.stderr()
    );
    assert_eq!(client.spooled().len(), 2);
}

#[test]
fn bad_stdin_is_one_line_on_stderr_and_nothing_sent() {
    let client = Client::new();
    let url = dead_endpoint();
    let mut huge = br#"{"hook_event_name":"Stop","session_id":"s","x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
    huge.extend(br#""}"#);
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty", b"", "empty"),
        ("not JSON", b"hello, not json", "not JSON"),
        ("an array", b"[{\"hook_event_name\":\"Stop\"}]", "an array"),
        ("5 MiB", &huge, "more than 4 MiB"),
    ];
    for (what, input, says) in cases {
        let run = client.run(client.command(&["hook", "--endpoint", &url]), input);
        run.assert_silent_success();
        let err = run.stderr();
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(!err.contains("hello"), "{what}: never the payload: {err}");
    }
    assert!(
        client.spooled().is_empty(),
        "nothing was sent, so nothing spooled"
    );
}

#[test]
fn a_full_spool_drops_the_event_with_one_line() {
    let client = Client::new();
    let mut cmd = client.command(&["hook", "--endpoint", &dead_endpoint()]);
    cmd.env("HIVEWATCH_SPOOL_MAX_BYTES", "100");
    let run = client.run(cmd, prompt(Uuid::new_v4(), "x").to_string().as_bytes());
    run.assert_silent_success();
    assert_eq!(run.stderr().lines().count(), 1);
    assert!(run.stderr().contains("spool is full"), "{}", run.stderr());
    assert!(client.spooled().is_empty());
}

#[test]
fn secrets_are_redacted_before_they_leave_the_machine() {
    let client = Client::new();
    let payload = json!({
        "session_id": Uuid::new_v4().to_string(),
        "transcript_path": "/nonexistent.jsonl",
        "cwd": "/home/dev/projects/demo",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "export ANTHROPIC_API_KEY=sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaa"},
        "tool_use_id": "toolu_1",
    });
    // What the hook keeps on disk is already redacted...
    client.hook(&["--endpoint", &dead_endpoint()], &payload);
    let spooled = client.spooled();
    assert_eq!(spooled.len(), 1);
    let on_disk = std::fs::read_to_string(&spooled[0]).unwrap();
    assert!(!on_disk.contains("sk-ant-api03"), "{on_disk}");
    assert!(
        on_disk.contains("ANTHROPIC_API_KEY=[REDACTED]"),
        "{on_disk}"
    );

    // ...and so is what the receiver stores.
    let server = Server::start();
    client.hook(
        &["--endpoint", &server.http, "--source-app", "redact"],
        &payload,
    );
    assert_eq!(client.flush(&server.http).code(), 0);
    let events = events_of(&server, "redact");
    assert_eq!(events.len(), 1, "the spooled copy has a different id");
    let stored = events[0]["payload"].to_string();
    assert!(!stored.contains("sk-ant-api03"), "{stored}");
    assert!(stored.contains("[REDACTED]"), "{stored}");
}

/// A receiver that records each request and answers 200; returns its URL and the requests as they come.
fn recording_receiver() -> (String, mpsc::Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some(request) = read_request(&mut stream) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
                let _ = tx.send(request);
            }
        }
    });
    (url, rx)
}

/// The request head (as text) and the JSON body.
fn read_request(stream: &mut TcpStream) -> Option<(String, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    Some((head, body))
}

#[test]
fn the_wire_format_and_the_settings_precedence() {
    let client = Client::new();
    let (url, requests) = recording_receiver();
    std::fs::write(
        client.config.path().join("hook.json"),
        json!({"endpoint": url, "token": "tok-from-config", "source_app": "from-config"})
            .to_string(),
    )
    .unwrap();
    let next = || {
        requests
            .recv_timeout(Duration::from_secs(5))
            .expect("a request")
    };

    // Everything from the configuration file; TRACEPARENT passed along.
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut cmd = client.command(&["hook"]);
    cmd.env("TRACEPARENT", traceparent);
    let payload = prompt(Uuid::new_v4(), "hi");
    let run = client.run(cmd, payload.to_string().as_bytes());
    run.assert_silent_success();
    assert_eq!(run.stderr(), "");
    let (head, body) = next();
    assert!(
        head.starts_with("POST /api/v1/observability/event HTTP/1.1\r\n"),
        "{head}"
    );
    let head_lc = head.to_ascii_lowercase();
    assert!(
        head_lc.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert!(
        head.contains("authorization: Bearer tok-from-config\r\n"),
        "{head}"
    );
    let ctx = &body["_hivewatch"];
    let id = Uuid::parse_str(ctx["event_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let stamp = ctx["time"].as_str().unwrap();
    assert!(
        run.started <= time(&ctx["time"]) && time(&ctx["time"]) <= run.ended,
        "{stamp}"
    );
    let fraction = stamp.split('.').nth(1).expect("fractional seconds");
    assert_eq!(
        fraction,
        format!("{}Z", &fraction[..6]),
        "microseconds, UTC: {stamp}"
    );
    assert_eq!(ctx["source_app"], "from-config");
    assert_eq!(ctx["traceparent"], traceparent);
    let mut original = body.clone();
    original.as_object_mut().unwrap().remove("_hivewatch");
    assert_eq!(original, payload, "the payload itself travels unchanged");

    // A variable beats the file; a flag beats both.
    let mut cmd = client.command(&["hook"]);
    cmd.env("HIVEWATCH_SOURCE_APP", "from-env")
        .env("HIVEWATCH_INGEST_TOKEN", "tok-from-env");
    client
        .run(cmd, payload.to_string().as_bytes())
        .assert_silent_success();
    let (head, body) = next();
    assert_eq!(body["_hivewatch"]["source_app"], "from-env");
    assert!(
        head.contains("authorization: Bearer tok-from-env\r\n"),
        "{head}"
    );
    assert!(body["_hivewatch"].get("traceparent").is_none());

    let mut cmd = client.command(&["hook", "--source-app", "from-flag"]);
    cmd.env("HIVEWATCH_SOURCE_APP", "from-env");
    client
        .run(cmd, payload.to_string().as_bytes())
        .assert_silent_success();
    assert_eq!(next().1["_hivewatch"]["source_app"], "from-flag");
}

/// The uuids of a session's stored transcript entries, with how often each is stored.
fn transcript_uuids(server: &Server, session: &str) -> BTreeMap<String, usize> {
    let body = block_on(server.get(&format!(
        "/api/v1/observability/sessions/{session}/transcript"
    )));
    let mut counts = BTreeMap::new();
    for e in body["entries"].as_array().expect("entries") {
        *counts
            .entry(e["uuid"].as_str().expect("uuid").to_string())
            .or_default() += 1;
    }
    counts
}

fn uuids_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).ok()?["uuid"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn transcripts_are_shipped_once_and_then_only_what_is_new() {
    const MAIN: &str = "0fbc6975-e498-4c0d-a2a2-497077c17a19";
    const WITH_AGENT: &str = "1d03709e-189a-498d-a6ca-69950cf4473b";
    const AGENT: &str = "a828a481a9d4da57f";
    let server = Server::start();
    let client = Client::new();
    let copies = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(common::FIXTURES).join("transcripts"),
        copies.path(),
    );
    let main_path = copies.path().join(format!("{MAIN}.jsonl"));
    let parent_path = copies.path().join(format!("{WITH_AGENT}.jsonl"));
    let agent_path = copies
        .path()
        .join(format!("{WITH_AGENT}/subagents/agent-{AGENT}.jsonl"));

    let pick = |file: &str, session: &str| -> Value {
        common::fixture(file)
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["session_id"] == session)
            .expect("a fixture payload of that session")
            .clone()
    };
    let mut stop = pick("hooks/Stop.json", MAIN);
    stop["transcript_path"] = json!(main_path);
    let mut subagent_stop = pick("hooks/SubagentStop.json", WITH_AGENT);
    assert_eq!(subagent_stop["agent_id"], AGENT);
    subagent_stop["transcript_path"] = json!(parent_path);
    subagent_stop["agent_transcript_path"] = json!(agent_path);

    let hook_and_flush = || {
        for payload in [&stop, &subagent_stop] {
            client.hook(
                &["--endpoint", &server.http, "--source-app", "transcripts"],
                payload,
            );
        }
        let flush = client.flush(&server.http);
        assert_eq!(flush.code(), 0, "{}", flush.stderr());
    };
    let assert_once = |session: &str, files: &[&Path]| {
        let stored = transcript_uuids(&server, session);
        let want: Vec<String> = files.iter().flat_map(|f| uuids_in(f)).collect();
        assert!(!want.is_empty());
        for uuid in &want {
            assert_eq!(stored.get(uuid), Some(&1), "entry {uuid} of {session} once");
        }
        assert_eq!(
            stored.len(),
            want.len(),
            "nothing else stored for {session}"
        );
    };

    hook_and_flush();
    assert_once(MAIN, &[&main_path]);
    assert_once(WITH_AGENT, &[&parent_path, &agent_path]);
    let body = block_on(server.get(&format!(
        "/api/v1/observability/sessions/{WITH_AGENT}/transcript?agent_id={AGENT}"
    )));
    assert_eq!(
        body["entries"].as_array().unwrap().len(),
        uuids_in(&agent_path).len(),
        "the subagent's entries are filed under its id"
    );

    // The same hooks again: nothing new to ship, nothing stored twice.
    hook_and_flush();
    assert_once(MAIN, &[&main_path]);
    assert_once(WITH_AGENT, &[&parent_path, &agent_path]);

    // A line being written is not shipped until it is complete; then only it is added.
    let new_uuid = Uuid::new_v4().to_string();
    let line = json!({"parentUuid": null, "type": "user", "uuid": new_uuid, "sessionId": MAIN,
                      "timestamp": "2026-11-25T17:00:00.000Z",
                      "message": {"role": "user", "content": "one more, key sk-ant-api03-bbbbbbbbbbbbbbbbbbbbbbbb"}})
    .to_string();
    let (first, second) = line.split_at(line.len() / 2);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&main_path)
        .unwrap();
    file.write_all(first.as_bytes()).unwrap();
    assert_eq!(client.flush(&server.http).code(), 0);
    let fixture_main = Path::new(common::FIXTURES)
        .join("transcripts")
        .join(format!("{MAIN}.jsonl"));
    assert_once(MAIN, &[&fixture_main]);
    file.write_all(second.as_bytes()).unwrap();
    file.write_all(b"\n").unwrap();
    assert_eq!(client.flush(&server.http).code(), 0);
    assert_once(MAIN, &[&main_path]);
    let stored = block_on(server.get(&format!("/api/v1/observability/sessions/{MAIN}/transcript")));
    assert!(
        !stored.to_string().contains("sk-ant-api03"),
        "transcripts are redacted"
    );
}

#[test]
fn a_missing_transcript_is_reported_and_dropped() {
    let server = Server::start();
    let client = Client::new();
    let mut stop = prompt(Uuid::new_v4(), "x");
    stop["hook_event_name"] = json!("Stop");
    // The hook's own background flush may take the job first; run with the receiver unknown to it.
    client.hook(&["--endpoint", &dead_endpoint()], &stop);
    assert_eq!(client.spooled().len(), 1);
    let flush = client.flush(&server.http);
    assert_eq!(flush.code(), 0, "{}", flush.stderr());
    assert!(
        flush.stderr().contains("not found; skipped"),
        "{}",
        flush.stderr()
    );
    assert!(
        flush
            .stderr()
            .contains("flushed 1 events, 0 transcript entries; 0 left")
    );
    let again = client.flush(&server.http);
    assert!(
        !again.stderr().contains("not found"),
        "the job is gone: {}",
        again.stderr()
    );
}

#[test]
fn doctor_reports_hooks_receiver_and_spool() {
    let client = Client::new();
    let claude = client.home.path().join(".claude");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::write(
        claude.join("settings.json"),
        json!({"hooks": {"PreToolUse": [{"matcher": "", "hooks": [{"type": "command",
               "command": "/usr/local/bin/hivewatch hook --source-app demo"}]}],
               "Stop": [{"hooks": [{"type": "command", "command": "echo done"}]}]}})
        .to_string(),
    )
    .unwrap();
    let dead = dead_endpoint();
    client.hook(&["--endpoint", &dead], &prompt(Uuid::new_v4(), "x"));

    let run = client.run(client.command(&["doctor", "--endpoint", &dead]), b"");
    assert_eq!(run.code(), 1, "receiver unreachable");
    let out = run.stdout();
    assert!(
        out.contains("~/.claude/settings.json: hivewatch registered for 1 events (PreToolUse)"),
        "{out}"
    );
    assert!(out.contains("./.claude/settings.json: not found"), "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(out.contains("spool     1 events"), "{out}");

    // An earlier release's form: not a no-op without the binary, and most events missing. Warnings only.
    assert!(
        out.contains("fails on a machine without this binary"),
        "{out}"
    );
    assert!(out.contains("not registered for"), "{out}");
    assert!(
        out.contains("fix: run `hivewatch install-hooks --user`"),
        "{out}"
    );

    let server = Server::start();
    let run = client.run(client.command(&["doctor", "--endpoint", &server.http]), b"");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        run.stdout().contains("answers (HTTP 200"),
        "{}",
        run.stdout()
    );

    // A registration the hook contract forbids is an error, named, with the command that fixes it.
    std::fs::write(
        claude.join("settings.json"),
        json!({"hooks": {"WorktreeCreate": [{"hooks": [{"type": "command",
               "command": "/usr/local/bin/hivewatch hook --source-app demo"}]}]}})
        .to_string(),
    )
    .unwrap();
    let run = client.run(client.command(&["doctor", "--endpoint", &server.http]), b"");
    let out = run.stdout();
    assert_eq!(run.code(), 1, "{out}");
    assert!(
        out.contains("ERROR     ~/.claude/settings.json: WorktreeCreate must never be hooked"),
        "{out}"
    );
    assert!(
        out.contains("fix: run `hivewatch install-hooks --user`"),
        "{out}"
    );
}

#[test]
fn a_hook_invoked_for_an_event_it_must_not_handle_says_how_to_fix_it() {
    let client = Client::new();
    let server = Server::start();
    let payload = json!({"session_id": Uuid::new_v4().to_string(), "hook_event_name": "WorktreeCreate",
                         "cwd": "/home/dev/projects/demo", "name": "wt1"});
    let run = client.run_hook(&["--endpoint", &server.http], &payload);
    // Exit 1: Claude Code reports the failed hook (with this stderr) instead of taking the empty answer for a
    // worktree path; never 2, which would block.
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    let err = run.stderr();
    assert!(
        err.contains("must never be registered for WorktreeCreate"),
        "{err}"
    );
    assert!(err.contains("hivewatch install-hooks"), "{err}");

    // An event it no longer hooks (not worth its cost) is still recorded, and the hook exits 0.
    let payload = json!({"session_id": Uuid::new_v4().to_string(), "hook_event_name": "InstructionsLoaded",
                         "cwd": "/home/dev/projects/demo", "file_path": "/home/dev/projects/demo/CLAUDE.md"});
    let run = client.run_hook(&["--endpoint", &server.http], &payload);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("no longer hooks InstructionsLoaded"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_held_spool_lock_or_a_bad_global_setting_loses_nothing() {
    let client = Client::new();
    // A first event creates the spool; then something (a stopped flush, say) holds its lock.
    client.hook(
        &["--endpoint", &dead_endpoint()],
        &prompt(Uuid::new_v4(), "first"),
    );
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(client.spool_dir().join(".lock"))
        .expect("spool lock file");
    lock.lock().expect("hold the spool lock");
    let run = client.hook(
        &["--endpoint", &dead_endpoint()],
        &prompt(Uuid::new_v4(), "second"),
    );
    assert!(
        run.elapsed < Duration::from_secs(1),
        "waited on the lock: {:?}",
        run.elapsed
    );
    assert_eq!(client.spooled().len(), 2, "spooled while the lock was held");
    drop(lock);

    // A global setting meant for `serve` that does not parse: the hook goes on with its defaults.
    let mut cmd = client.command(&["hook", "--endpoint", &dead_endpoint()]);
    cmd.env("HIVEWATCH_LOG_FORMAT", "bogus");
    let run = client.run(cmd, prompt(Uuid::new_v4(), "third").to_string().as_bytes());
    run.assert_silent_success();
    assert!(
        run.stderr().contains("going on with default settings"),
        "{}",
        run.stderr()
    );
    assert_eq!(client.spooled().len(), 3, "the event was kept");
}
