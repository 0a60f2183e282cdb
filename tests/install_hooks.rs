//! `hivewatch install-hooks` as a user runs it: the real binary on real settings files in temporary
//! directories, with `$HOME` and the hook configuration directory redirected so nothing of the machine's is read
//! or written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

const EVENTS: [&str; 29] = [
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "PermissionRequest",
    "PermissionDenied",
    "Notification",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "SessionStart",
    "SessionEnd",
    "InstructionsLoaded",
    "TaskCreated",
    "TaskCompleted",
    "TeammateIdle",
    "ConfigChange",
    "CwdChanged",
    "FileChanged",
    "WorktreeCreate",
    "WorktreeRemove",
    "Elicitation",
    "ElicitationResult",
    "Setup",
];
const TOOL_EVENTS: [&str; 5] = [
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "PermissionDenied",
];

/// A project directory named `demo-project`, a home and a configuration directory, all temporary.
struct Sandbox {
    _root: TempDir,
    project: PathBuf,
    home: PathBuf,
    config: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("demo-project");
        let home = root.path().join("home");
        let config = root.path().join("config");
        for d in [&project, &home] {
            std::fs::create_dir(d).unwrap();
        }
        Sandbox {
            project: project.canonicalize().unwrap(),
            home,
            config,
            _root: root,
        }
    }

    fn settings(&self) -> PathBuf {
        self.project.join(".claude/settings.json")
    }

    fn write_settings(&self, value: &Value) -> Vec<u8> {
        let bytes = serde_json::to_vec_pretty(value).unwrap();
        std::fs::create_dir_all(self.settings().parent().unwrap()).unwrap();
        std::fs::write(self.settings(), &bytes).unwrap();
        bytes
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hivewatch"));
        c.arg("install-hooks")
            .current_dir(&self.project)
            .env("HOME", &self.home)
            .env("HIVEWATCH_CONFIG_DIR", &self.config)
            .env_remove("HIVEWATCH_INGEST_TOKEN")
            .env_remove("HIVEWATCH_ENDPOINT");
        c
    }

    /// Runs `install-hooks ARGS` and asserts it succeeded.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "install-hooks {args:?}: {}",
            text(&out)
        );
        out
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A settings file as a user has it: hooks of their own and other settings.
fn users_settings() -> Value {
    json!({
        "permissions": {"allow": ["Bash(cargo test:*)"], "deny": ["Read(./.env)"]},
        "env": {"RUST_LOG": "debug", "EMPTY": ""},
        "model": "claude-opus-4",
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "echo user"}]}
            ],
            "Stop": [
                {"hooks": [{"type": "command", "command": "notify-send done", "timeout": 30}]}
            ]
        }
    })
}

/// Our handler in `event`'s list: the one handler of the only group holding a `hivewatch`-ish command or url.
fn our_groups<'a>(settings: &'a Value, event: &str) -> Vec<&'a Value> {
    settings["hooks"][event]
        .as_array()
        .unwrap_or_else(|| panic!("{event}: no list in {settings:#}"))
        .iter()
        .filter(|g| {
            g["hooks"].as_array().unwrap().iter().any(|h| {
                h["command"]
                    .as_str()
                    .is_some_and(|c| c.contains("hivewatch hook"))
                    || h["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/api/v1/observability/event"))
            })
        })
        .collect()
}

