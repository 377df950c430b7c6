//! The joint segmentation, built only from secure sums (design.md,
//! "Algorithms on top of secure sums"):
//!
//! 1. a census round (customer and row counts), which bounds every later
//!    sum so the fixed-point encoding can use all the precision left;
//! 2. one round of counts, sums, sums of squares and histograms of
//!    x = [R, log1p F, log1p M, L, T] gives the pooled standardisation;
//! 3. AHP weights from the job's judgments scale the z-scores (by the square
//!    root of each weight, so squared distance is AHP-weighted);
//! 4. federated Lloyd: every restart of every candidate k travels in one
//!    vector, so a step costs one round; initial centroids are drawn from
//!    the released histograms only, seeded by the job; k is chosen by the
//!    Calinski-Harabasz index when the job gives a range;
//! 5. segments under the job's minimum size are merged into the others
//!    (their centroids dropped and Lloyd resumed) until none is left;
//! 6. one round of per-segment profiles (means, interaction kinds, refined
//!    groups, conversions) names the segments and picks their playbooks.
//!
//! Each step is a deterministic function of the job and of earlier released
//! sums, which is what lets a resumed coordinator retrace a job from its
//! journal.
//!
//! Under `[privacy]` every release carries distributed discrete Gaussian
//! noise (`fedseg_common::privacy`): the job's ρ is split evenly over a
//! release plan fixed by the job's settings (census, statistics, at most
//! `segmentation.max_iterations` Lloyd steps in all, profiles, then at most
//! `propensity.max_iterations + 1` Newton steps, evaluation and campaign),
//! features are clipped to the job's `privacy.clip` bounds, and what the
//! noise can break (tiny or negative counts) is handled as post-processing.

use fedseg_common::computation::{LayoutError, census};
use fedseg_common::dp;
use fedseg_common::features::{
    self, DEFAULT_BOUNDS, DIM, KMEANS_ENTRIES, NAMES, PROFILE_ENTRIES, Space, TRANSFORMS,
};
use fedseg_common::fixed_point::{ClipRange, EncodingError, FixedPointEncoder};
use fedseg_common::privacy::{self, PrivacyError};
use fedseg_common::proto::{self, computation::Kind};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::info;

use crate::ahp;
use crate::config::{Job, PrivacySettings, SegmentationSettings};
use crate::engine::{Engine, EngineError, RoundRecord};
use crate::playbook::{self, Playbook};
use crate::propensity::{Fit, PropensityResult};

/// Why the segmentation could not finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SegmentationError {
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
    /// The AHP judgments are unusable.
    #[error(transparent)]
    Ahp(#[from] ahp::AhpError),
    /// A release cannot be made differentially private.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// The job's release plan is used up (a bug: the plan bounds every
    /// loop).
    #[error("the privacy budget's {0} planned releases are used up")]
    PlanExhausted(u32),
    /// A released sum does not fit its computation's layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Too few customers to release any segment.
    #[error(
        "{customers} consenting customers in all; no segment of at least {min} can be released"
    )]
    TooFewCustomers {
        /// Pooled consenting customers.
        customers: f64,
        /// The job's minimum segment size.
        min: u64,
    },
}

/// Rounds tried for one step before the job gives up.
const ATTEMPTS: u32 = 3;
/// Finest fixed-point precision asked for: in practice the cohort size
/// decides (about 62 − log2 n bits of each entry's unit), which leaves every
/// released sum as precise as the f64 it is decoded to.
const MAX_FRAC_BITS: u32 = 62;
/// Histogram bins per feature.
const BINS: u32 = 128;
/// Histogram ranges of x, narrower than the clip bounds so that the bins
/// resolve where customers are; values beyond go to the end bins.
const HISTOGRAM_RANGE: [(f64, f64); DIM] = [
    (0.0, 1825.0),
    (0.0, 8.0),
    (0.0, 14.0),
    (0.0, 1825.0),
    (0.0, 200.0),
];
/// Quantiles reported per feature.
const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// The census round's totals.
#[derive(Debug, Clone, Serialize)]
pub struct Census {
    /// Consenting customers.
    pub customers: f64,
    /// Customers excluded for refusing marketing.
    pub excluded_no_consent: f64,
    /// Transaction rows read (withheld under differential privacy: one
    /// customer's row count has no bound).
    pub transactions: Option<f64>,
    /// Interaction rows read (withheld under differential privacy).
    pub interactions: Option<f64>,
    /// Rows dated after as_of, ignored (withheld under differential
    /// privacy).
    pub rows_after_as_of: Option<f64>,
    /// Consenting customers with converted = 1.
    pub converted: f64,
    /// Bad rows the sites skipped under their bad-row policies, in all
    /// (withheld under differential privacy, like the row counts).
    pub skipped_rows: Option<f64>,
}

