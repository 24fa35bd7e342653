//! `croupier certify --seed HEX`: seeded program verification, as a regulator's authentication
//! terminal runs it. Prints HMAC-SHA256 keyed with the seed over the running executable
//! (`binary`), the manifest and each definition file, so a regulator holding its own copy of
//! the certified files compares answers; `GET /v1/certification` answers the same for a node.
//! The computation is `croupier_games::certification::certify`; this module reads the files.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use croupier_games::certification::{certify, parse_seed};

#[derive(clap::Args)]
pub struct CertifyArgs {
    /// The verifier's seed: 16 to 64 bytes as hex. Use a fresh one each time.
    #[arg(long)]
    seed: String,
    /// A directory of definitions (as `[games] definitions_dir`); default: the embedded ones.
    #[arg(long, value_name = "DIR")]
    definitions: Option<PathBuf>,
    /// Print `{"seed", "components": [{"name", "hmac_sha256"}]}` instead of lines.
    #[arg(long)]
    json: bool,
}

/// This process's executable: `/proc/self/exe` on Linux (the running image, even if its file
/// was replaced since), else the file `current_exe` names.
fn running_executable() -> anyhow::Result<Vec<u8>> {
    if let Ok(bytes) = std::fs::read("/proc/self/exe") {
        return Ok(bytes);
    }
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    std::fs::read(&exe)
        .with_context(|| format!("cannot read the running executable {}", exe.display()))
}

/// `--json` output, fields in this order (serde_json's maps would sort them).
#[derive(serde::Serialize)]
struct Report<'a> {
    seed: String,
    components: Vec<Component<'a>>,
}

#[derive(serde::Serialize)]
struct Component<'a> {
    name: &'a str,
    hmac_sha256: &'a str,
}

pub fn run(args: CertifyArgs) -> anyhow::Result<ExitCode> {
    let seed = parse_seed(&args.seed).context("--seed")?;
    let files = crate::games_cmd::read_definitions(args.definitions.as_deref())?;
    let binary = running_executable()?;
    let components = certify(&seed, &binary, &files);
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            seed: hex::encode(&seed),
            components: components
                .iter()
                .map(|c| Component {
                    name: &c.name,
                    hmac_sha256: &c.hmac_sha256,
                })
                .collect(),
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for component in &components {
            writeln!(out, "{}  {}", component.hmac_sha256, component.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