#[test]
fn install_registers_every_event_and_keeps_the_users_hooks_and_settings() {
    let sb = Sandbox::new();
    let original = users_settings();
    sb.write_settings(&original);

    let out = sb.ok(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "installed hivewatch for 29 hook events in {}",
            sb.settings().display()
        )),
        "{stdout}"
    );

    let bytes = std::fs::read(sb.settings()).unwrap();
    assert!(bytes.ends_with(b"}\n"), "pretty with a trailing newline");
    assert!(bytes.starts_with(b"{\n  \""), "pretty-printed");
    let s: Value = serde_json::from_slice(&bytes).unwrap();
    for key in ["permissions", "env", "model"] {
        assert_eq!(s[key], original[key], "{key} kept as it was");
    }
    assert_eq!(s["hooks"].as_object().unwrap().len(), EVENTS.len());

    let mut commands = Vec::new();
    for event in EVENTS {
        let ours = our_groups(&s, event);
        assert_eq!(ours.len(), 1, "{event}: one group of ours in {s:#}");
        let group = ours[0];
        if TOOL_EVENTS.contains(&event) {
            assert_eq!(group["matcher"], "*", "{event}");
        } else {
            assert!(group.get("matcher").is_none(), "{event}: no matcher");
        }
        let handlers = group["hooks"].as_array().unwrap();
        assert_eq!(handlers.len(), 1);
        assert_eq!(handlers[0]["type"], "command");
        assert_eq!(handlers[0]["timeout"], 5);
        commands.push(handlers[0]["command"].as_str().unwrap().to_string());
    }
    // The same command everywhere: the binary's absolute path, `hook`, and the project's name.
    assert!(commands.iter().all(|c| c == &commands[0]));
    let words: Vec<&str> = commands[0].split(' ').collect();
    assert_eq!(words[1..], ["hook", "--source-app", "demo-project"]);
    let exe = Path::new(words[0]);
    assert!(exe.is_absolute() && exe.is_file(), "{}", commands[0]);
    assert_eq!(
        exe,
        Path::new(env!("CARGO_BIN_EXE_hivewatch"))
            .canonicalize()
            .unwrap()
    );

    // The user's hooks are still there, first in their lists, ours after them.
    let pre = s["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0], original["hooks"]["PreToolUse"][0]);
    let stop = s["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop.len(), 2);
    assert_eq!(stop[0], original["hooks"]["Stop"][0]);
}

#[test]
fn a_second_install_leaves_the_file_byte_identical() {
    let sb = Sandbox::new();
    sb.write_settings(&users_settings());
    sb.ok(&[]);
    let first = std::fs::read(sb.settings()).unwrap();
    let out = sb.ok(&[]);
    assert_eq!(std::fs::read(sb.settings()).unwrap(), first);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));

    // Also when the binary's command form changes back and forth: ours are replaced, never duplicated.
    sb.ok(&["--source-app", "other"]);
    sb.ok(&[]);
    assert_eq!(std::fs::read(sb.settings()).unwrap(), first);
}

