//! The real Claude Code CLI with hivewatch installed, on both pinned versions (tests/claude-code/package.json),
//! headless and offline against the Anthropic stand-in (tests/common/anthropic.rs).
//!
//! Every scenario runs twice in two fresh projects: once with only an independent logging hook (the ground
//! truth of which hooks fired), once with the same logging hook and hivewatch installed as a user installs it
//! (`hivewatch install-hooks`, command hooks or `--http`) with Claude Code's native telemetry pointed at
//! hivewatch. Checked: Claude Code exits and prints the same in both; every hook that fired is stored exactly once;
//! native logs and spans land in the same session; every tool call has a latency; the session's cost is the sum of
//! the native `api_request` costs; Claude Code's own telemetry reports no failed hook.
//!
//! `HIVEWATCH_RECORD_FIXTURES=1` also writes the hook inputs of the newest version into
//! `tests/fixtures/claude-code-<version>/hooks/` (paths rewritten to `/home/dev`); run it alone and on one thread:
//! `rm -rf tests/fixtures/claude-code-2.1.337 && HIVEWATCH_RECORD_FIXTURES=1 cargo nextest run --test claude_code
//! --test-threads 1`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Server;
use common::anthropic::FakeAnthropic;
use common::claude::{self, Outcome, Project};
use hivewatch::model::hook_events::{self, HandlerKind};
use serde_json::{Value, json};

/// How hivewatch is installed for a run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Install {
    /// `hivewatch install-hooks` (command hooks in .claude/settings.local.json).
    Command,
    /// `hivewatch install-hooks --http`.
    Http,
    /// `hivewatch install-hooks --shared`, committed, with hivewatch on PATH.
    Shared,
    /// The same committed settings on a teammate's machine without hivewatch: the hooks must be silent no-ops.
    SharedWithoutBinary,
}

impl Install {
    fn stores_hooks(self) -> bool {
        self != Install::SharedWithoutBinary
    }

    fn kind(self) -> HandlerKind {
        match self {
            Install::Http => HandlerKind::Http,
            _ => HandlerKind::Command,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scenario {
    Bash,
    FailingTool,
    Subagent,
    WriteRead,
    Compact,
    ApiError,
    Worktree,
    /// A project skill whose text runs a shell command (`PreSkillShellCommand`).
    Skill,
    /// `/model` then a turn (`PreModelSwitch`, `PostModelSwitch`).
    ModelSwitch,
}

impl Scenario {
    /// The `claude` invocations of the scenario, in order.
    fn runs(self) -> Vec<Vec<&'static str>> {
        let p = |prompt: &'static str| vec!["-p", "--dangerously-skip-permissions", prompt];
        match self {
            Scenario::Bash => vec![p("[[hw:bash]] run a command")],
            Scenario::FailingTool => vec![p("[[hw:fail]] run a failing command")],
            Scenario::Subagent => vec![p("[[hw:subagent]] delegate a command")],
            Scenario::WriteRead => vec![p("[[hw:write_read]] write a file then read it")],
            Scenario::Compact => vec![
                p("[[hw:bash]] run a command"),
                vec![
                    "-p",
                    "--dangerously-skip-permissions",
                    "--continue",
                    "/compact",
                ],
            ],
            Scenario::ApiError => vec![p("[[hw:api_error]] this request fails")],
            Scenario::Skill => vec![p("/greet")],
            Scenario::ModelSwitch => vec![
                p("/model claude-sonnet-4-5"),
                vec![
                    "-p",
                    "--dangerously-skip-permissions",
                    "--continue",
                    "[[hw:bash]] run a command",
                ],
            ],
            Scenario::Worktree => vec![vec![
                "-p",
                "--dangerously-skip-permissions",
                "--worktree",
                "wt1",
                "[[hw:bash]] run a command in a worktree",
            ]],
        }
    }
}

/// The events the logging hook records: all those hivewatch registers as command hooks (http hooks are a subset).
impl Scenario {
    /// Files the scenario needs in the project before Claude Code starts.
    fn prepare(self, project: &Project) {
        if self == Scenario::Skill {
            let dir = project.dir.join(".claude/skills/greet");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("SKILL.md"),
                "---\nname: greet\ndescription: Greets with the year\n---\nThe year is: !`date +%Y`\n\
                 [[hw:plain]] Say hello.\n",
            )
            .unwrap();
        }
    }
}

fn events_hivewatch_registers() -> Vec<&'static str> {
    hook_events::registered(HandlerKind::Command)
        .map(|(name, _)| name)
        .collect()
}

