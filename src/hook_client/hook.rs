//! `hivewatch hook`: one Claude Code hook invocation. Stamps the time, reads the payload on stdin, mints the
//! event id, redacts, delivers with a short timeout, spools on failure, and starts a background flush when
//! earlier work is waiting. Writes nothing on stdout (Claude Code reads a hook's stdout as instructions) and
//! never fails: every problem is one line on stderr.

use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::HookArgs;
use super::config;
use super::http::{Outcome, Target};
use super::settings::{Settings, number_or};
use super::spool::{self, Spool};
use super::transcripts::{self, Transcripts};
use crate::model::hook::json_kind;
use crate::model::hook_events::{self, Registration};
use crate::model::redact::redact_json;
use crate::receiver::hook_http::CONTEXT_FIELD;

pub const EVENT_PATH: &str = "/api/v1/observability/event";
pub const DEFAULT_TIMEOUT_MS: u64 = 250;
/// Larger payloads are dropped: Claude Code's own payloads are far smaller, and the receiver has a limit too.
pub const STDIN_CAP: usize = 4 * 1024 * 1024;

/// Settings of one invocation, resolved from flags, variables, the configuration file and defaults.
struct Options {
    settings: Settings,
    agent_id: Option<String>,
    timeout: Duration,
    spool_max_bytes: u64,
}

impl Options {
    fn resolve(mut args: HookArgs) -> Options {
        let ignored = recover_known_flags(&mut args);
        if ignored > 0 {
            say!("hivewatch hook: ignoring {ignored} argument(s) this version does not know");
        }
        let timeout_ms = number_or(
            "hook",
            "--timeout-ms",
            args.timeout_ms.as_deref(),
            DEFAULT_TIMEOUT_MS,
            1,
        );
        let spool_max_bytes = number_or(
            "hook",
            "--spool-max-bytes",
            args.spool_max_bytes.as_deref(),
            spool::DEFAULT_MAX_BYTES,
            0,
        );
        Options {
            settings: Settings::resolve(args.endpoint, args.token, args.source_app),
            agent_id: args.agent_id.filter(|s| !s.is_empty()),
            timeout: Duration::from_millis(timeout_ms),
            spool_max_bytes,
        }
    }
}

/// clap hands everything from the first argument it does not know to `unknown`, known flags included: take
/// those back (a flag wins over its variable, as usual). Returns how many arguments remain unknown.
fn recover_known_flags(args: &mut HookArgs) -> usize {
    let mut rest = std::mem::take(&mut args.unknown).into_iter();
    let mut ignored = 0;
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let slot = match name {
            "--endpoint" => &mut args.endpoint,
            "--source-app" => &mut args.source_app,
            "--token" => &mut args.token,
            "--agent-id" => &mut args.agent_id,
            "--timeout-ms" => &mut args.timeout_ms,
            "--spool-max-bytes" => &mut args.spool_max_bytes,
            _ => {
                ignored += 1;
                continue;
            }
        };
        *slot = inline.or_else(|| rest.next());
    }
    ignored
}

/// One event ready to send: its id and the exact bytes of the delivery object.
struct Event {
    id: Uuid,
    body: Vec<u8>,
}

/// What the hook's exit status must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the normal case, whatever happened to the event.
    Success,
    /// 1 (a non-blocking error for Claude Code): invoked for an event the hook contract says hivewatch must never
    /// hook, where an empty answer would be taken for a decision (see [`Registration::Never`]).
    NotMine,
}

pub fn run(args: HookArgs, stamp: DateTime<Utc>) -> Exit {
    let options = Options::resolve(args);
    let payload = match read_payload() {
        Ok(p) => p,
        Err(problem) => {
            say!("hivewatch hook: {problem}; nothing sent");
            return Exit::Success;
        }
    };
    let event_name = payload
        .get("hook_event_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match hook_events::lookup(event_name).map(|e| (e.registration, e.why)) {
        Some((Registration::Never, why)) => {
            say!(
                "hivewatch hook: hivewatch must never be registered for {event_name} ({why}); run \
                 `hivewatch doctor` to see where it is, and `hivewatch install-hooks` (with the same --shared, \
                 --user or --http) to remove it"
            );
            return Exit::NotMine;
        }
        Some((Registration::Skip, why)) => say!(
            "hivewatch hook: hivewatch no longer hooks {event_name} ({why}); the event is recorded, but run \
             `hivewatch install-hooks` again to remove the registration"
        ),
        _ => {}
    }
    let state_dir = config::state_dir();
    let transcripts = Transcripts::in_state_dir(&state_dir);
    for job in transcripts::jobs_for(&payload) {
        if let Err(e) = transcripts.record(&job) {
            say!("hivewatch hook: cannot note the transcript to ship: {e}");
        }
    }
    let event = build_event(payload, stamp, &options);
    let outcome = match options.settings.target(options.timeout) {
        Ok(target) => deliver(&target, &event),
        Err(problem) => Outcome::Retry(problem),
    };
    match outcome {
        Outcome::Delivered => {
            // The receiver is up: a good moment to deliver what earlier invocations kept.
            if !Spool::in_state_dir(&state_dir).is_empty() || transcripts.has_pending() {
                spawn_background_flush(&options.settings, &state_dir);
            }
        }
        Outcome::Rejected(code) => {
            say!("hivewatch hook: the receiver refused the event (HTTP {code}); dropped")
        }
        Outcome::Retry(why) => spool_event(&state_dir, &event, &why, options.spool_max_bytes),
    }
    Exit::Success
}

