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
//! Which handlers are ours (replaced on install, removed on uninstall), see [`is_ours`]:
//! - a `command` handler that runs this binary (canonical path) or any file named `hivewatch` with the
//!   subcommand `hook`, bare (`/path/hivewatch hook …`, as earlier releases wrote it) or behind the guard above
//!   (so a rebuilt, moved or differently installed hivewatch is still recognised and never registered twice);
//! - an `http` handler whose URL path ends in `/api/v1/observability/event`.
//!
//! An install first removes ours from every event, then adds them back where the contract allows: running it
//! again after an upgrade drops events hivewatch must no longer hook and adds the new ones. Everything else in
//! the file is kept as a JSON value, keys in the user's order (serde_json's `preserve_order`); the file is written
//! back pretty-printed, and a file whose value does not change is not rewritten at all (so a second install
//! leaves it byte-identical).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::hook_client::config::{DEFAULT_ENDPOINT, HookConfig, config_dir};
use crate::model::hook_events::{self, HandlerKind, Registration};

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

/// The project's settings file teams commit, and the personal one beside it.
pub const SHARED_SETTINGS: &str = ".claude/settings.json";
pub const LOCAL_SETTINGS: &str = ".claude/settings.local.json";

#[derive(Args)]
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
    pub token: Option<String>,
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

impl fmt::Debug for InstallArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never print it.
        f.debug_struct("InstallArgs")
            .field("project_dir", &self.project_dir)
            .field("user", &self.user)
            .field("shared", &self.shared)
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

/// The parsed file, `None` when it does not exist. An empty file counts as `{}` (an editor's placeholder);
/// anything else that is not JSON is an error, and the file is left alone.
pub fn read_settings(path: &Path) -> anyhow::Result<Option<Value>> {
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

/// Whether a hook handler is one of ours; see the module documentation for the rule.
pub fn is_ours(handler: &Value, exe: &Path) -> bool {
    handler_kind(handler, exe).is_some()
}

/// The kind of handler when it is ours.
pub fn handler_kind(handler: &Value, exe: &Path) -> Option<HandlerKind> {
    let field = |k: &str| handler.get(k).and_then(Value::as_str);
    match field("type")? {
        "command" => field("command")
            .is_some_and(|c| is_our_command(c, exe))
            .then_some(HandlerKind::Command),
        "http" => field("url")
            .is_some_and(is_our_url)
            .then_some(HandlerKind::Http),
        _ => None,
    }
}

/// Whether one of our command hooks is guarded, i.e. a silent no-op where the binary is missing (earlier
/// releases wrote the bare path, which fails every hook on a machine without it).
pub fn is_guarded(command: &str) -> bool {
    command.trim_start().starts_with("if ")
}

/// The program and subcommand a hook command runs: the words after `then` for our guarded form, else the
/// first two.
fn invocation(command: &str) -> Vec<String> {
    let body = command
        .trim_start()
        .strip_prefix("if ")
        .and_then(|rest| rest.split_once("; then ").map(|(_, body)| body))
        .unwrap_or(command);
    first_shell_words(body, 2)
}

fn is_our_command(command: &str, exe: &Path) -> bool {
    let words = invocation(command);
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

/// Up to `n` leading words of a POSIX shell command, with quotes and backslashes resolved, ending at an unquoted
/// `;`: enough to read the program and subcommand of a command we may have quoted ourselves.
fn first_shell_words(command: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = command.chars().peekable();
    while words.len() < n {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none_or(|&c| c == ';') {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ';' {
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

/// Our registrations in one settings value: per event name, the kind of each handler of ours and, for a
/// command, its command line.
pub fn our_registrations(
    settings: &Value,
    exe: &Path,
) -> Vec<(String, HandlerKind, Option<String>)> {
    let mut out = Vec::new();
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for (event, groups) in hooks {
        for handler in groups
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("hooks")?.as_array())
            .flatten()
        {
            if let Some(kind) = handler_kind(handler, exe) {
                let command = handler
                    .get("command")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                out.push((event.clone(), kind, command));
            }
        }
    }
    out
}

/// What the contract says of a registration of ours for `event` as `kind`: `None` when it is allowed.
pub fn registration_problem(event: &str, kind: HandlerKind) -> Option<(bool, String)> {
    let Some(contract) = hook_events::lookup(event) else {
        return Some((
            false,
            format!(
                "{event} is not a hook event this hivewatch knows; Claude Code ignores unknown events"
            ),
        ));
    };
    match contract.registration {
        _ if contract.registered_as(kind).is_some() => None,
        Registration::Never => Some((
            true,
            format!("{event} must never be hooked: {}", contract.why),
        )),
        Registration::Skip => Some((
            false,
            format!("{event} is not worth hooking: {}", contract.why),
        )),
        Registration::Observe { .. } => Some((
            false,
            format!("{event} is hooked only by command hooks: {}", contract.why),
        )),
    }
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

    #[test]
    fn registrations_are_judged_by_the_contract() {
        assert_eq!(registration_problem("Stop", HandlerKind::Http), None);
        assert!(
            registration_problem("WorktreeCreate", HandlerKind::Command)
                .unwrap()
                .0
        );
        assert!(
            !registration_problem("FileChanged", HandlerKind::Command)
                .unwrap()
                .0
        );
        assert!(
            !registration_problem("DirectoryAdded", HandlerKind::Http)
                .unwrap()
                .0
        );
        assert!(
            !registration_problem("SomethingNew", HandlerKind::Command)
                .unwrap()
                .0
        );
    }
}
