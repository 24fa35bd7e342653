//! `croupier fair` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum FairCommand {
    /// Not built yet.
    Pending,
}

pub fn run(_args: FairCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("croupier fair is not built yet")
}
