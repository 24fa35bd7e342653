//! `croupier rng` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum RngCommand {
    /// Not built yet.
    Pending,
}

pub fn run(_args: RngCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("croupier rng is not built yet")
}
