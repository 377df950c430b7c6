//! Step 4, small-cell suppression: a segment under the job's minimum size
//! is never released; its centroid is dropped and Lloyd resumed from the
//! others, until every segment is large enough.

use fedseg_common::features::{DIM, Space};

use super::SegmentationError;
use super::kmeans::{Run, lloyd};
use crate::config::SegmentationSettings;
use crate::release::Releases;

/// Merges the segments of `chosen` under the minimum size away; the final
/// run and how many segments were merged. `count` is the pooled customer
/// count, `total_ss` the total sum of squares.
pub async fn suppress(
    releases: &mut Releases<'_, '_>,
    settings: &SegmentationSettings,
    space: &Space,
    mut chosen: Run,
    count: f64,
    total_ss: f64,
) -> Result<(Run, usize), SegmentationError> {
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
        lloyd(releases, space, &mut merged, settings, "merge", total_ss).await?;
        let [merged] = merged;
        chosen = Run {
            iterations: iterations_before + merged.iterations,
            ..merged
        };
    }
    Ok((chosen, suppressed))
}
