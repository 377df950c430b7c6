//! Holdout evaluation of a model: over a site's holdout customers, their
//! count and log-loss, a histogram of predicted scores by label (for the
//! binned ROC curve) and calibration by tenth of predicted probability.
//!
//! Layout for `bins` score bins: `[count, loss, positives (bins), negatives
//! (bins), per tenth [count, Σ predicted, Σ observed] (30)]`.

use super::{LayoutError, check_length};
use crate::propensity::{self, MAX_LOSS};

/// Tenths of predicted probability in the calibration.
pub const TENTHS: usize = 10;

/// One tenth of predicted probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tenth {
    /// Holdout customers predicted in it.
    pub count: f64,
    /// Sum of their predicted probabilities.
    pub predicted: f64,
    /// Their conversions.
    pub observed: f64,
}

/// A released evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Holdout customers.
    pub count: f64,
    /// Sum of their log-losses.
    pub loss: f64,
    /// Score histogram of converted customers.
    pub positives: Vec<f64>,
    /// Score histogram of the others.
    pub negatives: Vec<f64>,
    /// Calibration by tenth.
    pub calibration: [Tenth; TENTHS],
}

/// Entries for `bins` score bins.
pub fn length(bins: usize) -> usize {
    2 + 2 * bins + 3 * TENTHS
}

/// Adds one holdout customer of linear predictor `eta` and label `y`.
pub fn add(out: &mut [f64], bins: usize, eta: f64, y: bool) {
    let prob = propensity::sigmoid(eta);
    out[0] += 1.0;
    out[1] += propensity::log_loss(eta, y);
    let bin = ((prob * bins as f64) as usize).min(bins - 1);
    out[2 + if y { 0 } else { bins } + bin] += 1.0;
    let tenth = ((prob * TENTHS as f64) as usize).min(TENTHS - 1);
    let slot = &mut out[2 + 2 * bins + 3 * tenth..][..3];
    slot[0] += 1.0;
    slot[1] += prob;
    slot[2] += f64::from(y);
}

/// Per-customer bounds for `bins` score bins, and the squared L2 bound:
/// the count, the loss, one score bin, one tenth's count, score and label.
pub fn customer_bounds(bins: usize) -> (Vec<f64>, f64) {
    let mut entries = vec![1.0, MAX_LOSS];
    entries.resize(length(bins), 1.0);
    (entries, 6.0)
}

/// Reads a released sum of `bins` score bins.
pub fn decode(sum: &[f64], bins: usize) -> Result<Evaluation, LayoutError> {
    check_length("holdout evaluation", sum, length(bins))?;
    Ok(Evaluation {
        count: sum[0],
        loss: sum[1],
        positives: sum[2..2 + bins].to_vec(),
        negatives: sum[2 + bins..2 + 2 * bins].to_vec(),
        calibration: std::array::from_fn(|t| {
            let slot = &sum[2 + 2 * bins + 3 * t..][..3];
            Tenth {
                count: slot[0],
                predicted: slot[1],
                observed: slot[2],
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_land_in_their_bin_and_tenth() {
        let mut out = vec![0.0; length(4)];
        // sigmoid(0) = 0.5: bin 2 of 4, tenth 5.
        add(&mut out, 4, 0.0, true);
        // sigmoid(-40) ≈ 0: bin 0, tenth 0.
        add(&mut out, 4, -40.0, false);
        let e = decode(&out, 4).unwrap();
        assert_eq!(e.count, 2.0);
        assert_eq!(e.positives, [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(e.negatives, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(e.calibration[5].count, 1.0);
        assert_eq!(e.calibration[5].predicted, 0.5);
        assert_eq!(e.calibration[5].observed, 1.0);
        assert_eq!(e.calibration[0].observed, 0.0);
        assert!(decode(&out, 5).is_err());
    }
}
