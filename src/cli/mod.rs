//! The command line: `Cli` and its subcommands, one file per subcommand (`serve` is `app`).

pub mod consume;
pub mod install_hooks;
pub mod query;
pub mod status;
pub mod tail;
mod worktree_include;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::StoreArgs;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "hivewatch",
    version,
    about = "Observability for AI coding agents: OTLP and hook events in, \
stored, queried and streamed out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log output format (logs go to stderr).
    #[arg(long, global = true, env = "HIVEWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the receiver: OTLP gRPC, OTLP HTTP, the hook endpoint and the query API.
    Serve(Box<crate::config::ServeArgs>),
    /// Create or update the database schema, then exit (`serve` also does this at start).
    Migrate(StoreArgs),
    /// Read the Redis stream as a member of a consumer group: print each event, acknowledge it, and take over
    /// entries a dead consumer left unacknowledged.
    Consume(consume::ConsumeArgs),
    /// Follow the live stream of a running hivewatch in the terminal, one line per event.
    Tail(tail::TailArgs),
    /// Query a running hivewatch: events or sessions, as a table or JSON lines.
    Query(query::QueryArgs),
    /// The sessions board of a running hivewatch: which session needs you, which works, which is done.
    Status(status::StatusArgs),
    /// For Claude Code hooks: read one hook payload on stdin and deliver it; always exits 0, prints nothing.
    Hook(crate::hook_client::HookArgs),
    /// Deliver what `hook` spooled while the receiver was unreachable, and pending transcripts.
    Flush(crate::hook_client::FlushArgs),
    /// Register `hivewatch hook` for every Claude Code hook event in settings.json.
    InstallHooks(install_hooks::InstallArgs),
    /// Check the hook setup: hooks installed, receiver reachable, spool size.
    Doctor(crate::hook_client::DoctorArgs),
    /// Print the version.
    Version,
}

/// `hivewatch migrate`: opening the store runs the embedded migrations.
pub async fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.store_config()?).await?;
    println!("schema up to date: {}", store.describe());
    Ok(())
}
