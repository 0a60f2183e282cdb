//! `hivewatch install-hooks` as a user runs it: the real binary on real settings files in temporary
//! directories, with `$HOME` and the hook configuration directory redirected so nothing of the machine's is read
//! or written.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hivewatch::model::hook_events::{self, HandlerKind};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The events hivewatch registers as command hooks, from the hook contract, and those with a tool matcher.
fn events() -> Vec<&'static str> {
    hook_events::registered(HandlerKind::Command)
        .map(|(e, _)| e)
        .collect()
}

fn tool_events() -> Vec<&'static str> {
    hook_events::registered(HandlerKind::Command)
        .filter(|(_, m)| m.is_some())
        .map(|(e, _)| e)
        .collect()
}

fn http_events() -> Vec<&'static str> {
    hook_events::registered(HandlerKind::Http)
        .map(|(e, _)| e)
        .collect()
}

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

    /// The personal settings file, where a plain `install-hooks` writes.
    fn settings(&self) -> PathBuf {
        self.project.join(".claude/settings.local.json")
    }

    /// The shared settings file teams commit (`--shared`, and where earlier releases wrote).
    fn shared(&self) -> PathBuf {
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

fn our_groups_or_none<'a>(settings: &'a Value, event: &str) -> Vec<&'a Value> {
    if settings["hooks"].get(event).is_none() {
        return Vec::new();
    }
    our_groups(settings, event)
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
            "installed hivewatch for {} hook events in {}",
            events().len(),
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
    assert_eq!(s["hooks"].as_object().unwrap().len(), events().len());
    for never in [
        "WorktreeCreate",
        "WorktreeRemove",
        "MessageDisplay",
        "PreModelSwitch",
    ] {
        assert!(
            s["hooks"].get(never).is_none(),
            "{never} must never be hooked"
        );
    }

    let mut commands = Vec::new();
    for event in events() {
        let ours = our_groups(&s, event);
        assert_eq!(ours.len(), 1, "{event}: one group of ours in {s:#}");
        let group = ours[0];
        if tool_events().contains(&event) {
            assert_eq!(group["matcher"], "*", "{event}");
        } else {
            assert!(group.get("matcher").is_none(), "{event}: no matcher");
        }
        let handlers = group["hooks"].as_array().unwrap();
        assert_eq!(handlers.len(), 1);
        assert_eq!(handlers[0]["type"], "command");
        assert_eq!(handlers[0]["timeout"], 5);
        // Nothing that would make Claude Code act on a failure or run the hook apart.
        assert!(handlers[0].get("onFailure").is_none() && handlers[0].get("async").is_none());
        commands.push(handlers[0]["command"].as_str().unwrap().to_string());
    }
    // The same command everywhere: the binary's absolute path, `hook`, and the project's name, behind a guard
    // that makes it a silent no-op where the binary is missing.
    assert!(commands.iter().all(|c| c == &commands[0]));
    let exe = Path::new(env!("CARGO_BIN_EXE_hivewatch"))
        .canonicalize()
        .unwrap();
    let exe = exe.display();
    assert_eq!(
        commands[0],
        format!(
            "if [ -x {exe} ]; then {exe} hook --source-app demo-project; else cat >/dev/null; fi"
        )
    );
    assert!(!sb.shared().exists(), "the shared settings untouched");

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
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "removed hivewatch from {} hook events",
            events().len()
        )),
        "{}",
        text(&out)
    );
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
    assert_eq!(printed["hooks"].as_object().unwrap().len(), events().len());

    // Uninstalling from nothing creates nothing.
    sb.ok(&["--uninstall"]);
    assert!(!sb.project.join(".claude").exists());

    sb.ok(&[]);
    assert_eq!(read_json(&sb.settings()), printed);

    // --project-dir edits another project, named after it.
    let other = sb.home.join("other-app");
    std::fs::create_dir(&other).unwrap();
    sb.ok(&["--project-dir", other.to_str().unwrap()]);
    let s = read_json(&other.join(".claude/settings.local.json"));
    let cmd = s["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(cmd.contains(" hook --source-app other-app; else"), "{cmd}");

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
    assert!(
        !sb.settings().exists() && !sb.shared().exists(),
        "the project's settings untouched"
    );
    let s = read_json(&path);
    let cmd = s["hooks"]["SessionStart"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    // No --source-app: the hook names events after the session's working directory.
    assert!(
        cmd.ends_with(" hook --endpoint http://10.0.0.5:4318; else cat >/dev/null; fi"),
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
    for event in http_events() {
        let ours = our_groups(&s, event);
        assert_eq!(ours.len(), 1, "{event}: the command hook was replaced");
        let h = &ours[0]["hooks"][0];
        assert_eq!(h["type"], "http", "{event}");
        assert_eq!(h["url"], "http://127.0.0.1:5000/api/v1/observability/event");
        assert_eq!(h["headers"]["X-Hivewatch-Source-App"], "demo-project");
        assert!(h.get("command").is_none());
    }
    // Events Claude Code runs no http hooks for, or whose failed request would reach the model, lose the command
    // hook and get no http one.
    for event in events().into_iter().filter(|e| !http_events().contains(e)) {
        assert!(our_groups_or_none(&s, event).is_empty(), "{event}: {s:#}");
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
    assert_eq!(leftovers, ["settings.local.json"]);

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

#[test]
fn shared_settings_name_no_path_and_do_nothing_where_hivewatch_is_missing() {
    let sb = Sandbox::new();
    sb.ok(&[]);
    assert!(sb.settings().exists());
    let out = sb.ok(&["--shared"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("moved hivewatch's hooks out of"),
        "{stdout}"
    );
    assert!(
        read_json(&sb.settings())["hooks"].get("Stop").is_none(),
        "the personal file no longer holds ours"
    );
    let s = read_json(&sb.shared());
    let command = s["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        command,
        "if command -v hivewatch >/dev/null 2>&1; then hivewatch hook --source-app demo-project; else cat >/dev/null; fi"
    );

    // On a machine without hivewatch: exit 0, nothing on stdout or stderr, the payload read whole (a writer that
    // Claude Code is never gets a broken pipe).
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let payload = vec![b'x'; 1 << 20];
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&payload)
        .expect("the whole payload is read");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );

    // The personal form does the same once the binary is gone (`cargo clean`).
    let sb = Sandbox::new();
    sb.ok(&[]);
    let local = read_json(&sb.settings())["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .replace(env!("CARGO_BIN_EXE_hivewatch"), "/gone/hivewatch");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&local)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{local}: {}", text(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );
}

#[test]
fn an_install_of_the_previous_release_is_repaired() {
    let sb = Sandbox::new();
    let exe = Path::new(env!("CARGO_BIN_EXE_hivewatch"))
        .canonicalize()
        .unwrap();
    let mut old = users_settings();
    let previous = common::previous_release_hooks(&exe.display().to_string(), "demo-project");
    for (event, groups) in previous.as_object().unwrap() {
        let list = old["hooks"]
            .as_object_mut()
            .unwrap()
            .entry(event.clone())
            .or_insert_with(|| json!([]));
        list.as_array_mut()
            .unwrap()
            .extend(groups.as_array().unwrap().iter().cloned());
    }
    std::fs::create_dir_all(sb.shared().parent().unwrap()).unwrap();
    std::fs::write(sb.shared(), serde_json::to_vec_pretty(&old).unwrap()).unwrap();

    let out = sb.ok(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("moved hivewatch's hooks out of"),
        "{stdout}"
    );
    // The shared file is the user's own again.
    assert_eq!(read_json(&sb.shared()), users_settings());
    let s = read_json(&sb.settings());
    for never in [
        "WorktreeCreate",
        "WorktreeRemove",
        "InstructionsLoaded",
        "FileChanged",
    ] {
        assert!(s["hooks"].get(never).is_none(), "{never}: {s:#}");
    }
    for event in events() {
        assert_eq!(our_groups(&s, event).len(), 1, "{event}");
    }

    // Installed into the shared file again, the events the contract no longer allows are dropped and named.
    std::fs::write(sb.shared(), serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let out = sb.ok(&["--shared"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("events it does not hook: ") && stdout.contains("WorktreeCreate"),
        "{stdout}"
    );
    let s = read_json(&sb.shared());
    assert!(s["hooks"].get("WorktreeCreate").is_none());
    assert_eq!(our_groups(&s, "Interrupt").len(), 1, "new events added");
}

#[test]
fn personal_hooks_reach_worktrees_through_worktreeinclude() {
    let sb = Sandbox::new();
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&sb.project)
        .output()
        .expect("git");
    assert!(git.status.success());
    sb.ok(&[]);
    let include = std::fs::read_to_string(sb.project.join(".worktreeinclude")).unwrap();
    assert!(
        include.lines().any(|l| l == "/.claude/settings.local.json"),
        "{include}"
    );
    let exclude = std::fs::read_to_string(sb.project.join(".git/info/exclude")).unwrap();
    assert!(
        exclude.contains("/.claude/settings.local.json") && exclude.contains("/.worktreeinclude")
    );
    // Git sees none of it: nothing for the team to commit by mistake.
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&sb.project)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");

    sb.ok(&["--uninstall"]);
    assert!(!sb.project.join(".worktreeinclude").exists());
}

#[test]
fn docs_show_the_hook_contract_as_the_code_has_it() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/HOOKS.md")).unwrap();
    let table = hook_events::markdown_table();
    assert!(
        docs.contains(&table),
        "docs/HOOKS.md must hold the hook contract table exactly as `markdown_table()` renders it:\n{table}"
    );
}
