//! How much one customer can move each release, and the noise that hides it
//! (design.md, "Differential privacy"; issue: distributed discrete Gaussian).
//!
//! Every computation a round can ask for has, for each entry of its vector,
//! a bound on what one customer contributes (the participant clips to it),
//! and an L2 bound on the whole contribution measured in those per-entry
//! bounds. Both follow from the request alone, so the coordinator (which
//! sizes the noise) and each participant (which checks the request and keeps
//! its own record of the privacy it spent) compute them independently.
//!
//! Under DP an entry is encoded in units of its bound times a common `step`
//! with no fractional bits: one customer then moves the encoded vector by at
//! most `l2 / step` steps, plus one step per entry for the rounding of the
//! site's sum. Each participant adds discrete Gaussian noise of variance
//! [`NOISE_VARIANCE`] steps², and the step is chosen so that the noise of the
//! Shamir threshold of participants alone meets the release's ρ.

use thiserror::Error;

use crate::computation::{
    activity, campaign, census, evaluation, feature_stats, kmeans, migration, newton, profile,
    uplift,
};
use crate::dp;
use crate::features::{self, DIM, Space};
use crate::proto::{self, computation::Kind, propensity::Task};
use crate::wire;

/// Why a computation has no per-customer bound, or noise cannot be sized.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PrivacyError {
    /// The computation does not sum per-customer quantities with bounds
    /// (a test vector, a vector file, a local-epochs model update).
    #[error("{0} has no per-customer bound, so it cannot run under differential privacy")]
    Unbounded(&'static str),
    /// The request is malformed.
    #[error("bad request: {0}")]
    Request(String),
    /// The request's vector length differs from its layout.
    #[error("the layout has {layout} entries, the round {round}")]
    Length {
        /// Entries the computation's layout has.
        layout: usize,
        /// Entries the round declares.
        round: usize,
    },
    /// The budget of a release is too small for the fixed-point precision.
    #[error(
        "a release with ρ = {rho:e} over {length} entries needs more noise than the encoding can carry"
    )]
    Budget {
        /// The release's ρ.
        rho: f64,
        /// Its length.
        length: usize,
    },
    /// The request's encoding or noise is not the one its bounds imply.
    #[error("the request's noise does not match its bounds: {0}")]
    Mismatch(String),
}

/// Variance of each participant's noise in fixed-point steps squared
/// (σ = 2^20 steps): large enough that the rounding of sums costs little,
/// and the exact sampler's largest term.
pub const NOISE_VARIANCE: u64 = 1 << 40;

/// Per-customer bounds of a computation's vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// What one customer contributes to each entry, at most in magnitude;
    /// 0 for an entry that is withheld (sent as 0) under DP.
    pub entries: Vec<f64>,
    /// Largest L2 norm of one customer's contribution with each entry
    /// divided by its bound.
    pub l2: f64,
}

impl Bounds {
    /// Fixed-point units of the entries for `step` (1 for a withheld entry,
    /// whose value is 0 anyway).
    pub fn units(&self, step: f64) -> Vec<f64> {
        self.entries
            .iter()
            .map(|&b| if b > 0.0 { b * step } else { 1.0 })
            .collect()
    }

    /// L2 sensitivity in fixed-point steps at `step`: the customer's own
    /// part plus one step per entry for rounding the site's sum.
    pub fn sensitivity(&self, step: f64) -> f64 {
        self.l2 / step + (self.entries.len() as f64).sqrt()
    }

    /// The step at which noise of [`NOISE_VARIANCE`] from each of
    /// `contributors` participants makes the release ρ-zCDP.
    pub fn step_for(&self, rho: f64, contributors: u32) -> Result<f64, PrivacyError> {
        let length = self.entries.len();
        // ρ = Δ² / (2·n·σ²) (the discrete correction τ is below 1e-300 at
        // σ = 2^20), solved for Δ in steps.
        let steps = (2.0 * rho * contributors as f64 * NOISE_VARIANCE as f64).sqrt();
        let rounding = (length as f64).sqrt();
        if steps.is_nan() || steps <= 2.0 * rounding || self.l2 <= 0.0 {
            return Err(PrivacyError::Budget { rho, length });
        }
        Ok(self.l2 / (steps - rounding))
    }

