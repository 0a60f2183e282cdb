//! `hivewatch doctor`: checks the hook setup from the user's side and says what it found, on stdout.
//! Exit status 0 when the receiver answers, 1 when it does not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DoctorArgs;
use super::config::{self, HookConfig};
use super::settings::Settings;
use super::spool::Spool;
use super::transcripts::Transcripts;

pub fn run(args: DoctorArgs) -> ExitCode {
    let settings = Settings::resolve(args.endpoint, None, None);
    println!("hivewatch doctor");
    report_hooks();
    report_config(&settings);
    let reachable = report_receiver(&settings, Duration::from_millis(args.timeout_ms.max(1)));
    report_state();
    if reachable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The settings files Claude Code reads hooks from, project ones first.
fn settings_files() -> Vec<(String, PathBuf)> {
    let mut files = vec![
        (
            "./.claude/settings.json".to_string(),
            PathBuf::from(".claude/settings.json"),
        ),
        (
            "./.claude/settings.local.json".to_string(),
            PathBuf::from(".claude/settings.local.json"),
        ),
    ];
    if let Some(home) = dirs::home_dir() {
        files.push((
            "~/.claude/settings.json".to_string(),
            home.join(".claude/settings.json"),
        ));
    }
    files
}

fn report_hooks() {
    let mut found = false;
    for (label, path) in settings_files() {
        let status = match hooked_events(&path) {
            Err(problem) => problem,
            Ok(events) if events.is_empty() => "no `hivewatch hook` registered".to_string(),
            Ok(events) => {
                found = true;
                format!(
                    "`hivewatch hook` registered for {} events ({})",
                    events.len(),
                    events.join(", ")
                )
            }
        };
        println!("  hooks     {label}: {status}");
    }
    if !found {
        println!("            run `hivewatch install-hooks` to register the hook");
    }
}

/// The hook events whose commands run `hivewatch … hook`, or why the file could not be read.
fn hooked_events(path: &Path) -> Result<Vec<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("not found".into()),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let settings: Value =
        serde_json::from_str(&text).map_err(|e| format!("not valid JSON ({e})"))?;
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    Ok(hooks
        .iter()
        .filter(|(_, config)| runs_hivewatch_hook(config))
        .map(|(event, _)| event.clone())
        .collect())
}

/// Whether any handler registered for one event is hivewatch's (a `hivewatch hook` command or an http hook to the
/// event endpoint), by the same rule `install-hooks` uses.
fn runs_hivewatch_hook(groups: &Value) -> bool {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_default();
    groups
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|group| group.get("hooks")?.as_array())
        .flatten()
        .any(|handler| crate::cli::install_hooks::is_ours(handler, &exe))
}

fn report_config(settings: &Settings) {
    let path = HookConfig::path_in(&config::config_dir());
    let file = if path.exists() { "" } else { " (not present)" };
    println!("  config    {}{file}", path.display());
    let token = if settings.token.is_some() {
        "configured"
    } else {
        "none"
    };
    println!("  token     {token}");
}

fn report_receiver(settings: &Settings, timeout: Duration) -> bool {
    let target = match settings.target(timeout) {
        Ok(t) => t,
        Err(problem) => {
            println!("  receiver  {problem}");
            return false;
        }
    };
    let url = target.endpoint.url("/healthz");
    let started = Instant::now();
    match target.get("/healthz") {
        Ok(code) if (200..300).contains(&code) => {
            let ms = started.elapsed().as_millis();
            println!("  receiver  {url}: answers (HTTP {code}, {ms} ms)");
            true
        }
        Ok(code) => {
            println!("  receiver  {url}: answered HTTP {code}; is this hivewatch?");
            false
        }
        Err(e) => {
            println!("  receiver  {url}: unreachable ({e}); start it with `hivewatch serve`");
            false
        }
    }
}

fn report_state() {
    let state_dir = config::state_dir();
    let spool = Spool::in_state_dir(&state_dir);
    let usage = spool.count();
    println!(
        "  spool     {} events, {} bytes in {}",
        usage.events,
        usage.bytes,
        spool.dir().display()
    );
    let pending = Transcripts::in_state_dir(&state_dir).pending_count();
    println!("  transcripts pending: {pending}");
    if usage.events > 0 || pending > 0 {
        println!("            `hivewatch flush` delivers them once the receiver answers");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_hook_commands() {
        let hooks = json!({"PreToolUse": [{"matcher": "", "hooks": [{"type": "command",
                           "command": "/usr/local/bin/hivewatch hook --source-app demo"}]}]});
        assert!(runs_hivewatch_hook(&hooks["PreToolUse"]));
        let other = json!([{"hooks": [{"type": "command", "command": "echo hivewatch hook"}]}]);
        assert!(!runs_hivewatch_hook(&other));
        let http = json!([{"hooks": [{"type": "http", "url": "http://127.0.0.1:4318/api/v1/observability/event"}]}]);
        assert!(runs_hivewatch_hook(&http));
    }
}
