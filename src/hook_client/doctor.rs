//! `hivewatch doctor`: checks the hook setup from the user's side and says what it found, on stdout.
//! Exit status 0 when the receiver answers and no hook registration is unsafe (an event the hook contract says
//! hivewatch must never hook), 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::DoctorArgs;
use super::claude_settings::{
    LOCAL_SETTINGS, SHARED_SETTINGS, is_guarded, our_registrations, read_settings,
    registration_problem,
};
use super::config::{self, HookConfig};
use super::settings::Settings;
use super::spool::Spool;
use super::transcripts::Transcripts;
use crate::model::hook_events::{self, HandlerKind};

pub fn run(args: DoctorArgs) -> ExitCode {
    let settings = Settings::resolve(args.endpoint, None, None);
    println!("hivewatch doctor");
    let unsafe_hooks = report_hooks();
    report_config(&settings);
    let reachable = report_receiver(&settings, Duration::from_millis(args.timeout_ms.max(1)));
    report_state();
    if unsafe_hooks > 0 {
        println!(
            "error: {unsafe_hooks} hook registration(s) change what Claude Code does; run the command shown"
        );
    }
    if reachable && unsafe_hooks == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A settings file Claude Code reads hooks from: how doctor names it, where it is, and the install command that
/// rewrites it.
struct SettingsFile {
    label: &'static str,
    path: PathBuf,
    install: &'static str,
}

/// The settings files Claude Code reads hooks from, project ones first.
fn settings_files() -> Vec<SettingsFile> {
    let mut files = vec![
        SettingsFile {
            label: "./.claude/settings.json",
            path: PathBuf::from(SHARED_SETTINGS),
            install: "hivewatch install-hooks --shared",
        },
        SettingsFile {
            label: "./.claude/settings.local.json",
            path: PathBuf::from(LOCAL_SETTINGS),
            install: "hivewatch install-hooks",
        },
    ];
    if let Some(home) = dirs::home_dir() {
        files.push(SettingsFile {
            label: "~/.claude/settings.json",
            path: home.join(".claude/settings.json"),
            install: "hivewatch install-hooks --user",
        });
    }
    files
}

/// Reports what each settings file registers against the hook contract; returns how many registrations are
/// unsafe (an event hivewatch must never hook).
fn report_hooks() -> usize {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_default();
    let mut unsafe_count = 0;
    let mut installed_in = Vec::new();
    for file in settings_files() {
        let settings = match read_settings(&file.path) {
            Ok(Some(v)) => v,
            Ok(None) => {
                println!("  hooks     {}: not found", file.label);
                continue;
            }
            Err(e) => {
                println!("  hooks     {}: {e:#}", file.label);
                continue;
            }
        };
        let ours = our_registrations(&settings, &exe);
        if ours.is_empty() {
            println!("  hooks     {}: no `hivewatch hook` registered", file.label);
            continue;
        }
        installed_in.push(file.label);
        let http = ours.iter().any(|(_, kind, _)| *kind == HandlerKind::Http);
        let kind = if http {
            HandlerKind::Http
        } else {
            HandlerKind::Command
        };
        let fix = format!("{}{}", file.install, if http { " --http" } else { "" });
        let mut events: Vec<&str> = ours.iter().map(|(e, ..)| e.as_str()).collect();
        events.dedup();
        println!(
            "  hooks     {}: hivewatch registered for {} events ({})",
            file.label,
            events.len(),
            events.join(", ")
        );
        let mut to_fix = false;
        for (event, kind, _) in &ours {
            if let Some((is_unsafe, problem)) = registration_problem(event, *kind) {
                let level = if is_unsafe { "ERROR" } else { "warning" };
                println!("  {level:<9} {}: {problem}", file.label);
                unsafe_count += usize::from(is_unsafe);
                to_fix = true;
            }
        }
        let missing: Vec<&str> = hook_events::registered(kind)
            .map(|(e, _)| e)
            .filter(|e| !events.contains(e))
            .collect();
        if !missing.is_empty() {
            println!(
                "  warning   {}: not registered for {} events this hivewatch hooks: {}",
                file.label,
                missing.len(),
                missing.join(", ")
            );
            to_fix = true;
        }
        let bare = ours
            .iter()
            .filter_map(|(_, _, command)| command.as_deref())
            .any(|c| !is_guarded(c));
        if bare {
            println!(
                "  warning   {}: the hook command fails on a machine without this binary (an earlier release's \
                 form); a reinstall makes it a silent no-op there",
                file.label
            );
            to_fix = true;
        }
        if to_fix {
            println!("            fix: run `{fix}`");
        }
    }
    match installed_in.as_slice() {
        [] => println!("            run `hivewatch install-hooks` to register the hook"),
        [_] => {}
        several => println!(
            "  warning   hivewatch is registered in {}: Claude Code runs each, so every event is stored once per file",
            several.join(" and ")
        ),
    }
    unsafe_count
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