    /// ρ of a release at `step` whose noise came from `contributors`
    /// participants of `variance` each.
    pub fn rho(&self, step: f64, variance: u64, contributors: u32) -> f64 {
        dp::distributed_rho(
            self.sensitivity(step),
            variance as f64,
            contributors.max(1),
            self.entries.len(),
        )
    }

    /// The noise and encoding of a release of ρ over at least
    /// `contributors`, written into `computation`.
    pub fn apply(
        &self,
        computation: &mut proto::Computation,
        rho: f64,
        contributors: u32,
    ) -> Result<(), PrivacyError> {
        let step = self.step_for(rho, contributors)?;
        let encoding = computation.encoding.get_or_insert_with(Default::default);
        encoding.frac_bits = 0;
        encoding.units = self.units(step);
        computation.noise = Some(proto::Noise {
            variance: NOISE_VARIANCE,
            step,
        });
        Ok(())
    }
}

/// ρ that a participant spends on `computation` of `length` entries when at
/// least `contributors` participants add noise: checked against the bounds
/// it derives itself, so a request with too little noise is refused.
pub fn checked_rho(
    computation: &proto::Computation,
    length: usize,
    contributors: u32,
) -> Result<(Bounds, f64), PrivacyError> {
    let noise = computation
        .noise
        .as_ref()
        .ok_or_else(|| PrivacyError::Mismatch("no noise".into()))?;
    let bounds = customer_bounds(computation, length)?;
    let encoding = computation
        .encoding
        .as_ref()
        .ok_or_else(|| PrivacyError::Mismatch("no encoding".into()))?;
    if !(noise.step.is_finite() && noise.step > 0.0) || noise.variance == 0 {
        return Err(PrivacyError::Mismatch(format!(
            "step {} and variance {}",
            noise.step, noise.variance
        )));
    }
    if encoding.frac_bits != 0 || encoding.units != bounds.units(noise.step) {
        return Err(PrivacyError::Mismatch(
            "the units are not the per-customer bounds times the step".into(),
        ));
    }
    let rho = bounds.rho(noise.step, noise.variance, contributors);
    Ok((bounds, rho))
}

fn space(space: Option<&proto::Space>) -> Result<Space, PrivacyError> {
    wire::space_from_wire(space).map_err(|e| PrivacyError::Request(e.to_string()))
}

fn max_abs(lo: f64, hi: f64) -> f64 {
    lo.abs().max(hi.abs())
}

/// Per-customer bounds of `computation`, whose round has `length` entries.
/// The layouts are those of the participant's computations; the L2 bounds
/// count what one customer can touch at once (one histogram bin per
/// feature, one cluster per k-means run, one segment, one design row).
pub fn customer_bounds(
    computation: &proto::Computation,
    length: usize,
) -> Result<Bounds, PrivacyError> {
    let mut b = Bounds {
        entries: Vec::with_capacity(length),
        l2: 0.0,
    };
    let kind = computation
        .kind
        .as_ref()
        .ok_or_else(|| PrivacyError::Request("no computation".into()))?;
    let (entries, squared) = match kind {
        Kind::VectorFile(_) => return Err(PrivacyError::Unbounded("a vector file")),
        Kind::TestVector(_) => return Err(PrivacyError::Unbounded("a test vector")),
        Kind::Census(_) => census::Counts::customer_bounds(),
        Kind::Activity(_) => activity::customer_bounds(),
        Kind::FeatureStats(f) => feature_stats::Layout::from_request(f)
            .map_err(|e| PrivacyError::Request(e.0))?
            .customer_bounds(),
        Kind::KmeansStep(step) => kmeans::Layout::new(step.runs.iter().map(|r| r.k as usize))
            .customer_bounds(&space(step.space.as_ref())?),
        Kind::SegmentProfile(p) => {
            let k = p.centroids.as_ref().map_or(0, |c| c.k as usize);
            profile::customer_bounds(&space(p.space.as_ref())?, k)
        }
        Kind::Propensity(p) => propensity_bounds(p)?,
        Kind::Uplift(u) => uplift::customer_bounds(uplift_segments(u)?),
        Kind::Migration(m) => {
            let k = m.centroids.as_ref().map_or(0, |c| c.k as usize);
            let p = m.previous_segments as usize;
            if k == 0
                || k > crate::campaign::MAX_SEGMENTS
                || p == 0
                || p > crate::campaign::MAX_SEGMENTS
            {
                return Err(PrivacyError::Request(format!(
                    "a migration of {p} to {k} segments"
                )));
            }
            migration::customer_bounds(p, k)
        }
    };
    b.entries.extend(entries);
    if b.entries.len() != length {
        return Err(PrivacyError::Length {
            layout: b.entries.len(),
            round: length,
        });
    }
    b.l2 = squared.sqrt();
    Ok(b)
}

