//! `hivewatch install-hooks`: registers `hivewatch hook` in a Claude Code settings file for every hook event
//! the hook contract allows ([`crate::model::hook_events`]), merged with the hooks already there; `--uninstall`
//! takes out exactly what it put in.
//!
//! Which settings file: by default the project's personal `.claude/settings.local.json` (current directory, or
//! `--project-dir`), which Claude Code keeps out of git; with `--shared` the project's `.claude/settings.json`,
//! which teams commit; with `--user` the user's `~/.claude/settings.json` (`$HOME` honoured). A project has
//! hivewatch in one of its two files: installing into one takes ours out of the other.
//!
//! What is written, per registered event: one matcher group holding one handler,
//!
//! ```json
//! {"matcher": "*", "hooks": [{"type": "command", "timeout": 5,
//!   "command": "if [ -x /abs/hivewatch ]; then /abs/hivewatch hook --source-app demo; else cat >/dev/null; fi"}]}
//! ```
//!
//! (`"matcher"` only where the contract names one). The guard makes the hook a silent no-op that exits 0 on a
//! machine without the binary (a teammate's, or after `cargo clean`); with `--shared` the command names no
//! path at all and runs `hivewatch` from `PATH`. With `--http` the handler is
//! `{"type": "http", "url": "<endpoint>/api/v1/observability/event"}`. The ingest token never goes into a
//! settings file: it goes to the hook configuration file ([`HookConfig`]), and an http hook only names the
//! variable holding it. No handler sets `onFailure` or `async`.
//!
//! Which handlers are ours is the rule of [`is_ours`].
//!
//! An install first removes ours from every event, then adds them back where the contract allows: running it
//! again after an upgrade drops events hivewatch must no longer hook and adds the new ones. Everything else in
//! the file is kept as a JSON value, keys in the user's order (serde_json's `preserve_order`); the file is written
//! back pretty-printed, and a file whose value does not change is not rewritten at all (so a second install
//! leaves it byte-identical).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::config::Secret;
use crate::hook_client::claude_settings::{
    HOOK_HTTP_PATH, LOCAL_SETTINGS, SHARED_SETTINGS, is_ours, read_settings, shell_quote,
    write_atomically,
};
use crate::hook_client::config::{DEFAULT_ENDPOINT, HookConfig, config_dir};
use crate::model::hook_events::{self, HandlerKind};

/// Seconds Claude Code waits for a handler. The hook answers in milliseconds and never blocks the agent; this
/// is only a bound for a wedged machine.
const HOOK_TIMEOUT_SECS: u64 = 5;

/// The variable an http hook's `Authorization` header reads the token from (Claude Code interpolates only
/// variables listed in `allowedEnvVars`).
const TOKEN_ENV: &str = "HIVEWATCH_INGEST_TOKEN";

/// The header the receiver takes `source_app` from for an http hook (a command hook passes `--source-app`).
const SOURCE_APP_HEADER: &str = "X-Hivewatch-Source-App";

