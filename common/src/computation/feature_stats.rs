//! Feature statistics: per-feature count, sums and sums of squares of the
//! clipped transformed features x, and a fixed-bin histogram of each (for
//! the pooled standardisation and quantiles).
//!
//! Layout: `[count, Σx (DIM), Σx² (DIM), bins of feature 0, …, bins of
//! feature DIM-1]`.

use crate::features::{self, DIM};
use crate::proto;

use super::{LayoutError, RequestError, check_length};

/// One feature's histogram bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Number of bins (values beyond the edges go to the end bins).
    pub count: usize,
}

/// The layout a request describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    lo: [f64; DIM],
    hi: [f64; DIM],
    bins: [Bins; DIM],
    offsets: [usize; DIM],
    length: usize,
}

/// A released (or one site's) feature-statistics vector, by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Customers.
    pub count: f64,
    /// Σx per feature.
    pub sum: [f64; DIM],
    /// Σx² per feature.
    pub sum_squares: [f64; DIM],
    /// Each feature's histogram counts.
    pub histograms: [Vec<f64>; DIM],
}

impl Layout {
    /// Reads and checks a request: five clip bounds and five non-empty,
    /// increasing bin ranges.
    pub fn from_request(request: &proto::FeatureStats) -> Result<Self, RequestError> {
        let (Ok(lo), Ok(hi)) = (
            <[f64; DIM]>::try_from(request.lo.as_slice()),
            <[f64; DIM]>::try_from(request.hi.as_slice()),
        ) else {
            return Err(RequestError("feature statistics need 5 clip bounds".into()));
        };
        // Clipping to a range whose ends are reversed or NaN would panic.
        if !lo.iter().zip(&hi).all(|(lo, hi)| lo <= hi) {
            return Err(RequestError(
                "feature statistics need clip bounds with lo <= hi".into(),
            ));
        }
        let bins = &request.bins;
        if bins.len() != DIM
            || bins
                .iter()
                .any(|b| b.count == 0 || b.lo.partial_cmp(&b.hi) != Some(std::cmp::Ordering::Less))
        {
            return Err(RequestError(
                "feature statistics need 5 non-empty bin ranges".into(),
            ));
        }
        let bins: [Bins; DIM] = std::array::from_fn(|j| Bins {
            lo: bins[j].lo,
            hi: bins[j].hi,
            count: bins[j].count as usize,
        });
        let mut offsets = [0; DIM];
        let mut length = 1 + 2 * DIM;
        for (j, b) in bins.iter().enumerate() {
            offsets[j] = length;
            length += b.count;
        }
        Ok(Self {
            lo,
            hi,
            bins,
            offsets,
            length,
        })
    }

    /// Entries of the vector.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Adds one customer's transformed features `x` (clipped here).
    pub fn add(&self, out: &mut [f64], x: &[f64; DIM]) {
        let x = features::clip(x, &self.lo, &self.hi);
        out[0] += 1.0;
        for j in 0..DIM {
            out[1 + j] += x[j];
            out[1 + DIM + j] += x[j] * x[j];
            let b = &self.bins[j];
            let position = (x[j] - b.lo) / (b.hi - b.lo) * b.count as f64;
            // Below the range casts to 0, above is capped: the end bins.
            let bin = (position as usize).min(b.count - 1);
            out[self.offsets[j] + bin] += 1.0;
        }
    }

    /// Per-customer bounds of each entry, and the squared L2 bound: the
    /// count, five sums, five squares and one bin per feature.
    pub fn customer_bounds(&self) -> (Vec<f64>, f64) {
        let top: [f64; DIM] = std::array::from_fn(|j| self.lo[j].abs().max(self.hi[j].abs()));
        let mut entries = vec![1.0];
        entries.extend(top);
        entries.extend(top.map(|t| t * t));
        entries.resize(self.length, 1.0);
        (entries, (1 + 3 * DIM) as f64)
    }

    /// Reads a released sum by field.
    pub fn decode(&self, sum: &[f64]) -> Result<Stats, LayoutError> {
        check_length("feature statistics", sum, self.length)?;
        Ok(Stats {
            count: sum[0],
            sum: std::array::from_fn(|j| sum[1 + j]),
            sum_squares: std::array::from_fn(|j| sum[1 + DIM + j]),
            histograms: std::array::from_fn(|j| {
                sum[self.offsets[j]..][..self.bins[j].count].to_vec()
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> proto::FeatureStats {
        proto::FeatureStats {
            as_of: String::new(),
            lo: vec![0.0; DIM],
            hi: vec![10.0; DIM],
            bins: (0..DIM)
                .map(|j| proto::Bins {
                    lo: 0.0,
                    hi: 4.0,
                    count: 2 + j as u32,
                })
                .collect(),
        }
    }

    #[test]
    fn a_customer_lands_in_its_fields_and_bins() {
        let layout = Layout::from_request(&request()).unwrap();
        assert_eq!(layout.length(), 1 + 2 * DIM + (2 + 3 + 4 + 5 + 6));
        let mut out = vec![0.0; layout.length()];
        // 12 is clipped to 10 (the last bin); -1 to 0 (the first).
        layout.add(&mut out, &[1.0, 3.0, 12.0, -1.0, 2.0]);
        let stats = layout.decode(&out).unwrap();
        assert_eq!(stats.count, 1.0);
        assert_eq!(stats.sum, [1.0, 3.0, 10.0, 0.0, 2.0]);
        assert_eq!(stats.sum_squares, [1.0, 9.0, 100.0, 0.0, 4.0]);
        assert_eq!(stats.histograms[0], [1.0, 0.0]);
        assert_eq!(stats.histograms[1], [0.0, 0.0, 1.0]);
        assert_eq!(stats.histograms[2], [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(stats.histograms[3], [1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(stats.histograms[4], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert!(layout.decode(&out[1..]).is_err());
    }

    #[test]
    fn requests_without_bounds_or_bins_are_refused() {
        let mut r = request();
        r.lo.pop();
        assert!(Layout::from_request(&r).is_err());
        let mut r = request();
        r.bins[2].count = 0;
        assert!(Layout::from_request(&r).is_err());
        let mut r = request();
        r.bins[1].hi = f64::NAN;
        assert!(Layout::from_request(&r).is_err());
    }

    /// Found by fuzzing (fuzz/regressions/wire/): reversed or NaN clip
    /// bounds made `add` panic in `f64::clamp`.
    #[test]
    fn requests_whose_clip_bounds_are_not_ranges_are_refused() {
        let mut r = request();
        r.hi[0] = r.lo[0] - 1.0;
        assert!(Layout::from_request(&r).is_err());
        let mut r = request();
        r.lo[3] = f64::NAN;
        assert!(Layout::from_request(&r).is_err());
    }
}
