//! The volume that holds the SQLite database fills up. Ingest must answer 503 with `Retry-After` (HTTP) or
//! `UNAVAILABLE` (gRPC) with a message that says the storage is full, lose or corrupt nothing it acknowledged,
//! keep running, and take events again as soon as there is space, without a restart.
//!
//! The data directory is a real small filesystem: a tmpfs mounted in a private mount namespace held open by a
//! `sleep` process; hivewatch runs in that namespace (`nsenter`), and the test reaches the files through
//! `/proc/<holder>/root/<dir>`. As root the namespace is a plain mount namespace; otherwise it is owned by a new user
//! namespace (`unshare --user --map-root-user`). SQLite only: this test is not in `STORE_TESTS` of scripts/test.sh.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{FaultReport, Server};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value, json};
use uuid::Uuid;

const HOOK_PATH: &str = "/api/v1/observability/event";
const APP: &str = "disk-full";
/// Size of the tmpfs: room for the database, a full WAL (hivewatch checkpoints at 8,000 pages, about 32 MB) and
/// the events sent before the fault, with a margin the ballast then takes.
const VOLUME_KB: u64 = 48 * 1024;

/// A tmpfs of `VOLUME_KB` on an empty temporary directory, mounted in a mount namespace of its own that a holder
/// process keeps alive. Dropping it kills the holder, which unmounts the tmpfs.
struct Volume {
    holder: Child,
    /// The mount point: an empty directory outside the namespace, the tmpfs inside it.
    dir: PathBuf,
    /// The namespace belongs to a user namespace of its own (not root).
    userns: bool,
    _tmp: tempfile::TempDir,
}

impl Volume {
    fn mount() -> Volume {
        for tool in ["unshare", "nsenter"] {
            if Command::new(tool).arg("--version").output().is_err() {
                panic!("`{tool}` is not installed; this test needs it (Debian package util-linux)");
            }
        }
        let root = effective_uid() == 0;
        // As root a plain mount namespace; without root (or when a container refuses it), a user namespace.
        let attempts: &[bool] = if root { &[false, true] } else { &[true] };
        let mut failures = Vec::new();
        for &userns in attempts {
            match Volume::try_mount(userns) {
                Ok(volume) => return volume,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "cannot mount a {VOLUME_KB} KiB tmpfs for the data directory: {}. This test needs either root \
             (CAP_SYS_ADMIN for `unshare --mount` and `mount -t tmpfs`) or unprivileged user namespaces \
             (`unshare --user --map-root-user`: kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, \
             and on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0).\n{}",
            if root {
                "running as root, but the mount failed, and so did the user namespace"
            } else {
                "not running as root, and unprivileged user namespaces are not available"
            },
            failures.join("\n")
        );
    }

    fn try_mount(userns: bool) -> Result<Volume, String> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if userns {
            cmd.args(["--user", "--map-root-user"]);
        }
        let mut holder = cmd
            .args([
                "sh",
                "-c",
                &format!(
                    "mount -t tmpfs -o size={VOLUME_KB}k tmpfs \"$0\" && echo ready && exec sleep infinity"
                ),
            ])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn unshare: {e}"))?;
        let stdout = holder.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let how = if userns {
            "unshare --mount --user --map-root-user"
        } else {
            "unshare --mount"
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.trim() == "ready" => Ok(Volume {
                holder,
                dir,
                userns,
                _tmp: tmp,
            }),
            outcome => {
                let _ = holder.kill();
                let _ = holder.wait();
                let mut stderr = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                Err(format!(
                    "{how} + mount -t tmpfs: {} ({})",
                    stderr.trim(),
                    if outcome.is_ok() {
                        "exited"
                    } else {
                        "no answer in 20 s"
                    }
                ))
            }
        }
    }

    /// `nsenter` into the holder's namespaces: what runs hivewatch on the tmpfs.
    fn wrapper(&self) -> Vec<String> {
        let mut w = vec![
            "nsenter".to_string(),
            "-t".to_string(),
            self.holder.id().to_string(),
            "-m".to_string(),
        ];
        if self.userns {
            w.extend(["-U".to_string(), "--preserve-credentials".to_string()]);
        }
        w.push("--".to_string());
        w
    }

    /// A path inside the tmpfs, as this process reaches it. (SQLite cannot open the database on this path: it
    /// resolves the `/proc/<pid>/root` link to `/`, so outside the namespace. Files are copied out instead.)
    fn inside(&self, name: &str) -> PathBuf {
        let rel = self.dir.strip_prefix("/").expect("absolute temp dir");
        Path::new("/proc")
            .join(self.holder.id().to_string())
            .join("root")
            .join(rel)
            .join(name)
    }

