//! The built-in dashboard in a real browser: tests/browser/dashboard.mjs drives Debian's headless Chromium with
//! playwright-core against the real binary (the board of sessions following hook events live through their
//! states, events over OTLP and the hook endpoint, configuration records folded, the session filter, the session
//! view, reconnect, 10,000 events, and a read token). Screenshots land in target/test-artifacts/.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, client};

const CHROMIUM: &str = "/usr/bin/chromium";
/// With the characters of a base64 token, which go into the stream's `access_token` parameter as they are.
const READ_TOKEN: &str = "dashboard+test/read=token";
/// The whole browser script, Chromium's start included.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn browser_dir() -> PathBuf {
    repo().join("tests/browser")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { repo().join(t) })
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Node 20 or later (playwright-core's minimum).
fn ensure_node() {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let Some(version) = version else {
        panic!(
            "the dashboard test needs Node.js 20 or later (`node` on PATH) to drive the browser"
        );
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "the dashboard test needs Node.js 20 or later for playwright-core; found {version}"
    );
}

/// Debian's Chromium, installed with apt-get when missing and running as root.
fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    assert!(
        is_root(),
        "the dashboard test needs Debian's Chromium at {CHROMIUM}: run `sudo apt-get install chromium`"
    );
    eprintln!("dashboard test: installing Debian's chromium with apt-get");
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .output()
        .expect("run apt-get update");
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("run apt-get install chromium");
    assert!(
        install.status.success() && Path::new(CHROMIUM).exists(),
        "could not install Debian's chromium (needed at {CHROMIUM} by the dashboard test): \
         `apt-get install chromium` failed:\n{}\n{}",
        output_text(&update),
        output_text(&install)
    );
}

/// playwright-core from tests/browser/package-lock.json.
fn ensure_playwright() {
    let dir = browser_dir();
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the dashboard test runs `npm ci --prefix tests/browser`, but npm did not start: {e}")
        });
    assert!(
        out.status.success(),
        "`npm ci --prefix tests/browser` failed (it installs playwright-core for the dashboard test):\n{}",
        output_text(&out)
    );
}

/// Runs the browser script against `base`; panics with its output unless it exits 0.
fn run_browser(base: &str, extra: &[String]) -> String {
    let dir = artifacts();
    let log = dir.join(if extra.is_empty() {
        "dashboard-browser.log"
    } else {
        "dashboard-browser-token.log"
    });
    let log_file = std::fs::File::create(&log).expect("browser log");
    let mut child = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .arg(base)
        .arg(&dir)
        .args(extra)
        .env("HIVEWATCH_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log handle"))
        .stderr(log_file)
        .spawn()
        .expect("start node tests/browser/dashboard.mjs");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    println!("{output}");
    match status {
        Some(s) if s.success() => output,
        Some(s) => panic!(
            "the dashboard browser test failed ({s}); screenshots in {}:\n{output}",
            dir.display()
        ),
        None => panic!(
            "the dashboard browser test did not finish within {} s:\n{output}",
            BROWSER_TIMEOUT.as_secs()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_headless_chromium() {
    ensure_node();
    ensure_chromium();
    ensure_playwright();

    let server = Server::start();
    server.wait_ready().await;
    // The page and its assets come from the binary itself.
    for (path, content_type) in [
        ("/", "text/html"),
        ("/js/main.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let resp = client().get(server.url(path)).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "GET {path}");
        let ct = resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with(content_type), "GET {path}: {ct}");
        assert!(!resp.text().await.unwrap().is_empty(), "GET {path}: empty");
    }

    let base = server.http.clone();
    let output = tokio::task::spawn_blocking(move || run_browser(&base, &[]))
        .await
        .expect("browser run");
    assert!(output.contains("all checks passed"), "{output}");
    assert!(
        artifacts().join("dashboard.png").exists(),
        "screenshot saved"
    );
    if let Some(figures) = output.lines().find(|l| l.contains("figures")) {
        eprintln!("dashboard responsiveness: {figures}");
    }
    drop(server);

    // A hivewatch with a read token: the page asks for it and then reads with it.
    let guarded = Server::start_with(&["--read-token", READ_TOKEN]);
    guarded.wait_ready().await;
    let base = guarded.http.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_browser(&base, &[format!("--read-token={READ_TOKEN}")])
    })
    .await
    .expect("browser run");
    assert!(output.contains("all token checks passed"), "{output}");
}