/// Environment that points Claude Code's native telemetry at hivewatch's OTLP gRPC port.
fn telemetry_env(server: &Server) -> Vec<(&'static str, String)> {
    [
        ("CLAUDE_CODE_ENABLE_TELEMETRY", "1"),
        ("CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "1"),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_LOGS_EXPORT_INTERVAL", "500"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ("OTEL_TRACES_EXPORT_INTERVAL", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .chain([("OTEL_EXPORTER_OTLP_ENDPOINT", server.grpc.clone())])
    .collect()
}

/// Writes the logging hook into the project's shared settings file and commits it, as a team would (so that
/// `claude --worktree` sessions, which read the new worktree's files, have it too).
fn install_logger(project: &Project, log_dir: &Path) {
    let settings = json!({"hooks": claude::logging_hooks(log_dir, &events_hivewatch_registers())});
    let dir = project.dir.join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("settings.json"),
        serde_json::to_string_pretty(&settings).unwrap(),
    )
    .unwrap();
    project.commit(".claude/settings.json", "the logging hook");
}

/// The system directories only: no hivewatch in them (checked), as on a machine where it was never installed.
fn path_without_hivewatch() -> String {
    let dirs = ["/usr/local/bin", "/usr/bin", "/bin"];
    for d in dirs {
        assert!(
            !Path::new(d).join("hivewatch").exists(),
            "{d}/hivewatch exists: the test of a machine without hivewatch needs a PATH without it"
        );
    }
    dirs.join(":")
}

/// PATH with the directory of the hivewatch binary under test first.
fn path_with_hivewatch() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_hivewatch"));
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        path_without_hivewatch()
    )
}

/// The hook side's own directories, so that nothing of the developer's is read or written.
fn hook_env(root: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "HIVEWATCH_STATE_DIR",
            root.join("hw-state").display().to_string(),
        ),
        (
            "HIVEWATCH_CONFIG_DIR",
            root.join("hw-config").display().to_string(),
        ),
    ]
}

fn install_hivewatch(project: &Project, server: &Server, install: Install) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"));
    cmd.arg("install-hooks")
        .arg("--project-dir")
        .arg(&project.dir)
        .args(["--endpoint", &server.http])
        .env("HOME", &project.home)
        .envs(hook_env(project.root()));
    match install {
        Install::Command => {}
        Install::Http => {
            cmd.arg("--http");
        }
        Install::Shared | Install::SharedWithoutBinary => {
            cmd.arg("--shared");
        }
    }
    let out = cmd.output().expect("run hivewatch install-hooks");
    assert!(
        out.status.success(),
        "install-hooks failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if matches!(install, Install::Shared | Install::SharedWithoutBinary) {
        project.commit(".claude/settings.json", "hivewatch's hooks");
    }
}

fn run_all(
    project: &Project,
    claude: &Path,
    api: &FakeAnthropic,
    scenario: Scenario,
    env: &[(&str, String)],
) -> Vec<Outcome> {
    scenario.prepare(project);
    scenario
        .runs()
        .iter()
        .map(|args| project.run(claude, &api.url, args, env))
        .collect()
}

