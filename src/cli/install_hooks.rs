//! `hivewatch install-hooks`: registers `hivewatch hook` in Claude Code's settings.json.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct InstallArgs {}

pub fn run(_args: InstallArgs) -> ExitCode {
    ExitCode::SUCCESS
}
