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

use fedseg_common::computation::LayoutError;
use thiserror::Error;

use crate::ahp;
use crate::release::ReleaseError;

pub use fedseg_common::result::{
    AhpResult, Candidate, Census, Quantiles, RefinedGroup, Segment, SegmentationResult,
    Standardization,
};

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