/// `Debug` shows no token: it is a [`Secret`].
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Project whose `.claude/settings.local.json` (or with --shared `.claude/settings.json`) to edit
    /// [default: the current directory].
    #[arg(long, value_name = "DIR", conflicts_with = "user")]
    pub project_dir: Option<PathBuf>,
    /// Edit the user's `~/.claude/settings.json` (all projects) instead of a project's.
    #[arg(long)]
    pub user: bool,
    /// Edit the project's shared `.claude/settings.json` (the file teams commit) instead of the personal
    /// `.claude/settings.local.json`. The command then runs `hivewatch` from PATH, and is a silent no-op on a
    /// machine without it.
    #[arg(long, conflicts_with = "user")]
    pub shared: bool,
    /// `source_app` of the events [default: the project directory's name; with --user none, so the hook
    /// uses the name of the session's working directory].
    #[arg(long, value_name = "NAME")]
    pub source_app: Option<String>,
    /// Receiver URL, written into the hooks only when given (the hook otherwise uses HIVEWATCH_ENDPOINT, the
    /// configuration file, then http://127.0.0.1:4318).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Ingest token: saved to the hook configuration file (mode 0600), never into settings.json.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HIVEWATCH_INGEST_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
    /// Register http hooks (Claude Code posts the event itself) instead of `hivewatch hook` commands: no
    /// process per event, but no spool, so events are lost while hivewatch is down.
    #[arg(long)]
    pub http: bool,
    /// Remove hivewatch's hooks (command and http alike) and nothing else; for a project, from both of its
    /// settings files.
    #[arg(long, conflicts_with_all = ["source_app", "endpoint", "shared"])]
    pub uninstall: bool,
    /// Print the resulting settings file instead of writing it (nothing is written, not even the token).
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: InstallArgs) -> ExitCode {
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hivewatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The settings file to edit, the other file of the same project that must not hold ours too, and the
/// project's name (the default `source_app`; none for `--user`).
struct Location {
    path: PathBuf,
    /// The project directory, for a project's personal file (see [`super::worktree_include`]).
    personal_project: Option<PathBuf>,
    other: Option<PathBuf>,
    project_name: Option<String>,
}

/// One settings file read, edited in memory, and written back when its value changed.
struct SettingsFile {
    path: PathBuf,
    original: Option<Value>,
    value: Value,
}

impl SettingsFile {
    fn read(path: &Path) -> anyhow::Result<SettingsFile> {
        let original = read_settings(path)?;
        Ok(SettingsFile {
            path: path.to_path_buf(),
            value: original.clone().unwrap_or_else(|| json!({})),
            original,
        })
    }

    fn changed(&self) -> bool {
        match &self.original {
            Some(v) => v != &self.value,
            None => self.value != json!({}),
        }
    }

    fn write(&self) -> anyhow::Result<()> {
        write_atomically(&self.path, render(&self.value).as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn execute(args: &InstallArgs) -> anyhow::Result<()> {
    let location = settings_location(args)?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the path of the running hivewatch binary")?;
    let kind = if args.http {
        HandlerKind::Http
    } else {
        HandlerKind::Command
    };
    let token = args
        .token
        .as_ref()
        .map(|t| t.0.as_str())
        .filter(|t| !t.is_empty());
    if let Some(endpoint) = &args.endpoint {
        // Caught here rather than by a hook that would spool every event for an address it cannot reach.
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bail!("--endpoint {endpoint:?} is not an http:// or https:// URL");
        }
        // `hivewatch hook` speaks plain http only; Claude Code's own http hooks can use https.
        if !args.http
            && let Err(problem) = crate::hook_client::http::Endpoint::parse(endpoint)
        {
            bail!(
                "--endpoint {endpoint:?} cannot be used by `hivewatch hook`: {problem} (or use --http)"
            );
        }
    }

    let mut file = SettingsFile::read(&location.path)?;
    let shown = location.path.display().to_string();
    let mut lines = Vec::new();
    if args.uninstall {
        let n = uninstall(&mut file.value, &exe).with_context(|| format!("cannot edit {shown}"))?;
        lines.push(if n == 0 {
            format!("no hivewatch hooks in {shown}; nothing to remove")
        } else {
            format!("removed hivewatch from {n} hook events in {shown}")
        });
    } else {
        let handler = match kind {
            HandlerKind::Http => {
                http_handler(args, location.project_name.as_deref(), token.is_some())
            }
            HandlerKind::Command => command_handler(args, &exe, location.project_name.as_deref()),
        };
        let dropped = install(&mut file.value, &exe, &handler, kind)
            .with_context(|| format!("cannot edit {shown}"))?;
        let n = hook_events::registered(kind).count();
        lines.push(if file.changed() {
            format!("installed hivewatch for {n} hook events in {shown}")
        } else {
            format!(
                "hivewatch is already installed for {n} hook events in {shown}; nothing changed"
            )
        });
        if !dropped.is_empty() {
            lines.push(format!(
                "took hivewatch out of {} events it does not hook{}: {} (see docs/HOOKS.md)",
                dropped.len(),
                if args.http { " as http hooks" } else { "" },
                dropped.join(", ")
            ));
        }
    }

    // A project keeps hivewatch in one of its two files: take ours out of the other (an earlier release wrote
    // the shared one), or on uninstall out of both.
    let mut other = match &location.other {
        Some(path) if path.exists() => Some(SettingsFile::read(path)?),
        _ => None,
    };
    if let Some(other) = &mut other {
        let n = uninstall(&mut other.value, &exe)
            .with_context(|| format!("cannot edit {}", other.path.display()))?;
        if n > 0 {
            lines.push(if args.uninstall {
                format!(
                    "removed hivewatch from {n} hook events in {}",
                    other.path.display()
                )
            } else {
                format!(
                    "moved hivewatch's hooks out of {} (they are in {shown} now)",
                    other.path.display()
                )
            });
        }
    }

    // `claude --worktree` sessions read the new worktree's files, where a personal file is only if copied.
    if let Some(project) = &location.personal_project {
        let changed = if args.uninstall {
            super::worktree_include::exclude(project, args.dry_run)
        } else {
            super::worktree_include::include(project, args.dry_run)
        };
        match changed {
            Ok(changed) => lines.extend(changed),
            Err(e) => lines.push(format!(
                "note: could not set up .worktreeinclude ({e}): `claude --worktree` sessions will not be observed"
            )),
        }
    }

    if args.dry_run {
        // The JSON alone on stdout, so it can be piped; the rest on stderr.
        print!("{}", render(&file.value));
        for line in &lines {
            eprintln!("dry run, nothing written: {line}");
        }
        if !args.uninstall && token.is_some() {
            eprintln!(
                "dry run: would save the ingest token to {}",
                HookConfig::path_in(&config_dir()).display()
            );
        }
        return Ok(());
    }

    if file.changed() {
        file.write()?;
    }
    if let Some(other) = other.filter(SettingsFile::changed) {
        other.write()?;
    }
    for line in &lines {
        println!("{line}");
    }

    if !args.uninstall {
        if let Some(token) = token {
            let dir = config_dir();
            let mut config = HookConfig::load_from(&dir);
            config.token = Some(token.to_string());
            if let Some(endpoint) = &args.endpoint {
                config.endpoint = Some(endpoint.clone());
            }
            let path = config
                .save_to(&dir)
                .with_context(|| format!("cannot save the ingest token in {}", dir.display()))?;
            println!("saved the ingest token to {} (mode 0600)", path.display());
        }
        if args.http {
            println!(
                "note: http hooks cost no process per event, but have no spool: events are lost while \
                 hivewatch is down"
            );
            if token.is_some() {
                println!(
                    "note: http hooks send the token from ${TOKEN_ENV}: start Claude Code with it set"
                );
            }
        } else if args.shared && !on_path("hivewatch") {
            println!(
                "note: `hivewatch` is not on PATH here: the shared hooks run it from PATH, so they do nothing on \
                 this machine until it is (put the binary in a directory on PATH)"
            );
        }
    }
    Ok(())
}

/// Whether a program of this name is in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn settings_location(args: &InstallArgs) -> anyhow::Result<Location> {
    if args.user {
        let home = dirs::home_dir().context("no home directory: set $HOME")?;
        return Ok(Location {
            path: home.join(".claude").join("settings.json"),
            personal_project: None,
            other: None,
            project_name: None,
        });
    }
    let dir = match &args.project_dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    // Canonical, so that `.` or `..` still yields a name; a missing project is an error rather than a
    // directory created from a typo.
    let dir = std::fs::canonicalize(&dir)
        .with_context(|| format!("project directory {}", dir.display()))?;
    if !dir.is_dir() {
        bail!("project directory {} is not a directory", dir.display());
    }
    let (file, other) = if args.shared {
        (SHARED_SETTINGS, LOCAL_SETTINGS)
    } else {
        (LOCAL_SETTINGS, SHARED_SETTINGS)
    };
    Ok(Location {
        path: dir.join(file),
        personal_project: (!args.shared).then(|| dir.clone()),
        // On uninstall both files are cleaned, whichever flag was given.
        other: Some(dir.join(other)),
        project_name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
    })
}

fn render(settings: &Value) -> String {
    let mut s = serde_json::to_string_pretty(settings).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// The shell command of a command hook: `hivewatch hook` with its flags, behind a guard that makes it a silent
/// no-op exiting 0 (stdin read, nothing printed) where the binary is missing.
fn command_handler(args: &InstallArgs, exe: &Path, project_name: Option<&str>) -> Value {
    let (guard, program) = if args.shared {
        (
            "command -v hivewatch >/dev/null 2>&1".to_string(),
            "hivewatch".to_string(),
        )
    } else {
        let exe = shell_quote(&exe.to_string_lossy());
        (format!("[ -x {exe} ]"), exe)
    };
    let mut invocation = format!("{program} hook");
    if let Some(app) = args.source_app.as_deref().or(project_name) {
        invocation.push_str(" --source-app ");
        invocation.push_str(&shell_quote(app));
    }
    if let Some(endpoint) = &args.endpoint {
        invocation.push_str(" --endpoint ");
        invocation.push_str(&shell_quote(endpoint));
    }
    let command = format!("if {guard}; then {invocation}; else cat >/dev/null; fi");
    json!({"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECS})
}

fn http_handler(args: &InstallArgs, project_name: Option<&str>, with_token: bool) -> Value {
    let endpoint = args.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    let url = format!("{}{HOOK_HTTP_PATH}", endpoint.trim_end_matches('/'));
    let mut handler = json!({"type": "http", "url": url, "timeout": HOOK_TIMEOUT_SECS});
    let mut headers = Map::new();
    if let Some(app) = args.source_app.as_deref().or(project_name) {
        headers.insert(SOURCE_APP_HEADER.into(), app.into());
    }
    if with_token {
        // Only the variable's name: the token itself stays out of settings.json.
        headers.insert(
            "Authorization".into(),
            format!("Bearer ${TOKEN_ENV}").into(),
        );
        handler["allowedEnvVars"] = json!([TOKEN_ENV]);
    }
    if !headers.is_empty() {
        handler["headers"] = Value::Object(headers);
    }
    handler
}

/// One event where ours was removed: its name, the index (in the list as it is after removal) where our first
/// matcher group was, so that a reinstall puts ours back in the same place, and whether its list is now empty.
struct Touched {
    event: String,
    at: usize,
    emptied: bool,
}

/// Removes our handlers from every event.
fn strip_ours(hooks: &mut Map<String, Value>, exe: &Path) -> Vec<Touched> {
    let mut touched = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let Some(groups) = groups.as_array_mut() else {
            continue;
        };
        let mut first = None;
        let mut kept = Vec::with_capacity(groups.len());
        for mut group in std::mem::take(groups) {
            if let Some(handlers) = group.get_mut("hooks").and_then(Value::as_array_mut) {
                let before = handlers.len();
                handlers.retain(|h| !is_ours(h, exe));
                let removed = handlers.len() != before;
                if removed && first.is_none() {
                    first = Some(kept.len());
                }
                // A group that held only ours was ours; a user's group keeps its other handlers.
                if removed && handlers.is_empty() {
                    continue;
                }
            }
            kept.push(group);
        }
        *groups = kept;
        if let Some(at) = first {
            touched.push(Touched {
                event: event.clone(),
                at,
                emptied: groups.is_empty(),
            });
        }
    }
    touched
}

/// Puts our handler into every event the contract registers as `kind`, replacing ours where they were, and
/// takes ours out of every other event. Returns the events ours was taken out of (an older install's).
fn install(
    settings: &mut Value,
    exe: &Path,
    handler: &Value,
    kind: HandlerKind,
) -> anyhow::Result<Vec<String>> {
    let root = settings.as_object_mut().expect("checked when read");
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(hooks) = hooks.as_object_mut() else {
        bail!("\"hooks\" is not a JSON object");
    };
    let events: Vec<_> = hook_events::registered(kind).collect();
    for (event, _) in &events {
        if hooks.get(*event).is_some_and(|v| !v.is_array()) {
            bail!("\"hooks\".{event:?} is not a JSON array");
        }
    }
    let touched = strip_ours(hooks, exe);
    let mut dropped = Vec::new();
    for t in &touched {
        if !events.iter().any(|(e, _)| *e == t.event) {
            dropped.push(t.event.clone());
            // An event we no longer register loses a list we emptied, as on uninstall.
            if t.emptied {
                hooks.remove(&t.event);
            }
        }
    }
    for (event, matcher) in events {
        let group = match matcher {
            Some(m) => json!({"matcher": m, "hooks": [handler]}),
            None => json!({"hooks": [handler]}),
        };
        let at = touched.iter().find(|t| t.event == event).map(|t| t.at);
        let groups = hooks
            .entry(event)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("checked above");
        match at {
            Some(i) => groups.insert(i.min(groups.len()), group),
            None => groups.push(group),
        }
    }
    Ok(dropped)
}

/// Removes our handlers everywhere, then the groups, event lists and `hooks` object that this left empty (an
/// empty one the user had is kept). Returns the number of events we were removed from.
fn uninstall(settings: &mut Value, exe: &Path) -> anyhow::Result<usize> {
    let Some(root) = settings.as_object_mut() else {
        return Ok(0);
    };
    let Some(hooks) = root.get_mut("hooks").and_then(Value::as_object_mut) else {
        return Ok(0);
    };
    let touched = strip_ours(hooks, exe);
    for t in &touched {
        if t.emptied {
            hooks.remove(&t.event);
        }
    }
    if !touched.is_empty() && hooks.is_empty() {
        root.remove("hooks");
    }
    Ok(touched.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook_client::claude_settings::is_guarded;

    const EXE: &str = "/opt/hw/bin/hivewatch";

    fn cmd(c: &str) -> Value {
        json!({"type": "command", "command": c})
    }

    #[test]
    fn reinstall_keeps_position_and_uninstall_restores() {
        let exe = Path::new(EXE);
        let original = json!({
            "model": "opus",
            "hooks": {
                "Stop": [{"hooks": [cmd("echo before")]}, {"hooks": [cmd("echo after")]}],
                "Custom": [],
            }
        });
        let mut s = original.clone();
        install(
            &mut s,
            exe,
            &cmd(&format!("{EXE} hook --source-app a")),
            HandlerKind::Command,
        )
        .unwrap();
        let stop = s["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 3);
        assert_eq!(
            stop[2]["hooks"][0]["command"],
            format!("{EXE} hook --source-app a")
        );
        // Someone adds a hook after ours; a reinstall with other flags replaces ours in place.
        s["hooks"]["Stop"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hooks": [cmd("echo later")]}));
        install(
            &mut s,
            exe,
            &cmd(&format!("{EXE} hook --source-app b")),
            HandlerKind::Command,
        )
        .unwrap();
        let stop = s["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(
            stop[2]["hooks"][0]["command"],
            format!("{EXE} hook --source-app b")
        );
        assert_eq!(stop[3]["hooks"][0]["command"], "echo later");
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
        assert!(s["hooks"]["Notification"][0].get("matcher").is_none());
        s["hooks"]["Stop"].as_array_mut().unwrap().pop();
        assert_eq!(
            uninstall(&mut s, exe).unwrap(),
            hook_events::registered(HandlerKind::Command).count()
        );
        assert_eq!(s, original);
        assert_eq!(uninstall(&mut s, exe).unwrap(), 0);
    }

    #[test]
    fn a_users_group_sharing_our_handler_keeps_its_own() {
        let exe = Path::new(EXE);
        let mut s = json!({"hooks": {"PreToolUse": [
            {"matcher": "Bash", "hooks": [cmd("echo user"), cmd("hivewatch hook")]}
        ]}});
        uninstall(&mut s, exe).unwrap();
        assert_eq!(
            s,
            json!({"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [cmd("echo user")]}]}})
        );
    }

    #[test]
    fn malformed_hooks_are_refused() {
        let exe = Path::new(EXE);
        let h = cmd("hivewatch hook");
        assert!(install(&mut json!({"hooks": []}), exe, &h, HandlerKind::Command).is_err());
        assert!(
            install(
                &mut json!({"hooks": {"Stop": {}}}),
                exe,
                &h,
                HandlerKind::Command
            )
            .is_err()
        );
    }
    #[test]
    fn guarded_commands_are_ours_and_silent_where_the_binary_is_missing() {
        let exe = Path::new(EXE);
        let args = InstallArgs {
            project_dir: None,
            user: false,
            shared: false,
            source_app: Some("my app".into()),
            endpoint: None,
            token: None,
            http: false,
            uninstall: false,
            dry_run: false,
        };
        let local = command_handler(&args, exe, None);
        let command = local["command"].as_str().unwrap();
        assert_eq!(
            command,
            "if [ -x /opt/hw/bin/hivewatch ]; then /opt/hw/bin/hivewatch hook --source-app 'my app'; else cat >/dev/null; fi"
        );
        assert!(is_ours(&local, exe) && is_guarded(command));
        let shared = command_handler(
            &InstallArgs {
                shared: true,
                source_app: None,
                ..args
            },
            exe,
            Some("demo"),
        );
        let command = shared["command"].as_str().unwrap();
        assert!(
            !command.contains('/') || command.contains(">/dev/null"),
            "{command}"
        );
        assert!(
            command.contains("then hivewatch hook --source-app demo;"),
            "{command}"
        );
        assert!(is_ours(&shared, Path::new("/elsewhere/hw")));
        assert!(is_ours(
            &cmd("if [ -x /x/hivewatch ]; then /x/hivewatch hook; else cat >/dev/null; fi"),
            exe
        ));
        assert!(!is_ours(&cmd("if true; then hivewatch flush; fi"), exe));
        assert!(!is_guarded("/opt/hw/bin/hivewatch hook"));
    }
    #[test]
    fn a_reinstall_drops_events_the_contract_no_longer_allows() {
        let exe = Path::new(EXE);
        let old = cmd(&format!("{EXE} hook"));
        let mut s = json!({"hooks": {
            "WorktreeCreate": [{"hooks": [old.clone()]}],
            "InstructionsLoaded": [{"hooks": [old.clone(), cmd("echo mine")]}],
        }});
        let mut dropped = install(&mut s, exe, &old, HandlerKind::Command).unwrap();
        dropped.sort();
        assert_eq!(dropped, ["InstructionsLoaded", "WorktreeCreate"]);
        assert!(s["hooks"].get("WorktreeCreate").is_none());
        assert_eq!(
            s["hooks"]["InstructionsLoaded"],
            json!([{"hooks": [cmd("echo mine")]}])
        );
        assert!(s["hooks"]["PreSkillShellCommand"].is_array());
        // Http hooks leave out the events whose failed request reaches the model.
        let http = json!({"type": "http", "url": "http://h/api/v1/observability/event"});
        let dropped = install(&mut s, exe, &http, HandlerKind::Http).unwrap();
        assert!(
            dropped.contains(&"DirectoryAdded".to_string()),
            "{dropped:?}"
        );
        assert!(s["hooks"].get("DirectoryAdded").is_none());
    }
}
