//! The monitoring shipped beside hivewatch (`prometheus-rules/`, `grafana-provisioning/`, docs/ALERTS.md), checked by
//! the programs that read it and against a running hivewatch fed with the recorded Claude Code fixtures.
//!
//! - `promtool check rules`, `promtool test rules` (every alert has a case where it fires and one where it does
//!   not), `promtool check config` on the example Prometheus, `amtool check-config` and routing on the example
//!   Alertmanager.
//! - A real Prometheus scrapes a hivewatch on Postgres with a Redis stream every second and evaluates the rules.
//!   Every PromQL expression of the rules (as Prometheus loaded them), of the dashboards and of the Grafana alert
//!   rules is evaluated through its HTTP API and must parse and return data. One that returns nothing because its
//!   threshold is not met is split at its top-level comparison and set operators (`>`, `==`, `and`, `or`, …; the
//!   `bool`, `on(…)`, `ignoring(…)` and `group_*(…)` modifiers after them dropped), and every operand that is not a
//!   number must return data (for `absent(x)`, `x` must). Grafana's `$__rate_interval` and `$__interval` become
//!   `1m`, `$__range` `1h`, and each dashboard variable `.*`.
//! - Every SQL query of the dashboards (panels and variables) runs on that hivewatch's Postgres database and returns
//!   rows: `$__timeFilter(col)` becomes the last 30 days, `$session` the recorded session that has hook events,
//!   tool calls, a subagent and a transcript, and a multi-value variable every value the data offers for it.
//! - Every `hivewatch_*` and `claude_code_*` name in those files is served by `GET /metrics`.
//!
//! The Prometheus tools come from Debian's `prometheus` and `prometheus-alertmanager` packages, which
//! `bash scripts/test.sh` installs (`ensure_prometheus` in scripts/lib/services.sh).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::services::{fresh_database, query_rows, shared_redis, unique_stream_key};
use common::{FIXTURES, Server, client, fixture, fixture_bytes};
use regex::Regex;
use serde_json::{Value, json};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The recorded session with hook events of the main agent and a subagent, paired tool calls and a transcript.
const SESSION: &str = "1d03709e-189a-498d-a6ca-69950cf4473b";
const SUBAGENT: &str = "a828a481a9d4da57f";
const DATASOURCES: [&str; 3] = ["prometheus", "hivewatch-postgres", "tempo"];

fn repo(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The files directly in `dir` whose names end with one of `suffixes`, sorted.
fn files(dir: &str, suffixes: &[&str]) -> Vec<PathBuf> {
    let dir = repo(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && suffixes.iter().any(|s| name.ends_with(s))
        })
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "no {suffixes:?} files in {}",
        dir.display()
    );
    out
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

// --- the Prometheus tools -------------------------------------------------------------------------------------

/// `name` on PATH; a missing one fails the test, saying which Debian package has it.
fn tool(name: &str) -> PathBuf {
    let package = if name == "amtool" {
        "prometheus-alertmanager"
    } else {
        "prometheus"
    };
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not on PATH: it comes with Debian's `{package}` package \
                 (`sudo apt-get install -y --no-install-recommends {package}`); `bash scripts/test.sh` installs it \
                 when run as root"
            )
        })
}