/// Reads stdin up to the cap; the payload must be one JSON object.
fn read_payload() -> Result<Value, String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(
            "expects a hook payload (a JSON object) on stdin, as Claude Code sends it".into(),
        );
    }
    let mut input = stdin.lock();
    let mut bytes = Vec::new();
    (&mut input)
        .take(STDIN_CAP as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if bytes.len() > STDIN_CAP {
        // Drain the rest so that the writer does not get EPIPE and report a failed hook.
        let _ = io::copy(&mut input, &mut io::sink());
        return Err(format!(
            "stdin holds more than {} MiB, the most a hook payload may be",
            STDIN_CAP / (1024 * 1024)
        ));
    }
    parse_payload(&bytes)
}

fn parse_payload(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("stdin is empty, expected a hook payload (a JSON object)".into());
    }
    // serde_json's messages name a position, never the content.
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(format!(
            "stdin holds JSON {}, expected a hook payload (a JSON object)",
            json_kind(&other)
        )),
        Err(e) => Err(format!("stdin is not JSON ({e})")),
    }
}

/// The payload, redacted, with the sender's context in `_hivewatch` (see `receiver::hook_http`).
fn build_event(mut payload: Value, stamp: DateTime<Utc>, options: &Options) -> Event {
    let id = uuid_v7_at(stamp);
    redact_json(&mut payload);
    let mut context = Map::new();
    let mut put = |k: &str, v: String| {
        context.insert(k.to_string(), Value::String(v));
    };
    put("event_id", id.to_string());
    put("time", stamp.to_rfc3339_opts(SecondsFormat::Micros, true));
    if let Some(app) = &options.settings.source_app {
        put("source_app", app.clone());
    }
    if let Some(agent) = &options.agent_id {
        put("agent_id", agent.clone());
    }
    // Set by Claude Code when native traces are on: the join key to the native span of this tool call.
    if let Some(tp) = std::env::var("TRACEPARENT").ok().filter(|s| !s.is_empty()) {
        put("traceparent", tp);
    }
    if let Value::Object(obj) = &mut payload {
        obj.insert(CONTEXT_FIELD.to_string(), Value::Object(context));
    }
    let body = serde_json::to_vec(&payload).expect("a JSON value serializes");
    Event { id, body }
}

/// A UUIDv7 carrying the stamp itself, so that id order and time order agree.
fn uuid_v7_at(stamp: DateTime<Utc>) -> Uuid {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        stamp.timestamp().max(0) as u64,
        stamp.timestamp_subsec_nanos(),
    );
    Uuid::new_v7(ts)
}

fn deliver(target: &Target, event: &Event) -> Outcome {
    target.post_json(EVENT_PATH, &event.body)
}

fn spool_event(state_dir: &Path, event: &Event, why: &str, max_bytes: u64) {
    match Spool::in_state_dir(state_dir).append(event.id, &event.body, max_bytes) {
        Ok(()) => say!("hivewatch hook: not delivered ({why}); spooled for `hivewatch flush`"),
        Err(e) => say!("hivewatch hook: not delivered ({why}) and {e}: event dropped"),
    }
}

/// Starts `hivewatch flush --background`, detached: its own process group (Claude Code may kill the hook's
/// group when it times out), no stdio (Claude Code waits for the hook's stdout to close), never waited for.
/// Where the background flush writes what it would otherwise say on stderr; started afresh past this size.
const FLUSH_LOG: &str = "flush.log";
const FLUSH_LOG_MAX_BYTES: u64 = 1024 * 1024;

/// The background flush's stderr: `flush.log` in the state directory (nobody watches its terminal).
fn flush_log(state_dir: &Path) -> Stdio {
    let path = state_dir.join(FLUSH_LOG);
    let too_big = std::fs::metadata(&path).is_ok_and(|m| m.len() > FLUSH_LOG_MAX_BYTES);
    std::fs::OpenOptions::new()
        .create(true)
        .append(!too_big)
        .write(true)
        .truncate(too_big)
        .open(&path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn spawn_background_flush(settings: &Settings, state_dir: &Path) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = Command::new(exe);
    cmd.args([
        "flush",
        "--background",
        "--endpoint",
        &settings.endpoint_url,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(flush_log(state_dir));
    // Through the environment, not the command line, which other users can read.
    if let Some(token) = &settings.token {
        cmd.env("HIVEWATCH_INGEST_TOKEN", token);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    if let Err(e) = cmd.spawn() {
        say!("hivewatch hook: cannot start the background flush: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_be_objects() {
        assert!(parse_payload(b" \n").unwrap_err().contains("empty"));
        assert!(parse_payload(b"[1]").unwrap_err().contains("array"));
        assert!(
            parse_payload(b"{\"secret\": ")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(parse_payload(b"{\"a\":1}").is_ok());
    }

    #[test]
    fn known_flags_after_unknown_ones_still_count() {
        let mut args = HookArgs {
            endpoint: None,
            source_app: Some("from-env".into()),
            token: None,
            agent_id: None,
            timeout_ms: None,
            spool_max_bytes: None,
            unknown: ["--future", "x", "--source-app", "app", "--timeout-ms=100"]
                .map(String::from)
                .to_vec(),
        };
        assert_eq!(recover_known_flags(&mut args), 2);
        assert_eq!(args.source_app.as_deref(), Some("app"));
        assert_eq!(args.timeout_ms.as_deref(), Some("100"));
    }

    #[test]
    fn ids_carry_the_stamp() {
        let stamp = Utc::now();
        let id = uuid_v7_at(stamp);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, stamp.timestamp());
        assert_eq!(nanos / 1_000_000, stamp.timestamp_subsec_millis());
    }
}
