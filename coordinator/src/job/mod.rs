//! Jobs from start to end: [`run_job`] starts the engine on the sessions
//! and runs the job's kind to its end ([`vector_sums`] for a
//! `[secure_sum]` job, [`crate::campaign`] for a `[campaign]` job, else the
//! segmentation [`pipeline`]); [`conclude`]
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
use fedseg_common::result::VerticalJobResult;

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
    /// The vertical job failed.
    #[error(transparent)]
    Vertical(#[from] crate::vertical::VerticalError),
    /// The campaign evaluation failed.
    #[error(transparent)]
    Campaign(#[from] crate::campaign::CampaignJobError),
    /// The HTML report could not be drawn.
    #[error("drawing the report: {0}")]
    Report(String),
}

/// A finished job: the engine's report of its rounds, and what the job's
/// kind produced.
pub type Finished = (JobReport, Produced);

/// What a finished job produced besides its rounds.
#[derive(Debug)]
pub enum Produced {
    /// A `[secure_sum]` job: the rounds are its result.
    Sums,
    /// The segmentation's result.
    Segmentation(Box<JobResult>),
    /// A vertical job's result.
    Vertical(Box<VerticalJobResult>),
    /// A campaign evaluation's result.
    Campaign(Box<crate::campaign::CampaignResult>),
}

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
    // A series job's predecessors, read before any round.
    let history = crate::series::History::load(config, job).map_err(PipelineError::from)?;
    let listed = match &job.config.vertical {
        Some(vertical) => vertical.parties(),
        None => config.participants.clone(),
    };
    // A job the journal shows finished is retraced from its journaled
    // rounds, so a rerun writes its outputs again. (A vertical job's result
    // is not in its rounds: it is not retraced.)
    let finished = Resume::read(&journal.records(), job)?
        .filter(|r| r.finished && job.config.vertical.is_none());
    let mut engine = match finished {
        Some(resume) => Engine::retrace(transport, config.rounds.clone(), job, journal, resume)?,
        None => {
            Engine::start(
                transport,
                config.rounds.clone(),
                &listed,
                job,
                journal,
                budget,
            )
            .await?
        }
    };
    if job.config.secure_sum.is_some() {
        return Ok((vector_sums::run(engine).await?, Produced::Sums));
    }
    if job.config.vertical.is_some() {
        let run = match config.tls.consortium_fingerprint() {
            Ok(consortium) => crate::vertical::run(&mut engine, job, &consortium).await,
            Err(e) => Err(e.into()),
        };
        let (report, result) = end(engine, run).await?;
        return Ok((report, Produced::Vertical(Box::new(result))));
    }
    if job.config.campaign.is_some() {
        let run = crate::campaign::run(&mut engine, job).await;
        let (report, result) = end(engine, run).await?;
        return Ok((report, Produced::Campaign(Box::new(result))));
    }
    let run = pipeline::run(&mut engine, job, history.as_ref()).await;
    let (report, result) = end(engine, run).await?;
    Ok((report, Produced::Segmentation(Box::new(result))))
}

/// Journals the job's end and tells every member: with the result on
/// success, with the error's words on failure.
async fn end<R: serde::Serialize, E: std::error::Error + Into<JobError>>(
    engine: Engine<'_>,
    outcome: Result<R, E>,
) -> Result<(JobReport, R), JobError> {
    match outcome {
        Ok(result) => {
            let json = serde_json::to_string_pretty(&result)? + "\n";
            let report = engine.finish(true, "", json).await?;
            Ok((report, result))
        }
        Err(error) => {
            engine
                .finish(false, &error.to_string(), String::new())
                .await?;
            Err(error.into())
        }
    }
}
