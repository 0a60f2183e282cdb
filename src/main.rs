use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hivewatch::cli::{Cli, Command, LogFormat};

/// Ingest allocates and frees many small, short-lived values per event (decoded items, JSON trees, rows);
/// mimalloc does that in about half the time of glibc's allocator, whose consolidation showed in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Claude Code reads a hook's exit status 2 as "block this action", and the event must not be lost to a
        // bad global setting: a hook whose arguments do not parse runs on its defaults.
        Err(e) if std::env::args().nth(1).as_deref() == Some("hook") => {
            let message = e.to_string();
            eprintln!(
                "hivewatch hook: {}; going on with default settings",
                message.lines().next().unwrap_or_default()
            );
            return hivewatch::hook_client::hook(hivewatch::hook_client::HookArgs::default());
        }
        Err(e) => e.exit(),
    };
    // The hook side runs once per agent action: no runtime, no logging set-up, nothing on stdout.
    let cli = match cli.command {
        Command::Hook(args) => return hivewatch::hook_client::hook(args),
        Command::Flush(args) => return hivewatch::hook_client::flush(args),
        Command::Doctor(args) => return hivewatch::hook_client::doctor(args),
        Command::InstallHooks(args) => return hivewatch::cli::install_hooks::run(args),
        command => Cli { command, ..cli },
    };
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hivewatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => hivewatch::app::run(*args).await,
            Command::Migrate(args) => hivewatch::cli::migrate(args).await,
            Command::Query(args) => hivewatch::cli::query::run(args).await,
            Command::Status(args) => hivewatch::cli::status::run(args).await,
            Command::Consume(args) => hivewatch::cli::consume::run(args).await,
            Command::Tail(args) => hivewatch::cli::tail::run(args).await,
            Command::Version => {
                println!("hivewatch {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Hook(_)
            | Command::Flush(_)
            | Command::Doctor(_)
            | Command::InstallHooks(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hivewatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HIVEWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