/// The segments of an uplift request, within the layout's bound.
fn uplift_segments(u: &proto::Uplift) -> Result<usize, PrivacyError> {
    match u.segments as usize {
        s @ 1..=crate::campaign::MAX_SEGMENTS => Ok(s),
        s => Err(PrivacyError::Request(format!(
            "a campaign of {s} segments (1 to {} allowed)",
            crate::campaign::MAX_SEGMENTS
        ))),
    }
}

/// Bounds of the propensity computations, and the squared L2 bound.
fn propensity_bounds(p: &proto::Propensity) -> Result<(Vec<f64>, f64), PrivacyError> {
    let space = space(p.space.as_ref())?;
    let design = wire::design_from_wire(p).map_err(|e| PrivacyError::Request(e.to_string()))?;
    let task = p
        .task
        .as_ref()
        .ok_or_else(|| PrivacyError::Request("no propensity task".into()))?;
    Ok(match task {
        Task::Newton(_) => {
            newton::customer_bounds(&design.column_bounds(&space), design.row_nonzero(&space))
        }
        Task::LocalEpochs(_) => return Err(PrivacyError::Unbounded("a local-epochs model update")),
        Task::Evaluation(e) => evaluation::customer_bounds(e.bins.max(1) as usize),
        Task::Campaign(_) => campaign::customer_bounds((p.segments as usize).max(1)),
    })
}

/// Per-customer bounds of the clustering space.
impl Space {
    /// Largest magnitude of each clustering-space coordinate of a customer.
    pub fn coordinate_bounds(&self) -> [f64; DIM] {
        let z = self.z_bounds();
        std::array::from_fn(|j| z[j] * self.scale[j].abs())
    }

    /// Largest magnitude of each z-score of a customer (0 for a feature
    /// without variance).
    pub fn z_bounds(&self) -> [f64; DIM] {
        std::array::from_fn(|j| {
            if self.std[j] > 0.0 {
                max_abs(self.lo[j] - self.mean[j], self.hi[j] - self.mean[j]) / self.std[j]
            } else {
                0.0
            }
        })
    }

    /// Largest squared distance between a customer and a centroid inside
    /// the space's box (participants clip to it).
    pub fn distance_bound(&self) -> f64 {
        self.coordinate_bounds().iter().map(|c| 4.0 * c * c).sum()
    }

