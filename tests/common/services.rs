//! PostgreSQL and Redis for the tests: a fresh database on the shared PostgreSQL, the shared Redis, and
//! throwaway instances of either that a test may stop, crash and restart.
//!
//! The shared services come from `HIVEWATCH_TEST_DATABASE_URL` and `HIVEWATCH_TEST_REDIS_URL`, which
//! `bash scripts/test.sh` sets (to the local services when they run, otherwise to throwaway ones it
//! starts); unset, they default to the local services on their usual ports. The throwaway instances
//! need the server binaries: `HIVEWATCH_TEST_PG_BIN` (the directory holding `initdb` and `pg_ctl`) and
//! `HIVEWATCH_TEST_REDIS_SERVER`, also set by the script, with fallbacks on the usual places.
//!
//! Nothing here skips: a missing service is a panic saying what is missing and how to get it.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// The shared PostgreSQL the tests create their databases in.
pub const DATABASE_URL_VAR: &str = "HIVEWATCH_TEST_DATABASE_URL";
/// The shared Redis.
pub const REDIS_URL_VAR: &str = "HIVEWATCH_TEST_REDIS_URL";
/// The PostgreSQL bin directory (`initdb`, `pg_ctl`) for [`TestPostgres`].
pub const PG_BIN_VAR: &str = "HIVEWATCH_TEST_PG_BIN";
/// The `redis-server` executable for [`TestRedis`].
pub const REDIS_SERVER_VAR: &str = "HIVEWATCH_TEST_REDIS_SERVER";

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long a service gets to accept connections after a start, and a connection to be made.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

const HOW_TO_GET_SERVICES: &str = "Run the tests with `bash scripts/test.sh`: it uses the local \
     PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) when they run, otherwise starts throwaway \
     ones (installing Debian's postgresql and redis-server packages when root).";

/// A new, empty database on the shared PostgreSQL (`HIVEWATCH_TEST_DATABASE_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/postgres`), named `hw_test_<pid>_<counter>_<random>`; returns its
/// URL (same host, port, user and parameters). Panics, saying how to get one, when PostgreSQL cannot be
/// reached. The database is left in place.
pub async fn fresh_database() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (base, from) = env_url(DATABASE_URL_VAR, DEFAULT_DATABASE_URL);
    let mut conn = match pg_connect(&base).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "this test needs PostgreSQL, but {} ({from}) could not be reached: {e}\n{HOW_TO_GET_SERVICES} \
             Or point {DATABASE_URL_VAR} at a PostgreSQL where the tests may create databases.",
            redact(&base)
        ),
    };
    drop_stale_databases(&mut conn).await;
    let name = format!(
        "hw_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random_hex(8)
    );
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(&base)));
    with_database(&base, &name)
}

/// Drops the test databases of test processes that have ended (the pid is part of the name), once per process, so
/// that runs against a long-lived PostgreSQL do not pile databases up.
async fn drop_stale_databases(conn: &mut diesel_async::AsyncPgConnection) {
    static DONE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    DONE.call_once(|| first = true);
    if !first {
        return;
    }
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let names: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'hw\\_test\\_%'")
            .load(conn)
            .await
            .unwrap_or_default();
    for Name { datname } in names {
        let pid: Option<i32> = datname.split('_').nth(2).and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            // Best effort: another run may be dropping it too.
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
            ))
            .execute(conn)
            .await;
        }
    }
}

/// Runs `sql`, which selects one non-null text column named `v`, on the PostgreSQL at `url`; returns the
/// values in the order of the rows.
pub async fn query_rows(url: &str, sql: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let mut conn = pg_connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", redact(url)));
    diesel::sql_query(sql)
        .load::<Row>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|row| row.v)
        .collect()
}