/// Runs `cmd` in the repository; what it printed on stdout, or a panic with everything it said.
fn run(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .current_dir(REPO)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn prometheus_tools_accept_the_rules_their_unit_tests_and_the_example_configs() {
    let (promtool, amtool) = (tool("promtool"), tool("amtool"));
    tool("prometheus");

    let mut check = Command::new(&promtool);
    check
        .args(["check", "rules"])
        .args(files("prometheus-rules", &[".rules.yml"]));
    run(check);

    let mut unit = Command::new(&promtool);
    unit.args(["test", "rules"])
        .args(files("prometheus-rules/tests", &[".yml"]));
    run(unit);

    let mut config = Command::new(&promtool);
    config.args(["check", "config", "prometheus-rules/prometheus.example.yml"]);
    let out = run(config);
    assert!(
        out.contains("rule files found"),
        "the example loads the rules: {out}"
    );

    let mut am = Command::new(&amtool);
    am.args(["check-config", "prometheus-rules/alertmanager.example.yml"]);
    run(am);

    // Routing by severity; HivewatchDown inhibits the rest (checked as configuration above).
    for (labels, receiver) in [
        (
            ["severity=critical", "alertname=HivewatchDown"],
            "hivewatch-critical",
        ),
        (
            ["severity=warning", "alertname=HivewatchCpuHigh"],
            "hivewatch-warning",
        ),
    ] {
        let mut route = Command::new(&amtool);
        route
            .args([
                "config",
                "routes",
                "test",
                "--config.file=prometheus-rules/alertmanager.example.yml",
            ])
            .args(labels);
        let out = run(route);
        assert_eq!(out.trim(), receiver, "{labels:?}");
    }
}

// --- static checks --------------------------------------------------------------------------------------------

/// The value of every `key:` in a YAML file laid out as this repository's are: a plain or quoted scalar on the same
/// line, or a block scalar (`|`, `>`, with `-`) on the more indented lines below it (joined with spaces).
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("{key}:");
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let trimmed = line.trim_start();
        let Some(rest) = trimmed
            .strip_prefix("- ")
            .unwrap_or(trimmed)
            .strip_prefix(&prefix)
        else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line))
            {
                block.push(lines[i].trim());
                i += 1;
            }
            out.push(block.join(" ").trim().to_string());
        } else if let Some(s) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            out.push(s.replace("''", "'"));
        } else if let Some(s) = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            out.push(s.replace("\\\"", "\"").replace("\\\\", "\\"));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// GitHub's anchors of the headings of a Markdown file.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

fn alert_names() -> Vec<String> {
    files("prometheus-rules", &[".rules.yml"])
        .iter()
        .flat_map(|f| yaml_values(&read(f), "alert"))
        .collect()
}

/// The dashboards, by file name.
fn dashboards() -> BTreeMap<String, Value> {
    files("grafana-provisioning/dashboards", &[".json"])
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let dashboard = serde_json::from_str(&read(&path))
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            (name, dashboard)
        })
        .collect()
}

/// Every panel of a dashboard, those inside collapsed rows too.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The data source uid a panel's target queries: its own, else its panel's.
fn target_datasource<'a>(panel: &'a Value, target: &'a Value) -> &'a str {
    target["datasource"]["uid"]
        .as_str()
        .or(panel["datasource"]["uid"].as_str())
        .unwrap_or("")
}