    fn start_server(&self) -> Server {
        let wrapper = self.wrapper();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        Server::start_wrapped(&wrapper, &self.dir, &[], &[])
    }

    /// Fills the volume with a ballast file until the filesystem says it is full; returns the bytes written.
    fn fill(&self) -> u64 {
        let path = self.inside("ballast");
        let mut file = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let zeros = vec![0u8; 1 << 20];
        let mut written = 0u64;
        // Large writes, then page-sized ones, then single bytes: nothing may be left over.
        for size in [1 << 20, 4096, 1] {
            loop {
                match file.write(&zeros[..size]) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(e) => panic!("write {}: {e}", path.display()),
                }
            }
        }
        written
    }

    fn free(&self) {
        let path = self.inside("ballast");
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }

    /// `PRAGMA integrity_check` of the database as it is on the volume (hivewatch stopped): the database and its
    /// WAL copied out through `/proc`, then opened.
    fn integrity_check(&self) -> String {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Check {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let copy = tempfile::tempdir().expect("temp dir");
        for name in ["hivewatch.db", "hivewatch.db-wal"] {
            let from = self.inside(name);
            if from.exists() {
                std::fs::copy(&from, copy.path().join(name))
                    .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            }
        }
        let db = copy.path().join("hivewatch.db");
        assert!(db.exists(), "no database on the volume");
        let mut conn = diesel::SqliteConnection::establish(db.to_str().expect("utf-8 path"))
            .expect("open the copied database");
        let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
            .load(&mut conn)
            .expect("PRAGMA integrity_check");
        rows.into_iter()
            .map(|r| r.integrity_check)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .expect("effective uid in /proc/self/status")
}

/// Everything sent and what was acknowledged, counted in events (a log record is an event).
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    /// Event ids of acknowledged hook events.
    hooks: Vec<Uuid>,
    /// `seq` attributes of acknowledged log records.
    logs: Vec<String>,
    /// Answers 503 (or gRPC UNAVAILABLE) naming the full volume.
    full_answers: usize,
}

impl Tally {
    fn acked(&self) -> usize {
        self.hooks.len() + self.logs.len()
    }
}

/// How one request was answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Acked,
    /// 503 with Retry-After and a message about the full volume.
    Full,
}

struct Sender {
    client: reqwest::Client,
    http: String,
    grpc: String,
    /// The data directory, which a full-volume message must name.
    dir: String,
    tally: Tally,
    n: usize,
}

impl Sender {
    fn hook(&mut self, event_id: Uuid) -> Value {
        self.n += 1;
        json!({
            "session_id": Uuid::new_v4().to_string(),
            "hook_event_name": "PreToolUse",
            "cwd": "/home/dev/projects/disk-full",
            "tool_name": "Bash",
            "tool_use_id": format!("toolu_{}", self.n),
            "tool_input": {"command": format!("echo {} {}", self.n, "x".repeat(400))},
            "_hivewatch": {"event_id": event_id.to_string(), "source_app": APP},
        })
    }

    /// Posts `count` hook events: one payload when `count` is 1, else an array (a batch, committed whole).
    async fn hooks(&mut self, count: usize) -> Answer {
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        let items: Vec<Value> = ids.iter().map(|id| self.hook(*id)).collect();
        let body = if count == 1 {
            items.into_iter().next().expect("one item")
        } else {
            Value::Array(items)
        };
        self.tally.sent += count;
        let resp = self
            .client
            .post(format!("{}{HOOK_PATH}", self.http))
            .json(&body)
            .send()
            .await
            .expect("hivewatch answers");
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let text = resp.text().await.expect("body");
        if status.is_success() {
            if count > 1 {
                let answer: Value = serde_json::from_str(&text).expect("batch answer is JSON");
                assert_eq!(answer["accepted"], count, "{text}");
            }
            self.tally.hooks.extend(ids);
            return Answer::Acked;
        }
        assert_eq!(status, 503, "hook request answered {status}: {text}");
        assert!(retry_after.is_some(), "503 without Retry-After: {text}");
        let error: Value = serde_json::from_str(&text).expect("error body is JSON");
        self.assert_names_full_volume(error["error"].as_str().expect("error message"));
        self.tally.full_answers += 1;
        Answer::Full
    }

    fn log_records(&mut self, count: usize) -> (Vec<String>, Vec<Value>) {
        let session = Uuid::new_v4().to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let seqs: Vec<String> = (0..count)
            .map(|_| {
                self.n += 1;
                format!("disk-full-{}", self.n)
            })
            .collect();
        let records = seqs
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
        (seqs, records)
    }

