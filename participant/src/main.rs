//! `fedseg-participant`: parses the command line and hands over to the
//! library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fedseg_participant::config::ParticipantConfig;
use fedseg_participant::node;

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
    }
    Ok(())
}
