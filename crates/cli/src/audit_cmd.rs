//! `croupier audit` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Not built yet.
    Pending,
}

pub fn run(_args: AuditCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("croupier audit is not built yet")
}
