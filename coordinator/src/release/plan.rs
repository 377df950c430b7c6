//! A job's release plan under differential privacy: the job's ρ split
//! evenly over a number of releases fixed by its settings (census,
//! statistics, at most `segmentation.max_iterations` Lloyd steps in all,
//! profiles, then at most `propensity.max_iterations + 1` Newton steps,
//! evaluation and campaign; a campaign evaluation job's one sum), so no loop of the job can spend more than the
//! budget.

use fedseg_common::dp;
use fedseg_common::features::{self, DIM};

use crate::config::{Job, PrivacySettings};
use crate::engine::PrivacyBudget;

/// A job's differential privacy: its settings, the ρ of each release and
/// how many releases are left.
#[derive(Debug, Clone)]
pub struct ReleasePlan {
    /// The job's `[privacy]` table.
    pub settings: PrivacySettings,
    /// Releases the budget is split over.
    pub planned: u32,
    /// zCDP ρ of one release.
    pub rho_per_release: f64,
    /// Releases not made yet.
    pub left: u32,
    /// Lloyd steps left (the plan's share for k-means, merges included).
    pub lloyd_steps: u32,
}

impl ReleasePlan {
    /// The plan of `job`, if it asks for differential privacy.
    pub fn of(job: &Job) -> Option<Self> {
        let settings = job.config.privacy.clone()?;
        if job.config.campaign.is_some() {
            // A campaign evaluation releases one sum, and nothing else.
            let rho = dp::rho_for(settings.epsilon, settings.delta);
            return Some(Self {
                rho_per_release: rho,
                planned: 1,
                left: 1,
                lloyd_steps: 0,
                settings,
            });
        }
        let lloyd_steps = job.config.segmentation.max_iterations;
        let propensity = &job.config.propensity;
        // Census, activity, statistics, the Lloyd steps, profiles.
        let mut planned = 1 + 1 + 1 + lloyd_steps + 1;
        if job.config.series.is_some() {
            // The migration matrix.
            planned += 1;
        }
        if propensity.enabled {
            planned += propensity.max_iterations + 1;
            if job.config.holdout_fraction > 0.0 {
                planned += 2;
            }
        }
        let rho = dp::rho_for(settings.epsilon, settings.delta);
        Some(Self {
            rho_per_release: rho / planned as f64,
            planned,
            left: planned,
            lloyd_steps,
            settings,
        })
    }

    /// What the journal records of the plan when the job is submitted.
    pub fn budget(&self) -> PrivacyBudget {
        PrivacyBudget {
            epsilon: self.settings.epsilon,
            delta: self.settings.delta,
            rho: self.rho_per_release * f64::from(self.planned),
            clip: self.settings.clip,
            planned_releases: self.planned,
        }
    }

    /// Per-customer bounds of x under the plan.
    pub fn x_bounds(&self) -> ([f64; DIM], [f64; DIM]) {
        ([0.0; DIM], features::transform(self.settings.clip))
    }

    /// Takes one Lloyd step from the plan's share for k-means; false when
    /// none is left.
    pub fn take_lloyd_step(&mut self) -> bool {
        if self.lloyd_steps == 0 {
            return false;
        }
        self.lloyd_steps -= 1;
        true
    }
}
