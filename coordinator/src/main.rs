//! `fedseg-coordinator`: parses the command line and hands over to the
//! library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use fedseg_coordinator::bench::{self, SecureSumConfig};

/// The fedseg coordinator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The whole secure-sum protocol in one process and one thread; prints
    /// one JSON line.
    SecureSum(SecureSumArgs),
    /// Sweeps n, d, dropouts and graph kinds; prints a markdown table.
    Sweep,
}

#[derive(Args)]
struct SecureSumArgs {
    /// Number of participants n.
    #[arg(long)]
    participants: u32,
    /// Vector length d in 64-bit words.
    #[arg(long)]
    length: usize,
    /// Neighbours per participant (n − 1 or more: complete graph).
    #[arg(long)]
    neighbours: u32,
    /// Shamir threshold t.
    #[arg(long)]
    threshold: u32,
    /// Fraction of participants that drop before sending a masked input.
    #[arg(long)]
    dropout: f64,
    /// Consecutive rounds on one key set-up.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench(BenchCommand::SecureSum(a)) => {
            let report = bench::secure_sum(&SecureSumConfig {
                participants: a.participants,
                length: a.length,
                neighbours: a.neighbours,
                threshold: a.threshold,
                dropout: a.dropout,
                rounds: a.rounds,
            })?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Bench(BenchCommand::Sweep) => {
            println!("{}", bench::SWEEP_HEADER);
            for (graph, config) in bench::sweep_configs() {
                println!("{}", bench::sweep_row(graph, &bench::secure_sum(&config)?));
            }
        }
    }
    Ok(())
}
