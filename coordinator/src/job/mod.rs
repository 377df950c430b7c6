//! Jobs from start to end: [`run_job`] starts the engine on the sessions
//! and runs the job's kind to its end ([`vector_sums`] for a
//! `[secure_sum]` job, else the segmentation [`pipeline`]); [`conclude`]
//! writes a finished job's result and reports, or journals a failed job's
//! end.

mod conclude;
pub mod pipeline;
pub mod vector_sums;

use thiserror::Error;

use crate::config::{CoordinatorConfig, Job};
use crate::engine::{Engine, EngineError, JobReport, Resume, Transport};
use crate::journal::JournalWriter;
use crate::release::ReleasePlan;
use crate::result::JobResult;

pub use conclude::{check_out, conclude, journal_status, verdict};
pub use pipeline::PipelineError;

/// Why a job failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JobError {
    /// The round engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The segmentation job failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The result could not be serialised.
    #[error("serialising the result: {0}")]
    Json(#[from] serde_json::Error),
    /// An output file could not be written.
    #[error("{what} {path}")]
    Write {
        /// `writing` or `creating`.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The HTML report could not be drawn.
    #[error("drawing the report: {0}")]
    Report(String),
}

/// A finished job: the engine's report of its rounds, and the segmentation
/// job's result (`None` for a `[secure_sum]` job).
pub type Finished = (JobReport, Option<JobResult>);

/// Runs `job` to its end over `transport`: a `[secure_sum]` job, or the
/// segmentation. A failure after the cohort formed is journaled and told to
/// every member.
pub async fn run_job(
    transport: impl Transport,
    config: &CoordinatorConfig,
    job: &Job,
    journal: &mut JournalWriter,
) -> Result<Finished, JobError> {
    let budget = ReleasePlan::of(job).map(|plan| plan.budget());
    // A job the journal shows finished is retraced from its journaled
    // rounds, so a rerun writes its outputs again.
    let finished = Resume::read(journal.records(), job)?.filter(|r| r.finished);
    let mut engine = match finished {
        Some(resume) => Engine::retrace(transport, config.rounds.clone(), job, journal, resume)?,
        None => {
            Engine::start(
                transport,
                config.rounds.clone(),
                &config.participants,
                job,
                journal,
                budget,
            )
            .await?
        }
    };
    if job.config.secure_sum.is_some() {
        return Ok((vector_sums::run(engine).await?, None));
    }
    match pipeline::run(&mut engine, job).await {
        Ok(result) => {
            let json = serde_json::to_string_pretty(&result)? + "\n";
            let report = engine.finish(true, "", json).await?;
            Ok((report, Some(result)))
        }
        Err(error) => {
            engine
                .finish(false, &error.to_string(), String::new())
                .await?;
            Err(error.into())
        }
    }
}
