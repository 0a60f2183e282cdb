//! The `hivewatch hook` side: runs inside Claude Code's hook, stamps, redacts and delivers one event, spools it
//! when the receiver is unreachable, and never blocks or fails the agent. `hivewatch flush` delivers what was
//! spooled and ships transcripts; `hivewatch doctor` checks the setup.
//!
//! This side runs without an async runtime (see `main.rs`): a hook starts once per agent action and must be
//! done in milliseconds. Layout of the state directory (`config::state_dir()`):
//!
//! ```text
//! spool/<event id>.json                  one undelivered event each (spool.rs)
//! flush.lock                             held by the one running flush (flush.rs)
//! transcripts/pending/<key>-<uuid>.json  transcripts with new lines to ship (transcripts.rs)
//! transcripts/shipped/<key>.json         byte offset shipped so far, per transcript
//! ```

/// One line on stderr, ignoring failure: `eprintln!` panics when stderr is closed, and the hook must exit 0
/// whatever happens. Defined before the modules so that they all see it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod claude_settings;
pub mod config;
mod doctor;
mod files;
mod flush;
mod hook;
pub(crate) mod http;
mod settings;
mod spool;
mod transcripts;

use std::fmt;
use std::process::ExitCode;

use clap::Args;

/// Flags of `hivewatch hook`. Numbers are taken as text and checked by the hook itself: a value clap rejected
/// would make the process exit with status 2, which Claude Code treats as "block this action".
#[derive(Args, Default)]
pub struct HookArgs {
    /// Receiver URL (http:// only).
    #[arg(long, env = "HIVEWATCH_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Name of the project or application the events belong to (default: the config file's, else the
    /// receiver uses the working directory's name).
    #[arg(long, env = "HIVEWATCH_SOURCE_APP", value_name = "NAME")]
    pub source_app: Option<String>,
    /// Bearer token for ingest; better kept in the config file than in settings.json.
    #[arg(long, env = "HIVEWATCH_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Agent identity for payloads that name no subagent (default `main`).
    #[arg(long, env = "HIVEWATCH_AGENT_ID", value_name = "ID")]
    pub agent_id: Option<String>,
    /// The most one delivery attempt may take, connecting included [default: 250].
    #[arg(long, env = "HIVEWATCH_HOOK_TIMEOUT_MS", value_name = "MS")]
    pub timeout_ms: Option<String>,
    /// Largest size of the spool of undelivered events [default: 67108864, 64 MiB].
    #[arg(long, env = "HIVEWATCH_SPOOL_MAX_BYTES", value_name = "BYTES")]
    pub spool_max_bytes: Option<String>,
    /// Arguments this version does not know (a newer settings.json): ignored, since failing would disturb
    /// the agent.
    #[arg(hide = true, num_args = 0.., allow_hyphen_values = true)]
    pub unknown: Vec<String>,
}

#[derive(Args)]
pub struct FlushArgs {
    /// Receiver URL (http:// only).
    #[arg(long, env = "HIVEWATCH_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Bearer token for ingest.
    #[arg(long, env = "HIVEWATCH_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The most one request may take, in milliseconds.
    #[arg(long, env = "HIVEWATCH_FLUSH_TIMEOUT_MS", default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Started by the hook: no summary, and give up at once if another flush is running.
    #[arg(long)]
    pub background: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Receiver URL (http:// only).
    #[arg(long, env = "HIVEWATCH_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// How long to wait for the receiver's answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

// Hand-written so that a token never reaches a log or a panic message.
impl fmt::Debug for HookArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookArgs")
            .field("endpoint", &self.endpoint)
            .field("source_app", &self.source_app)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("agent_id", &self.agent_id)
            .field("timeout_ms", &self.timeout_ms)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field("unknown", &self.unknown.len())
            .finish()
    }
}

impl fmt::Debug for FlushArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushArgs")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("timeout_ms", &self.timeout_ms)
            .field("background", &self.background)
            .finish()
    }
}

/// Exits 0 and prints nothing on stdout, whatever happens: the agent must never notice the hook. The one
/// exception is an event hivewatch must never hook (an install the hook contract no longer allows): exit 1, so
/// that Claude Code reports the failure instead of taking the empty answer for a decision.
pub fn hook(args: HookArgs) -> ExitCode {
    // The event happened now, not after stdin was read or the receiver answered.
    let stamp = chrono::Utc::now();
    match std::panic::catch_unwind(|| hook::run(args, stamp)) {
        Ok(hook::Exit::Success) => ExitCode::SUCCESS,
        Ok(hook::Exit::NotMine) => ExitCode::FAILURE,
        Err(_) => {
            say!("hivewatch hook: internal error; event not delivered");
            ExitCode::SUCCESS
        }
    }
}

/// Exit 0 when nothing is left to deliver, 1 otherwise.
pub fn flush(args: FlushArgs) -> ExitCode {
    flush::run(args)
}

/// Exit 0 when the receiver answers, 1 otherwise.
pub fn doctor(args: DoctorArgs) -> ExitCode {
    doctor::run(args)
}
