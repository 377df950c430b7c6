//! Segment profiles: per segment, the count of its customers, the sums of
//! their R, F, M, L, T (original units, clipped to the space's box), their
//! interactions by kind, the four refined groups of customers without a
//! purchase, and their conversions.
//!
//! Layout: `k` segments of [`ENTRIES`] = `[count, ΣR, ΣF, ΣM, ΣL, ΣT,
//! inquiries, saves, searches, other, refined group 0..4, converted]`.

use crate::features::{self, DIM, Space};

use super::{LayoutError, check_length};

/// Entries per segment.
pub const ENTRIES: usize = 1 + DIM + KINDS + GROUPS + 1;
/// Interaction kinds: inquiry, save, search, other.
pub const KINDS: usize = 4;
/// Refined groups of customers without a purchase, exclusive, in order of
/// precedence: frequent inquirers, inquirers or savers, frequent
/// searchers, the rest.
pub const GROUPS: usize = 4;

/// What one customer adds to its segment's profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// R, F, M, L, T in original units, clipped.
    pub rfmlt: [f64; DIM],
    /// Interactions by kind, scaled down with T when T is clipped.
    pub kinds: [f64; KINDS],
    /// The refined group of a customer without a purchase.
    pub refined: Option<usize>,
    /// The label.
    pub converted: bool,
}

impl Row {
    /// The row of a customer of raw `rfmlt` (original units), interactions
    /// by kind and label, in `space` (whose box clips the raw values);
    /// `frequent` is the number of inquiries or searches that counts as
    /// frequent.
    pub fn new(
        space: &Space,
        rfmlt: [f64; DIM],
        kinds: [u64; KINDS],
        converted: bool,
        frequent: u64,
    ) -> Self {
        let (lo, hi) = (
            features::untransform(space.lo),
            features::untransform(space.hi),
        );
        let t = rfmlt[DIM - 1];
        // Interactions by kind add up to T: scaled down together when T is
        // clipped, so they stay within T's bound.
        let shrink = if t > hi[DIM - 1] {
            hi[DIM - 1] / t
        } else {
            1.0
        };
        let [inquiry, save, search, _] = kinds;
        let refined = if rfmlt[1] != 0.0 {
            None
        } else if inquiry >= frequent {
            Some(0)
        } else if inquiry > 0 || save > 0 {
            Some(1)
        } else if search >= frequent {
            Some(2)
        } else {
            Some(3)
        };
        Self {
            rfmlt: features::clip(&rfmlt, &lo, &hi),
            kinds: kinds.map(|n| n as f64 * shrink),
            refined,
            converted,
        }
    }
}

/// One segment's released sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentSums {
    /// Customers.
    pub count: f64,
    /// Sums of R, F, M, L, T.
    pub sums: [f64; DIM],
    /// Interactions by kind.
    pub kinds: [f64; KINDS],
    /// Customers in each refined group.
    pub refined: [f64; GROUPS],
    /// Conversions.
    pub converted: f64,
}

/// Entries of a profile of `k` segments.
pub fn length(k: usize) -> usize {
    k * ENTRIES
}

/// Adds one customer's row to `segment`.
pub fn add(out: &mut [f64], segment: usize, row: &Row) {
    let slot = &mut out[segment * ENTRIES..][..ENTRIES];
    slot[0] += 1.0;
    for j in 0..DIM {
        slot[1 + j] += row.rfmlt[j];
    }
    for i in 0..KINDS {
        slot[1 + DIM + i] += row.kinds[i];
    }
    if let Some(g) = row.refined {
        slot[1 + DIM + KINDS + g] += 1.0;
    }
    slot[ENTRIES - 1] += f64::from(row.converted);
}

/// Per-customer bounds of a profile of `k` segments in `space`, and the
/// squared L2 bound: the count, R..T, the kinds together (their normalised
/// squares sum to at most 1), one refined group, converted.
pub fn customer_bounds(space: &Space, k: usize) -> (Vec<f64>, f64) {
    let raw = space.raw_bounds();
    let mut segment = vec![1.0];
    segment.extend(raw);
    segment.extend([raw[DIM - 1]; KINDS]);
    segment.extend([1.0; GROUPS + 1]);
    (segment.repeat(k), (1 + DIM + 1 + 1 + 1) as f64)
}

/// Reads a released sum of `k` segments.
pub fn decode(sum: &[f64], k: usize) -> Result<Vec<SegmentSums>, LayoutError> {
    check_length("segment profile", sum, length(k))?;
    Ok(sum
        .chunks_exact(ENTRIES)
        .map(|slot| SegmentSums {
            count: slot[0],
            sums: std::array::from_fn(|j| slot[1 + j]),
            kinds: std::array::from_fn(|i| slot[1 + DIM + i]),
            refined: std::array::from_fn(|g| slot[1 + DIM + KINDS + g]),
            converted: slot[ENTRIES - 1],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            mean: [0.0; DIM],
            std: [1.0; DIM],
            scale: [1.0; DIM],
            lo: [0.0; DIM],
            hi: features::transform([1000.0, 50.0, 5000.0, 1000.0, 10.0]),
        }
    }

    #[test]
    fn rows_are_clipped_grouped_and_read_back_by_field() {
        let space = space();
        // No purchase, 2 inquiries of 20 interactions (T clipped to 10).
        let browser = Row::new(&space, [30.0, 0.0, 0.0, 0.0, 20.0], [2, 4, 6, 8], false, 2);
        assert_eq!(browser.refined, Some(0));
        assert_eq!(browser.kinds, [1.0, 2.0, 3.0, 4.0]);
        assert!((browser.rfmlt[DIM - 1] - 10.0).abs() < 1e-9);
        let buyer = Row::new(&space, [5.0, 3.0, 90.0, 20.0, 1.0], [0, 0, 1, 0], true, 2);
        assert_eq!(buyer.refined, None);
        let searcher = Row::new(&space, [5.0, 0.0, 0.0, 0.0, 3.0], [0, 0, 3, 0], false, 3);
        assert_eq!(searcher.refined, Some(2));
        let mut out = vec![0.0; length(2)];
        add(&mut out, 1, &browser);
        add(&mut out, 1, &buyer);
        add(&mut out, 0, &searcher);
        let segments = decode(&out, 2).unwrap();
        assert_eq!(segments[1].count, 2.0);
        assert_eq!(segments[1].refined, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(segments[1].converted, 1.0);
        assert_eq!(segments[1].kinds, [1.0, 2.0, 4.0, 4.0]);
        assert!((segments[1].sums[2] - 90.0).abs() < 1e-9);
        assert_eq!(segments[0].refined, [0.0, 0.0, 1.0, 0.0]);
        assert!(decode(&out, 3).is_err());
        let (bounds, l2) = customer_bounds(&space, 2);
        assert_eq!(bounds.len(), length(2));
        assert_eq!(l2, 9.0);
    }
}
