//! `hivewatch install-hooks`: registers `hivewatch hook` in Claude Code's settings.json for every hook event,
//! merged with the hooks already there; `--uninstall` takes out exactly what it put in.
//!
//! Which settings file: the project's `.claude/settings.json` (current directory, or `--project-dir`), or with
//! `--user` the user's `~/.claude/settings.json` (`$HOME` honoured).
//!
//! What is written, per event of [`HOOK_EVENTS`]: one matcher group holding one handler,
//!
//! ```json
//! {"matcher": "*", "hooks": [{"type": "command", "command": "/abs/hivewatch hook --source-app demo", "timeout": 5}]}
//! ```
//!
//! (`"matcher"` only for tool events), or with `--http` a `{"type": "http", "url": "<endpoint>/api/v1/observability/event"}`
//! handler. The ingest token never goes into settings.json, which is often committed: it goes to the hook
//! configuration file ([`HookConfig`]), and an http hook only names the variable holding it.
//!
//! Which handlers are ours (replaced on install, removed on uninstall), see [`is_ours`]:
//! - a `command` handler whose command's first shell word is this binary (canonical path), or any file named
//!   `hivewatch` (so a rebuilt, moved or differently installed hivewatch is still recognised and never
//!   registered twice), and whose second word is `hook`;
//! - an `http` handler whose URL path ends in `/api/v1/observability/event`.
//!
//! Everything else in the file is kept as a JSON value, keys in the user's order (serde_json's `preserve_order`);
//! the file is written back pretty-printed, and a file whose value does not change is not rewritten at all (so a
//! second install leaves it byte-identical).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::hook_client::config::{DEFAULT_ENDPOINT, HookConfig, config_dir};

/// Claude Code's documented hook events, and whether each takes a tool-name matcher (`"matcher": "*"`).
/// Events outside this list are never given a hook, but our handlers are removed from them too.
pub const HOOK_EVENTS: [(&str, bool); 29] = [
    ("PreToolUse", true),
    ("PostToolUse", true),
    ("PostToolUseFailure", true),
    ("PostToolBatch", false),
    ("PermissionRequest", true),
    ("PermissionDenied", true),
    ("Notification", false),
    ("UserPromptSubmit", false),
    ("UserPromptExpansion", false),
    ("Stop", false),
    ("StopFailure", false),
    ("SubagentStart", false),
    ("SubagentStop", false),
    ("PreCompact", false),
    ("PostCompact", false),
    ("SessionStart", false),
    ("SessionEnd", false),
    ("InstructionsLoaded", false),
    ("TaskCreated", false),
    ("TaskCompleted", false),
    ("TeammateIdle", false),
    ("ConfigChange", false),
    ("CwdChanged", false),
    ("FileChanged", false),
    ("WorktreeCreate", false),
    ("WorktreeRemove", false),
    ("Elicitation", false),
    ("ElicitationResult", false),
    ("Setup", false),
];

/// The receiver's hook endpoint; an http handler whose URL ends in it is ours.
pub const HOOK_HTTP_PATH: &str = "/api/v1/observability/event";

/// Seconds Claude Code waits for a handler. The hook answers in milliseconds and never blocks the agent; this
/// is only a bound for a wedged machine.
const HOOK_TIMEOUT_SECS: u64 = 5;

/// The variable an http hook's `Authorization` header reads the token from (Claude Code interpolates only
/// variables listed in `allowedEnvVars`).
const TOKEN_ENV: &str = "HIVEWATCH_INGEST_TOKEN";

/// The header the receiver takes `source_app` from for an http hook (a command hook passes `--source-app`).
const SOURCE_APP_HEADER: &str = "X-Hivewatch-Source-App";

