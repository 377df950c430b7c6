//! The propensity model over secure sums (design.md, "Propensity model"):
//! logistic regression on the standardised features (and the segment),
//! fitted by federated Newton steps or, for models too large for a Hessian,
//! FedProx local epochs; then evaluated on the holdout split from secure
//! sums of score histograms only.
//!
//! Objective (contract): the sum over training customers of the log-loss
//! plus (l2 / 2)·‖β‖², the intercept not penalised. Each Newton step is one
//! secure sum of [count, loss, gradient, Hessian upper triangle] at a
//! candidate β; a candidate that does not lower the objective enough
//! (Armijo) is halved toward the last accepted β. The fit has converged
//! when half the squared Newton decrement is under the job's tolerance.
//! Under differential privacy the step is taken without a line search (each
//! trial would cost budget, and the noisy loss cannot rank close
//! candidates); instead the Hessian gets a ridge the size of its noise and
//! no coefficient moves by more than 1 per step.

use fedseg_common::features::{DIM, NAMES, Space};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::propensity::{Design, MAX_LOSS};
use fedseg_common::proto::{self, computation::Kind, propensity::Task};
use serde::Serialize;

use crate::config::{Job, Optimizer, PropensitySettings};
use crate::segmentation::{SegmentationError, Steps};

/// Coefficients beyond this (per standard deviation of a feature) mean the
/// data separate the classes: the objective has no finite minimum.
const DIVERGENT: f64 = 50.0;

/// Largest change of any coefficient in one Newton step under differential
/// privacy, where no line search guards against a step the noise
/// inflated.
const MAX_PRIVATE_STEP: f64 = 1.0;

/// One row of the calibration table.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationBin {
    /// Lower edge of predicted probability.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Holdout customers whose score falls in the bin.
    pub count: f64,
    /// Their mean predicted probability.
    pub mean_predicted: f64,
    /// Their observed conversion rate.
    pub observed_rate: f64,
}

/// Holdout evaluation, from secure sums only.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Holdout customers.
    pub count: f64,
    /// Area under the ROC curve from the binned scores.
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Predicted against observed, per tenth of the probability range.
    pub calibration: Vec<CalibrationBin>,
    /// The ROC curve: (false positive rate, true positive rate) from the
    /// highest score down.
    pub roc: Vec<[f64; 2]>,
    /// Score thresholds of the holdout's deciles (10%, 20%, …, 90%).
    pub decile_thresholds: Vec<f64>,
    /// Conversion rate of the top-scoring tenth over the holdout's rate.
    pub top_decile_lift: f64,
    /// Campaign metrics per segment (seed 002).
    pub campaign: Vec<CampaignRow>,
}

/// Campaign metrics of one segment on the holdout.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRow {
    /// Segment index (0 when the model has no segments).
    pub segment: usize,
    /// Holdout customers in it.
    pub size: f64,
    /// Their conversion rate.
    pub conversion_rate: f64,
    /// Share of them in the consortium's top-scoring decile.
    pub top_decile_share: f64,
    /// Conversion rate of those in the top decile.
    pub top_decile_conversion_rate: f64,
}