/// The pooled standardisation (results contract).
#[derive(Debug, Clone, Serialize)]
pub struct Standardization {
    /// Feature names.
    pub features: [&'static str; DIM],
    /// Transform applied before standardising.
    pub transform: [&'static str; DIM],
    /// Customers it covers.
    pub count: f64,
    /// Pooled mean of the transformed features.
    pub mean: [f64; DIM],
    /// Pooled population standard deviation of the transformed features.
    pub std: [f64; DIM],
    /// Per-customer clip bounds of the transformed features.
    pub clip_lo: [f64; DIM],
    /// Upper clip bounds.
    pub clip_hi: [f64; DIM],
    /// Quantiles of each feature in original units, from the histograms.
    pub quantiles: Quantiles,
}

/// Estimated quantiles per feature, original units.
#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    /// The probabilities.
    pub p: [f64; 5],
    /// One row per feature.
    pub values: Vec<[f64; 5]>,
}

/// AHP block of the result (results contract).
#[derive(Debug, Clone, Serialize)]
pub struct AhpResult {
    /// Weights of R, F, M, L, T.
    pub weights: Vec<f64>,
    /// Saaty's consistency ratio.
    pub consistency_ratio: f64,
    /// The principal eigenvalue.
    pub lambda_max: f64,
    /// The judgments used.
    pub judgments: Vec<f64>,
}

/// One candidate k after its restarts.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Number of clusters.
    pub k: u32,
    /// Lowest final inertia over the restarts.
    pub inertia: f64,
    /// Calinski-Harabasz index of that run.
    pub calinski_harabasz: f64,
    /// Which restart won.
    pub restart: u32,
    /// Lloyd steps it took.
    pub iterations: u32,
    /// Whether it converged within the cap.
    pub converged: bool,
}

/// One released segment.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// Position in the centroid list (and in participants' local files).
    pub index: usize,
    /// Name: the seed group, numbered when several segments share it.
    pub name: String,
    /// The seed group.
    pub group: &'static str,
    /// What the group needs.
    pub summary: &'static str,
    /// Customers in the segment.
    pub size: f64,
    /// "high" or "low" against the pooled mean, per feature.
    pub profile: std::collections::BTreeMap<&'static str, &'static str>,
    /// Mean R, F, M, L, T of the segment's customers, original units.
    pub means: std::collections::BTreeMap<&'static str, f64>,
    /// Mean interactions per customer by kind.
    pub interactions: std::collections::BTreeMap<&'static str, f64>,
    /// Share of the segment that converted.
    pub conversion_rate: f64,
    /// Refined groups of customers without a purchase.
    pub refined: Vec<RefinedGroup>,
    /// 4P playbook.
    pub playbook: Playbook,
}

/// A refined behavioural group inside a segment.
#[derive(Debug, Clone, Serialize)]
pub struct RefinedGroup {
    /// The seed's name of the group.
    pub name: &'static str,
    /// Customers of the segment in it.
    pub customers: f64,
    /// Their share of the segment.
    pub share: f64,
    /// The seed's recommended action.
    pub action: &'static str,
}