    /// Largest magnitude of each raw feature (original units) of a customer.
    pub fn raw_bounds(&self) -> [f64; DIM] {
        let (lo, hi) = (
            features::untransform(self.lo),
            features::untransform(self.hi),
        );
        std::array::from_fn(|j| max_abs(lo[j], hi[j]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> proto::Space {
        proto::Space {
            mean: vec![100.0, 1.0, 5.0, 300.0, 0.0],
            std: vec![50.0, 0.5, 2.0, 100.0, 0.0],
            scale: vec![0.6, 0.5, 0.4, 0.3, 0.2],
            lo: vec![0.0; DIM],
            hi: vec![730.0, 4.0, 11.0, 3650.0, 200.0],
        }
    }

    fn computation(kind: Kind) -> proto::Computation {
        proto::Computation {
            encoding: None,
            noise: None,
            kind: Some(kind),
        }
    }

    #[test]
    fn bounds_follow_each_layout() {
        let census =
            customer_bounds(&computation(Kind::Census(proto::Census::default())), 7).unwrap();
        assert_eq!(census.entries, [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(census.l2, 2f64.sqrt());

        let stats = Kind::FeatureStats(proto::FeatureStats {
            as_of: String::new(),
            bins: vec![
                proto::Bins {
                    lo: 0.0,
                    hi: 1.0,
                    count: 4
                };
                DIM
            ],
            lo: vec![0.0; DIM],
            hi: vec![2.0, 3.0, 4.0, 5.0, 6.0],
        });
        let stats = customer_bounds(&computation(stats), 1 + 2 * DIM + 4 * DIM).unwrap();
        assert_eq!(
            &stats.entries[..11],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.0, 9.0, 16.0, 25.0, 36.0]
        );
        assert_eq!(stats.l2, 4.0);

        // T has no variance: its coordinate is always 0 and not counted.
        let step = Kind::KmeansStep(proto::KMeansStep {
            as_of: String::new(),
            space: Some(space()),
            runs: vec![
                proto::KMeansRun {
                    k: 2,
                    centroids: vec![0.0; 10],
                },
                proto::KMeansRun {
                    k: 3,
                    centroids: vec![0.0; 15],
                },
            ],
        });
        let step = customer_bounds(&computation(step), 5 * kmeans::ENTRIES).unwrap();
        assert_eq!(step.entries[0], 1.0);
        assert!((step.entries[1] - 630.0 / 50.0 * 0.6).abs() < 1e-12);
        assert_eq!(step.entries[5], 0.0);
        assert_eq!(step.entries[6], 0.0);
        assert_eq!(step.l2, (2.0f64 * 5.0).sqrt());

        // A wrong length is refused, as are unbounded computations.
        assert!(matches!(
            customer_bounds(&computation(Kind::Census(proto::Census::default())), 8),
            Err(PrivacyError::Length {
                layout: 7,
                round: 8
            })
        ));
        assert!(matches!(
            customer_bounds(
                &computation(Kind::TestVector(proto::TestVector::default())),
                3
            ),
            Err(PrivacyError::Unbounded(_))
        ));
    }

    #[test]
    fn newton_bounds_count_one_row() {
        let p = proto::Propensity {
            space: Some(space()),
            features: vec![true, true, false, true, true],
            segments: 3,
            task: Some(Task::Newton(proto::NewtonTerms {})),
            ..Default::default()
        };
        // Columns: intercept, R, F, L, T (z bound 0), 2 segments = 7.
        let d = 7;
        let b =
            customer_bounds(&computation(Kind::Propensity(p)), 2 + d + d * (d + 1) / 2).unwrap();
        // Non-zero per row: intercept, R, F, L, one segment = 5.
        assert_eq!(b.l2, ((2 + 5 + 15) as f64).sqrt());
        assert_eq!(b.entries[2], 1.0);
        assert_eq!(b.entries[2 + d], 0.25);
        assert_eq!(b.entries[2 + 4], 0.0);
    }

    #[test]
    fn noise_sized_for_the_threshold_meets_the_release_budget() {
        let bounds =
            customer_bounds(&computation(Kind::Census(proto::Census::default())), 7).unwrap();
        for (rho, threshold) in [(1e-4, 2u32), (0.01, 3), (0.5, 10)] {
            let step = bounds.step_for(rho, threshold).unwrap();
            let spent = bounds.rho(step, NOISE_VARIANCE, threshold);
            assert!((spent / rho - 1.0).abs() < 1e-9, "{spent} vs {rho}");
            // More survivors add more noise: less spent.
            assert!(bounds.rho(step, NOISE_VARIANCE, threshold + 1) < spent);
        }
        assert!(matches!(
            bounds.step_for(1e-12, 2),
            Err(PrivacyError::Budget { .. })
        ));
    }

    #[test]
    fn a_participant_refuses_noise_that_does_not_match_the_bounds() {
        let mut c = computation(Kind::Census(proto::Census::default()));
        let bounds = customer_bounds(&c, 7).unwrap();
        bounds.apply(&mut c, 0.01, 3).unwrap();
        let (_, rho) = checked_rho(&c, 7, 3).unwrap();
        assert!((rho - 0.01).abs() < 1e-9);
        // Units that let one customer weigh more than the step declares.
        let mut cheat = c.clone();
        cheat.encoding.as_mut().unwrap().units[0] /= 2.0;
        assert!(matches!(
            checked_rho(&cheat, 7, 3),
            Err(PrivacyError::Mismatch(_))
        ));
        let mut plain = c;
        plain.noise = None;
        assert!(checked_rho(&plain, 7, 3).is_err());
    }
}