/// The shared Redis (`HIVEWATCH_TEST_REDIS_URL`, by default `redis://127.0.0.1:6379`), checked to answer
/// PING. Tests share it, so they keep to keys from [`unique_stream_key`]. Panics, saying how to get one,
/// when Redis cannot be reached.
pub async fn shared_redis() -> String {
    let (url, from) = env_url(REDIS_URL_VAR, DEFAULT_REDIS_URL);
    if let Err(e) = redis_ping(&url).await {
        panic!(
            "this test needs Redis, but {} ({from}) did not answer PING: {e}\n{HOW_TO_GET_SERVICES} \
             Or point {REDIS_URL_VAR} at a Redis the tests may write to.",
            redact(&url)
        );
    }
    url
}

/// A Redis key no other test (or run) uses: `hivewatch:test:<test>:<pid>:<random>`.
pub fn unique_stream_key(test: &str) -> String {
    format!(
        "hivewatch:test:{test}:{}:{}",
        std::process::id(),
        random_hex(8)
    )
}

/// A throwaway PostgreSQL cluster of its own (trust auth, user `postgres`, fsync on) on a free port of
/// 127.0.0.1, for tests that stop or crash the database. Its data directory is a temp dir; as root the
/// cluster belongs to the `postgres` user, since initdb refuses to run as root. The postmaster runs as a
/// child process of the test (in its process group, so a test runner's signals reach it too); it is
/// stopped with `pg_ctl`. The port stays the same across restarts. Dropping it stops the server
/// (immediately) and removes the directory.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// uid and gid of `postgres` when running as root.
    owner: Option<(u32, u32)>,
    postmaster: Mutex<Option<Child>>,
}

impl TestPostgres {
    /// initdb, start, and wait until it accepts connections.
    pub fn start() -> TestPostgres {
        let bin = pg_bin_dir();
        let owner = pg_owner();
        let dir = owned_temp_dir("hw-pg-", owner);
        let mut pg = TestPostgres {
            dir,
            port: 0,
            bin,
            owner,
            postmaster: Mutex::new(None),
        };
        let initdb = pg
            .tool("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", pg.bin.join("initdb").display()));
        assert!(
            initdb.status.success(),
            "initdb failed ({}):\n{}{}",
            initdb.status,
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        // Another test may take the port between the probe and the start: then try another one.
        for attempt in 1..=5 {
            pg.port = free_port();
            // Later lines win in postgresql.conf, so a retry just appends again.
            pg.append_conf(&format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = on\n",
                pg.port,
                pg.dir.path().display()
            ));
            match pg.run_postmaster() {
                Ok(()) => return pg,
                Err(e) => {
                    let log = pg.log();
                    if attempt == 5 || !log.contains("could not bind") {
                        panic!("{e}; log:\n{log}");
                    }
                }
            }
        }
        unreachable!()
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `pg_ctl stop -m immediate`: a crash; the next start runs crash recovery. The server is gone when
    /// this returns.
    pub fn stop_immediate(&self) {
        self.stop("immediate");
    }

    /// `pg_ctl stop -m fast`: a clean shutdown, connections cut. The server is gone when this returns.
    pub fn stop_fast(&self) {
        self.stop("fast");
    }

    /// Starts the stopped cluster again on the same port and data directory, and waits until it accepts
    /// connections.
    pub fn start_again(&self) {
        assert!(
            self.postmaster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none(),
            "TestPostgres::start_again while it runs"
        );
        if let Err(e) = self.run_postmaster() {
            panic!("{e}; log:\n{}", self.log());
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program from the bin dir, run in the temp dir, as `postgres` when root.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn append_conf(&self, lines: &str) {
        let path = self.data_dir().join("postgresql.conf");
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
    }

    fn log_file(&self) -> File {
        let path = self.dir.path().join("postgres.log");
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    }

    /// Spawns the postmaster and waits until it accepts connections; on failure it is gone again.
    fn run_postmaster(&self) -> Result<(), String> {
        let log = self.log_file();
        let child = self
            .tool("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .stdout(log.try_clone().expect("dup log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.join("postgres").display()));
        *self
            .postmaster
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(child);
        let ready = self.wait_ready();
        if ready.is_err()
            && let Some(mut child) = self
                .postmaster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        ready
    }

    /// The postmaster's exit status once it has exited.
    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut slot = self
            .postmaster
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_mut()?.try_wait().ok().flatten()
    }