/// (where, query) of every panel target on the data source `uid`; the query is `field` of the target.
fn panel_queries(uid: &str, field: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if target_datasource(panel, target) == uid {
                    let query = target[field].as_str().unwrap_or_else(|| {
                        panic!("{file} / {}: a target without {field}", panel["title"])
                    });
                    out.push((
                        format!("{file} / {} / {}", panel["title"], target["refId"]),
                        query.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// The template variables of every dashboard, with their file's name.
fn variables() -> Vec<(String, Value)> {
    dashboards()
        .into_iter()
        .flat_map(|(file, d)| {
            d["templating"]["list"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |v| (file.clone(), v))
        })
        .collect()
}

#[test]
fn every_alert_has_unit_tests_a_runbook_and_a_grafana_copy_and_the_dashboards_are_well_formed() {
    let alerts = alert_names();
    assert!(alerts.len() >= 10, "{alerts:?}");

    // promtool cases: `alertname: X` followed by `exp_alerts: []` (quiet) or by a list (firing).
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in files("prometheus-rules/tests", &[".yml"]) {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(name) = line.strip_prefix("alertname:") {
                match lines.get(i + 1).copied() {
                    Some("exp_alerts: []") => quiet.insert(name.trim().to_string()),
                    Some("exp_alerts:") => firing.insert(name.trim().to_string()),
                    other => panic!("{}: alertname {name} followed by {other:?}", file.display()),
                };
            }
        }
    }
    let docs = anchors(&read(&repo("docs/ALERTS.md")));
    let grafana = read(&repo("grafana-provisioning/alerting/hivewatch-alerts.yml"));
    let grafana_titles = yaml_values(&grafana, "title");
    let grafana_runbooks = yaml_values(&grafana, "runbook_url");
    let rule_runbooks: Vec<String> = files("prometheus-rules", &[".rules.yml"])
        .iter()
        .flat_map(|f| yaml_values(&read(f), "runbook_url"))
        .collect();
    assert_eq!(
        rule_runbooks.len(),
        alerts.len(),
        "every alert has a runbook_url"
    );
    for alert in &alerts {
        assert!(
            firing.contains(alert),
            "{alert}: no promtool case where it fires"
        );
        assert!(
            quiet.contains(alert),
            "{alert}: no promtool case where it stays quiet"
        );
        let anchor = alert.to_lowercase();
        assert!(
            docs.contains(&anchor),
            "{alert}: no section in docs/ALERTS.md"
        );
        let url = format!("docs/ALERTS.md#{anchor}");
        assert!(
            rule_runbooks.contains(&url),
            "{alert}: runbook_url {url} expected"
        );
        assert!(
            grafana_titles.contains(alert),
            "{alert}: no Grafana-managed copy"
        );
        assert!(
            grafana_runbooks.contains(&url),
            "{alert}: the Grafana copy's runbook_url"
        );
    }
    assert_eq!(
        grafana_titles.len(),
        alerts.len(),
        "one Grafana rule per alert"
    );

    // Data sources the dashboards and alert rules refer to are provisioned.
    let provisioned = yaml_values(
        &read(&repo("grafana-provisioning/datasources/hivewatch.yml")),
        "uid",
    );
    assert_eq!(provisioned, DATASOURCES, "provisioned data source uids");
    for uid in yaml_values(&grafana, "datasourceUid") {
        assert!(
            uid == "prometheus" || uid == "__expr__",
            "alert rule data source {uid}"
        );
    }
    let mut uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let uid = dashboard["uid"]
            .as_str()
            .expect("dashboard uid")
            .to_string();
        assert!(uids.insert(uid), "{file}: dashboard uid used twice");
        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"].as_i64().expect("panel id");
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            assert!(panel["gridPos"]["w"].as_i64().is_some(), "{file}: gridPos");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let uid = target_datasource(panel, target);
                assert!(
                    DATASOURCES.contains(&uid),
                    "{file} / {}: data source {uid}",
                    panel["title"]
                );
                assert!(target["refId"].is_string(), "{file}: refId");
            }
        }
    }
}

// --- a running hivewatch, fed the fixtures ----------------------------------------------------------------------

/// Claude Code's metric records (one file per metric) as one OTLP/JSON export request.
fn metrics_export() -> Value {
    let mut resource_metrics = Vec::new();
    let dir = Path::new(FIXTURES).join("otel/metrics");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("metric fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let record: Value = serde_json::from_str(&read(&path)).expect("metric fixture is JSON");
        let attributes: Vec<Value> = record["resource"]
            .as_object()
            .expect("resource attributes")
            .iter()
            .map(|(k, v)| {
                json!({"key": k, "value": {"stringValue": v.as_str().map_or_else(|| v.to_string(), str::to_string)}})
            })
            .collect();
        resource_metrics.push(json!({
            "resource": {"attributes": attributes},
            "scopeMetrics": [{"scope": record["scope"], "metrics": [record["metric"]]}],
        }));
    }
    json!({ "resourceMetrics": resource_metrics })
}

fn transcript(rel: &str) -> Vec<Value> {
    read(&Path::new(FIXTURES).join("transcripts").join(rel))
        .lines()
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
}

