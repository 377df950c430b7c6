//! The release client: how a job's steps get a secure sum released. It
//! sizes the fixed-point encoding of each sum to the cohort, adds the
//! job's differential-privacy noise when the job asks for it (and counts
//! the release against the job's [`ReleasePlan`]), and retries a round the
//! engine aborted. The algorithms above it only say what to sum and with
//! which bounds; the engine below it knows nothing of what is summed.

pub mod plan;

use fedseg_common::features::Space;
use fedseg_common::fixed_point::{ClipRange, EncodingError, FixedPointEncoder};
use fedseg_common::privacy::{self, PrivacyError};
use fedseg_common::proto::{self, computation::Kind};
use thiserror::Error;

use crate::config::Job;
use crate::engine::{Engine, EngineError, RoundRecord};

pub use plan::ReleasePlan;

/// Why a sum could not be released.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The round engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A step's sums cannot be encoded for this cohort.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// A step could not be released after several attempts.
    #[error("the {purpose} round was not released after {attempts} attempts: {reason}")]
    NotReleased {
        /// What the round computed.
        purpose: String,
        /// Attempts made.
        attempts: u32,
        /// The last round's reason.
        reason: String,
    },
    /// A release cannot be made differentially private.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// The job's release plan is used up (a bug: the plan bounds every
    /// loop).
    #[error("the privacy budget's {0} planned releases are used up")]
    PlanExhausted(u32),
}

/// Rounds tried for one step before the job gives up.
const ATTEMPTS: u32 = 3;
/// Finest fixed-point precision asked for: in practice the cohort size
/// decides (about 62 − log2 n bits of each entry's unit), which leaves every
/// released sum as precise as the f64 it is decoded to.
const MAX_FRAC_BITS: u32 = 62;

/// A released sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// The decoded sum, one entry per requested range.
    pub sums: Vec<f64>,
    /// Standard deviation of its noise on a count, under differential
    /// privacy.
    pub count_noise_sd: Option<f64>,
}

/// Runs the secure sums of one job step after step.
pub struct Releases<'e, 'a> {
    engine: &'e mut Engine<'a>,
    /// The job's reference date.
    pub as_of: String,
    /// Upper bound on the pooled number of customers, from the census.
    pub customers: f64,
    /// Differential privacy, when the job asks for it.
    pub privacy: Option<ReleasePlan>,
}

impl<'e, 'a> Releases<'e, 'a> {
    /// The release client of `job` over `engine`.
    pub fn new(engine: &'e mut Engine<'a>, job: &Job) -> Self {
        Self {
            engine,
            as_of: job.config.as_of.clone(),
            customers: 0.0,
            privacy: ReleasePlan::of(job),
        }
    }

    /// Securely sums `kind` with per-entry `ranges`, retrying an aborted
    /// round; the released sum.
    pub async fn sum(
        &mut self,
        purpose: &str,
        kind: Kind,
        ranges: Vec<ClipRange>,
    ) -> Result<Vec<f64>, ReleaseError> {
        Ok(self.release(purpose, kind, ranges).await?.sums)
    }

    /// Like [`Releases::sum`], with the noise the release carries.
    pub async fn release(
        &mut self,
        purpose: &str,
        kind: Kind,
        ranges: Vec<ClipRange>,
    ) -> Result<Released, ReleaseError> {
        let participants = self.engine.cohort().len() as u64;
        let mut encoder = FixedPointEncoder::finest(ranges.clone(), participants, MAX_FRAC_BITS)?;
        let mut computation = proto::Computation {
            encoding: Some(proto::Encoding {
                frac_bits: encoder.frac_bits(),
                ranges: ranges
                    .iter()
                    .map(|r| proto::ClipRange { lo: r.lo, hi: r.hi })
                    .collect(),
                units: encoder.units().to_vec(),
            }),
            noise: None,
            kind: Some(kind),
        };
        if let Some(plan) = &mut self.privacy {
            if plan.left == 0 {
                return Err(ReleaseError::PlanExhausted(plan.planned));
            }
            plan.left -= 1;
            // Sized so that the threshold's noise alone meets the release's
            // share of the budget.
            let bounds = privacy::customer_bounds(&computation, ranges.len())?;
            bounds.apply(
                &mut computation,
                plan.rho_per_release,
                self.engine.threshold(),
            )?;
            let units = computation
                .encoding
                .as_ref()
                .expect("set above")
                .units
                .clone();
            encoder = FixedPointEncoder::with_units(0, ranges.clone(), units)?;
            encoder.check_capacity(participants)?;
        }
        let mut reason = String::new();
        for _ in 0..ATTEMPTS {
            let record = self
                .engine
                .secure_sum(purpose, &computation, &encoder, ranges.len() as u32)
                .await?;
            if let Some(sum) = &record.sum {
                return Ok(Released {
                    sums: sum.clone(),
                    count_noise_sd: record.count_noise_sd,
                });
            }
            reason = record.reason.clone().unwrap_or_default();
        }
        Err(ReleaseError::NotReleased {
            purpose: purpose.to_string(),
            attempts: ATTEMPTS,
            reason,
        })
    }

    /// Whether the releases carry differential-privacy noise.
    pub fn is_private(&self) -> bool {
        self.privacy.is_some()
    }

    /// The cohort, in index order.
    pub fn cohort(&self) -> &[String] {
        self.engine.cohort()
    }

    /// Every round so far.
    pub fn rounds(&self) -> &[RoundRecord] {
        self.engine.rounds()
    }

    /// Members that declined the job, with their reasons.
    pub fn declined(&self) -> &std::collections::BTreeMap<String, String> {
        self.engine.declined()
    }

    /// zCDP ρ the job's releases spent so far.
    pub fn privacy_spent(&self) -> f64 {
        self.engine.privacy_spent()
    }
}

/// A clustering space as the participants receive it.
pub fn wire_space(space: &Space) -> proto::Space {
    proto::Space {
        mean: space.mean.to_vec(),
        std: space.std.to_vec(),
        scale: space.scale.to_vec(),
        lo: space.lo.to_vec(),
        hi: space.hi.to_vec(),
    }
}
