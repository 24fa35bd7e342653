//! `croupier sandbox`: stand-ins for the outside world a node talks to (an identity provider,
//! a national self-exclusion register), each run as its own process so tests and demos cross a
//! real process and HTTP boundary, as they would with the real thing.

mod bank;
mod common;
mod idp;
mod register;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// A sandbox bank speaking UK Open Banking or Berlin Group payment initiation: accounts,
    /// consents, payments that settle, camt.053 statements, signed notifications, faults.
    Bank(bank::BankArgs),
    /// A sandbox identity provider: issues signed identity attestations (compact JWS, ES256 or
    /// EdDSA) on request, and serves its public keys (JWKS) for a node to trust.
    Idp(idp::IdpArgs),
    /// A sandbox national self-exclusion register (GAMSTOP-like): people register, operators
    /// check players by name and birth date.
    Register(register::RegisterArgs),
}

pub fn run(cmd: SandboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Bank(args) => bank::run(args),
        SandboxCommand::Idp(args) => idp::run(args),
        SandboxCommand::Register(args) => register::run(args),
    }
}
