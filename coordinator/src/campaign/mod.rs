//! The campaign evaluation job (`[campaign]` in `job.toml`): one secure sum
//! of every site's treated and control customers and their conversions per
//! segment and score decile (computed from each site's own contact list
//! and outcomes table), released under the job's differential privacy when
//! it has a budget, then the uplift per segment, per decile and overall
//! ([`estimate`]), small groups withheld, and its report ([`report`]).

pub mod estimate;
pub mod report;

use fedseg_common::campaign::{CampaignSettings, DECILES};
use fedseg_common::computation::{LayoutError, uplift};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use serde::Serialize;
use thiserror::Error;

use crate::config::Job;
use crate::engine::Engine;
use crate::release::{ReleaseError, Releases};
use crate::result::{Declined, DroppedOut, Privacy, RoundSummary, participation};
use estimate::{Estimate, METHOD};

/// Why a campaign evaluation could not finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CampaignJobError {
    /// The job has no `[campaign]` table.
    #[error("the job has no [campaign] table")]
    NotACampaign,
    /// The sum was not released.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The released sum does not fit the layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// `result.json` of a campaign evaluation job.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignResult {
    /// The job.
    pub job_id: String,
    /// Hash of its configuration.
    pub config_hash: String,
    /// `campaign-evaluation`.
    pub kind: &'static str,
    /// Cohort, in index order.
    pub cohort: Vec<String>,
    /// Members whose counts are in the release.
    pub took_part: Vec<String>,
    /// Members that declined, with their reasons.
    pub declined: Vec<Declined>,
    /// Members missing from the release after accepting.
    pub dropped_out: Vec<DroppedOut>,
    /// The measured campaign.
    pub campaign: CampaignBlock,
    /// What the release spent.
    pub privacy: Privacy,
    /// Secure sums run.
    pub secure_sum_rounds: usize,
    /// Every round.
    pub rounds: Vec<RoundSummary>,
}

/// The `campaign` block.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignBlock {
    /// The job's `[campaign]` table, as agreed.
    pub settings: CampaignSettings,
    /// How the intervals are computed.
    pub method: &'static str,
    /// Smallest treated and control group released (the job's
    /// `segmentation.min_segment_size`).
    pub min_cell: u64,
    /// Every customer on every list.
    pub total: Estimate,
    /// Per segment of the model.
    pub segments: Vec<SegmentEstimate>,
    /// Per score decile (only the chosen top deciles have customers).
    pub deciles: Vec<DecileEstimate>,
    /// Customers on the lists without an outcome row (left out).
    pub missing_outcomes: f64,
    /// The noise of the release under differential privacy.
    pub noise: Option<Noise>,
}

/// One segment's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentEstimate {
    /// Segment index in the model.
    pub segment: usize,
    /// Its name.
    pub name: String,
    /// Whether the campaign drew from it.
    pub targeted: bool,
    /// The measurement.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// One score decile's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct DecileEstimate {
    /// 1 (lowest) to 10 (highest).
    pub decile: usize,
    /// The measurement.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Noise of a differentially private release.
#[derive(Debug, Clone, Serialize)]
pub struct Noise {
    /// Standard deviation of the noise on each released count.
    pub count_sd: f64,
    /// zCDP ρ the release spent.
    pub rho: f64,
}

/// Runs the evaluation of `job`'s `[campaign]` on `engine`.
pub async fn run(engine: &mut Engine<'_>, job: &Job) -> Result<CampaignResult, CampaignJobError> {
    let settings = job
        .config
        .campaign
        .clone()
        .ok_or(CampaignJobError::NotACampaign)?;
    let segments = settings.segments.len();
    let mut releases = Releases::new(engine, job);
    // A site's count is bounded by its customers: 10^9 is generous, and
    // the encoding is sized for the cohort's sum of such counts.
    let bound = 1e9;
    let released = releases
        .release(
            "campaign outcomes",
            Kind::Uplift(proto::Uplift {
                as_of: job.config.as_of.clone(),
                campaign: settings.name.clone(),
                segments: segments as u32,
            }),
            vec![ClipRange::new(0.0, bound); uplift::length(segments)],
        )
        .await?;
    let counts = uplift::decode(&released.sums, segments)?;
    let min_cell = job.config.segmentation.min_segment_size;
    let min = min_cell as f64;
    let confidence = settings.confidence;
    let segment_estimates = (0..segments)
        .map(|s| SegmentEstimate {
            segment: s,
            name: settings.segments[s].clone(),
            targeted: settings.target.is_empty() || settings.target.contains(&settings.segments[s]),
            estimate: estimate::estimate(&counts.segment(s), min, confidence),
        })
        .collect();
    let deciles = (1..=DECILES)
        .map(|d| DecileEstimate {
            decile: d,
            estimate: estimate::estimate(&counts.decile(d), min, confidence),
        })
        .collect();
    let rho = releases.privacy_spent();
    let noise = released
        .count_noise_sd
        .map(|count_sd| Noise { count_sd, rho });
    let rounds: Vec<RoundSummary> = releases.rounds().iter().map(Into::into).collect();
    let (took_part, declined, dropped_out) =
        participation(releases.cohort(), releases.declined(), releases.rounds());
    Ok(CampaignResult {
        job_id: job.id.clone(),
        config_hash: job.config_hash.clone(),
        kind: fedseg_common::job::JobKind::CampaignEvaluation.as_str(),
        cohort: releases.cohort().to_vec(),
        took_part,
        declined,
        dropped_out,
        campaign: CampaignBlock {
            total: estimate::estimate(&counts.total(), min, confidence),
            settings,
            method: METHOD,
            min_cell,
            segments: segment_estimates,
            deciles,
            missing_outcomes: counts.missing_outcomes.round().max(0.0),
            noise,
        },
        privacy: crate::result::privacy_spent(releases.privacy.as_ref(), rho),
        secure_sum_rounds: rounds.len(),
        rounds,
    })
}
