//! `croupier keys`: operator and provider keys in the keys file (`DIR/keys.toml` by default).
//! A running node re-reads the file within a second, so creating or revoking needs no restart.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use croupier_server::auth::keys::{KeysFile, Role};

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key. An operator key is printed once (the file keeps only its hash); a
    /// provider key prints `ID SECRET` (the HMAC secret for signing request bodies).
    Create {
        /// admin, finance, support, read_only, or provider (a game studio's signing key).
        #[arg(long)]
        role: String,
        /// A label for people reading `keys list` (who holds the key).
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        file: KeysFileArgs,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        file: KeysFileArgs,
    },
    /// Revoke a key by id; nodes refuse it within a second.
    Revoke {
        id: String,
        #[command(flatten)]
        file: KeysFileArgs,
    },
}

#[derive(clap::Args)]
pub struct KeysFileArgs {
    /// The node's data directory; the keys file is DIR/keys.toml.
    #[arg(long, default_value = "./croupier-data")]
    data_dir: PathBuf,
    /// The keys file itself (overrides --data-dir).
    #[arg(long)]
    keys_file: Option<PathBuf>,
}

impl KeysFileArgs {
    fn path(&self) -> PathBuf {
        self.keys_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(croupier_server::KEYS_FILE_NAME))
    }
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { role, name, file } => create(&role, &name, &file.path()),
        KeysCommand::List { file } => list(&file.path()),
        KeysCommand::Revoke { id, file } => {
            let path = file.path();
            let mut keys = KeysFile::load(&path)?;
            keys.revoke(&id)?;
            keys.save(&path)?;
            eprintln!("revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn create(role: &str, name: &str, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut keys = KeysFile::load(path)?;
    if role == "provider" {
        let (id, secret) = keys.add_provider(name);
        keys.save(path)?;
        println!("{id} {secret}");
        eprintln!(
            "provider key {id} created in {}: sign each request (its path and query, a newline, its body) with HMAC-SHA256 under the secret",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(role) = Role::parse(role) else {
        anyhow::bail!("unknown role {role:?}: use admin, finance, support, read_only or provider");
    };
    let key = keys.add_operator(role, name);
    keys.save(path)?;
    println!("{key}");
    eprintln!(
        "{} key created in {}; it is shown only now (the file keeps its hash)",
        role.name(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let keys = KeysFile::load(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16} {:<10} {:<20} {:<22} revoked_at",
        "id", "role", "name", "created_at"
    )?;
    let operators = keys
        .operators
        .iter()
        .map(|k| (&k.id, k.role.name(), &k.name, &k.created_at, &k.revoked_at));
    let providers = keys
        .providers
        .iter()
        .map(|k| (&k.id, "provider", &k.name, &k.created_at, &k.revoked_at));
    for (id, role, name, created, revoked) in operators.chain(providers) {
        let revoked = revoked.as_deref().unwrap_or("-");
        writeln!(
            out,
            "{id:<16} {role:<10} {name:<20} {created:<22} {revoked}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
