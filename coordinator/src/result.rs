//! `result.json` of a segmentation job (design.md, "Results contract"):
//! what every step released, the propensity model, the privacy the job
//! spent and every round without its timings (those are in `rounds.json`),
//! so the same job on the same data gives the same file.

use fedseg_common::dp;
pub use fedseg_common::result::{JobResult, Privacy, RoundSummary};

use crate::engine::RoundRecord;
use crate::release::ReleasePlan;

impl From<&RoundRecord> for RoundSummary {
    fn from(r: &RoundRecord) -> Self {
        Self {
            round: r.round,
            purpose: r.purpose.clone(),
            outcome: r.outcome.to_string(),
            survivors: r.survivors.clone(),
            dropped: r.dropped.clone(),
            rho: r.rho,
            count_noise_sd: r.count_noise_sd,
        }
    }
}

/// The results contract's privacy block: what the releases spent (`rho`)
/// under `plan`.
pub fn privacy_spent(plan: Option<&ReleasePlan>, rho: f64) -> Privacy {
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