#[derive(Args)]
pub struct InstallArgs {
    /// Project whose `.claude/settings.json` to edit [default: the current directory].
    #[arg(long, value_name = "DIR", conflicts_with = "user")]
    pub project_dir: Option<PathBuf>,
    /// Edit the user's `~/.claude/settings.json` (all projects) instead of a project's.
    #[arg(long)]
    pub user: bool,
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
    pub token: Option<String>,
    /// Register http hooks (Claude Code posts the event itself) instead of `hivewatch hook` commands: no
    /// process per event, but no spool, so events are lost while hivewatch is down.
    #[arg(long)]
    pub http: bool,
    /// Remove hivewatch's hooks (command and http alike) and nothing else.
    #[arg(long, conflicts_with_all = ["source_app", "endpoint"])]
    pub uninstall: bool,
    /// Print the resulting settings.json instead of writing it (nothing is written, not even the token).
    #[arg(long)]
    pub dry_run: bool,
}

impl fmt::Debug for InstallArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("InstallArgs")
            .field("project_dir", &self.project_dir)
            .field("user", &self.user)
            .field("source_app", &self.source_app)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("http", &self.http)
            .field("uninstall", &self.uninstall)
            .field("dry_run", &self.dry_run)
            .finish()
    }
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

fn execute(args: &InstallArgs) -> anyhow::Result<()> {
    let (settings_path, project_name) = settings_location(args)?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the path of the running hivewatch binary")?;
    let original = read_settings(&settings_path)?;
    let mut settings = original.clone().unwrap_or_else(|| json!({}));
    let shown = settings_path.display();
    let token = args.token.as_deref().filter(|t| !t.is_empty());
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

    let summary = if args.uninstall {
        let n = uninstall(&mut settings, &exe).with_context(|| format!("cannot edit {shown}"))?;
        if n == 0 {
            format!("no hivewatch hooks in {shown}; nothing to remove")
        } else {
            format!("removed hivewatch from {n} hook events in {shown}")
        }
    } else {
        let handler = if args.http {
            http_handler(args, project_name.as_deref(), token.is_some())?
        } else {
            command_handler(args, &exe, project_name.as_deref())
        };
        install(&mut settings, &exe, &handler).with_context(|| format!("cannot edit {shown}"))?;
        let n = HOOK_EVENTS.len();
        if original.as_ref() == Some(&settings) {
            format!(
                "hivewatch is already installed for {n} hook events in {shown}; nothing changed"
            )
        } else {
            format!("installed hivewatch for {n} hook events in {shown}")
        }
    };
    let changed = original.as_ref() != Some(&settings) && !(original.is_none() && args.uninstall);

    if args.dry_run {
        // The JSON alone on stdout, so it can be piped; the rest on stderr.
        print!("{}", render(&settings));
        eprintln!("dry run, nothing written: {summary}");
        if !args.uninstall && token.is_some() {
            eprintln!(
                "dry run: would save the ingest token to {}",
                HookConfig::path_in(&config_dir()).display()
            );
        }
        return Ok(());
    }

    if changed {
        write_atomically(&settings_path, render(&settings).as_bytes())
            .with_context(|| format!("cannot write {shown}"))?;
    }
    println!("{summary}");

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
        }
    }
    Ok(())
}

/// The settings file to edit, and the project's name (the default `source_app`; none for `--user`).
fn settings_location(args: &InstallArgs) -> anyhow::Result<(PathBuf, Option<String>)> {
    if args.user {
        let home = dirs::home_dir().context("no home directory: set $HOME")?;
        return Ok((home.join(".claude").join("settings.json"), None));
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
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok((dir.join(".claude").join("settings.json"), name))
}

/// The parsed file, `None` when it does not exist. An empty file counts as `{}` (an editor's placeholder);
/// anything else that is not JSON is an error, and the file is left alone.
fn read_settings(path: &Path) -> anyhow::Result<Option<Value>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(json!({})));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON; left it unchanged", path.display()))?;
    if !value.is_object() {
        bail!(
            "{} is not a JSON object (Claude Code settings are one); left it unchanged",
            path.display()
        );
    }
    Ok(Some(value))
}