#[test]
fn uninstall_restores_the_original_value() {
    let sb = Sandbox::new();
    let original = users_settings();
    let original_bytes = sb.write_settings(&original);

    sb.ok(&["--endpoint", "http://127.0.0.1:9"]);
    let out = sb.ok(&["--uninstall"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed hivewatch from 29 hook events"));
    assert_eq!(read_json(&sb.settings()), original);

    // Nothing of ours left: a second uninstall does not touch the file.
    let after = std::fs::read(sb.settings()).unwrap();
    sb.ok(&["--uninstall"]);
    assert_eq!(std::fs::read(sb.settings()).unwrap(), after);

    // A file hivewatch never touched is not even reformatted.
    let sb = Sandbox::new();
    let compact = serde_json::to_vec(&original).unwrap();
    std::fs::create_dir_all(sb.settings().parent().unwrap()).unwrap();
    std::fs::write(sb.settings(), &compact).unwrap();
    sb.ok(&["--uninstall"]);
    assert_eq!(std::fs::read(sb.settings()).unwrap(), compact);
    assert_ne!(compact, original_bytes);

    // Without hooks of the user's own, the `hooks` key goes away again.
    let sb = Sandbox::new();
    let plain = json!({"model": "claude-sonnet-4"});
    sb.write_settings(&plain);
    sb.ok(&["--http"]);
    sb.ok(&["--uninstall"]);
    assert_eq!(read_json(&sb.settings()), plain);
}

#[test]
fn missing_settings_are_created_and_dry_run_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.ok(&["--dry-run"]);
    assert!(
        !sb.project.join(".claude").exists(),
        "dry run wrote nothing"
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["hooks"].as_object().unwrap().len(), 29);

    // Uninstalling from nothing creates nothing.
    sb.ok(&["--uninstall"]);
    assert!(!sb.project.join(".claude").exists());

    sb.ok(&[]);
    assert_eq!(read_json(&sb.settings()), printed);

    // --project-dir edits another project, named after it.
    let other = sb.home.join("other-app");
    std::fs::create_dir(&other).unwrap();
    sb.ok(&["--project-dir", other.to_str().unwrap()]);
    let s = read_json(&other.join(".claude/settings.json"));
    let cmd = s["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(cmd.ends_with(" hook --source-app other-app"), "{cmd}");

    // A project directory that does not exist is an error, not a new directory.
    let out = sb
        .command()
        .args(["--project-dir", "no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!sb.project.join("no").exists());

    // So is an endpoint that is not a URL the hook could use.
    let out = sb
        .command()
        .args(["--endpoint", "127.0.0.1:4318"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an http:// or https:// URL"));

    // The hook speaks plain http: an https endpoint is for --http hooks only.
    let out = sb
        .command()
        .args(["--endpoint", "https://hivewatch.example:4318"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used by `hivewatch hook`"));
    sb.ok(&["--http", "--endpoint", "https://hivewatch.example:4318"]);
}

#[test]
fn user_settings_go_under_home() {
    let sb = Sandbox::new();
    let out = sb.ok(&["--user", "--endpoint", "http://10.0.0.5:4318"]);
    let path = sb.home.join(".claude/settings.json");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&path.display().to_string()),
        "{}",
        text(&out)
    );
    assert!(!sb.settings().exists(), "the project's settings untouched");
    let s = read_json(&path);
    let cmd = s["hooks"]["SessionStart"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    // No --source-app: the hook names events after the session's working directory.
    assert!(
        cmd.ends_with(" hook --endpoint http://10.0.0.5:4318"),
        "{cmd}"
    );
    assert!(!cmd.contains("--source-app"));
}

#[test]
fn http_hooks_post_to_the_endpoint() {
    let sb = Sandbox::new();
    sb.write_settings(&users_settings());
    sb.ok(&[]);
    let out = sb.ok(&["--http", "--endpoint", "http://127.0.0.1:5000/"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no spool"),
        "{}",
        text(&out)
    );
    let s = read_json(&sb.settings());
    for event in EVENTS {
        let ours = our_groups(&s, event);
        assert_eq!(ours.len(), 1, "{event}: the command hook was replaced");
        let h = &ours[0]["hooks"][0];
        assert_eq!(h["type"], "http", "{event}");
        assert_eq!(h["url"], "http://127.0.0.1:5000/api/v1/observability/event");
        assert_eq!(h["headers"]["X-Hivewatch-Source-App"], "demo-project");
        assert!(h.get("command").is_none());
    }

    // The default endpoint.
    let sb = Sandbox::new();
    sb.ok(&["--http"]);
    let s = read_json(&sb.settings());
    assert_eq!(
        s["hooks"]["Notification"][0]["hooks"][0]["url"],
        "http://127.0.0.1:4318/api/v1/observability/event"
    );
}

#[test]
fn the_token_goes_to_the_config_file_only() {
    let sb = Sandbox::new();
    let token = "s3cr3t-t0ken-value";
    let out = sb.ok(&["--token", token, "--endpoint", "http://127.0.0.1:7777"]);
    let config_file = sb.config.join("hook.json");
    let config = read_json(&config_file);
    assert_eq!(config["token"], token);
    assert_eq!(config["endpoint"], "http://127.0.0.1:7777");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let settings = String::from_utf8(std::fs::read(sb.settings()).unwrap()).unwrap();
    assert!(!settings.contains(token), "{settings}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(token));

    // From the environment too, and with http hooks only the variable's name is written.
    let sb = Sandbox::new();
    let out = sb
        .command()
        .arg("--http")
        .env("HIVEWATCH_INGEST_TOKEN", token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(read_json(&sb.config.join("hook.json"))["token"], token);
    let settings = String::from_utf8(std::fs::read(sb.settings()).unwrap()).unwrap();
    assert!(!settings.contains(token), "{settings}");
    let s: Value = serde_json::from_str(&settings).unwrap();
    let h = &s["hooks"]["Stop"][0]["hooks"][0];
    assert_eq!(
        h["headers"]["Authorization"],
        "Bearer $HIVEWATCH_INGEST_TOKEN"
    );
    assert_eq!(h["allowedEnvVars"], json!(["HIVEWATCH_INGEST_TOKEN"]));

    // A dry run saves nothing.
    let sb = Sandbox::new();
    sb.ok(&["--dry-run", "--token", token]);
    assert!(!sb.config.exists());
}

#[test]
fn invalid_json_is_refused_and_left_alone() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.settings().parent().unwrap()).unwrap();
    let broken = b"{\"model\": \"opus\",\n  \"hooks\": {\n}\n";
    std::fs::write(sb.settings(), broken).unwrap();
    for args in [&[][..], &["--uninstall"], &["--http", "--dry-run"]] {
        let out = sb.command().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&sb.settings().display().to_string()),
            "names the file: {err}"
        );
        assert!(err.contains("EOF while parsing"), "the parse error: {err}");
        assert!(out.stdout.is_empty());
        assert_eq!(std::fs::read(sb.settings()).unwrap(), broken);
    }
    let leftovers: Vec<_> = std::fs::read_dir(sb.settings().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["settings.json"]);

    // Valid JSON of the wrong shape is refused too.
    std::fs::write(sb.settings(), b"{\"hooks\": []}").unwrap();
    let out = sb.command().output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read(sb.settings()).unwrap(), b"{\"hooks\": []}");
}

#[test]
fn the_installed_command_runs_silently() {
    let sb = Sandbox::new();
    sb.ok(&[]);
    let s = read_json(&sb.settings());
    let command = s["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();

    let payload_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/claude-code/hooks/PreToolUse.json"
    );
    let fixtures: Value = serde_json::from_slice(&std::fs::read(payload_file).unwrap()).unwrap();
    let payload = serde_json::to_vec(&fixtures[0]).unwrap();

    // A port nothing listens on: the hook must spool, not fail.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let state = tempfile::tempdir().unwrap();

    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(&sb.project)
        .env("HOME", &sb.home)
        .env("HIVEWATCH_CONFIG_DIR", &sb.config)
        .env("HIVEWATCH_STATE_DIR", state.path())
        .env("HIVEWATCH_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{command}: {}", text(&out));
    assert!(out.stdout.is_empty(), "{command}: {}", text(&out));
}

#[test]
fn the_users_key_order_is_kept() {
    let sb = Sandbox::new();
    // Not in alphabetical order: permissions, env, model, hooks; and in hooks, PreToolUse before Stop.
    let original = sb.write_settings(&users_settings());
    sb.ok(&[]);
    let installed = std::fs::read_to_string(sb.settings()).unwrap();
    let at = |key: &str| {
        installed
            .find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("{key} in {installed}"))
    };
    assert!(
        at("permissions") < at("env") && at("env") < at("model") && at("model") < at("hooks"),
        "the user's keys keep their order:\n{installed}"
    );
    assert!(at("PreToolUse") < at("Stop"), "{installed}");
    // Uninstalled, the file is the user's again, byte for byte but for the final newline.
    sb.ok(&["--uninstall"]);
    let restored = std::fs::read(sb.settings()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&restored).trim_end(),
        String::from_utf8_lossy(&original).trim_end()
    );
}
