//! `fedseg-coordinator job ...`: an analyst's calls of a running `serve`'s
//! job service, with `analyst.toml`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use fedseg_common::analyst::{self as client, Analyst, AnalystConfig};

#[derive(Subcommand)]
pub(crate) enum JobCommand {
    /// Sign job.toml with the analyst's key and queue it; prints its id.
    Submit {
        /// analyst.toml
        #[arg(long)]
        config: PathBuf,
        /// job.toml (it must state its `purpose`)
        #[arg(long)]
        job: PathBuf,
    },
    /// The queued and running jobs (with --all, every job ever run).
    List {
        /// analyst.toml
        #[arg(long)]
        config: PathBuf,
        /// Every job the coordinator's journal holds.
        #[arg(long)]
        all: bool,
    },
    /// One job: state, phase, rounds, cohort, who declined and why.
    Show {
        /// analyst.toml
        #[arg(long)]
        config: PathBuf,
        /// The job's id.
        id: String,
    },
    /// Cancel a job you submitted: nothing of it is released afterwards.
    Cancel {
        /// analyst.toml
        #[arg(long)]
        config: PathBuf,
        /// The job's id.
        id: String,
        /// Why (journaled).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A finished job's result.json and reports, written under DIR.
    Result {
        /// analyst.toml
        #[arg(long)]
        config: PathBuf,
        /// The job's id.
        id: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `job ...`: one call of the job service as the analyst of `--config`.
pub(crate) async fn job_command(command: JobCommand) -> Result<()> {
    let config = match &command {
        JobCommand::Submit { config, .. }
        | JobCommand::List { config, .. }
        | JobCommand::Show { config, .. }
        | JobCommand::Cancel { config, .. }
        | JobCommand::Result { config, .. } => config,
    };
    let mut analyst = Analyst::connect(AnalystConfig::load(config)?).await?;
    match command {
        JobCommand::Submit { job, .. } => {
            let queued = analyst.submit(&job).await?;
            println!("{}", queued.job_id);
            eprintln!("queued with {} job(s) ahead of it", queued.position);
        }
        JobCommand::List { all, .. } => {
            println!("{}", client::LIST_HEADER);
            for job in analyst.list(all).await? {
                println!("{}", client::line(&job));
            }
        }
        JobCommand::Show { id, .. } => print!("{}", client::details(&analyst.show(&id).await?)),
        JobCommand::Cancel { id, reason, .. } => {
            print!("{}", client::details(&analyst.cancel(&id, &reason).await?))
        }
        JobCommand::Result { id, out, .. } => {
            for path in analyst.result(&id, &out).await? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
