//! `fedseg-participant`: parses the command line and hands over to the
//! library.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use fedseg_participant::config::ParticipantConfig;
use fedseg_participant::{ledger, node};

/// The fedseg participant node.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect out to the coordinator and serve its jobs until stopped.
    Run {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// The egress ledger: everything that left this site.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Print the ledger as a table, after checking its hash chain.
    Show {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Match every contribution the coordinator's journal attributes to this
    /// site against the ledger's digests, and every protocol message in the
    /// ledger against the journal. The journal is verified with the
    /// consortium CA first.
    Verify {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// The coordinator's journal file.
        #[arg(long)]
        journal: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fedseg_common::process::init_logging(cli.log_json);
    match cli.command {
        Command::Run { config } => {
            let config = ParticipantConfig::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(node::run(config, fedseg_common::process::shutdown_signal()))?;
        }
        Command::Ledger(LedgerCommand::Show { config }) => {
            ledger_show(&ParticipantConfig::load(&config)?)?
        }
        Command::Ledger(LedgerCommand::Verify { config, journal }) => {
            ledger_verify(&ParticipantConfig::load(&config)?, &journal)?
        }
    }
    Ok(())
}

fn ledger_show(config: &ParticipantConfig) -> Result<()> {
    let entries = ledger::read(&config.ledger)?;
    println!(
        "{:>5}  {:<20}  {:<18}  {:>5}  {:<14}  {:>9}  sha256",
        "seq", "unix ms", "job", "round", "kind", "bytes"
    );
    for e in &entries {
        let round = e.round.map_or("-".to_string(), |r| r.to_string());
        println!(
            "{:>5}  {:<20}  {:<18}  {:>5}  {:<14}  {:>9}  {}",
            e.seq, e.unix_ms, e.job_id, round, e.kind, e.bytes, e.sha256
        );
    }
    Ok(())
}

fn ledger_verify(config: &ParticipantConfig, journal: &std::path::Path) -> Result<()> {
    let entries = ledger::read(&config.ledger)?;
    let bytes = std::fs::read(journal).with_context(|| format!("reading {}", journal.display()))?;
    let ca = config.tls.ca_pem()?;
    let verified = fedseg_common::journal::verify(&bytes, &ca).map_err(|e| {
        anyhow::anyhow!("{}: journal verification failed at {e}", journal.display())
    })?;
    let found = ledger::reconcile(&config.id, &entries, &verified);
    for line in found.mismatched.iter().chain(&found.unaccounted) {
        println!("{line}");
    }
    if !found.mismatched.is_empty() || !found.unaccounted.is_empty() {
        bail!(
            "{} contributions do not match the ledger, {} sent messages are not in the journal",
            found.mismatched.len(),
            found.unaccounted.len()
        );
    }
    println!(
        "{} contributions of {} in the journal match the ledger ({} lines checked)",
        found.matched,
        config.id,
        entries.len()
    );
    Ok(())
}
