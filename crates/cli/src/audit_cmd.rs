//! `croupier audit verify`: offline audit of a stopped node's data directory. The checks live
//! in `croupier_store::audit`; this module only prints the outcome and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use croupier_store::audit::{self, AuditSummary};

mod operators;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Verify every log frame and the hash chain, check the log continues the checkpoint, check
    /// the checkpoint against all history, replay the log and compare every history record the
    /// node wrote with the replay. Refused while a node holds the directory; it never changes
    /// the log or a checkpoint. Exit 0 with a summary, 1 naming the first bad entry, file and
    /// offset.
    Verify {
        /// The node's data directory.
        #[arg(long, default_value = "./croupier-data")]
        data_dir: PathBuf,
    },
    /// Page through a running node's operator audit trail (`GET /v1/audit/operators`), print
    /// each action, and check the hash chain on this side: every record's hash recomputed from
    /// its fields, every link to the one before. Exit 0 when the chain holds, 1 naming the first
    /// action that breaks it.
    Operators(operators::OperatorsArgs),
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Operators(args) => operators::run(args),
        AuditCommand::Verify { data_dir } => match audit::verify(&data_dir) {
            Ok(summary) => {
                std::io::Write::write_all(
                    &mut std::io::stdout(),
                    render_summary(&data_dir, &summary).as_bytes(),
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("audit FAILED for {}: {error}", data_dir.display());
                Ok(ExitCode::from(1))
            }
        },
    }
}

fn render_summary(data_dir: &std::path::Path, summary: &AuditSummary) -> String {
    let mut out = format!("audit passed: {}\n", data_dir.display());
    let range = match (summary.first_index, summary.last_index) {
        (Some(first), Some(last)) => format!(" (entries {first}..={last})"),
        _ => String::new(),
    };
    out += &format!("  entries verified  {}{range}\n", summary.entries_verified);
    out += &format!("  entries replayed  {}\n", summary.entries_replayed);
    out += &format!("  chain head        {}\n", summary.chain_head_hex());
    match &summary.checkpoint {
        Some(checkpoint) => {
            out += &format!(
                "  checkpoint        entry {} (term {}), {}\n",
                checkpoint.last_index,
                checkpoint.last_term,
                checkpoint.file.display()
            );
            let cross_check = if summary.genesis_replay_matches_checkpoint {
                "a replay from genesis produces the checkpoint byte for byte"
            } else {
                "not possible: the log no longer starts at genesis"
            };
            out += &format!("  genesis check     {cross_check}\n");
            if summary.history_transfers_checked > 0 {
                out += &format!(
                    "  history check     the checkpoint's balances agree with all {} transfers in history\n",
                    summary.history_transfers_checked
                );
            }
        }
        None => out += "  checkpoint        none (replayed from genesis)\n",
    }
    out += &format!(
        "  history records   {} checked byte for byte against the replay\n",
        summary.history_records_verified
    );
    if let Some(torn) = &summary.torn_tail {
        out += &format!(
            "  torn tail         {} bytes at byte {} of {} (an interrupted write; the node cuts it off on start)\n",
            torn.bytes,
            torn.offset,
            torn.file.display()
        );
    }
    out += &format!(
        "  operator trail    {} actions, head {}\n",
        summary.operator_actions,
        summary.operator_trail_head_hex()
    );
    if summary.operator_actions_checked > 0 {
        out += &format!(
            "  operator check    the {} actions before the checkpoint chain to its head\n",
            summary.operator_actions_checked
        );
    }
    out += &format!("  accounts          {}\n", summary.accounts);
    out += &format!("  transfers         {}\n", summary.transfers);
    for sums in &summary.per_ledger {
        out += &format!(
            "  ledger {:<8}   debits posted {} / credits posted {}, debits pending {} / credits pending {}\n",
            sums.ledger.to_string(),
            sums.debits_posted,
            sums.credits_posted,
            sums.debits_pending,
            sums.credits_pending
        );
    }
    out
}
