//! `croupier sandbox`: stand-ins for the outside world a node talks to (an identity provider,
//! a national self-exclusion register), each run as its own process so tests and demos cross a
//! real process and HTTP boundary, as they would with the real thing.

mod common;
mod idp;
mod register;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// A sandbox identity provider: issues signed identity attestations (compact JWS, ES256 or
    /// EdDSA) on request, and serves its public keys (JWKS) for a node to trust.
    Idp(idp::IdpArgs),
    /// A sandbox national self-exclusion register (GAMSTOP-like): people register, operators
    /// check players by name and birth date.
    Register(register::RegisterArgs),
}

pub fn run(cmd: SandboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Idp(args) => idp::run(args),
        SandboxCommand::Register(args) => register::run(args),
    }
}
