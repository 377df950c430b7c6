//! `result.json` of a segmentation job (design.md, "Results contract"):
//! what every step released, the propensity model, the privacy the job
//! spent and every round without its timings (those are in `rounds.json`),
//! so the same job on the same data gives the same file.

use fedseg_common::computation::activity::Band;
use fedseg_common::dp;
use fedseg_common::features::DIM;
use serde::Serialize;

use crate::engine::RoundRecord;
use crate::propensity::PropensityResult;
use crate::release::ReleasePlan;
use crate::segmentation::{AhpResult, Census, SegmentationResult, Standardization};

/// What a round did, without timings (those are in `rounds.json`), so that
/// the same job gives the same result.
#[derive(Debug, Clone, Serialize)]
pub struct RoundSummary {
    /// Round number.
    pub round: u64,
    /// What it computed.
    pub purpose: String,
    /// released or aborted.
    pub outcome: &'static str,
    /// Members whose input the sum covers.
    pub survivors: Vec<String>,
    /// Members that did not send an input.
    pub dropped: Vec<String>,
    /// zCDP ρ the release spent, under differential privacy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Standard deviation of the noise on a released count, under
    /// differential privacy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_noise_sd: Option<f64>,
}

impl From<&RoundRecord> for RoundSummary {
    fn from(r: &RoundRecord) -> Self {
        Self {
            round: r.round,
            purpose: r.purpose.clone(),
            outcome: r.outcome,
            survivors: r.survivors.clone(),
            dropped: r.dropped.clone(),
            rho: r.rho,
            count_noise_sd: r.count_noise_sd,
        }
    }
}

/// Privacy block (results contract).
#[derive(Debug, Clone, Serialize)]
pub struct Privacy {
    /// Whether noise was added.
    pub dp: bool,
    /// ε the job's releases spent, at `delta` (tight conversion of the
    /// composed ρ), when DP is on.
    pub epsilon: Option<f64>,
    /// δ of the job, when DP is on.
    pub delta: Option<f64>,
    /// ε the job declared as its budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_epsilon: Option<f64>,
    /// Composed zCDP ρ of every release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Releases the budget was split over (the rounds list those made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_releases: Option<u32>,
    /// Per-customer clip bounds of R, F, M, L, T in original units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<[f64; DIM]>,
}

/// `result.json` of a segmentation job.
#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    /// Job identifier.
    pub job_id: String,
    /// SHA-256 of job.toml.
    pub config_hash: String,
    /// Cohort identities.
    pub cohort: Vec<String>,
    /// Reference date.
    pub as_of: String,
    /// Pooled counts.
    pub census: Census,
    /// Customers per recency band (lifecycle stage).
    pub activity: Vec<Band>,
    /// Pooled standardisation.
    pub standardization: Standardization,
    /// Feature weights.
    pub ahp: AhpResult,
    /// The segmentation.
    pub segmentation: SegmentationResult,
    /// The propensity model (absent when the job turns it off).
    pub propensity: Option<PropensityResult>,
    /// Differential privacy.
    pub privacy: Privacy,
    /// Secure-sum rounds the job took.
    pub secure_sum_rounds: usize,
    /// Every round.
    pub rounds: Vec<RoundSummary>,
}

impl Privacy {
    /// The results contract's privacy block: what the releases spent
    /// (`rho`) under `plan`.
    pub fn spent(plan: Option<&ReleasePlan>, rho: f64) -> Self {
        match plan {
            None => Privacy {
                dp: false,
                epsilon: None,
                delta: None,
                budget_epsilon: None,
                rho: None,
                planned_releases: None,
                clip: None,
            },
            Some(plan) => Privacy {
                dp: true,
                epsilon: Some(dp::epsilon_for(rho, plan.settings.delta)),
                delta: Some(plan.settings.delta),
                budget_epsilon: Some(plan.settings.epsilon),
                rho: Some(rho),
                planned_releases: Some(plan.planned),
                clip: Some(plan.settings.clip),
            },
        }
    }
}