/// Segmentation block of the result (results contract).
#[derive(Debug, Clone, Serialize)]
pub struct SegmentationResult {
    /// Segments released.
    pub k: usize,
    /// z-score multipliers of the clustering space.
    pub space_scale: [f64; DIM],
    /// The chosen run's initial centroids, clustering space.
    pub init_centroids: Vec<Vec<f64>>,
    /// Final centroids, clustering space.
    pub centroids: Vec<Vec<f64>>,
    /// Final centroids in R, F, M, L, T units.
    pub centroids_original: Vec<Vec<f64>>,
    /// Customers per segment.
    pub sizes: Vec<f64>,
    /// Sum of squared distances to the assigned centroid, clustering space.
    pub inertia: f64,
    /// Lloyd steps of the chosen run (merging steps included).
    pub iterations: u32,
    /// Random starts per k.
    pub restarts: u32,
    /// How k was chosen.
    pub k_choice: &'static str,
    /// Every candidate k (the inertia curve is the elbow plot).
    pub candidates: Vec<Candidate>,
    /// Segments merged away for being under the minimum size.
    pub suppressed: usize,
    /// The minimum segment size.
    pub min_segment_size: u64,
    /// The segments.
    pub segments: Vec<Segment>,
}

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

/// A job's differential privacy: its settings, the ρ of each release and
/// how many releases are left.
#[derive(Debug, Clone)]
pub(crate) struct ReleasePlan {
    pub(crate) settings: PrivacySettings,
    pub(crate) planned: u32,
    pub(crate) rho_per_release: f64,
    pub(crate) left: u32,
    /// Lloyd steps left (the plan's share for k-means, merges included).
    pub(crate) lloyd_steps: u32,
}

impl ReleasePlan {
    /// The plan of `job`, if it asks for differential privacy.
    pub(crate) fn of(job: &Job) -> Option<Self> {
        let settings = job.config.privacy.clone()?;
        let lloyd_steps = job.config.segmentation.max_iterations;
        let propensity = &job.config.propensity;
        let mut planned = 1 + 1 + lloyd_steps + 1;
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

    /// Per-customer bounds of x under the plan.
    fn x_bounds(&self) -> ([f64; DIM], [f64; DIM]) {
        ([0.0; DIM], features::transform(self.settings.clip))
    }
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

/// Runs the secure sums of one job step after step.
pub(crate) struct Steps<'e, 'a> {
    pub(crate) engine: &'e mut Engine<'a>,
    pub(crate) as_of: String,
    /// Upper bound on the pooled number of customers, from the census.
    pub(crate) customers: f64,
    /// Differential privacy, when the job asks for it.
    pub(crate) privacy: Option<ReleasePlan>,
}

impl Steps<'_, '_> {
    /// Securely sums `kind` with per-entry `ranges`, retrying an aborted
    /// round; the released sum.
    pub(crate) async fn sum(
        &mut self,
        purpose: &str,
        kind: Kind,
        ranges: Vec<ClipRange>,
    ) -> Result<Vec<f64>, SegmentationError> {
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
                return Err(SegmentationError::PlanExhausted(plan.planned));
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
                return Ok(sum.clone());
            }
            reason = record.reason.clone().unwrap_or_default();
        }
        Err(SegmentationError::NotReleased {
            purpose: purpose.to_string(),
            attempts: ATTEMPTS,
            reason,
        })
    }

    pub(crate) fn space(&self, space: &Space) -> proto::Space {
        proto::Space {
            mean: space.mean.to_vec(),
            std: space.std.to_vec(),
            scale: space.scale.to_vec(),
            lo: space.lo.to_vec(),
            hi: space.hi.to_vec(),
        }
    }
}

/// One k-means run in progress.
#[derive(Debug, Clone)]
struct Run {
    k: u32,
    restart: u32,
    init: Vec<f64>,
    centroids: Vec<f64>,
    inertia: f64,
    sizes: Vec<f64>,
    iterations: u32,
    converged: bool,
}

