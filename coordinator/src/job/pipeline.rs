//! The segmentation job as a sequence of steps, each one or more secure
//! sums released through [`Releases`]: census → statistics → AHP → k-means
//! → suppression → profiles → propensity (fit and evaluation) → the
//! result.

use fedseg_common::computation::activity;
use fedseg_common::features::DIM;
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use thiserror::Error;

use crate::ahp;
use crate::config::Job;
use crate::engine::Engine;
use crate::propensity::{self, PropensityError};
use crate::release::Releases;
use crate::result::{JobResult, RoundSummary, participation};
use crate::segmentation::{self, AhpResult, SegmentationError, SegmentationResult};

/// Why the segmentation job could not finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A segmentation step failed.
    #[error(transparent)]
    Segmentation(#[from] SegmentationError),
    /// The propensity model failed.
    #[error(transparent)]
    Propensity(#[from] PropensityError),
    /// The series step (matching, migration) failed.
    #[error(transparent)]
    Series(#[from] crate::series::SeriesError),
}

/// Runs the segmentation (and propensity model) of `job` on `engine`;
/// for a job of a series, with `series`' history.
pub async fn run(
    engine: &mut Engine<'_>,
    job: &Job,
    series: Option<&crate::series::History>,
) -> Result<JobResult, PipelineError> {
    let settings = &job.config.segmentation;
    let ahp = ahp::weights(DIM, &settings.ahp_judgments).map_err(SegmentationError::from)?;
    let mut releases = Releases::new(engine, job);
    let census = segmentation::census(&mut releases, job).await?;
    let activity = activity::decode(
        &releases
            .sum(
                "activity",
                Kind::Activity(proto::Activity {
                    as_of: job.config.as_of.clone(),
                }),
                vec![ClipRange::new(0.0, releases.customers.max(1.0)); activity::LENGTH],
            )
            .await
            .map_err(SegmentationError::from)?,
    )
    .map_err(SegmentationError::from)?;
    let statistics = segmentation::statistics(&mut releases, job).await?;
    let space = statistics.space(&ahp.weights);
    let kmeans = segmentation::kmeans(&mut releases, job, &statistics, &space).await?;
    let count = statistics.standardization.count;
    let (chosen, suppressed) = segmentation::suppress(
        &mut releases,
        settings,
        &space,
        kmeans.chosen,
        count,
        kmeans.total_ss,
    )
    .await?;
    let described = segmentation::profiles(
        &mut releases,
        job,
        &statistics,
        &space,
        &chosen,
        &ahp.weights,
    )
    .await?;
    let mut segmentation = SegmentationResult {
        candidates: kmeans.candidates,
        k_choice: kmeans.k_choice.to_string(),
        suppressed,
        ..described
    };
    let migration = match series {
        Some(history) => Some(
            crate::series::migrate(
                &mut releases,
                job,
                &space,
                &chosen.centroids,
                &mut segmentation,
                history,
            )
            .await?,
        ),
        None => None,
    };
    let propensity = if job.config.propensity.enabled {
        let base_rate = (census.converted, census.customers);
        Some(
            propensity::fit(
                &mut releases,
                job,
                space,
                chosen.k,
                chosen.centroids,
                base_rate,
            )
            .await?,
        )
    } else {
        None
    };
    let rounds: Vec<RoundSummary> = releases.rounds().iter().map(Into::into).collect();
    let (took_part, declined, dropped_out) =
        participation(releases.cohort(), releases.declined(), releases.rounds());
    Ok(JobResult {
        job_id: job.id.clone(),
        config_hash: job.config_hash.clone(),
        cohort: releases.cohort().to_vec(),
        took_part,
        declined,
        dropped_out,
        as_of: job.config.as_of.clone(),
        census,
        activity,
        standardization: statistics.standardization,
        ahp: AhpResult {
            weights: ahp.weights,
            consistency_ratio: ahp.consistency_ratio,
            lambda_max: ahp.lambda_max,
            judgments: settings.ahp_judgments.clone(),
        },
        segmentation,
        propensity,
        migration,
        privacy: crate::result::privacy_spent(releases.privacy.as_ref(), releases.privacy_spent()),
        secure_sum_rounds: rounds.len(),
        rounds,
    })
}