/// The propensity block of `result.json` (results contract).
#[derive(Debug, Clone, Serialize)]
pub struct PropensityResult {
    /// Columns after the intercept: feature names, then `segment <i>`.
    pub features: Vec<String>,
    /// The intercept.
    pub intercept: f64,
    /// One coefficient per entry of `features` (per standard deviation of
    /// a feature; log-odds against the first segment for a segment).
    pub coefficients: Vec<f64>,
    /// L2 penalty.
    pub l2: f64,
    /// Accepted Newton steps, or FedProx rounds.
    pub iterations: u32,
    /// Whether the fit met its stopping rule.
    pub converged: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
    /// `newton` or `fedprox`.
    pub optimizer: Optimizer,
    /// The objective at the final coefficients.
    pub objective: f64,
    /// Training customers.
    pub training_count: f64,
    /// Which of R, F, M, L, T enter the model (zero-variance ones do not).
    pub design_features: [bool; DIM],
    /// Segments with indicator columns (0: none).
    pub design_segments: u32,
    /// Holdout evaluation (absent when the job holds nothing out).
    pub evaluation: Option<Evaluation>,
}

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major n×n)
/// by Cholesky; `None` when `a` is not positive definite.
fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                // Not positive (or NaN): the matrix is not positive definite.
                let floor = 1e-12 * a[i * n + i].abs().max(1e-300);
                if d.is_nan() || d <= floor {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// The released terms of one Newton round.
struct Terms {
    count: f64,
    loss: f64,
    gradient: Vec<f64>,
    /// Full symmetric Hessian, row-major.
    hessian: Vec<f64>,
}

impl Terms {
    fn read(sums: &[f64], d: usize) -> Self {
        let mut hessian = vec![0.0; d * d];
        let mut k = 2 + d;
        for a in 0..d {
            for b in a..d {
                hessian[a * d + b] = sums[k];
                hessian[b * d + a] = sums[k];
                k += 1;
            }
        }
        Self {
            count: sums[0],
            loss: sums[1],
            gradient: sums[2..2 + d].to_vec(),
            hessian,
        }
    }
}

/// Runs one fit and its evaluation.
pub(crate) struct Fit<'s, 'e, 'a> {
    pub(crate) steps: &'s mut Steps<'e, 'a>,
    pub(crate) job: &'s Job,
    pub(crate) space: Space,
    pub(crate) segments: u32,
    /// The final centroids, clustering space, row-major.
    pub(crate) centroids: Vec<f64>,
}

