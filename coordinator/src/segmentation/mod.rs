//! The joint segmentation, built only from secure sums (design.md,
//! "Algorithms on top of secure sums"). One file per step, in the order the
//! job pipeline runs them:
//!
//! 1. [`census`]: customer and row counts, which bound every later sum so
//!    the fixed-point encoding can use all the precision left;
//! 2. [`statistics`]: counts, sums, sums of squares and histograms of
//!    x = [R, log1p F, log1p M, L, T] give the pooled standardisation;
//!    AHP weights from the job's judgments then scale the z-scores (by the
//!    square root of each weight, so squared distance is AHP-weighted);
//! 3. [`kmeans`]: federated Lloyd; every restart of every candidate k
//!    travels in one vector, so a step costs one round; initial centroids
//!    are drawn from the released histograms only, seeded by the job; k is
//!    chosen by the Calinski-Harabasz index when the job gives a range;
//! 4. [`suppression`]: segments under the job's minimum size are merged
//!    into the others (their centroids dropped and Lloyd resumed) until none
//!    is left;
//! 5. [`profiles`]: per-segment profiles (means, interaction kinds, refined
//!    groups, conversions) name the segments and pick their playbooks.
//!
//! Each step is a deterministic function of the job and of earlier released
//! sums, which is what lets a resumed coordinator retrace a job from its
//! journal.
//!
//! Under `[privacy]` every release carries distributed discrete Gaussian
//! noise (`fedseg_common::privacy`) and counts against the job's release
//! plan (`crate::release::ReleasePlan`); features are clipped to the job's
//! `privacy.clip` bounds, and what the noise can break (tiny or negative
//! counts) is handled as post-processing.

pub mod census;
pub mod kmeans;
pub mod profiles;
pub mod statistics;
pub mod suppression;

use std::collections::BTreeMap;

use fedseg_common::computation::LayoutError;
use fedseg_common::features::DIM;
use serde::Serialize;
use thiserror::Error;

use crate::ahp;
use crate::playbook::Playbook;
use crate::release::ReleaseError;

pub use census::census;
pub use kmeans::{KMeans, Run, kmeans};
pub use profiles::profiles;
pub use statistics::{Statistics, statistics};
pub use suppression::suppress;

/// Why the segmentation could not finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SegmentationError {
    /// A sum was not released.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A released sum does not fit its computation's layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A request this coordinator built is not a usable computation (a
    /// bug: its settings were checked at start-up).
    #[error("a request of ours is unusable: {0}")]
    Request(String),
    /// The AHP judgments are unusable.
    #[error(transparent)]
    Ahp(#[from] ahp::AhpError),
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
    pub profile: BTreeMap<&'static str, &'static str>,
    /// Mean R, F, M, L, T of the segment's customers, original units.
    pub means: BTreeMap<&'static str, f64>,
    /// Mean interactions per customer by kind.
    pub interactions: BTreeMap<&'static str, f64>,
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
