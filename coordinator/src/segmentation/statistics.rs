//! Step 2, the pooled statistics: count, Σx and Σx² of
//! x = [R, log1p F, log1p M, L, T] (each clipped per customer) and a
//! histogram per feature, in one round; from them the standardisation, the
//! quantiles, and the clustering space once the AHP weights are known.

use fedseg_common::computation::feature_stats;
use fedseg_common::features::{self, DEFAULT_BOUNDS, DIM, NAMES, Space, TRANSFORMS};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use tracing::info;

use super::{Quantiles, SegmentationError, Standardization};
use crate::config::Job;
use crate::release::Releases;

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

/// What the statistics round released, and what later steps draw from it.
#[derive(Debug, Clone)]
pub struct Statistics {
    /// The pooled standardisation (results contract).
    pub standardization: Standardization,
    /// Per-feature histograms of x, bins under the minimum segment size
    /// emptied.
    histograms: Vec<Vec<f64>>,
    /// Each histogram's range.
    histogram_range: [(f64, f64); DIM],
}

/// Releases the pooled statistics of `job`.
pub async fn statistics(
    releases: &mut Releases<'_, '_>,
    job: &Job,
) -> Result<Statistics, SegmentationError> {
    let settings = &job.config.segmentation;
    let n = releases.customers;
    let (lo, hi) = match &releases.privacy {
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
    let request = proto::FeatureStats {
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
    };
    let layout = feature_stats::Layout::from_request(&request)
        .map_err(|e| SegmentationError::Request(e.0))?;
    let sums = releases
        .sum("feature statistics", Kind::FeatureStats(request), ranges)
        .await?;
    let stats = layout.decode(&sums)?;
    let count = stats.count.max(1.0);
    let mean: [f64; DIM] = std::array::from_fn(|j| (stats.sum[j] / count).clamp(lo[j], hi[j]));
    let std: [f64; DIM] = std::array::from_fn(|j| {
        let variance = stats.sum_squares[j] / count - mean[j] * mean[j];
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
    let min = settings.min_segment_size as f64;
    let histograms: Vec<Vec<f64>> = stats
        .histograms
        .into_iter()
        .map(|bins| {
            bins.into_iter()
                .map(|c| if c < min { 0.0 } else { c })
                .collect()
        })
        .collect();
    let mut statistics = Statistics {
        standardization: Standardization {
            features: NAMES.map(String::from),
            transform: TRANSFORMS.map(String::from),
            count,
            mean,
            std,
            clip_lo: lo,
            clip_hi: hi,
            quantiles: Quantiles {
                p: QUANTILES,
                values: vec![],
            },
        },
        histograms,
        histogram_range,
    };
    statistics.standardization.quantiles.values = (0..DIM)
        .map(|j| {
            QUANTILES.map(|p| {
                let mut x = [0.0; DIM];
                x[j] = statistics.quantile(j, p);
                features::untransform(x)[j]
            })
        })
        .collect();
    info!(count, ?mean, ?std, "standardisation released");
    Ok(statistics)
}

impl Statistics {
    /// Estimated quantile `p` of feature `j` (of x), from its histogram.
    pub fn quantile(&self, j: usize, p: f64) -> f64 {
        let (lo, hi) = self.histogram_range[j];
        histogram_quantile(&self.histograms[j], lo, hi, p)
    }

    /// The clustering space: z-scores times √weight, so squared distance
    /// is AHP-weighted.
    pub fn space(&self, weights: &[f64]) -> Space {
        let s = &self.standardization;
        Space {
            mean: s.mean,
            std: s.std,
            scale: std::array::from_fn(|j| weights[j].sqrt()),
            lo: s.clip_lo,
            hi: s.clip_hi,
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
}
