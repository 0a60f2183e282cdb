//! The `hivewatch hook` side: runs inside Claude Code's hook, stamps, redacts and delivers one event, spools it
//! when the receiver is unreachable, and never blocks or fails the agent.

pub mod config;

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct HookArgs {}

#[derive(Debug, Args)]
pub struct FlushArgs {}

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn hook(_args: HookArgs) -> ExitCode {
    ExitCode::SUCCESS
}

pub fn flush(_args: FlushArgs) -> ExitCode {
    ExitCode::SUCCESS
}

pub fn doctor(_args: DoctorArgs) -> ExitCode {
    ExitCode::SUCCESS
}
