//! `fedseg-participant`: the node each bank runs. Its subcommands (`run`,
//! `features`, `ledger`, `synth`) arrive with the networked protocol and the
//! data plane; until then the binary only identifies itself.

use clap::Parser;

/// The fedseg participant node.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    Cli::parse();
}