    /// Polls a TCP connect, then a real connection running `SELECT 1`, for up to 30 s; gives up early
    /// when the postmaster exits.
    fn wait_ready(&self) -> Result<(), String> {
        let url = self.url();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        // A runtime of its own on a thread of its own: callers may be sync code inside a tokio test.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime");
                    rt.block_on(async {
                        let deadline = Instant::now() + READY_TIMEOUT;
                        loop {
                            if let Some(status) = self.exited() {
                                return Err(format!(
                                    "the throwaway PostgreSQL on port {} exited during startup ({status})",
                                    self.port
                                ));
                            }
                            let attempt = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                                Err(e) => Err(format!("connect {addr}: {e}")),
                                Ok(_) => match pg_connect(&url).await {
                                    Err(e) => Err(e),
                                    Ok(mut conn) => diesel::sql_query("SELECT 1")
                                        .execute(&mut conn)
                                        .await
                                        .map(drop)
                                        .map_err(|e| format!("SELECT 1: {e}")),
                                },
                            };
                            match attempt {
                                Ok(()) => return Ok(()),
                                Err(e) if Instant::now() >= deadline => {
                                    return Err(format!(
                                        "the throwaway PostgreSQL on port {} did not accept connections \
                                         within {} s ({e})",
                                        self.port,
                                        READY_TIMEOUT.as_secs()
                                    ));
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                            }
                        }
                    })
                })
                .join()
                .expect("readiness thread")
        })
    }

    /// `pg_ctl stop -m MODE -w`, then reaps the postmaster.
    fn stop(&self, mode: &str) {
        let mut slot = self
            .postmaster
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut child = slot.take().expect("TestPostgres stopped while not running");
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .output();
        let failure = match out {
            Ok(out) if out.status.success() => {
                child.wait().expect("reap postgres");
                return;
            }
            Ok(out) => format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
            Err(e) => e.to_string(),
        };
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "pg_ctl stop -m {mode} failed ({failure}); log:\n{}",
            self.log()
        );
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let slot = self
            .postmaster
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(mut child) = slot.take() else {
            return;
        };
        let stopped = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            // Its backends notice the postmaster's death and exit on their own.
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// A throwaway Redis of its own on a free port of 127.0.0.1, for tests that stop and restart it. It keeps its
/// data in an append-only file fsynced at every write, as a production Redis behind a stream should, so a
/// restart (even after SIGKILL) brings back every entry it acknowledged. It runs as a child process of the test; the port stays the same across restarts.
/// Dropping it kills the server and removes its directory.
pub struct TestRedis {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
}

