//! What hivewatch knows of Claude Code's settings files: where a project keeps them, how to read one, which hook
//! handlers in it are hivewatch's, and what the hook contract says of each registration. `install-hooks` writes
//! from this, `doctor` reads with it.
//!
//! Which handlers are ours (see [`is_ours`]):
//! - a `command` handler that runs this binary (canonical path) or any file named `hivewatch` with the subcommand
//!   `hook`, bare (`/path/hivewatch hook …`, as earlier releases wrote it) or behind the guard `install-hooks`
//!   writes (`if [ -x … ]; then … hook …; else cat >/dev/null; fi`), so that a rebuilt, moved or differently
//!   installed hivewatch is still recognised and never registered twice;
//! - an `http` handler whose URL path ends in `/api/v1/observability/event`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::model::hook_events::{self, HandlerKind, Registration};

/// The receiver's hook endpoint; an http handler whose URL ends in it is ours.
pub const HOOK_HTTP_PATH: &str = "/api/v1/observability/event";

/// The project's settings file teams commit, and the personal one beside it.
pub const SHARED_SETTINGS: &str = ".claude/settings.json";

pub const LOCAL_SETTINGS: &str = ".claude/settings.local.json";

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
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
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
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
    use serde_json::json;

    use super::*;

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
