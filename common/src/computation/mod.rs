//! One module per computation a secure-sum round can ask of a site: each is
//! the single owner of its vector layout, the per-customer bounds of its
//! entries (for differential privacy), how a site adds up its customers into
//! it, and the typed decode of a released sum that the coordinator reads by
//! field, never by slot index.

pub mod activity;
pub mod campaign;
pub mod census;
pub mod evaluation;
pub mod feature_stats;
pub mod kmeans;
pub mod local_epochs;
pub mod migration;
pub mod newton;
pub mod profile;
pub mod uplift;

use thiserror::Error;

/// A request that does not describe a usable computation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct RequestError(pub String);

/// A released sum that does not fit the computation's layout.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{computation}: the sum has {got} entries, the layout {expected}")]
pub struct LayoutError {
    /// The computation.
    pub computation: &'static str,
    /// Entries the layout has.
    pub expected: usize,
    /// Entries the sum has.
    pub got: usize,
}

/// Checks that `sum` has the layout's length.
pub(crate) fn check_length(
    computation: &'static str,
    sum: &[f64],
    expected: usize,
) -> Result<(), LayoutError> {
    if sum.len() == expected {
        Ok(())
    } else {
        Err(LayoutError {
            computation,
            expected,
            got: sum.len(),
        })
    }
}
