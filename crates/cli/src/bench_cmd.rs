//! `croupier bench` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Not built yet.
    Pending,
}

pub fn run(_args: BenchCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("croupier bench is not built yet")
}
