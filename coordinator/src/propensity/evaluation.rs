//! The holdout evaluation, from secure sums only: score histograms by label
//! give the binned ROC and AUC, the log-loss and a calibration table per
//! tenth of the score; the decile thresholds then give the campaign
//! metrics per segment (seed 002) and the top-decile lift.

use fedseg_common::computation::{campaign, evaluation};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::propensity::{Design, MAX_LOSS};
use fedseg_common::proto::{self, propensity::Task};

use super::{CalibrationBin, CampaignRow, Evaluation, Fit, PropensityError};

impl Fit<'_, '_, '_> {
    /// Evaluates `beta` on the holdout: score histograms by label, the
    /// calibration table, then the campaign metrics at the top decile.
    pub(super) async fn evaluate(
        &mut self,
        design: &Design,
        beta: &[f64],
    ) -> Result<Evaluation, PropensityError> {
        let n = self.releases.customers;
        let bins = self.settings().score_bins as usize;
        let mut ranges = vec![
            ClipRange::new(0.0, n.max(1.0)),
            ClipRange::new(0.0, n * MAX_LOSS + 1.0),
        ];
        ranges.extend(std::iter::repeat_n(
            ClipRange::new(0.0, n.max(1.0)),
            evaluation::length(bins) - 2,
        ));
        let kind = self.request(
            design,
            beta,
            Task::Evaluation(proto::HoldoutEvaluation { bins: bins as u32 }),
        );
        let sums = self
            .releases
            .sum("holdout evaluation", kind, ranges)
            .await?;
        let released = evaluation::decode(&sums, bins)?;
        let count = released.count;
        // Noise can make a count negative; none is.
        let histogram =
            |counts: &[f64]| -> Vec<f64> { counts.iter().map(|c| c.max(0.0)).collect() };
        let positives = &histogram(&released.positives);
        let negatives = &histogram(&released.negatives);
        let (auc, roc) = binned_roc(positives, negatives);
        let tenths = evaluation::TENTHS;
        let calibration = (0..tenths)
            .map(|t| {
                let slot = released.calibration[t];
                let per = |v: f64| {
                    if slot.count > 0.0 {
                        v / slot.count
                    } else {
                        0.0
                    }
                };
                CalibrationBin {
                    lo: t as f64 / tenths as f64,
                    hi: (t + 1) as f64 / tenths as f64,
                    count: slot.count,
                    mean_predicted: per(slot.predicted),
                    observed_rate: per(slot.observed),
                }
            })
            .collect();
        let all: Vec<f64> = positives
            .iter()
            .zip(negatives)
            .map(|(p, q)| p + q)
            .collect();
        let decile_thresholds: Vec<f64> = (1..10)
            .map(|q| score_quantile(&all, q as f64 / 10.0))
            .collect();
        let threshold = decile_thresholds[8];
        let groups = (design.segments as usize).max(1);
        let ranges = vec![ClipRange::new(0.0, n.max(1.0)); campaign::length(groups)];
        let kind = self.request(design, beta, Task::Campaign(proto::Campaign { threshold }));
        let sums = self.releases.sum("campaign metrics", kind, ranges).await?;
        let groups = campaign::decode(&sums, groups)?;
        let per = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let campaign: Vec<CampaignRow> = groups
            .iter()
            .enumerate()
            .map(|(segment, g)| CampaignRow {
                segment,
                size: g.size,
                conversion_rate: per(g.converted, g.size),
                top_decile_share: per(g.top, g.size),
                top_decile_conversion_rate: per(g.top_converted, g.top),
            })
            .collect();
        let total =
            |field: fn(&campaign::GroupCounts) -> f64| -> f64 { groups.iter().map(field).sum() };
        let top_decile_lift = per(
            per(total(|g| g.top_converted), total(|g| g.top)),
            per(total(|g| g.converted), total(|g| g.size)),
        );
        Ok(Evaluation {
            count,
            auc,
            log_loss: per(released.loss, count),
            calibration,
            roc,
            decile_thresholds,
            top_decile_lift,
            campaign,
        })
    }
}

/// AUC and ROC points from score histograms of positives and negatives over
/// equal-width bins of [0, 1]: the chance that a random positive outscores
/// a random negative, a tie within a bin counting one half.
pub fn binned_roc(positives: &[f64], negatives: &[f64]) -> (f64, Vec<[f64; 2]>) {
    let (p_total, n_total): (f64, f64) = (positives.iter().sum(), negatives.iter().sum());
    if p_total <= 0.0 || n_total <= 0.0 {
        return (f64::NAN, vec![]);
    }
    let mut above = 0.0;
    let mut negatives_above = 0.0;
    let mut area = 0.0;
    let mut roc = vec![[0.0, 0.0]];
    for b in (0..positives.len()).rev() {
        area += negatives[b] * (above + positives[b] / 2.0);
        above += positives[b];
        negatives_above += negatives[b];
        if positives[b] + negatives[b] > 0.0 {
            roc.push([negatives_above / n_total, above / p_total]);
        }
    }
    (area / (p_total * n_total), roc)
}

/// The score below which a fraction `q` of the histogram lies, interpolated
/// inside the bin.
fn score_quantile(counts: &[f64], q: f64) -> f64 {
    let total: f64 = counts.iter().sum();
    let width = 1.0 / counts.len() as f64;
    let target = q * total;
    let mut below = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0.0 && below + c >= target {
            return width * (i as f64 + (target - below) / c);
        }
        below += c;
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binned_auc_counts_ties_as_halves() {
        // Positives in bins 2 and 3, negatives in 0 and 2: of 2·2 pairs, 3
        // are won and the tie in bin 2 counts a half.
        let (auc, roc) = binned_roc(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 1.0, 0.0]);
        assert!((auc - 3.5 / 4.0).abs() < 1e-12);
        assert_eq!(roc.first(), Some(&[0.0, 0.0]));
        assert_eq!(roc.last(), Some(&[1.0, 1.0]));
        let (perfect, _) = binned_roc(&[0.0, 3.0], &[5.0, 0.0]);
        assert_eq!(perfect, 1.0);
    }

    #[test]
    fn score_quantiles_interpolate() {
        let counts = [0.0, 10.0, 10.0, 0.0];
        assert!((score_quantile(&counts, 0.5) - 0.5).abs() < 1e-12);
        assert!((score_quantile(&counts, 0.25) - 0.375).abs() < 1e-12);
    }
}