/// Runs `scenario` on `version` with and without hivewatch and checks everything the module documentation lists.
fn check(version: &str, scenario: Scenario, install: Install) {
    let claude = claude::binary(version);
    claude::isolated_runtime().block_on(async move {
        let server = Server::start();

        // Without hivewatch: the logging hook alone.
        let bare = Project::new();
        let bare_log = bare.root().join("hook-log");
        install_logger(&bare, &bare_log);
        if matches!(install, Install::Shared | Install::SharedWithoutBinary) {
            // The same history as the project that commits hivewatch's hooks.
            bare.commit_empty("hivewatch's hooks");
        }
        let bare_api = FakeAnthropic::start(&bare.dir.display().to_string()).await;
        let without = run_all(&bare, &claude, &bare_api, scenario, &[]);

        // With hivewatch installed and the native telemetry pointed at it.
        let project = Project::new();
        let log_dir = project.root().join("hook-log");
        install_logger(&project, &log_dir);
        install_hivewatch(&project, &server, install);
        let api = FakeAnthropic::start(&project.dir.display().to_string()).await;
        let mut env = telemetry_env(&server);
        env.extend(hook_env(project.root()));
        env.push((
            "PATH",
            match install {
                Install::SharedWithoutBinary => path_without_hivewatch(),
                _ => path_with_hivewatch(),
            },
        ));
        let with = run_all(&project, &claude, &api, scenario, &env);

        let label = format!("Claude Code {version}, {scenario:?}, {install:?} hooks");
        for (a, b) in without.iter().zip(&with) {
            assert_eq!(
                (a.code, &a.stdout),
                (b.code, &b.stdout),
                "{label}: Claude Code exits or prints differently with hivewatch installed\nwithout: {a:?}\nwith: {b:?}"
            );
        }
        expect_outcome(&label, scenario, &with, &project);
        the_model_sees_the_same(&label, &bare, &bare_api, &project, &api);

        // What hivewatch was registered for, of all that fired (http hooks cover fewer events).
        let logged: Vec<Value> = claude::logged_inputs(&log_dir)
            .into_iter()
            .filter(|v| {
                let name = v["hook_event_name"].as_str().unwrap_or_default();
                hook_events::lookup(name).is_some_and(|e| e.registered_as(install.kind()).is_some())
            })
            .collect();
        assert!(!logged.is_empty(), "{label}: the logging hook saw nothing");
        let sessions: Vec<String> = logged
            .iter()
            .filter_map(|v| v["session_id"].as_str().map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();

        wait_for_native_telemetry(&server, &sessions, &api, &label).await;
        let mut stored = Vec::new();
        for s in &sessions {
            stored.extend(server.all_events(&format!("session_id={s}")).await);
        }
        if install.stores_hooks() {
            every_hook_stored_once(&label, &logged, &stored);
        } else {
            let hooks = stored.iter().filter(|e| e["source"] == "hook").count();
            assert_eq!(hooks, 0, "{label}: hook events stored by a machine without hivewatch?");
        }
        native_signals_in_the_session(&label, version, &stored);
        no_hook_failed(&label, &stored);
        for s in &sessions {
            let view = server.get(&format!("/api/v1/observability/sessions/{s}")).await;
            every_tool_call_has_a_latency(&label, &view);
            cost_is_the_sum_of_api_requests(&label, &view, &stored, s);
        }
        if install.stores_hooks() {
            expect_events(&label, scenario, install, &logged, &stored);
        }

        if std::env::var_os("HIVEWATCH_RECORD_FIXTURES").is_some()
            && version == claude::VERSIONS[1]
            && install == Install::Command
        {
            record_fixtures(version, &project, &logged);
        }
    });
}

/// The conversation Claude Code sends to the model, request by request, is the same with hivewatch installed as
/// without (a hook's answer can add context, instructions or notes; hivewatch's must add nothing). Paths of the
/// two throwaway projects are the only difference allowed.
fn the_model_sees_the_same(
    label: &str,
    bare: &Project,
    bare_api: &FakeAnthropic,
    project: &Project,
    api: &FakeAnthropic,
) {
    // What differs between any two runs: the temporary directory's name (also inside the paths Claude Code
    // derives from it), ids (commits of settings that name each project's paths, agents, tasks), durations (which the hooks
    // lengthen by their run: the subagent reports its own).
    let varying = regex::Regex::new(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{7,40}\b|duration_ms(?:: |>)\d+|toolu_hw\d+",
    )
    .unwrap();
    fn normalize(v: &mut Value, root: &str, varying: &regex::Regex) {
        match v {
            Value::String(s) => {
                *s = varying
                    .replace_all(&s.replace(root, "<root>"), "<varies>")
                    .into_owned()
            }
            Value::Array(items) => items.iter_mut().for_each(|i| normalize(i, root, varying)),
            Value::Object(map) => map.values_mut().for_each(|i| normalize(i, root, varying)),
            _ => {}
        }
    }
    let conversation = |p: &Project, api: &FakeAnthropic| -> Vec<String> {
        let name = p.root().file_name().unwrap().to_string_lossy();
        let root = name.trim_start_matches('.');
        api.requests()
            .into_iter()
            .map(|mut r| {
                normalize(&mut r["messages"], root, &varying);
                r["messages"].to_string()
            })
            .collect()
    };
    // As a set: a background subagent's requests and its parent's interleave as they happen to.
    let (mut without, mut with) = (conversation(bare, bare_api), conversation(project, api));
    without.sort();
    with.sort();
    assert_eq!(
        without.len(),
        with.len(),
        "{label}: a different number of model requests with hivewatch"
    );
    for (i, (a, b)) in without.iter().zip(&with).enumerate() {
        if a != b {
            // Where they part, with some context: the requests are long.
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let around = |s: &str| {
                let start = (at.saturating_sub(200)..=at)
                    .find(|&i| s.is_char_boundary(i))
                    .unwrap_or(0);
                let end = (at + 300).min(s.len());
                let end = (end..=s.len())
                    .find(|&i| s.is_char_boundary(i))
                    .unwrap_or(s.len());
                s[start..end].to_string()
            };
            panic!(
                "{label}: model request {i} differs with hivewatch installed, from byte {at}:\nwithout: …{}…\nwith:    …{}…",
                around(a),
                around(b)
            );
        }
    }
}

fn expect_outcome(label: &str, scenario: Scenario, outcomes: &[Outcome], project: &Project) {
    let last = outcomes.last().expect("at least one run");
    match scenario {
        Scenario::ApiError => assert_ne!(
            last.code,
            Some(0),
            "{label}: the API error must fail the run: {last:?}"
        ),
        Scenario::Compact => assert_eq!(last.code, Some(0), "{label}: /compact failed: {last:?}"),
        _ => {
            assert_eq!(last.code, Some(0), "{label}: claude failed: {last:?}");
            assert!(
                last.stdout.contains("done: "),
                "{label}: unexpected answer: {last:?}"
            );
        }
    }
    if scenario == Scenario::Worktree {
        let wt = project.dir.join(".claude/worktrees/wt1");
        assert!(
            wt.is_dir(),
            "{label}: claude --worktree made no worktree at {}",
            wt.display()
        );
    }
}

/// Native telemetry is exported in the background: wait until every answered request has its `api_request`.
async fn wait_for_native_telemetry(
    server: &Server,
    sessions: &[String],
    api: &FakeAnthropic,
    label: &str,
) {
    let want = api.answered();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = server.all_events("event_type=api_request").await;
        let got = requests.len();
        if got >= want {
            return;
        }
        if Instant::now() > deadline {
            let in_sessions: Vec<&Value> = requests.iter().map(|e| &e["session_id"]).collect();
            let asked: Vec<String> = api
                .requests()
                .iter()
                .map(|r| format!("{} {}", r["model"], r["metadata"]))
                .collect();
            panic!(
                "{label}: {got} api_request events stored for {want} answered model requests after 30 s \
                 (sessions of the hooks {sessions:?}, of the api_request events {in_sessions:?}, requests {asked:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn every_hook_stored_once(label: &str, logged: &[Value], stored: &[Value]) {
    let key = |session: &Value, event: &Value, tool: &Value| {
        format!(
            "{} {} {}",
            session.as_str().unwrap_or("-"),
            event.as_str().unwrap_or("-"),
            tool.as_str().unwrap_or("-")
        )
    };
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for v in logged {
        *fired
            .entry(key(
                &v["session_id"],
                &v["hook_event_name"],
                &v["tool_use_id"],
            ))
            .or_default() += 1;
    }
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    for e in stored.iter().filter(|e| e["source"] == "hook") {
        *kept
            .entry(key(&e["session_id"], &e["event_type"], &e["tool_use_id"]))
            .or_default() += 1;
    }
    assert_eq!(
        fired, kept,
        "{label}: the hooks that fired (left, from the logging hook) and the hook events stored (right) differ"
    );
}

fn native_signals_in_the_session(label: &str, version: &str, stored: &[Value]) {
    let count = |source: &str| stored.iter().filter(|e| e["source"] == source).count();
    assert!(
        count("otlp_log") > 0,
        "{label}: no native log event landed in the hook events' session"
    );
    assert!(
        count("otlp_span") > 0,
        "{label}: no native span (CLAUDE_CODE_ENHANCED_TELEMETRY_BETA) landed in the session of Claude Code {version}"
    );
}

/// Claude Code reports every hook run in its telemetry: none of hivewatch's may have failed or blocked.
fn no_hook_failed(label: &str, stored: &[Value]) {
    for e in stored
        .iter()
        .filter(|e| e["event_type"] == "hook_execution_complete")
    {
        let a = &e["payload"]["attributes"];
        let n = |k: &str| {
            a[k].as_i64()
                .or_else(|| a[k].as_str()?.parse().ok())
                .unwrap_or(0)
        };
        assert_eq!(
            (
                n("num_blocking"),
                n("num_non_blocking_error"),
                n("num_cancelled")
            ),
            (0, 0, 0),
            "{label}: Claude Code reports a failed hook for {}: {a}",
            a["hook_event"]
        );
    }
}

fn every_tool_call_has_a_latency(label: &str, view: &Value) {
    for call in view["tool_calls"].as_array().into_iter().flatten() {
        assert!(
            call["latency_ms"].is_i64(),
            "{label}: a tool call without latency: {call}"
        );
    }
}

fn cost_is_the_sum_of_api_requests(label: &str, view: &Value, stored: &[Value], session: &str) {
    let sum: f64 = stored
        .iter()
        .filter(|e| e["event_type"] == "api_request" && e["session_id"] == session)
        .map(|e| {
            let c = &e["payload"]["attributes"]["cost_usd"];
            c.as_f64()
                .or_else(|| c.as_str()?.parse().ok())
                .unwrap_or(0.0)
        })
        .sum();
    let cost = view["cost_usd"].as_f64().unwrap_or(-1.0);
    assert!(
        (cost - sum).abs() < 1e-9,
        "{label}: session {session} costs {cost}, its api_request events add up to {sum}"
    );
}

fn types(logged: &[Value]) -> Vec<&str> {
    logged
        .iter()
        .filter_map(|v| v["hook_event_name"].as_str())
        .collect()
}

fn expect_events(
    label: &str,
    scenario: Scenario,
    install: Install,
    logged: &[Value],
    stored: &[Value],
) {
    let fired = types(logged);
    let has = |t: &str| fired.contains(&t);
    let tool_calls = |name: &str| {
        stored
            .iter()
            .filter(|e| {
                e["source"] == "hook" && e["event_type"] == "PostToolUse" && e["tool_name"] == name
            })
            .count()
    };
    match scenario {
        Scenario::Bash | Scenario::Worktree => {
            assert!(tool_calls("Bash") >= 1, "{label}: no Bash call stored")
        }
        Scenario::FailingTool => assert!(
            stored
                .iter()
                .any(|e| e["event_type"] == "PostToolUseFailure" && e["status"] == "error"),
            "{label}: the failing tool call is not stored as an error ({fired:?})"
        ),
        Scenario::Subagent => {
            assert!(
                has("SubagentStop"),
                "{label}: no SubagentStop fired: {fired:?}"
            );
            assert!(
                stored
                    .iter()
                    .any(|e| e["source"] == "hook" && e["agent_id"] != "main"),
                "{label}: no event stored under the subagent's id"
            );
        }
        Scenario::WriteRead => {
            assert!(
                tool_calls("Write") == 1 && tool_calls("Read") == 1,
                "{label}: Write then Read not stored"
            )
        }
        Scenario::Compact => {
            assert!(
                has("PreCompact") && has("PostCompact"),
                "{label}: no compaction hooks: {fired:?}"
            )
        }
        Scenario::Skill | Scenario::ModelSwitch => {}
        Scenario::ApiError => assert!(
            stored
                .iter()
                .any(|e| e["event_type"] == "StopFailure" && e["status"] == "error"),
            "{label}: the API error left no StopFailure: {fired:?}"
        ),
    }
    let stored_hook = |t: &str| {
        stored
            .iter()
            .find(|e| e["source"] == "hook" && e["event_type"] == t)
    };
    match scenario {
        Scenario::Skill if has("PreSkillShellCommand") => {
            let e = stored_hook("PreSkillShellCommand").expect("stored once, checked above");
            assert_eq!(
                (
                    e["tool_name"].as_str(),
                    e["payload"]["tool_input"]["command"].as_str()
                ),
                (Some("Bash"), Some("date +%Y")),
                "{label}: {e}"
            );
        }
        Scenario::ModelSwitch if has("PostModelSwitch") => {
            let e = stored_hook("PostModelSwitch").expect("stored once, checked above");
            assert_eq!(
                e["model"], "claude-sonnet-4-5",
                "{label}: the switch's new model is the event's model: {e}"
            );
        }
        _ => {}
    }
    if scenario == Scenario::Worktree && install.kind() == HandlerKind::Command {
        // What a WorktreeCreate hook would have said comes from SessionStart's cwd, a safe event (which Claude Code
        // sends to command hooks only).
        let cwd = stored
            .iter()
            .find(|e| e["event_type"] == "SessionStart")
            .and_then(|e| e["payload"]["cwd"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            cwd.ends_with(".claude/worktrees/wt1"),
            "{label}: SessionStart cwd {cwd:?}"
        );
    }
}

/// Saves the hook inputs as fixtures, one JSON array per event, with the temporary paths replaced.
fn record_fixtures(version: &str, project: &Project, logged: &[Value]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/claude-code-{version}/hooks"));
    std::fs::create_dir_all(&dir).unwrap();
    let project_dir = project.dir.display().to_string();
    let home = project.home.display().to_string();
    for v in logged {
        // Claude Code also names the project in paths of its own, with `/` and `.` as `-`.
        let encoded = project_dir.replace(['/', '.'], "-");
        let text = v
            .to_string()
            .replace(&project_dir, "/home/dev/projects/demo")
            .replace(&home, "/home/dev")
            .replace(&encoded, "-home-dev-projects-demo");
        let v: Value = serde_json::from_str(&text).unwrap();
        let name = v["hook_event_name"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let path = dir.join(format!("{name}.json"));
        let mut all: Vec<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        all.push(v);
        std::fs::write(&path, serde_json::to_string_pretty(&all).unwrap() + "\n").unwrap();
    }
}

macro_rules! scenarios {
    ($($name:ident: $version:expr, $scenario:expr, $install:expr;)*) => {
        $(#[test] fn $name() { check($version, $scenario, $install) })*
    };
}

scenarios! {
    v2_1_197_bash: claude::VERSIONS[0], Scenario::Bash, Install::Command;
    v2_1_197_failing_tool: claude::VERSIONS[0], Scenario::FailingTool, Install::Command;
    v2_1_197_subagent: claude::VERSIONS[0], Scenario::Subagent, Install::Command;
    v2_1_197_write_read: claude::VERSIONS[0], Scenario::WriteRead, Install::Command;
    v2_1_197_compact: claude::VERSIONS[0], Scenario::Compact, Install::Command;
    v2_1_197_api_error: claude::VERSIONS[0], Scenario::ApiError, Install::Command;
    v2_1_197_worktree: claude::VERSIONS[0], Scenario::Worktree, Install::Command;
    v2_1_197_worktree_http: claude::VERSIONS[0], Scenario::Worktree, Install::Http;
    v2_1_197_skill: claude::VERSIONS[0], Scenario::Skill, Install::Command;
    v2_1_197_model_switch: claude::VERSIONS[0], Scenario::ModelSwitch, Install::Command;
    v2_1_197_compact_http: claude::VERSIONS[0], Scenario::Compact, Install::Http;
    v2_1_197_shared: claude::VERSIONS[0], Scenario::Bash, Install::Shared;
    v2_1_197_shared_without_hivewatch: claude::VERSIONS[0], Scenario::Bash, Install::SharedWithoutBinary;
    v2_1_337_bash: claude::VERSIONS[1], Scenario::Bash, Install::Command;
    v2_1_337_failing_tool: claude::VERSIONS[1], Scenario::FailingTool, Install::Command;
    v2_1_337_subagent: claude::VERSIONS[1], Scenario::Subagent, Install::Command;
    v2_1_337_write_read: claude::VERSIONS[1], Scenario::WriteRead, Install::Command;
    v2_1_337_compact: claude::VERSIONS[1], Scenario::Compact, Install::Command;
    v2_1_337_api_error: claude::VERSIONS[1], Scenario::ApiError, Install::Command;
    v2_1_337_worktree: claude::VERSIONS[1], Scenario::Worktree, Install::Command;
    v2_1_337_worktree_http: claude::VERSIONS[1], Scenario::Worktree, Install::Http;
    v2_1_337_skill: claude::VERSIONS[1], Scenario::Skill, Install::Command;
    v2_1_337_model_switch: claude::VERSIONS[1], Scenario::ModelSwitch, Install::Command;
    v2_1_337_compact_http: claude::VERSIONS[1], Scenario::Compact, Install::Http;
    v2_1_337_shared: claude::VERSIONS[1], Scenario::Worktree, Install::Shared;
    v2_1_337_shared_without_hivewatch: claude::VERSIONS[1], Scenario::Worktree, Install::SharedWithoutBinary;
}

/// An install made by the release before the hook contract (WorktreeCreate hooked, in the committed settings
/// file) breaks `claude --worktree`; `hivewatch doctor` names it and `hivewatch install-hooks` repairs it.
fn previous_release_install_is_flagged_and_repaired(version: &str) {
    let claude = claude::binary(version);
    claude::isolated_runtime().block_on(async move {
        let server = Server::start();
        let project = Project::new();
        let exe = Path::new(env!("CARGO_BIN_EXE_hivewatch"))
            .canonicalize()
            .unwrap();
        let settings =
            json!({"hooks": common::previous_release_hooks(&exe.display().to_string(), "demo")});
        std::fs::create_dir_all(project.dir.join(".claude")).unwrap();
        std::fs::write(
            project.dir.join(".claude/settings.json"),
            settings.to_string(),
        )
        .unwrap();
        project.commit(
            ".claude/settings.json",
            "hivewatch's hooks, as the previous release wrote them",
        );
        let api = FakeAnthropic::start(&project.dir.display().to_string()).await;
        let mut env = hook_env(project.root());
        env.push(("HIVEWATCH_ENDPOINT", server.http.clone()));
        let worktree = |name: &'static str| {
            vec![
                "-p",
                "--dangerously-skip-permissions",
                "--worktree",
                name,
                "[[hw:bash]] run a command",
            ]
        };
        let label = format!("Claude Code {version}, previous release's install");

        let broken = project.run(&claude, &api.url, &worktree("wt1"), &env);
        assert_eq!(broken.code, Some(1), "{label}: {broken:?}");
        assert!(
            broken.stderr.contains("WorktreeCreate hook failed")
                && broken
                    .stderr
                    .contains("must never be registered for WorktreeCreate"),
            "{label}: Claude Code shows why and how to fix it: {broken:?}"
        );

        let doctor = || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"))
                .arg("doctor")
                .current_dir(&project.dir)
                .env("HOME", &project.home)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .output()
                .expect("run hivewatch doctor");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let (code, report) = doctor();
        assert_eq!(code, Some(1), "{label}: doctor must fail: {report}");
        assert!(
            report
                .contains("ERROR     ./.claude/settings.json: WorktreeCreate must never be hooked")
                && report.contains("fix: run `hivewatch install-hooks --shared`"),
            "{label}: {report}"
        );

        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hivewatch"))
            .arg("install-hooks")
            .current_dir(&project.dir)
            .env("HOME", &project.home)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run hivewatch install-hooks");
        assert!(out.status.success(), "{label}: {out:?}");
        project.commit(
            ".claude/settings.json",
            "hivewatch's hooks moved to the personal settings",
        );
        let (code, report) = doctor();
        assert_eq!(code, Some(0), "{label}: doctor after the repair: {report}");
        assert!(!report.contains("ERROR"), "{label}: {report}");

        let fixed = project.run(&claude, &api.url, &worktree("wt2"), &env);
        assert_eq!(
            fixed.code,
            Some(0),
            "{label}: after install-hooks: {fixed:?}"
        );
        assert!(project.dir.join(".claude/worktrees/wt2").is_dir());
        let starts = server.all_events("event_type=SessionStart").await;
        assert!(
            starts.iter().any(|e| e["payload"]["cwd"]
                .as_str()
                .is_some_and(|c| c.ends_with(".claude/worktrees/wt2"))),
            "{label}: the worktree session is observed: {starts:?}"
        );
    });
}

#[test]
fn v2_1_197_previous_release_install_is_flagged_and_repaired() {
    previous_release_install_is_flagged_and_repaired(claude::VERSIONS[0]);
}

#[test]
fn v2_1_337_previous_release_install_is_flagged_and_repaired() {
    previous_release_install_is_flagged_and_repaired(claude::VERSIONS[1]);
}