fn render(settings: &Value) -> String {
    let mut s = serde_json::to_string_pretty(settings).expect("a JSON value serializes");
    s.push('\n');
    s
}

fn command_handler(args: &InstallArgs, exe: &Path, project_name: Option<&str>) -> Value {
    let mut command = format!("{} hook", shell_quote(&exe.to_string_lossy()));
    if let Some(app) = args.source_app.as_deref().or(project_name) {
        command.push_str(" --source-app ");
        command.push_str(&shell_quote(app));
    }
    if let Some(endpoint) = &args.endpoint {
        command.push_str(" --endpoint ");
        command.push_str(&shell_quote(endpoint));
    }
    json!({"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECS})
}

fn http_handler(
    args: &InstallArgs,
    project_name: Option<&str>,
    with_token: bool,
) -> anyhow::Result<Value> {
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
    Ok(handler)
}

/// Whether a hook handler is one of ours; see the module documentation for the rule.
pub fn is_ours(handler: &Value, exe: &Path) -> bool {
    match handler.get("type").and_then(Value::as_str) {
        Some("command") => handler
            .get("command")
            .and_then(Value::as_str)
            .is_some_and(|c| is_our_command(c, exe)),
        Some("http") => handler
            .get("url")
            .and_then(Value::as_str)
            .is_some_and(is_our_url),
        _ => false,
    }
}

fn is_our_command(command: &str, exe: &Path) -> bool {
    let words = first_shell_words(command, 2);
    let [program, subcommand] = words.as_slice() else {
        return false;
    };
    let program = Path::new(program);
    let named_hivewatch = program
        .file_name()
        .is_some_and(|n| n == "hivewatch" || n == "hivewatch.exe");
    subcommand == "hook" && (program == exe || named_hivewatch)
}

fn is_our_url(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').ends_with(HOOK_HTTP_PATH)
}

/// Up to `n` leading words of a POSIX shell command, with quotes and backslashes resolved: enough to read the
/// program and subcommand of a command we may have quoted ourselves.
fn first_shell_words(command: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = command.chars().peekable();
    while words.len() < n {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => word.extend(chars.by_ref().take_while(|&c| c != '\'')),
                '"' => {
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' if chars.peek().is_some_and(|n| "\"\\$`".contains(*n)) => {
                                word.extend(chars.next());
                            }
                            _ => word.push(c),
                        }
                    }
                }
                '\\' => word.extend(chars.next()),
                _ => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

/// `s` as one POSIX shell word: bare when it is plainly safe, else single-quoted.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Removes our handlers from every event. Returns, per event touched, the index (in the list as it is after
/// removal) where our first matcher group was, so that a reinstall puts ours back in the same place; and the
/// events whose list we emptied.
fn strip_ours(hooks: &mut Map<String, Value>, exe: &Path) -> Vec<(String, usize, bool)> {
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
        if let Some(index) = first {
            touched.push((event.clone(), index, groups.is_empty()));
        }
    }
    touched
}

