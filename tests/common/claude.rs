//! The real Claude Code CLI for the tests: its Linux x64 platform package from npm (pinned in
//! tests/claude-code/package.json, installed with `npm ci --ignore-scripts` on first use), run headless with a
//! throwaway home against the Anthropic stand-in of `anthropic.rs`, inside a network namespace of its own where
//! the kernel allows one, so that nothing can leave the machine.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The versions the suite runs: the oldest supported and the newest that runs here.
pub const VERSIONS: [&str; 2] = ["2.1.197", "2.1.337"];

/// The most one `claude -p` run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/claude-code")
}

/// The `claude` binary of `version`, installing the pinned packages first when they are missing. Panics with
/// what is missing (npm, the registry) rather than skipping.
pub fn binary(version: &str) -> PathBuf {
    let dir = package_dir();
    let bin = dir.join(format!("node_modules/claude-code-{version}/claude"));
    // Written once `npm ci` has finished: a binary that merely exists may still be being written (and running it
    // then fails with "text file busy").
    let installed = dir.join("node_modules/.hivewatch-installed");
    let done = || std::fs::read_to_string(&installed).is_ok_and(|v| v == VERSIONS.join("\n"));
    if done() && bin.exists() {
        return bin;
    }
    // Several test processes may get here at once: one installs, the others wait for it.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".install.lock"))
        .expect("open tests/claude-code/.install.lock");
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock tests/claude-code/.install.lock");
    if !done() {
        let out = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the Claude Code tests install the CLI with `npm ci --prefix tests/claude-code`, but npm \
                     did not start ({e}): install Node.js and npm (Debian: apt-get install nodejs npm)"
                )
            });
        assert!(
            out.status.success(),
            "`npm ci --ignore-scripts --prefix tests/claude-code` failed (it needs the npm registry once; \
             the packages are @anthropic-ai/claude-code-linux-x64 at {VERSIONS:?}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        bin.exists(),
        "npm ci ran but {} is missing: is this an x86_64 Linux machine with glibc (the package's platform)?",
        bin.display()
    );
    std::fs::write(&installed, VERSIONS.join("\n")).expect("mark the install as finished");
    bin
}

/// Puts the calling thread, and every thread and process it starts from now on, into a new network namespace
/// with only a loopback interface. Returns false (and says why) where the kernel or the user may not: the tests
/// then run on the machine's loopback, which the stand-in and hivewatch listen on anyway.
pub fn isolate_network() -> bool {
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
        eprintln!(
            "claude tests: no network namespace ({e}); running on the host network (the CLI is pointed at local \
             servers only)"
        );
        return false;
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    match up {
        Ok(s) if s.success() => true,
        other => panic!(
            "entered a new network namespace but could not bring its loopback up with `ip link set lo up` \
             ({other:?}): install iproute2"
        ),
    }
}

/// A runtime for a test that drives the CLI: its threads, and every process the test starts, in a network
/// namespace of their own where one can be made ([`isolate_network`]).
pub fn isolated_runtime() -> tokio::runtime::Runtime {
    isolate_network();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What one run printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A throwaway project (a git repository with one commit) and home directory for Claude Code.
pub struct Project {
    tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub home: PathBuf,
}

impl Project {
    pub fn new() -> Project {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("demo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&dir).expect("project dir");
        std::fs::create_dir_all(&home).expect("home dir");
        let project = Project { tmp, dir, home };
        project.git(&["init", "-q", "-b", "main"]);
        std::fs::write(
            project.dir.join("README.md"),
            "demo project for the hivewatch tests\n",
        )
        .unwrap();
        project.commit("README.md", "first");
        project
    }

    /// Commits one file of the project, as a team commits its shared settings.
    pub fn commit(&self, file: &str, message: &str) {
        self.git(&["add", "-f", file]);
        self.commit_staged(&[], message);
    }

    /// A commit that changes nothing, for a history of the same shape as another project's.
    pub fn commit_empty(&self, message: &str) {
        self.commit_staged(&["--allow-empty"], message);
    }

    fn commit_staged(&self, flags: &[&str], message: &str) {
        let identity = ["-c", "user.email=dev@example.com", "-c", "user.name=dev"];
        let args: Vec<&str> = identity
            .into_iter()
            .chain(["commit", "-q"])
            .chain(flags.iter().copied())
            .chain(["-m", message])
            .collect();
        self.git(&args);
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .output()
            .expect("run git (install git)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs `claude args...` in the project with the stand-in as its API, and `env` on top (telemetry, a
    /// PATH). The environment is built from scratch so that nothing of the developer's leaks in.
    pub fn run(
        &self,
        claude: &Path,
        api_url: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Outcome {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut cmd = Command::new(claude);
        cmd.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("USER", "dev")
            .env("SHELL", "/bin/bash")
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("ANTHROPIC_BASE_URL", api_url)
            .env("ANTHROPIC_API_KEY", "sk-ant-hivewatch-test-dummy")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("IS_SANDBOX", "1")
            .env("GIT_AUTHOR_NAME", "dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", claude.display()));
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for claude") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "claude {args:?} did not finish within {RUN_TIMEOUT:?}; stderr so far:\n{}",
                    err_reader.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            code: status.code(),
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        }
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// A second, independent hook beside hivewatch's: every input it gets is saved as one file in `dir`, which is the
/// ground truth of what fired. Returns the settings.json `hooks` value registering it for `events`.
pub fn logging_hooks(dir: &Path, events: &[&str]) -> serde_json::Value {
    std::fs::create_dir_all(dir).expect("hook log dir");
    let command = format!(
        "cat > \"$(mktemp -p '{}' hook-XXXXXXXX.json)\"",
        dir.display()
    );
    let mut hooks = serde_json::Map::new();
    for event in events {
        hooks.insert(
            event.to_string(),
            serde_json::json!([{"hooks": [{"type": "command", "command": command, "timeout": 10}]}]),
        );
    }
    serde_json::Value::Object(hooks)
}

/// The hook inputs the logging hook saved, in no particular order.
pub fn logged_inputs(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("read a logged hook input");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", entry.path().display()));
        out.push(value);
    }
    out
}