impl Fit<'_, '_, '_> {
    fn settings(&self) -> &PropensitySettings {
        &self.job.config.propensity
    }

    fn design(&self) -> Design {
        Design {
            features: std::array::from_fn(|j| self.space.std[j] > 0.0),
            segments: if self.settings().segment_features {
                self.segments
            } else {
                0
            },
        }
    }

    /// Largest magnitude of each design column over any customer.
    fn column_bounds(&self, design: &Design) -> Vec<f64> {
        let z = self.space.z_bounds();
        let mut bounds = vec![1.0];
        bounds.extend((0..DIM).filter(|&j| design.features[j]).map(|j| z[j]));
        bounds.resize(design.columns(), 1.0);
        bounds
    }

    fn request(&self, design: &Design, beta: &[f64], task: Task) -> Kind {
        Kind::Propensity(proto::Propensity {
            as_of: self.steps.as_of.clone(),
            space: Some(self.steps.space(&self.space)),
            features: design.features.to_vec(),
            segments: design.segments,
            beta: beta.to_vec(),
            seed: self.job.config.seed,
            holdout_fraction: self.job.config.holdout_fraction,
            centroids: Some(proto::KMeansRun {
                k: self.segments,
                centroids: self.centroids.clone(),
            }),
            task: Some(task),
        })
    }

    fn objective(&self, loss: f64, beta: &[f64]) -> f64 {
        loss + self.job.config.l2 / 2.0 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    }

    async fn newton_terms(
        &mut self,
        design: &Design,
        beta: &[f64],
        step: u32,
    ) -> Result<Terms, SegmentationError> {
        let n = self.steps.customers;
        let d = design.columns();
        let bounds = self.column_bounds(design);
        let mut ranges = vec![
            ClipRange::new(0.0, n.max(1.0)),
            ClipRange::new(0.0, n * MAX_LOSS + 1.0),
        ];
        ranges.extend(
            bounds
                .iter()
                .map(|b| ClipRange::new(-b * n - 1.0, b * n + 1.0)),
        );
        for a in 0..d {
            for b in a..d {
                let top = bounds[a] * bounds[b] * n / 4.0 + 1.0;
                ranges.push(ClipRange::new(-top, top));
            }
        }
        let kind = self.request(design, beta, Task::Newton(proto::NewtonTerms {}));
        let sums = self
            .steps
            .sum(&format!("newton step {step}"), kind, ranges)
            .await?;
        Ok(Terms::read(&sums, d))
    }

    /// Under differential privacy, a ridge per design column that covers
    /// the noise in the last released Hessian: a symmetric d×d matrix of
    /// independent entries of standard deviation σ has spectral norm about
    /// 2√d·σ, and a column's diagonal noise is its Hessian bound
    /// ¼·B_a² times the noise on a count.
    fn noise_ridge(&self, design: &Design) -> Option<Vec<f64>> {
        self.steps.privacy.as_ref()?;
        let sd = self.steps.engine.rounds().last()?.count_noise_sd?;
        let d = design.columns();
        let spread = 2.0 * (d as f64).sqrt() * sd;
        Some(
            self.column_bounds(design)
                .iter()
                .map(|b| spread * 0.25 * b * b)
                .collect(),
        )
    }

    /// Federated Newton with step halving.
    async fn newton(
        &mut self,
        design: &Design,
        start: Vec<f64>,
    ) -> Result<(Vec<f64>, u32, bool, Option<String>, f64, f64), SegmentationError> {
        let d = design.columns();
        let l2 = self.job.config.l2;
        let max_iterations = self.settings().max_iterations;
        let tolerance = self.settings().tolerance;
        let mut beta = start;
        let mut rounds = 1;
        let mut terms = self.newton_terms(design, &beta, rounds).await?;
        let mut objective = self.objective(terms.loss, &beta);
        for iteration in 0..max_iterations {
            let mut gradient = terms.gradient.clone();
            let mut hessian = terms.hessian.clone();
            for a in 1..d {
                gradient[a] += l2 * beta[a];
                hessian[a * d + a] += l2;
            }
            let minus: Vec<f64> = gradient.iter().map(|g| -g).collect();
            let solved = match self.noise_ridge(design) {
                Some(ridge) => {
                    for a in 0..d {
                        hessian[a * d + a] += ridge[a];
                    }
                    damped_solve(&mut hessian, &minus).map(|mut x| {
                        let largest = x.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
                        if largest > MAX_PRIVATE_STEP {
                            x.iter_mut().for_each(|v| *v *= MAX_PRIVATE_STEP / largest);
                        }
                        x
                    })
                }
                None => cholesky_solve(&hessian, &minus),
            };
            let Some(direction) = solved else {
                return Ok((
                    beta,
                    iteration,
                    false,
                    Some("the Hessian is singular: a column is constant or the classes are separable; set l2 > 0".into()),
                    objective,
                    terms.count,
                ));
            };
            let slope: f64 = gradient.iter().zip(&direction).map(|(g, x)| g * x).sum();
            if -slope / 2.0 <= tolerance {
                return Ok((beta, iteration, true, None, objective, terms.count));
            }
            let mut step = 1.0;
            // Under differential privacy every trial costs budget and the
            // summed loss is noisy: the full Newton step is taken.
            let private = self.steps.privacy.is_some();
            loop {
                let candidate: Vec<f64> = beta
                    .iter()
                    .zip(&direction)
                    .map(|(b, x)| b + step * x)
                    .collect();
                rounds += 1;
                let next = self.newton_terms(design, &candidate, rounds).await?;
                let next_objective = self.objective(next.loss, &candidate);
                if private || next_objective <= objective + 1e-4 * step * slope {
                    beta = candidate;
                    terms = next;
                    objective = next_objective;
                    break;
                }
                step /= 2.0;
                if step < 1e-8 {
                    return Ok((
                        beta,
                        iteration,
                        false,
                        Some("the line search found no descent: the sums are too coarse for the tolerance".into()),
                        objective,
                        terms.count,
                    ));
                }
            }
            if beta.iter().any(|b| b.abs() > DIVERGENT) {
                return Ok((
                    beta,
                    iteration + 1,
                    false,
                    Some(format!(
                        "coefficients passed {DIVERGENT} while the loss kept falling: the training data separate the classes, so without an L2 penalty the log-loss has no finite minimum; set l2 > 0"
                    )),
                    objective,
                    terms.count,
                ));
            }
        }
        Ok((
            beta,
            max_iterations,
            false,
            Some(format!(
                "no convergence within {max_iterations} Newton steps"
            )),
            objective,
            terms.count,
        ))
    }

    /// FedProx: local epochs at every site, averaged by training count.
    async fn fedprox(
        &mut self,
        design: &Design,
        start: Vec<f64>,
        training: f64,
    ) -> Result<(Vec<f64>, u32, bool, Option<String>, f64, f64), SegmentationError> {
        let d = design.columns();
        let settings = self.settings().clone();
        let n = self.steps.customers;
        let mut beta = start;
        let mut objective = f64::INFINITY;
        let mut count = training;
        for round in 1..=settings.max_iterations {
            let mut ranges = vec![ClipRange::new(0.0, n.max(1.0))];
            ranges
                .extend((0..d).map(|_| ClipRange::new(-DIVERGENT * 4.0 * n, DIVERGENT * 4.0 * n)));
            ranges.push(ClipRange::new(0.0, n * MAX_LOSS + 1.0));
            let kind = self.request(
                design,
                &beta,
                Task::LocalEpochs(proto::LocalEpochs {
                    epochs: settings.local_epochs,
                    learning_rate: settings.learning_rate,
                    mu: settings.mu,
                    l2_per_customer: self.job.config.l2 / training.max(1.0),
                }),
            );
            let sums = self
                .steps
                .sum(&format!("fedprox round {round}"), kind, ranges)
                .await?;
            count = sums[0];
            objective = self.objective(sums[1 + d], &beta);
            let next: Vec<f64> = sums[1..1 + d].iter().map(|s| s / count.max(1.0)).collect();
            let shift = next
                .iter()
                .zip(&beta)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            beta = next;
            if shift <= settings.tolerance {
                return Ok((beta, round, true, None, objective, count));
            }
        }
        Ok((
            beta,
            settings.max_iterations,
            false,
            Some(format!(
                "no convergence within {} FedProx rounds",
                settings.max_iterations
            )),
            objective,
            count,
        ))
    }

    /// Fits the model and evaluates it on the holdout.
    pub(crate) async fn run(
        &mut self,
        converted: f64,
        customers: f64,
    ) -> Result<PropensityResult, SegmentationError> {
        let design = self.design();
        let d = design.columns();
        // Start from the base rate, all slopes 0.
        let rate = ((converted + 0.5) / (customers + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        let mut start = vec![0.0; d];
        start[0] = (rate / (1.0 - rate)).ln();
        let training = customers * (1.0 - self.job.config.holdout_fraction);
        let (beta, iterations, converged, reason, objective, training_count) =
            match self.settings().optimizer {
                Optimizer::Newton => self.newton(&design, start).await?,
                Optimizer::Fedprox => self.fedprox(&design, start, training).await?,
            };
        let evaluation = if self.job.config.holdout_fraction > 0.0 {
            Some(self.evaluate(&design, &beta).await?)
        } else {
            None
        };
        let names = design.names(&NAMES);
        Ok(PropensityResult {
            features: names[1..].to_vec(),
            intercept: beta[0],
            coefficients: beta[1..].to_vec(),
            l2: self.job.config.l2,
            iterations,
            converged,
            reason,
            optimizer: self.settings().optimizer,
            objective,
            training_count,
            design_features: design.features,
            design_segments: design.segments,
            evaluation,
        })
    }

    async fn evaluate(
        &mut self,
        design: &Design,
        beta: &[f64],
    ) -> Result<Evaluation, SegmentationError> {
        let n = self.steps.customers;
        let bins = self.settings().score_bins as usize;
        let mut ranges = vec![
            ClipRange::new(0.0, n.max(1.0)),
            ClipRange::new(0.0, n * MAX_LOSS + 1.0),
        ];
        ranges.extend(std::iter::repeat_n(
            ClipRange::new(0.0, n.max(1.0)),
            2 * bins + 30,
        ));
        let kind = self.request(
            design,
            beta,
            Task::Evaluation(proto::HoldoutEvaluation { bins: bins as u32 }),
        );
        let sums = self.steps.sum("holdout evaluation", kind, ranges).await?;
        let count = sums[0];
        // Noise can make a count negative; none is.
        let histogram = |range: std::ops::Range<usize>| -> Vec<f64> {
            sums[range].iter().map(|c| c.max(0.0)).collect()
        };
        let positives = &histogram(2..2 + bins);
        let negatives = &histogram(2 + bins..2 + 2 * bins);
        let (auc, roc) = binned_roc(positives, negatives);
        let calibration = (0..10)
            .map(|t| {
                let slot = &sums[2 + 2 * bins + 3 * t..][..3];
                let per = |v: f64| if slot[0] > 0.0 { v / slot[0] } else { 0.0 };
                CalibrationBin {
                    lo: t as f64 / 10.0,
                    hi: (t + 1) as f64 / 10.0,
                    count: slot[0],
                    mean_predicted: per(slot[1]),
                    observed_rate: per(slot[2]),
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
        let ranges = vec![ClipRange::new(0.0, n.max(1.0)); 4 * groups];
        let kind = self.request(design, beta, Task::Campaign(proto::Campaign { threshold }));
        let campaign_sums = self.steps.sum("campaign metrics", kind, ranges).await?;
        let per = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let campaign: Vec<CampaignRow> = campaign_sums
            .chunks(4)
            .enumerate()
            .map(|(segment, s)| CampaignRow {
                segment,
                size: s[0],
                conversion_rate: per(s[1], s[0]),
                top_decile_share: per(s[2], s[0]),
                top_decile_conversion_rate: per(s[3], s[2]),
            })
            .collect();
        let totals: [f64; 4] =
            std::array::from_fn(|i| campaign_sums.iter().skip(i).step_by(4).sum());
        let top_decile_lift = per(per(totals[3], totals[2]), per(totals[1], totals[0]));
        Ok(Evaluation {
            count,
            auc,
            log_loss: per(sums[1], count),
            calibration,
            roc,
            decile_thresholds,
            top_decile_lift,
            campaign,
        })
    }
}

/// Solves `a · x = b` after adding the smallest ridge λ·I (λ growing ten
/// times per try from 10⁻⁶ of the largest diagonal entry) that makes `a`
/// positive definite: noise can leave a summed Hessian indefinite, and the
/// ridge is post-processing of released sums.
fn damped_solve(a: &mut [f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let largest = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max);
    let mut added = 0.0;
    let mut ridge = 1e-6 * largest.max(1e-12);
    for _ in 0..16 {
        if let Some(x) = cholesky_solve(a, b) {
            return Some(x);
        }
        for i in 0..n {
            a[i * n + i] += ridge - added;
        }
        added = ridge;
        ridge *= 10.0;
    }
    None
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
    fn a_damped_solve_makes_an_indefinite_matrix_usable() {
        // Eigenvalues 3 and −1: Cholesky refuses, the ridge fixes it.
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_solve(&a, &[1.0, 0.0]).is_none());
        let x = damped_solve(&mut a, &[1.0, 0.0]).unwrap();
        // The ridge is the first of the ladder 10⁻⁶, 10⁻⁵, … above 1 (the
        // negative eigenvalue's size); (a + λI) x = b, checked directly.
        let r = [a[0] * x[0] + a[1] * x[1], a[2] * x[0] + a[3] * x[1]];
        assert!((r[0] - 1.0).abs() < 1e-9 && r[1].abs() < 1e-9, "{r:?}");
        assert!(a[0] > 2.0);
        // A positive definite matrix is left alone.
        let mut b = vec![2.0, 0.0, 0.0, 4.0];
        let x = damped_solve(&mut b, &[2.0, 4.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
        assert_eq!(b, vec![2.0, 0.0, 0.0, 4.0]);
    }

    #[test]
    fn cholesky_solves_and_refuses_what_is_not_positive_definite() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        let solved = cholesky_solve(&a, &b).unwrap();
        for (s, e) in solved.iter().zip(x) {
            assert!((s - e).abs() < 1e-12);
        }
        assert!(cholesky_solve(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0]).is_none());
        assert!(cholesky_solve(&[-1.0], &[1.0]).is_none());
    }

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