/// A Lloyd update from one run's slice of a step's sums: new centroids (an
/// empty cluster keeps its centroid; a mean is kept inside the space's box
/// `bounds`, which only noise can leave), sizes, inertia, and the largest
/// coordinate move. Under differential privacy the squared distances are
/// withheld and the inertia is Σ‖p‖² (`total_ss`, known from the
/// standardisation) + Σ_c (n_c‖c‖² − 2 c·S_c).
fn lloyd_update(
    centroids: &[f64],
    sums: &[f64],
    bounds: &[f64; DIM],
    total_ss: Option<f64>,
) -> (Vec<f64>, Vec<f64>, f64, f64) {
    let mut next = centroids.to_vec();
    let mut sizes = Vec::new();
    let mut inertia = total_ss.unwrap_or(0.0);
    let mut shift: f64 = 0.0;
    for (c, slot) in sums.chunks_exact(KMEANS_ENTRIES).enumerate() {
        let count = slot[0];
        sizes.push(count);
        inertia += match total_ss {
            None => slot[DIM + 1],
            Some(_) => (0..DIM)
                .map(|j| {
                    let centre = centroids[c * DIM + j];
                    count * centre * centre - 2.0 * centre * slot[1 + j]
                })
                .sum(),
        };
        // Counts are whole numbers without noise; under noise a cluster
        // with less than one customer keeps its centroid.
        if count >= 1.0 {
            for j in 0..DIM {
                let v = (slot[1 + j] / count).clamp(-bounds[j], bounds[j]);
                shift = shift.max((v - centroids[c * DIM + j]).abs());
                next[c * DIM + j] = v;
            }
        }
    }
    (next, sizes, inertia, shift)
}

/// Runs Lloyd on every run of `runs` at once, one round per step, until each
/// has converged or reached the cap.
async fn lloyd(
    steps: &mut Steps<'_, '_>,
    space: &Space,
    runs: &mut [Run],
    settings: &SegmentationSettings,
    label: &str,
    total_ss: f64,
) -> Result<(), SegmentationError> {
    let computed_inertia = steps.privacy.as_ref().map(|_| total_ss);
    let bounds = space.coordinate_bounds();
    let n = steps.customers;
    let inertia_bound: f64 = n * bounds.iter().map(|b| 4.0 * b * b).sum::<f64>();
    let mut cluster_ranges = vec![ClipRange::new(0.0, n.max(1.0))];
    for b in bounds {
        cluster_ranges.push(ClipRange::new(-b * n - 1.0, b * n + 1.0));
    }
    cluster_ranges.push(ClipRange::new(0.0, inertia_bound.max(1.0)));
    loop {
        let active: Vec<usize> = (0..runs.len())
            .filter(|&i| !runs[i].converged && runs[i].iterations < settings.max_iterations)
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        if let Some(plan) = &mut steps.privacy {
            if plan.lloyd_steps == 0 {
                return Ok(());
            }
            plan.lloyd_steps -= 1;
        }
        let step = runs[active[0]].iterations + 1;
        let request = proto::KMeansStep {
            as_of: steps.as_of.clone(),
            space: Some(steps.space(space)),
            runs: active
                .iter()
                .map(|&i| proto::KMeansRun {
                    k: runs[i].k,
                    centroids: runs[i].centroids.clone(),
                })
                .collect(),
        };
        let clusters: usize = active.iter().map(|&i| runs[i].k as usize).sum();
        let ranges: Vec<ClipRange> = (0..clusters)
            .flat_map(|_| cluster_ranges.iter().copied())
            .collect();
        let sums = steps
            .sum(
                &format!("{label} step {step} ({} runs)", active.len()),
                Kind::KmeansStep(request),
                ranges,
            )
            .await?;
        let mut offset = 0;
        for &i in &active {
            let run = &mut runs[i];
            let len = run.k as usize * KMEANS_ENTRIES;
            let (next, sizes, inertia, shift) = lloyd_update(
                &run.centroids,
                &sums[offset..offset + len],
                &bounds,
                computed_inertia,
            );
            offset += len;
            run.centroids = next;
            run.sizes = sizes;
            run.inertia = inertia;
            run.iterations += 1;
            run.converged = shift <= settings.tolerance;
        }
    }
}

/// Estimated quantile `p` of a histogram over [lo, hi], interpolating
/// linearly inside the bin.
fn histogram_quantile(counts: &[f64], lo: f64, hi: f64, p: f64) -> f64 {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return lo;
    }
    let width = (hi - lo) / counts.len() as f64;
    let target = p * total;
    let mut below = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0.0 && below + c >= target {
            return lo + width * (i as f64 + (target - below) / c);
        }
        below += c;
    }
    hi
}