    /// One OTLP/HTTP (JSON) logs export of `count` records.
    async fn otlp_http(&mut self, count: usize) -> Answer {
        let (seqs, records) = self.log_records(count);
        let body = json!({
            "resourceLogs": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": APP}}]},
                "scopeLogs": [{"scope": {"name": "disk-full"}, "logRecords": records}],
            }]
        });
        self.tally.sent += count;
        let resp = self
            .client
            .post(format!("{}/v1/logs", self.http))
            .json(&body)
            .send()
            .await
            .expect("hivewatch answers");
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let text = resp.text().await.expect("body");
        if status.is_success() {
            self.tally.logs.extend(seqs);
            return Answer::Acked;
        }
        assert_eq!(status, 503, "OTLP/HTTP export answered {status}: {text}");
        assert!(
            retry_after.is_some(),
            "OTLP/HTTP 503 without Retry-After: {text}"
        );
        // The OTLP error body: a google.rpc.Status, here in JSON as the request was.
        let error: Value = serde_json::from_str(&text).expect("OTLP error body is JSON");
        assert_eq!(error["code"], 14, "google.rpc.Code UNAVAILABLE: {text}");
        self.assert_names_full_volume(error["message"].as_str().expect("message"));
        self.tally.full_answers += 1;
        Answer::Full
    }

    /// One OTLP/gRPC logs export of one record.
    async fn otlp_grpc(&mut self) -> Answer {
        let (seqs, _) = self.log_records(1);
        let text = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.to_string())),
        };
        let kv = |k: &str, v: &str| KeyValue {
            key: k.to_string(),
            value: Some(text(v)),
            ..Default::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", APP)],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: now,
                        severity_number: 9,
                        body: Some(text("tool finished")),
                        attributes: vec![
                            kv("event.name", "tool_result"),
                            kv("session.id", &Uuid::new_v4().to_string()),
                            kv("seq", &seqs[0]),
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        self.tally.sent += 1;
        let mut client = LogsServiceClient::connect(self.grpc.clone())
            .await
            .expect("gRPC connect");
        match client.export(request).await {
            Ok(_) => {
                self.tally.logs.extend(seqs);
                Answer::Acked
            }
            Err(status) => {
                assert_eq!(
                    status.code(),
                    tonic::Code::Unavailable,
                    "gRPC export failed with {status:?}"
                );
                self.assert_names_full_volume(status.message());
                self.tally.full_answers += 1;
                Answer::Full
            }
        }
    }

    fn assert_names_full_volume(&self, message: &str) {
        let lower = message.to_ascii_lowercase();
        assert!(
            lower.contains("full") && lower.contains("free") && message.contains(&self.dir),
            "the message must say that the storage is full, name the data directory ({}) and say to free \
             space: {message:?}",
            self.dir
        );
    }
}