/// Sends every recorded payload `rounds` times, `pause` apart: each hook fixture file as one batch (new event ids
/// each time), the OTLP logs, traces and metrics exports, Claude Code's other metric records, the session's
/// transcripts, and one request of each kind that hivewatch refuses as invalid.
async fn feed(server: &Server, rounds: usize, pause: Duration) {
    let http = client();
    let hooks = files("tests/fixtures/claude-code/hooks", &[".json"]);
    let metrics = metrics_export();
    let main = transcript(&format!("{SESSION}.jsonl"));
    let sub = transcript(&format!("{SESSION}/subagents/agent-{SUBAGENT}.jsonl"));
    for round in 0..rounds {
        if round > 0 {
            tokio::time::sleep(pause).await;
        }
        for path in &hooks {
            let rel = path.strip_prefix(FIXTURES).unwrap().to_string_lossy();
            let (status, body) = server
                .post_json(
                    "/api/v1/observability/event",
                    &fixture(rel.trim_start_matches('/')),
                )
                .await;
            assert_eq!(status, 200, "{}: {body}", path.display());
        }
        for (path, body) in [
            ("/v1/logs", fixture_bytes("otlp-json/export_logs.json")),
            ("/v1/traces", fixture_bytes("otlp-json/export_traces.json")),
            (
                "/v1/metrics",
                fixture_bytes("otlp-json/export_metrics.json"),
            ),
            ("/v1/metrics", serde_json::to_vec(&metrics).unwrap()),
        ] {
            let resp = http
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST");
            let status = resp.status();
            assert_eq!(status, 200, "{path}: {}", resp.text().await.unwrap());
        }
        for body in [
            json!({"session_id": SESSION, "entries": main}),
            json!({"session_id": SESSION, "agent_id": SUBAGENT, "entries": sub}),
        ] {
            let (status, answer) = server
                .post_json("/api/v1/observability/transcripts", &body)
                .await;
            assert_eq!(status, 200, "transcripts: {answer}");
        }
        for (path, body) in [
            ("/api/v1/observability/event", "this is not JSON"),
            ("/v1/logs", r#"{"resourceLogs": "not a list"}"#),
        ] {
            let resp = http
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST");
            assert_eq!(resp.status(), 400, "{path} refuses {body}");
        }
    }
}

// --- a real Prometheus --------------------------------------------------------------------------------------------

/// `prometheus` on a free port of 127.0.0.1 with its own storage, scraping one hivewatch every second and
/// evaluating the repository's rule files every second. Killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(hivewatch: &Server) -> Prometheus {
        let binary = tool("prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let rule_files: Vec<String> = files("prometheus-rules", &[".rules.yml"])
            .iter()
            .map(|p| format!("  - {}", p.display()))
            .collect();
        let target = hivewatch.http.trim_start_matches("http://");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\n\
             scrape_configs:\n  - job_name: hivewatch\n    metrics_path: /metrics\n    static_configs:\n      \
             - targets: [\"{target}\"]\n",
            rule_files.join("\n")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for attempt in 1..=5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
            let mut child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().expect("wait prometheus") {
                    let log = read(&dir.path().join("prometheus.log"));
                    if attempt < 5 && log.contains("address already in use") {
                        break;
                    }
                    panic!("prometheus exited ({status}):\n{log}");
                }
                if let Ok(r) = client().get(format!("{base}/-/ready")).send().await
                    && r.status().is_success()
                {
                    return Prometheus { child, base, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "prometheus not ready within 30 s:\n{}",
                        read(&dir.path().join("prometheus.log"))
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// GET `path` of the HTTP API; the `data` of a success, else the error Prometheus gave.
    async fn api(&self, path: &str) -> Result<Value, String> {
        let resp = client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// Evaluates `expr` now: whether it returned any sample (a scalar or string always does).
    async fn has_data(&self, expr: &str) -> Result<bool, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", encode(expr)))
            .await?;
        Ok(match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                data["result"].as_array().is_some_and(|r| !r.is_empty())
            }
            _ => true,
        })
    }

    /// Whether `expr` returns data, or else every operand of its top-level comparisons and set operations does; a
    /// sentence saying what is wrong otherwise.
    async fn check(&self, expr: &str) -> Result<(), String> {
        if self.has_data(expr).await? {
            return Ok(());
        }
        let parts = operands(expr);
        if parts.len() == 1 {
            return Err("returns no data".into());
        }
        for part in parts {
            if part.parse::<f64>().is_ok() {
                continue;
            }
            let inner = part
                .strip_prefix("absent(")
                .and_then(|p| p.strip_suffix(')'))
                .unwrap_or(&part);
            match self.has_data(inner).await {
                Ok(true) => {}
                Ok(false) => return Err(format!("its operand `{inner}` returns no data")),
                Err(e) => return Err(format!("its operand `{inner}`: {e}")),
            }
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding of everything but unreserved characters, for a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// `expr` cut at its top-level (outside brackets and strings) comparison and set operators.
fn split_top_level(expr: &str) -> Vec<&str> {
    let b = expr.as_bytes();
    let (mut depth, mut start, mut i) = (0i32, 0, 0);
    let mut parts = Vec::new();
    while i < b.len() {
        let c = b[i];
        let op = match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' && c != b'`' { 2 } else { 1 };
                }
                0
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                0
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                0
            }
            _ if depth > 0 => 0,
            _ if ["==", "!=", ">=", "<="]
                .iter()
                .any(|o| b[i..].starts_with(o.as_bytes())) =>
            {
                2
            }
            b'>' | b'<' => 1,
            _ => ["and", "or", "unless"]
                .iter()
                .find(|w| {
                    b[i..].starts_with(w.as_bytes())
                        && (i == 0 || !is_ident(b[i - 1]))
                        && b.get(i + w.len()).is_none_or(|&n| !is_ident(n))
                })
                .map_or(0, |w| w.len()),
        };
        if op > 0 {
            parts.push(&expr[start..i]);
            start = i + op;
            i += op;
        } else {
            i += 1;
        }
    }
    parts.push(&expr[start..]);
    parts
}

/// `part` without the modifiers that may follow a binary operator: `bool`, `on(…)`, `ignoring(…)`,
/// `group_left(…)`, `group_right(…)`.
fn strip_modifiers(part: &str) -> &str {
    let mut rest = part.trim();
    loop {
        let Some(word) = ["bool", "on", "ignoring", "group_left", "group_right"]
            .iter()
            .find(|w| {
                rest.starts_with(**w)
                    && rest[w.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == '(' || c.is_whitespace())
            })
        else {
            return rest;
        };
        rest = rest[word.len()..].trim_start();
        if *word != "bool"
            && rest.starts_with('(')
            && let Some(close) = rest.find(')')
        {
            rest = rest[close + 1..].trim_start();
        }
    }
}

/// The operands of `expr`'s top-level comparisons and set operations, recursively; `[expr]` when it has none.
fn operands(expr: &str) -> Vec<String> {
    let parts = split_top_level(expr);
    if parts.len() == 1 {
        return vec![expr.trim().to_string()];
    }
    parts
        .into_iter()
        .flat_map(|p| operands(strip_modifiers(p)))
        .collect()
}

/// A dashboard's PromQL with Grafana's interval variables and the dashboard's own variables replaced.
fn promql_for_test(expr: &str, variables: &BTreeSet<String>) -> Result<String, String> {
    let mut out = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    for name in variables.iter().rev() {
        out = out
            .replace(&format!("${{{name}}}"), ".*")
            .replace(&format!("${name}"), ".*");
    }
    if out.contains('$') {
        return Err(format!("an unknown variable in {out}"));
    }
    Ok(out)
}

/// Polls until `expr` returns data, for up to `timeout`.
async fn wait_for_data(prometheus: &Prometheus, expr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if prometheus.has_data(expr).await == Ok(true) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn hivewatch_on_postgres_and_redis() -> Server {
    let database = fresh_database().await;
    let redis = shared_redis().await;
    let key = unique_stream_key("observability");
    let server = Server::start_with(&[
        "--database-url",
        &database,
        "--redis-url",
        &redis,
        "--redis-stream-key",
        &key,
    ]);
    server.wait_ready().await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn every_promql_expression_returns_data_on_a_real_prometheus_and_every_metric_name_is_served()
{
    let server = hivewatch_on_postgres_and_redis().await;
    let prometheus = Prometheus::start(&server).await;
    assert!(
        wait_for_data(
            &prometheus,
            r#"up{job="hivewatch"} == 1"#,
            Duration::from_secs(30)
        )
        .await,
        "Prometheus never scraped hivewatch:\n{}",
        prometheus.log()
    );
    feed(&server, 4, Duration::from_millis(1500)).await;
    // Several scrapes after the last round, so that every counter has samples before and after it.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut failures: Vec<String> = Vec::new();

    // The rules as Prometheus loaded them: all of them, evaluated without error.
    let groups = prometheus.api("/api/v1/rules").await.expect("rules API");
    let rules: Vec<Value> = groups["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let in_files: usize = files("prometheus-rules", &[".rules.yml"])
        .iter()
        .map(|f| yaml_values(&read(f), "expr").len())
        .sum();
    assert_eq!(rules.len(), in_files, "Prometheus loaded every rule");
    let records: BTreeSet<String> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    for record in &records {
        if !wait_for_data(&prometheus, record, Duration::from_secs(20)).await {
            failures.push(format!("recording rule {record}: no data"));
        }
    }
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        if rule["health"] != "ok" || rule["lastError"].as_str().is_some_and(|e| !e.is_empty()) {
            failures.push(format!(
                "rule {name}: health {} {}",
                rule["health"], rule["lastError"]
            ));
        }
        if rule["type"] == "alerting" {
            let severity = rule["labels"]["severity"].as_str().unwrap_or("");
            if !["critical", "warning"].contains(&severity) {
                failures.push(format!("alert {name}: severity {severity:?}"));
            }
            for key in ["summary", "description", "runbook_url"] {
                if rule["annotations"][key].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("alert {name}: no {key}"));
                }
            }
            let query = rule["query"].as_str().unwrap_or("");
            if let Err(e) = prometheus.check(query).await {
                failures.push(format!("alert {name}: {e}\n    {query}"));
            }
        }
    }

    // The dashboards' queries and Prometheus variables.
    let mut exprs: Vec<(String, String)> = Vec::new();
    let mut prom_variables = BTreeSet::new();
    for (file, variable) in variables() {
        if variable["datasource"]["uid"] != "prometheus" {
            continue;
        }
        prom_variables.insert(variable["name"].as_str().unwrap().to_string());
        let definition = variable["definition"].as_str().unwrap_or("");
        let Some((metric, label)) = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .and_then(|d| d.split_once(','))
        else {
            failures.push(format!(
                "{file}: variable {variable}: not label_values(metric, label)"
            ));
            continue;
        };
        let label = label.trim();
        let data = prometheus
            .api(&format!("/api/v1/query?query={}", encode(metric)))
            .await;
        let has_label = data.as_ref().is_ok_and(|d| {
            d["result"]
                .as_array()
                .is_some_and(|r| r.iter().any(|s| s["metric"][label].is_string()))
        });
        if !has_label {
            failures.push(format!(
                "{file}: variable {}: {metric} has no series with {label}: {data:?}",
                variable["name"]
            ));
        }
    }
    for (place, expr) in panel_queries("prometheus", "expr") {
        match promql_for_test(&expr, &prom_variables) {
            Ok(e) => exprs.push((place, e)),
            Err(e) => failures.push(format!("{place}: {e}")),
        }
    }
    // The Grafana alert rules: one Prometheus query each.
    let grafana = read(&repo("grafana-provisioning/alerting/hivewatch-alerts.yml"));
    let grafana_exprs = yaml_values(&grafana, "expr");
    assert_eq!(
        grafana_exprs.len(),
        grafana
            .lines()
            .filter(|l| l.trim_start().starts_with("- uid:"))
            .count(),
        "one query per Grafana alert rule"
    );
    for (i, expr) in grafana_exprs.into_iter().enumerate() {
        exprs.push((format!("Grafana alert rule #{}", i + 1), expr));
    }
    assert!(exprs.len() > 40, "{} expressions", exprs.len());
    for (place, expr) in &exprs {
        if let Err(e) = prometheus.check(expr).await {
            failures.push(format!("{place}: {e}\n    {expr}"));
        }
    }

    // Every metric name the files use is served by /metrics; every recording rule they use exists.
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    let mut served = BTreeSet::new();
    for line in text.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            served.insert(family.split_whitespace().next().unwrap_or("").to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            served.insert(line.split(['{', ' ']).next().unwrap_or("").to_string());
        }
    }
    let token = Regex::new(r"[A-Za-z0-9_:]+").unwrap();
    let mut names = BTreeSet::new();
    for dir in ["prometheus-rules", "grafana-provisioning"] {
        for file in all_files(&repo(dir)) {
            for t in token.find_iter(&read(&file)).map(|m| m.as_str()) {
                if t.starts_with("hivewatch_") || t.starts_with("claude_code_") {
                    names.insert((t.to_string(), file.clone()));
                } else if t.contains(':') && t.contains("hivewatch_") && !records.contains(t) {
                    failures.push(format!("{}: {t} is not a recording rule", file.display()));
                }
            }
        }
    }
    for (name, file) in &names {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        if !served.contains(name.as_str()) && !served.contains(family) {
            failures.push(format!("{}: {name} is not in GET /metrics", file.display()));
        }
    }
    assert!(names.len() > 30, "{names:?}");

    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}\n\nPrometheus log:\n{}",
        failures.len(),
        failures.join("\n"),
        prometheus.log()
    );
}

// --- Postgres -----------------------------------------------------------------------------------------------------

/// `'a','b'` for a SQL `IN (…)`.
fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_sql_query_returns_rows_from_postgres() {
    let database = fresh_database().await;
    let server = Server::start_with(&["--database-url", &database]);
    server.wait_ready().await;
    feed(&server, 2, Duration::from_millis(100)).await;

    // Grafana's values for the variables: the session's id, and for a multi-value variable ("All") every value.
    let sessions = query_rows(
        &database,
        &format!("SELECT session_id::text AS v FROM sessions WHERE session_id = '{SESSION}'"),
    )
    .await;
    assert_eq!(sessions, [SESSION], "the recorded session is stored");
    let mut values: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    values.insert("session", vec![SESSION.to_string()]);
    values.insert(
        "source_app",
        query_rows(&database, "SELECT DISTINCT source_app AS v FROM sessions").await,
    );
    for (var, column) in [("agent", "agent_id"), ("event_type", "event_type")] {
        values.insert(
            var,
            query_rows(
                &database,
                &format!(
                    "SELECT DISTINCT {column} AS v FROM agent_events WHERE session_id = '{SESSION}'"
                ),
            )
            .await,
        );
    }
    assert!(
        values["agent"].contains(&SUBAGENT.to_string()),
        "{values:?}"
    );
    let mut multi = BTreeMap::new();
    let mut queries: Vec<(String, String)> = Vec::new();
    for (file, variable) in variables() {
        if variable["datasource"]["uid"] != "hivewatch-postgres" {
            continue;
        }
        let name = variable["name"].as_str().unwrap().to_string();
        multi.insert(
            name.clone(),
            variable["multi"] == true || variable["includeAll"] == true,
        );
        queries.push((
            format!("{file}: variable {name}"),
            variable["query"].as_str().unwrap().to_string(),
        ));
    }
    queries.extend(panel_queries("hivewatch-postgres", "rawSql"));
    assert!(queries.len() >= 10, "{queries:?}");

    let time_filter = Regex::new(r"\$__timeFilter\(([^)]*)\)").unwrap();
    let mut failures = Vec::new();
    for (place, sql) in &queries {
        let mut sql = time_filter
            .replace_all(
                sql,
                "$1 BETWEEN now() - interval '30 days' AND now() + interval '1 day'",
            )
            .into_owned();
        for (name, is_multi) in multi.iter().rev() {
            let vals = values
                .get(name.as_str())
                .unwrap_or_else(|| panic!("no test values for ${name}"));
            let value = if *is_multi {
                quoted(vals)
            } else {
                vals[0].clone()
            };
            sql = sql.replace(&format!("${name}"), &value);
        }
        if sql.contains('$') {
            failures.push(format!("{place}: an unknown variable or macro in\n{sql}"));
            continue;
        }
        let count = query_rows(
            &database,
            &format!("SELECT count(*)::text AS v FROM ({sql}) AS q"),
        )
        .await;
        if count.first().is_none_or(|n| n == "0") {
            failures.push(format!("{place}: no rows from\n{sql}"));
            continue;
        }
        // A panel's time column must be a timestamp for Grafana to place it on the time axis.
        if sql.contains(r#"AS "time""#) {
            let kind = query_rows(
                &database,
                &format!(r#"SELECT pg_typeof("time")::text AS v FROM ({sql}) AS q LIMIT 1"#),
            )
            .await;
            if kind != ["timestamp with time zone"] {
                failures.push(format!("{place}: time column is {kind:?}"));
            }
        }
        if place.ends_with("variable session") {
            let ids =
                query_rows(&database, &format!("SELECT __value AS v FROM ({sql}) AS q")).await;
            if !ids.iter().any(|id| id == SESSION) {
                failures.push(format!("{place}: the session is not offered: {ids:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
