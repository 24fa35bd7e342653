//! `croupier config`: the default settings file, and a check of the settings `serve` would run
//! with.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, SettingsFlags};

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the settings file with every key at its default, one comment per key.
    PrintDefault,
    /// Check a settings file with the CROUPIER_* environment (and any serve flags given) and
    /// print the settings serve would use, as TOML. Exit 2 naming the key when one is wrong.
    Check(Box<SettingsFlags>),
}

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let text = match command {
        ConfigCommand::PrintDefault => config::DEFAULT_TOML.to_string(),
        ConfigCommand::Check(flags) => {
            let settings = config::load(&flags)?;
            toml::to_string(&settings).context("cannot write the settings as TOML")?
        }
    };
    // Not println!: it panics on a closed pipe, where main expects an error to map to success.
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