impl TestRedis {
    /// Starts `redis-server` and waits until it answers PING.
    pub fn start() -> TestRedis {
        let dir = tempfile::Builder::new()
            .prefix("hw-redis-")
            .tempdir()
            .expect("temp dir");
        let mut redis = TestRedis {
            dir,
            port: 0,
            bin: redis_server_bin(),
            child: Mutex::new(None),
        };
        // Another test may take the port between the probe and the start: then try another one.
        for attempt in 1..=5 {
            redis.port = free_port();
            match redis.spawn_and_wait() {
                Ok(()) => return redis,
                Err(e) => {
                    let log = redis.log();
                    if attempt == 5 || !log.contains("Address already in use") {
                        panic!("{e}; log:\n{log}");
                    }
                }
            }
        }
        unreachable!()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL; the process is gone when this returns. What it acknowledged is in its append-only file.
    pub fn stop(&self) {
        if let Some(mut child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = child.kill();
            child.wait().expect("reap redis-server");
        }
    }

    /// Starts the stopped server again on the same port and waits until it answers PING.
    pub fn start_again(&self) {
        assert!(
            self.child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none(),
            "TestRedis::start_again while it runs"
        );
        if let Err(e) = self.spawn_and_wait() {
            panic!("{e}; log:\n{}", self.log());
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let port = self.port.to_string();
        let child = Command::new(&self.bin)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run {} ({e}). The Redis tests need redis-server: {HOW_TO_GET_SERVICES} \
                     Or set {REDIS_SERVER_VAR} to its path.",
                    self.bin.display()
                )
            });
        let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let child = slot.insert(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if sync_redis_ping(self.port) {
                return Ok(());
            }
            if let Some(status) = child.try_wait().expect("wait redis-server") {
                *slot = None;
                return Err(format!(
                    "redis-server on port {} exited during startup ({status})",
                    self.port
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                *slot = None;
                return Err(format!(
                    "redis-server on port {} did not answer PING within {} s",
                    self.port,
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut child) = child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The URL from `var`, or `default` when unset or empty, with where it came from.
fn env_url(var: &str, default: &str) -> (String, String) {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => (url, format!("from {var}")),
        _ => (default.to_string(), format!("the default; {var} is unset")),
    }
}

async fn pg_connect(url: &str) -> Result<AsyncPgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no connection within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
        Ok(Ok(reply)) if reply == "PONG" => Ok(()),
        Ok(Ok(reply)) => Err(format!("PING answered {reply:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// True when 127.0.0.1:`port` answers PING with PONG (plain RESP over a blocking socket).
fn sync_redis_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// `url` with its database (the path) replaced by `name`, keeping any query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// `url` with any password hidden, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

fn random_hex(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..len].to_string()
}

/// A port on 127.0.0.1 that nobody listens on right now, below Linux's ephemeral range so that outgoing
/// connections do not take it between a stop and a restart.
fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port found on 127.0.0.1");
}

/// The PostgreSQL bin directory holding `initdb` and `pg_ctl`: `HIVEWATCH_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`, else the directory of `initdb` on PATH.
fn pg_bin_dir() -> PathBuf {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(PG_BIN_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            has_tools(&dir),
            "{PG_BIN_VAR}={} holds no initdb and pg_ctl; point it at PostgreSQL's bin directory",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return dir;
        }
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_tools(dir))
    {
        return dir;
    }
    panic!(
        "this test starts its own PostgreSQL, but initdb and pg_ctl were not found (looked in \
         {PG_BIN_VAR}, /usr/lib/postgresql/*/bin, pg_config --bindir and PATH).\n{HOW_TO_GET_SERVICES} \
         Or install them (`sudo apt-get install -y postgresql`), or set {PG_BIN_VAR} to their directory."
    );
}

/// `redis-server`: `HIVEWATCH_TEST_REDIS_SERVER`, else the one on PATH.
fn redis_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os(REDIS_SERVER_VAR).filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .find(|bin| bin.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test starts its own Redis, but redis-server is not on PATH.\n{HOW_TO_GET_SERVICES} \
                 Or install it (`sudo apt-get install -y redis-server`), or set {REDIS_SERVER_VAR} to its path."
            )
        })
}

/// uid and gid of the `postgres` user when running as root (initdb refuses root), else None.
fn pg_owner() -> Option<(u32, u32)> {
    if id(&["-u"]) != Some(0) {
        return None;
    }
    match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
        (Some(uid), Some(gid)) => Some((uid, gid)),
        _ => panic!(
            "running as root, where initdb refuses to run, and there is no `postgres` user to run it as. \
             Install Debian's postgresql package (it creates the user; `bash scripts/test.sh` does it), \
             or run the tests as a normal user."
        ),
    }
}

/// A number printed by `id ARGS`.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A temp dir, owned by `owner` when given; under /tmp if `owner` cannot write in the one under the
/// usual temp directory (a TMPDIR only root may enter, say).
fn owned_temp_dir(prefix: &str, owner: Option<(u32, u32)>) -> tempfile::TempDir {
    let make = |parent: &Path| {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .unwrap_or_else(|e| panic!("temp dir in {}: {e}", parent.display()));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", dir.path().display()));
        }
        dir
    };
    let dir = make(&std::env::temp_dir());
    let Some((uid, gid)) = owner else {
        return dir;
    };
    let writable = Command::new("test")
        .arg("-w")
        .arg(dir.path())
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .status()
        .is_ok_and(|s| s.success());
    if writable {
        dir
    } else {
        make(Path::new("/tmp"))
    }
}