/// A reproducible random generator for one purpose of the job.
fn job_rng(seed: u64, purpose: &str, k: u32, restart: u32) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"fedseg/segmentation/v1");
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update(k.to_le_bytes());
    h.update(restart.to_le_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// Runs the segmentation of `job` on `engine`.
pub async fn run(engine: &mut Engine<'_>, job: &Job) -> Result<JobResult, SegmentationError> {
    let settings = &job.config.segmentation;
    let ahp = ahp::weights(DIM, &settings.ahp_judgments)?;
    let mut steps = Steps {
        engine,
        as_of: job.config.as_of.clone(),
        customers: 0.0,
        privacy: ReleasePlan::of(job),
    };

    // 1. Census: counts, each bounded by 2^40.
    let census = steps
        .sum(
            "census",
            Kind::Census(proto::Census {
                as_of: job.config.as_of.clone(),
            }),
            vec![ClipRange::new(0.0, census::MAX_TOTAL); census::LENGTH],
        )
        .await?;
    let census = census::Counts::decode(&census)?;
    let dp = steps.privacy.is_some();
    let unless_dp = |v: f64| if dp { None } else { Some(v) };
    let census = Census {
        customers: census.customers,
        excluded_no_consent: census.excluded_no_consent,
        transactions: unless_dp(census.transactions),
        interactions: unless_dp(census.interactions),
        rows_after_as_of: unless_dp(census.rows_after_as_of),
        converted: census.converted,
        skipped_rows: unless_dp(census.skipped_rows),
    };
    info!(customers = census.customers, "census released");
    if census.customers < settings.min_segment_size as f64 || census.customers < 1.0 {
        return Err(SegmentationError::TooFewCustomers {
            customers: census.customers,
            min: settings.min_segment_size,
        });
    }
    // A noisy count is no upper bound; twice it, with room for small
    // cohorts, leaves every site's sums unclipped.
    let n = if dp {
        2.0 * census.customers + 1e4
    } else {
        census.customers
    };
    steps.customers = n;

    // 2. Moments and histograms.
    let (lo, hi) = match &steps.privacy {
        Some(plan) => plan.x_bounds(),
        None => (
            std::array::from_fn(|j| DEFAULT_BOUNDS[j].0),
            std::array::from_fn(|j| DEFAULT_BOUNDS[j].1),
        ),
    };
    // Bins cover the clip range where it is narrower.
    let histogram_range: [(f64, f64); DIM] =
        std::array::from_fn(|j| (HISTOGRAM_RANGE[j].0, HISTOGRAM_RANGE[j].1.min(hi[j])));
    let mut ranges = vec![ClipRange::new(0.0, n)];
    for j in 0..DIM {
        ranges.push(ClipRange::new((lo[j] * n).min(0.0) - 1.0, hi[j] * n + 1.0));
    }
    for j in 0..DIM {
        let top = lo[j].abs().max(hi[j].abs());
        ranges.push(ClipRange::new(0.0, top * top * n + 1.0));
    }
    ranges.extend(std::iter::repeat_n(
        ClipRange::new(0.0, n),
        DIM * BINS as usize,
    ));
    let stats = steps
        .sum(
            "feature statistics",
            Kind::FeatureStats(proto::FeatureStats {
                as_of: job.config.as_of.clone(),
                bins: histogram_range
                    .iter()
                    .map(|&(lo, hi)| proto::Bins {
                        lo,
                        hi,
                        count: BINS,
                    })
                    .collect(),
                lo: lo.to_vec(),
                hi: hi.to_vec(),
            }),
            ranges,
        )
        .await?;
    let count = stats[0].max(1.0);
    let mean: [f64; DIM] = std::array::from_fn(|j| (stats[1 + j] / count).clamp(lo[j], hi[j]));
    let std: [f64; DIM] = std::array::from_fn(|j| {
        let variance = stats[1 + DIM + j] / count - mean[j] * mean[j];
        // Fixed-point rounding can leave a constant feature with a variance
        // of a few ulps either side of zero.
        if variance > 1e-12 * (1.0 + mean[j] * mean[j]) {
            variance.sqrt()
        } else {
            0.0
        }
    });
    // Bins with fewer customers than a releasable segment are treated as
    // empty, so no estimate rests on a handful of customers.
    let histograms: Vec<Vec<f64>> = (0..DIM)
        .map(|j| {
            let start = 1 + 2 * DIM + j * BINS as usize;
            stats[start..start + BINS as usize]
                .iter()
                .map(|&c| {
                    if c < settings.min_segment_size as f64 {
                        0.0
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    let quantile = |j: usize, p: f64| {
        let (lo, hi) = histogram_range[j];
        histogram_quantile(&histograms[j], lo, hi, p)
    };
    let quantiles = Quantiles {
        p: QUANTILES,
        values: (0..DIM)
            .map(|j| {
                QUANTILES.map(|p| {
                    let mut x = [0.0; DIM];
                    x[j] = quantile(j, p);
                    features::untransform(x)[j]
                })
            })
            .collect(),
    };
    let standardization = Standardization {
        features: NAMES,
        transform: TRANSFORMS,
        count,
        mean,
        std,
        clip_lo: lo,
        clip_hi: hi,
        quantiles,
    };
    info!(count, ?mean, ?std, "standardisation released");

    // 3. The clustering space.
    let scale: [f64; DIM] = std::array::from_fn(|j| ahp.weights[j].sqrt());
    let space = Space {
        mean,
        std,
        scale,
        lo,
        hi,
    };

    // 4. Every restart of every candidate k, initialised from the
    // histograms.
    let mut runs = Vec::new();
    for k in settings.k_min..=settings.k_max {
        for restart in 0..settings.restarts {
            let mut rng = job_rng(job.config.seed, "init", k, restart);
            let mut init = Vec::with_capacity(k as usize * DIM);
            for _ in 0..k {
                let x: [f64; DIM] = std::array::from_fn(|j| quantile(j, rng.random::<f64>()));
                init.extend(space.project(&x));
            }
            runs.push(Run {
                k,
                restart,
                centroids: init.clone(),
                init,
                inertia: f64::INFINITY,
                sizes: vec![],
                iterations: 0,
                converged: false,
            });
        }
    }
    // Σ‖p‖² over all customers: each z-score has mean 0 and variance 1.
    let total_ss: f64 = (0..DIM)
        .filter(|&j| std[j] > 0.0)
        .map(|j| scale[j] * scale[j])
        .sum::<f64>()
        * count;
    lloyd(&mut steps, &space, &mut runs, settings, "k-means", total_ss).await?;

    // Best restart per k, then k by Calinski-Harabasz.
    let mut candidates = Vec::new();
    let mut best_per_k = Vec::new();
    for k in settings.k_min..=settings.k_max {
        let best = runs
            .iter()
            .filter(|r| r.k == k)
            .fold(None::<&Run>, |best, r| match best {
                Some(b) if b.inertia <= r.inertia => Some(b),
                _ => Some(r),
            })
            .expect("restarts >= 1");
        let k_f = k as f64;
        let between = (total_ss - best.inertia).max(0.0);
        let calinski_harabasz = if best.inertia > 0.0 && count > k_f {
            (between / (k_f - 1.0)) / (best.inertia / (count - k_f))
        } else {
            0.0
        };
        candidates.push(Candidate {
            k,
            inertia: best.inertia,
            calinski_harabasz,
            restart: best.restart,
            iterations: best.iterations,
            converged: best.converged,
        });
        best_per_k.push(best.clone());
    }
    let (chosen_index, k_choice) = if candidates.len() == 1 {
        (0, "fixed by the job")
    } else {
        let i = (0..candidates.len()).fold(0, |b, i| {
            if candidates[i].calinski_harabasz > candidates[b].calinski_harabasz {
                i
            } else {
                b
            }
        });
        (i, "largest Calinski-Harabasz index")
    };
    let mut chosen = best_per_k.swap_remove(chosen_index);
    info!(k = chosen.k, inertia = chosen.inertia, "k-means converged");

    // 5. Small-cell suppression: merge segments under the minimum size.
    let min = settings.min_segment_size as f64;
    let mut suppressed = 0;
    while chosen.sizes.iter().any(|&s| s < min) {
        let keep: Vec<usize> = (0..chosen.sizes.len())
            .filter(|&c| chosen.sizes[c] >= min)
            .collect();
        if keep.is_empty() {
            return Err(SegmentationError::TooFewCustomers {
                customers: count,
                min: settings.min_segment_size,
            });
        }
        suppressed += chosen.sizes.len() - keep.len();
        // If the plan has no Lloyd step left, the kept clusters keep their
        // last sizes.
        chosen.sizes = keep.iter().map(|&c| chosen.sizes[c]).collect();
        chosen.centroids = keep
            .iter()
            .flat_map(|&c| chosen.centroids[c * DIM..(c + 1) * DIM].to_vec())
            .collect();
        chosen.k = keep.len() as u32;
        chosen.converged = false;
        let iterations_before = chosen.iterations;
        chosen.iterations = 0;
        let mut merged = [chosen.clone()];
        lloyd(&mut steps, &space, &mut merged, settings, "merge", total_ss).await?;
        let [merged] = merged;
        chosen = Run {
            iterations: iterations_before + merged.iterations,
            ..merged
        };
    }

    // 6. Profiles at the final centroids.
    let k = chosen.k as usize;
    let bounds_original = (features::untransform(lo), features::untransform(hi));
    let mut ranges = Vec::with_capacity(k * PROFILE_ENTRIES);
    for _ in 0..k {
        ranges.push(ClipRange::new(0.0, n));
        for j in 0..DIM {
            ranges.push(ClipRange::new(0.0, bounds_original.1[j] * n + 1.0));
        }
        // Interactions by kind are bounded by T's bound.
        for _ in 0..4 {
            ranges.push(ClipRange::new(0.0, hi[4] * n + 1.0));
        }
        for _ in 0..5 {
            ranges.push(ClipRange::new(0.0, n));
        }
    }
    let profile = steps
        .sum(
            "segment profiles",
            Kind::SegmentProfile(proto::SegmentProfile {
                as_of: job.config.as_of.clone(),
                space: Some(steps.space(&space)),
                centroids: Some(proto::KMeansRun {
                    k: chosen.k,
                    centroids: chosen.centroids.clone(),
                }),
                frequent: settings.frequent_interactions,
            }),
            ranges,
        )
        .await?;
    let segmentation = describe(&chosen, &profile, &space, &ahp.weights, settings);
    let segmentation = SegmentationResult {
        candidates,
        k_choice,
        suppressed,
        ..segmentation
    };
    let propensity = if job.config.propensity.enabled {
        let mut fit = Fit {
            steps: &mut steps,
            job,
            space: space.clone(),
            segments: chosen.k,
            centroids: chosen.centroids.clone(),
        };
        Some(fit.run(census.converted, census.customers).await?)
    } else {
        None
    };
    let rounds: Vec<RoundSummary> = steps.engine.rounds().iter().map(Into::into).collect();
    Ok(JobResult {
        job_id: job.id.clone(),
        config_hash: job.config_hash.clone(),
        cohort: steps.engine.cohort().to_vec(),
        as_of: job.config.as_of.clone(),
        census,
        standardization,
        ahp: AhpResult {
            weights: ahp.weights,
            consistency_ratio: ahp.consistency_ratio,
            lambda_max: ahp.lambda_max,
            judgments: settings.ahp_judgments.clone(),
        },
        segmentation,
        propensity,
        privacy: privacy_block(steps.privacy.as_ref(), steps.engine.privacy_spent()),
        secure_sum_rounds: rounds.len(),
        rounds,
    })
}

/// The results contract's privacy block: what the releases spent.
fn privacy_block(plan: Option<&ReleasePlan>, rho: f64) -> Privacy {
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

/// Names, profiles and playbooks of the final segments.
fn describe(
    run: &Run,
    profile: &[f64],
    space: &Space,
    weights: &[f64],
    settings: &SegmentationSettings,
) -> SegmentationResult {
    let k = run.k as usize;
    let rows = |flat: &[f64]| -> Vec<Vec<f64>> { flat.chunks(DIM).map(<[f64]>::to_vec).collect() };
    let mut groups = Vec::new();
    let mut segments = Vec::new();
    for c in 0..k {
        let centroid = &run.centroids[c * DIM..(c + 1) * DIM];
        let high: [bool; DIM] = std::array::from_fn(|j| centroid[j] > 0.0);
        let group = playbook::closest_group(&high, weights);
        groups.push(group);
        let slot = &profile[c * PROFILE_ENTRIES..(c + 1) * PROFILE_ENTRIES];
        // Noise can make a count negative; none is.
        let size = slot[0].max(0.0);
        let per = |v: f64| if size > 0.0 { v / size } else { 0.0 };
        segments.push(Segment {
            index: c,
            name: String::new(),
            group: group.name,
            summary: group.summary,
            size,
            profile: NAMES
                .iter()
                .zip(high)
                .map(|(&n, h)| (n, if h { "high" } else { "low" }))
                .collect(),
            means: NAMES
                .iter()
                .enumerate()
                .map(|(j, &n)| (n, per(slot[1 + j])))
                .collect(),
            interactions: ["inquiry", "save", "search", "other"]
                .iter()
                .enumerate()
                .map(|(i, &n)| (n, per(slot[6 + i])))
                .collect(),
            conversion_rate: per(slot[14]),
            refined: playbook::REFINED
                .iter()
                .enumerate()
                .map(|(i, &(name, action))| RefinedGroup {
                    name,
                    customers: slot[10 + i],
                    share: per(slot[10 + i]),
                    action,
                })
                .collect(),
            playbook: group.playbook,
        });
    }
    for (segment, name) in segments.iter_mut().zip(playbook::names(&groups)) {
        segment.name = name;
    }
    let centroids = rows(&run.centroids);
    let centroids_original = centroids
        .iter()
        .map(|c| features::untransform(space.unproject(c)).to_vec())
        .collect();
    SegmentationResult {
        k,
        space_scale: space.scale,
        init_centroids: rows(&run.init),
        centroids,
        centroids_original,
        sizes: run.sizes.iter().map(|s| s.max(0.0)).collect(),
        inertia: run.inertia,
        iterations: run.iterations,
        restarts: settings.restarts,
        k_choice: "",
        candidates: vec![],
        suppressed: 0,
        min_segment_size: settings.min_segment_size,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_interpolate_inside_bins() {
        // 10 in [0, 1), 30 in [1, 2), 0 in [2, 3), 60 in [3, 4).
        let counts = [10.0, 30.0, 0.0, 60.0];
        assert_eq!(histogram_quantile(&counts, 0.0, 4.0, 0.05), 0.5);
        assert_eq!(histogram_quantile(&counts, 0.0, 4.0, 0.25), 1.5);
        assert_eq!(histogram_quantile(&counts, 0.0, 4.0, 0.7), 3.5);
        assert_eq!(histogram_quantile(&counts, 0.0, 4.0, 1.0), 4.0);
        assert_eq!(histogram_quantile(&[0.0; 4], 0.0, 4.0, 0.5), 0.0);
    }

    #[test]
    fn a_lloyd_update_keeps_an_empty_cluster_where_it_was() {
        let centroids = [0.0; 2 * DIM];
        // Cluster 0: two customers at 1 and 3 on every axis; cluster 1: none.
        let mut sums = vec![0.0; 2 * KMEANS_ENTRIES];
        sums[0] = 2.0;
        for j in 0..DIM {
            sums[1 + j] = 4.0;
        }
        sums[DIM + 1] = 10.0;
        let bounds = [10.0; DIM];
        let (next, sizes, inertia, shift) = lloyd_update(&centroids, &sums, &bounds, None);
        assert_eq!(&next[..DIM], &[2.0; DIM]);
        assert_eq!(&next[DIM..], &[0.0; DIM]);
        assert_eq!((sizes, inertia, shift), (vec![2.0, 0.0], 10.0, 2.0));
        // With the distances withheld, the inertia follows from Σ‖p‖² = 50:
        // about centroid 1 on every axis, 5·(0² + 2²) = 20.
        let mut at_one = centroids;
        at_one[..DIM].fill(1.0);
        let (_, _, inertia, _) = lloyd_update(&at_one, &sums, &bounds, Some(50.0));
        assert!((inertia - 20.0).abs() < 1e-12, "{inertia}");
        // A mean pushed outside the box by noise is brought back.
        sums[1] = 100.0;
        let (next, ..) = lloyd_update(&centroids, &sums, &bounds, None);
        assert_eq!(next[0], 10.0);
    }
}
