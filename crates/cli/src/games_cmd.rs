//! `croupier games` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum GamesCommand {
    /// Not built yet.
    Pending,
}

pub fn run(_args: GamesCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("croupier games is not built yet")
}