/// Puts our handler into every event of [`HOOK_EVENTS`], replacing ours where they were, keeping the rest.
fn install(settings: &mut Value, exe: &Path, handler: &Value) -> anyhow::Result<()> {
    let root = settings.as_object_mut().expect("checked when read");
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(hooks) = hooks.as_object_mut() else {
        bail!("\"hooks\" is not a JSON object");
    };
    for (event, _) in HOOK_EVENTS {
        if hooks.get(event).is_some_and(|v| !v.is_array()) {
            bail!("\"hooks\".{event:?} is not a JSON array");
        }
    }
    let touched = strip_ours(hooks, exe);
    // Events we no longer register (none today) lose an emptied list, as on uninstall.
    for (event, _, emptied) in &touched {
        if *emptied && !HOOK_EVENTS.iter().any(|(e, _)| e == event) {
            hooks.remove(event);
        }
    }
    for (event, tool_matcher) in HOOK_EVENTS {
        let group = if tool_matcher {
            json!({"matcher": "*", "hooks": [handler]})
        } else {
            json!({"hooks": [handler]})
        };
        let at = touched.iter().find(|(e, ..)| e == event).map(|t| t.1);
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
    Ok(())
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
    for (event, _, emptied) in &touched {
        if *emptied {
            hooks.remove(event);
        }
    }
    if !touched.is_empty() && hooks.is_empty() {
        root.remove("hooks");
    }
    Ok(touched.len())
}

/// Writes through a temporary file in the same directory and a rename, so Claude Code (which reads the file
/// while running) never sees half a file. A symlinked settings.json is written through to its target, and an
/// existing file's permissions are kept.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.hivewatch-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(&path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename itself survives a crash only once the directory is synced; best effort.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/opt/hw/bin/hivewatch";

    fn cmd(c: &str) -> Value {
        json!({"type": "command", "command": c})
    }

    #[test]
    fn identifies_our_command_and_http_handlers() {
        let exe = Path::new("/build/target/debug/hw-renamed");
        assert!(is_ours(&cmd("/build/target/debug/hw-renamed hook"), exe));
        assert!(is_ours(
            &cmd("/usr/local/bin/hivewatch hook --source-app x"),
            exe
        ));
        assert!(is_ours(&cmd("hivewatch hook"), exe));
        assert!(is_ours(&cmd("'/home/a b/hivewatch' hook"), exe));
        assert!(is_ours(&cmd("\"/home/a b/hivewatch\" hook"), exe));
        assert!(is_ours(&cmd("/home/a\\ b/hivewatch hook"), exe));
        assert!(!is_ours(&cmd("/usr/bin/hivewatch flush"), exe));
        assert!(!is_ours(&cmd("/usr/bin/hivewatch-x hook"), exe));
        assert!(!is_ours(&cmd("echo hivewatch hook"), exe));
        assert!(!is_ours(&cmd("hivewatch"), exe));
        assert!(!is_ours(
            &json!({"type": "prompt", "command": "hivewatch hook"}),
            exe
        ));
        let http = |u: &str| json!({"type": "http", "url": u});
        assert!(is_ours(
            &http("http://h:4318/api/v1/observability/event"),
            exe
        ));
        assert!(is_ours(
            &http("https://h/x/api/v1/observability/event/?a=1"),
            exe
        ));
        assert!(!is_ours(
            &http("http://h:4318/api/v1/observability/events"),
            exe
        ));
    }

    #[test]
    fn quoting_round_trips_through_the_word_splitter() {
        for s in ["plain", "/a b/c", "it's", "", "$HOME", "a\"b\\c"] {
            let quoted = shell_quote(s);
            assert_eq!(first_shell_words(&format!("{quoted} hook"), 2), [s, "hook"]);
        }
        assert_eq!(shell_quote("/usr/bin/hivewatch"), "/usr/bin/hivewatch");
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
        install(&mut s, exe, &cmd(&format!("{EXE} hook --source-app a"))).unwrap();
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
        install(&mut s, exe, &cmd(&format!("{EXE} hook --source-app b"))).unwrap();
        let stop = s["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(
            stop[2]["hooks"][0]["command"],
            format!("{EXE} hook --source-app b")
        );
        assert_eq!(stop[3]["hooks"][0]["command"], "echo later");
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
        assert!(s["hooks"]["Notification"][0].get("matcher").is_none());
        s["hooks"]["Stop"].as_array_mut().unwrap().pop();
        assert_eq!(uninstall(&mut s, exe).unwrap(), HOOK_EVENTS.len());
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
        assert!(install(&mut json!({"hooks": []}), exe, &h).is_err());
        assert!(install(&mut json!({"hooks": {"Stop": {}}}), exe, &h).is_err());
    }
}
