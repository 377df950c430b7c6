//! Campaign counts: per segment, over a site's holdout customers, how many
//! there are, how many converted, how many score in the top decile (at the
//! released threshold) and how many of those converted.
//!
//! Layout: per group (segment, or one group without segments)
//! [`ENTRIES`] = `[size, converted, top, top and converted]`.

use super::{LayoutError, check_length};

/// Entries per group.
pub const ENTRIES: usize = 4;

/// One group's counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupCounts {
    /// Holdout customers.
    pub size: f64,
    /// Of them converted.
    pub converted: f64,
    /// Scoring at or above the threshold.
    pub top: f64,
    /// Scoring at or above the threshold and converted.
    pub top_converted: f64,
}

/// Entries for `groups` groups.
pub fn length(groups: usize) -> usize {
    groups * ENTRIES
}

/// Adds one holdout customer of `group`, predicted `prob`, label `y`.
pub fn add(out: &mut [f64], group: usize, prob: f64, y: bool, threshold: f64) {
    let y = f64::from(y);
    let top = prob >= threshold;
    let slot = &mut out[ENTRIES * group..][..ENTRIES];
    slot[0] += 1.0;
    slot[1] += y;
    slot[2] += f64::from(top);
    slot[3] += if top { y } else { 0.0 };
}

/// Per-customer bounds for `groups` groups, and the squared L2 bound (one
/// group's four counts).
pub fn customer_bounds(groups: usize) -> (Vec<f64>, f64) {
    (vec![1.0; length(groups)], ENTRIES as f64)
}

/// Reads a released sum of `groups` groups.
pub fn decode(sum: &[f64], groups: usize) -> Result<Vec<GroupCounts>, LayoutError> {
    check_length("campaign counts", sum, length(groups))?;
    Ok(sum
        .chunks_exact(ENTRIES)
        .map(|s| GroupCounts {
            size: s[0],
            converted: s[1],
            top: s[2],
            top_converted: s[3],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_group_and_threshold() {
        let mut out = vec![0.0; length(2)];
        add(&mut out, 1, 0.9, true, 0.8);
        add(&mut out, 1, 0.8, false, 0.8);
        add(&mut out, 0, 0.1, true, 0.8);
        let g = decode(&out, 2).unwrap();
        assert_eq!((g[0].size, g[0].converted, g[0].top), (1.0, 1.0, 0.0));
        assert_eq!(
            (g[1].size, g[1].converted, g[1].top, g[1].top_converted),
            (2.0, 1.0, 2.0, 1.0)
        );
        assert!(decode(&out, 3).is_err());
    }
}
