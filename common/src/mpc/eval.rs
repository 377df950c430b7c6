//! Holdout metrics the bank computes on its customers' joint scores (which
//! it may learn at the end) and its own labels: nothing per customer leaves
//! the bank; only these three numbers are released.

use crate::propensity::log_loss;

/// The released evaluation of a model on the holdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Conversion rate of the top 10% by score over the overall rate.
    pub top_decile_lift: f64,
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
    }
}