/// Sends until `want` requests in a row were answered `Full` (at most `limit` requests); returns how many it sent.
async fn until_full(sender: &mut Sender, want: usize, limit: usize) -> usize {
    let mut in_a_row = 0;
    for sent in 1..=limit {
        match sender.hooks(1).await {
            Answer::Full => in_a_row += 1,
            Answer::Acked => in_a_row = 0,
        }
        if in_a_row == want {
            return sent;
        }
    }
    panic!(
        "the volume is full, but hivewatch did not answer {want} requests in a row with 503 in {limit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sqlite_volume_answers_503_and_recovers_when_space_returns() {
    assert!(
        !common::postgres_mode(),
        "disk_full tests the SQLite volume; run it without HIVEWATCH_TEST_STORE=postgres"
    );
    let volume = Volume::mount();
    let mut server = volume.start_server();
    server.wait_ready().await;
    let mut sender = Sender {
        client: common::client(),
        http: server.http.clone(),
        grpc: server.grpc.clone(),
        dir: volume.dir.display().to_string(),
        tally: Tally::default(),
        n: 0,
    };

    // Before the fault: a few hundred events, single and in batches, all acknowledged.
    for i in 0..300 {
        let answer = if i % 20 == 19 {
            sender.hooks(10).await
        } else {
            sender.hooks(1).await
        };
        assert_eq!(
            answer,
            Answer::Acked,
            "request {i}, before the volume is full"
        );
    }
    assert_eq!(sender.otlp_http(5).await, Answer::Acked);
    let acked_before = sender.tally.acked();

    // The fault: a ballast file takes every free byte.
    let ballast = tokio::task::block_in_place(|| volume.fill());
    eprintln!(
        "{acked_before} events acknowledged; ballast of {} KiB fills the {VOLUME_KB} KiB volume",
        ballast / 1024
    );

    // SQLite may still write into space its files already hold; then commits fail. From the first refusals on,
    // every answer is either an acknowledgement (committed) or a 503 that says the volume is full.
    let to_full = until_full(&mut sender, 5, 2000).await;
    for i in 0..60 {
        let count = if i % 4 == 3 { 10 } else { 1 };
        sender.hooks(count).await;
    }
    // One OTLP/HTTP and one OTLP/gRPC export are refused alike (a retry or two in case one fits).
    let mut otlp = (false, false);
    for _ in 0..5 {
        otlp.0 = otlp.0 || sender.otlp_http(3).await == Answer::Full;
        otlp.1 = otlp.1 || sender.otlp_grpc().await == Answer::Full;
    }
    assert!(
        otlp.0,
        "no OTLP/HTTP export was answered 503 while the volume was full"
    );
    assert!(
        otlp.1,
        "no OTLP/gRPC export was answered UNAVAILABLE while the volume was full"
    );
    let full_answers = sender.tally.full_answers;
    assert!(full_answers >= 5);

    // The server stays up and keeps serving what it has.
    let health = sender
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers while the volume is full");
    assert!(
        health.status().is_success(),
        "/healthz: {}",
        health.status()
    );
    let page = server
        .get(&format!(
            "/api/v1/observability/events?source_app={APP}&limit=10"
        ))
        .await;
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(10),
        "{page:#}"
    );

    // Space returns: ingest works again without a restart (the first commit after the ballast is gone).
    tokio::task::block_in_place(|| volume.free());
    let deadline = Instant::now() + Duration::from_secs(30);
    while sender.hooks(1).await != Answer::Acked {
        assert!(
            Instant::now() < deadline,
            "ingest did not recover within 30 s of freeing the volume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..100 {
        let answer = if i % 10 == 9 {
            sender.hooks(10).await
        } else {
            sender.hooks(1).await
        };
        assert_eq!(answer, Answer::Acked, "request {i} after space returned");
    }
    assert_eq!(sender.otlp_http(5).await, Answer::Acked);
    assert_eq!(sender.otlp_grpc().await, Answer::Acked);

    let status = tokio::task::block_in_place(|| server.terminate());
    let log = server.stderr_log();
    assert!(
        status.success(),
        "hivewatch exited with {status} after SIGTERM; stderr:\n{log}"
    );
    assert!(!log.contains("panicked"), "hivewatch panicked:\n{log}");
    // The store logs the episode once, however many requests it refused.
    let episode_logged = log
        .lines()
        .filter(|l| {
            l.contains(" ERROR hivewatch::store::sqlite") && l.contains("the SQLite volume is full")
        })
        .count();
    assert_eq!(
        episode_logged, 1,
        "the full volume must be logged once, as an error, by the store:\n{log}"
    );

    let check = tokio::task::block_in_place(|| volume.integrity_check());
    assert_eq!(check, "ok", "PRAGMA integrity_check after the fault");

    // Every acknowledged event is there, exactly once, after a restart on the same volume.
    let server = volume.start_server();
    server.wait_ready().await;
    let events = server.all_events(&format!("source_app={APP}")).await;
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut by_seq: HashMap<&str, usize> = HashMap::new();
    for ev in &events {
        *by_id
            .entry(ev["event_id"].as_str().expect("event_id"))
            .or_default() += 1;
        if let Some(seq) = ev["payload"]["attributes"]["seq"].as_str() {
            *by_seq.entry(seq).or_default() += 1;
        }
    }
    let tally = &sender.tally;
    let hook_ids: Vec<String> = tally.hooks.iter().map(Uuid::to_string).collect();
    let counts: Vec<usize> = hook_ids
        .iter()
        .map(|id| by_id.get(id.as_str()).copied().unwrap_or(0))
        .chain(
            tally
                .logs
                .iter()
                .map(|seq| by_seq.get(seq.as_str()).copied().unwrap_or(0)),
        )
        .collect();
    let stored = counts.iter().filter(|&&n| n >= 1).count();
    let lost = counts.iter().filter(|&&n| n == 0).count();
    let duplicated = counts.iter().filter(|&&n| n > 1).count();
    FaultReport {
        fault: "disk_full",
        action: "SQLite data dir on a full tmpfs, then space freed",
        sent: tally.sent,
        acked: tally.acked(),
        stored,
        lost,
        duplicated,
    }
    .print();
    eprintln!(
        "{to_full} requests after the fill until 5 refusals in a row; {full_answers} requests answered 'full'; \
         {} events stored in all",
        events.len()
    );
    assert_eq!(lost, 0, "acknowledged events missing after the fault");
    assert_eq!(duplicated, 0, "acknowledged events stored twice");
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "event ids stored more than once: {twice:?}"
    );
}
