//! The feature space both sides agree on (design.md, "Data contract" and
//! "Algorithms on top of secure sums"): the transformed RFMLT vector, the
//! clustering space built from the pooled standardisation and the AHP
//! scales, and nearest-centroid assignment. Participants use it to compute
//! their local parts; the coordinator to interpret the released sums.

/// Feature names, in vector order.
pub const NAMES: [&str; 5] = ["R", "F", "M", "L", "T"];

/// The transform applied to each feature before standardisation.
pub const TRANSFORMS: [&str; 5] = ["identity", "log1p", "log1p", "identity", "identity"];

/// Number of features.
pub const DIM: usize = 5;

/// x = [R, log1p F, log1p M, L, T].
pub fn transform(rfmlt: [f64; DIM]) -> [f64; DIM] {
    let [r, f, m, l, t] = rfmlt;
    [r, f.ln_1p(), m.ln_1p(), l, t]
}

/// The inverse of [`transform`].
pub fn untransform(x: [f64; DIM]) -> [f64; DIM] {
    let [r, f, m, l, t] = x;
    [r, f.exp_m1(), m.exp_m1(), l, t]
}

pub use crate::computation::kmeans::ENTRIES as KMEANS_ENTRIES;
pub use crate::computation::profile::ENTRIES as PROFILE_ENTRIES;

/// Per-customer bounds of x: every quantity a customer contributes is
/// clipped to them, so each site's sums have a declared range. In original
/// units: R and L up to 100 years, F up to 10^5 purchases, M up to 10^8,
/// T up to 10^5 interactions.
pub const DEFAULT_BOUNDS: [(f64, f64); DIM] = [
    (0.0, 36_500.0),
    (0.0, 11.51293546492023),
    (0.0, 18.420680753952364),
    (0.0, 36_500.0),
    (0.0, 100_000.0),
];

/// Clips x to per-feature bounds.
pub fn clip(x: &[f64; DIM], lo: &[f64; DIM], hi: &[f64; DIM]) -> [f64; DIM] {
    std::array::from_fn(|j| x[j].clamp(lo[j], hi[j]))
}

/// The clustering space: x is clipped to `[lo, hi]`, then
/// `c_j = (x_j - mean_j) / std_j * scale_j`, and 0 for a feature whose
/// pooled standard deviation is 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Space {
    /// Pooled mean of x.
    pub mean: [f64; DIM],
    /// Pooled population standard deviation of x.
    pub std: [f64; DIM],
    /// Multiplier of each z-score.
    pub scale: [f64; DIM],
    /// Lower clip bound of x.
    pub lo: [f64; DIM],
    /// Upper clip bound of x.
    pub hi: [f64; DIM],
}

impl Space {
    /// Builds a space from wire vectors, which must have [`DIM`] entries each.
    pub fn from_slices(
        mean: &[f64],
        std: &[f64],
        scale: &[f64],
        lo: &[f64],
        hi: &[f64],
    ) -> Option<Self> {
        let space = Self {
            mean: mean.try_into().ok()?,
            std: std.try_into().ok()?,
            scale: scale.try_into().ok()?,
            lo: lo.try_into().ok()?,
            hi: hi.try_into().ok()?,
        };
        space.ordered().then_some(space)
    }

    /// Whether every clip range is one: `lo <= hi`, neither NaN (clipping
    /// to any other would panic).
    pub fn ordered(&self) -> bool {
        self.lo.iter().zip(&self.hi).all(|(lo, hi)| lo <= hi)
    }

    /// The z-score of each feature of clipped x (0 where the variance is 0).
    pub fn z(&self, x: &[f64; DIM]) -> [f64; DIM] {
        let x = clip(x, &self.lo, &self.hi);
        std::array::from_fn(|j| {
            if self.std[j] > 0.0 {
                (x[j] - self.mean[j]) / self.std[j]
            } else {
                0.0
            }
        })
    }

    /// A point of the clustering space.
    pub fn project(&self, x: &[f64; DIM]) -> [f64; DIM] {
        let z = self.z(x);
        std::array::from_fn(|j| z[j] * self.scale[j])
    }

    /// Back from the clustering space to transformed units (a feature with
    /// zero variance or zero scale maps to its mean).
    pub fn unproject(&self, c: &[f64]) -> [f64; DIM] {
        std::array::from_fn(|j| {
            if self.std[j] > 0.0 && self.scale[j] > 0.0 {
                self.mean[j] + c[j] / self.scale[j] * self.std[j]
            } else {
                self.mean[j]
            }
        })
    }
}

/// The nearest of `centroids` (row-major, [`DIM`] per row) to `point`, and
/// the squared distance; ties go to the lowest index.
pub fn nearest(point: &[f64; DIM], centroids: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.chunks_exact(DIM).enumerate() {
        let d: f64 = (0..DIM)
            .map(|j| (point[j] - c[j]) * (point[j] - c[j]))
            .sum();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_whose_clip_ranges_are_not_ranges_is_refused() {
        let five = [0.0; DIM];
        let hi = [1.0; DIM];
        assert!(Space::from_slices(&five, &hi, &hi, &five, &hi).is_some());
        let mut reversed = hi;
        reversed[2] = -1.0;
        assert!(Space::from_slices(&five, &hi, &hi, &five, &reversed).is_none());
        let mut nan = hi;
        nan[4] = f64::NAN;
        assert!(Space::from_slices(&five, &hi, &hi, &nan, &hi).is_none());
        assert!(Space::from_slices(&five, &hi, &hi, &five, &nan).is_none());
    }

    #[test]
    fn transform_round_trips() {
        let v = [12.0, 3.0, 1500.5, 40.0, 7.0];
        let back = untransform(transform(v));
        for j in 0..DIM {
            assert!((back[j] - v[j]).abs() < 1e-9 * v[j].max(1.0));
        }
        assert_eq!(transform(v)[1], 4f64.ln());
    }

    #[test]
    fn zero_variance_projects_to_zero_and_back_to_the_mean() {
        let space = Space {
            mean: [10.0, 1.0, 2.0, 0.0, 3.0],
            std: [2.0, 0.5, 1.0, 0.0, 1.0],
            scale: [0.5, 1.0, 1.0, 1.0, 0.0],
            lo: [0.0; DIM],
            hi: [100.0; DIM],
        };
        let c = space.project(&[14.0, 2.0, 2.0, 99.0, 5.0]);
        assert_eq!(c, [1.0, 2.0, 0.0, 0.0, 0.0]);
        assert_eq!(space.unproject(&c), [14.0, 2.0, 2.0, 0.0, 3.0]);
    }

    #[test]
    fn nearest_breaks_ties_to_the_lowest_index() {
        let centroids = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(nearest(&[0.0; DIM], &centroids), (0, 1.0));
        assert_eq!(nearest(&[-0.5, 0.0, 0.0, 0.0, 0.0], &centroids), (1, 0.25));
    }
}
