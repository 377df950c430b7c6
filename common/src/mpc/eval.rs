//! Holdout metrics the bank computes on its customers' joint scores (which
//! it may learn at the end) and its own labels: nothing per customer leaves
//! the bank; only these numbers are released.

use crate::computation::evaluation::TENTHS;
use crate::propensity::{log_loss, sigmoid};
use crate::result::CalibrationBin;

/// The released evaluation of a model on the holdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Conversion rate of the top 10% by score over the overall rate.
    pub top_decile_lift: f64,
    /// Standard error of the AUC (Hanley and McNeil, Radiology 1982), from
    /// the AUC and the holdout's converters and non-converters.
    pub auc_standard_error: f64,
}

/// Hanley and McNeil's standard error of an AUC `a` over `pos` positives
/// and `neg` negatives.
pub fn auc_standard_error(a: f64, pos: f64, neg: f64) -> f64 {
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let var =
        (a * (1.0 - a) + (pos - 1.0) * (q1 - a * a) + (neg - 1.0) * (q2 - a * a)) / (pos * neg);
    var.max(0.0).sqrt()
}

/// Evaluates linear predictors `eta` against `labels`.
pub fn evaluate(eta: &[f64], labels: &[bool]) -> Evaluation {
    let n = eta.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eta[a].total_cmp(&eta[b]));
    // AUC by mid-ranks
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && eta[order[j + 1]] == eta[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| labels[order[k]]).count() as f64 * mid;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = n as f64 - pos;
    let auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg);
    let ll = eta
        .iter()
        .zip(labels)
        .map(|(&e, &l)| log_loss(e, l))
        .sum::<f64>()
        / n as f64;
    let top = n.div_ceil(10);
    let top_pos = order.iter().rev().take(top).filter(|&&k| labels[k]).count() as f64;
    let lift = (top_pos / top as f64) / (pos / n as f64);
    Evaluation {
        auc,
        log_loss: ll,
        top_decile_lift: lift,
        auc_standard_error: auc_standard_error(auc, pos, neg),
    }
}

/// The calibration table of linear predictors `eta` against `labels`: per
/// tenth of the predicted probability (as in the horizontal model's
/// table), the customers in it, their mean prediction and their observed
/// conversion rate. Aggregates only, computed where the scores are.
pub fn calibration(eta: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut sums = [(0.0, 0.0, 0.0); TENTHS];
    for (&e, &l) in eta.iter().zip(labels) {
        let p = sigmoid(e);
        let t = ((p * TENTHS as f64) as usize).min(TENTHS - 1);
        sums[t].0 += 1.0;
        sums[t].1 += p;
        sums[t].2 += f64::from(u8::from(l));
    }
    sums.iter()
        .enumerate()
        .map(|(t, &(count, predicted, observed))| {
            let per = |v: f64| if count > 0.0 { v / count } else { 0.0 };
            CalibrationBin {
                lo: t as f64 / TENTHS as f64,
                hi: (t + 1) as f64 / TENTHS as f64,
                count,
                mean_predicted: per(predicted),
                observed_rate: per(observed),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auc_standard_error_matches_hanley_and_mcneil() {
        // A = 0.8 over 50 + 50 cases, worked by hand from their formula:
        // Q1 = 0.8/1.2, Q2 = 1.28/1.8, SE = sqrt((0.16 + 49(Q1 - 0.64) +
        // 49(Q2 - 0.64)) / 2500) = 0.04450.
        assert!((auc_standard_error(0.8, 50.0, 50.0) - 0.04450).abs() < 1e-5);
        // More cases, smaller error; a perfect or a useless split is finite.
        assert!(auc_standard_error(0.8, 500.0, 500.0) < auc_standard_error(0.8, 50.0, 50.0));
        assert!(auc_standard_error(1.0, 10.0, 10.0).is_finite());
        assert!(auc_standard_error(0.5, 10.0, 10.0) > 0.0);
    }

    #[test]
    fn calibration_bins_hold_every_customer_by_tenth_of_the_prediction() {
        // p = 0.05, 0.05, 0.5, 0.95: tenths 0, 0, 5, 9.
        let logit = |p: f64| (p / (1.0 - p)).ln();
        let eta = [logit(0.05), logit(0.05), logit(0.5), logit(0.95)];
        let bins = calibration(&eta, &[false, true, true, true]);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.count).sum::<f64>(), 4.0);
        assert_eq!((bins[0].count, bins[0].observed_rate), (2.0, 0.5));
        assert!((bins[0].mean_predicted - 0.05).abs() < 1e-12);
        assert_eq!(
            (bins[5].count, bins[9].count, bins[3].count),
            (1.0, 1.0, 0.0)
        );
    }
}
