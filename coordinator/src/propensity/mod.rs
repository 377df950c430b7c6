//! The propensity model over secure sums (design.md, "Propensity model"):
//! logistic regression on the standardised features (and the segment),
//! fitted by federated Newton steps ([`newton`]) or, for models too large
//! for a Hessian, FedProx local epochs ([`fedprox`]); then evaluated on the
//! holdout split from secure sums of score histograms only
//! ([`evaluation`]).
//!
//! Objective (contract): the sum over training customers of the log-loss
//! plus (l2 / 2)·‖β‖², the intercept not penalised.

pub mod evaluation;
mod fedprox;
mod linalg;
mod newton;

use fedseg_common::computation::LayoutError;
use fedseg_common::features::{DIM, NAMES, Space};
use fedseg_common::propensity::Design;
use fedseg_common::proto::{self, computation::Kind, propensity::Task};
use serde::Serialize;
use thiserror::Error;

use crate::config::{Job, Optimizer, PropensitySettings};
use crate::release::{ReleaseError, Releases, wire_space};

pub use evaluation::binned_roc;

/// Why the propensity model could not be fitted or evaluated.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PropensityError {
    /// A sum was not released.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A released sum does not fit its computation's layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Coefficients beyond this (per standard deviation of a feature) mean the
/// data separate the classes: the objective has no finite minimum.
const DIVERGENT: f64 = 50.0;

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

/// Where a fit stopped.
#[derive(Debug, Clone)]
struct Fitted {
    /// The coefficients, intercept first.
    beta: Vec<f64>,
    /// Accepted Newton steps, or FedProx rounds.
    iterations: u32,
    /// Whether the stopping rule was met.
    converged: bool,
    /// Why not, when it was not.
    reason: Option<String>,
    /// The objective at `beta`.
    objective: f64,
    /// Training customers the last sum covered.
    training_count: f64,
}

/// Fits the propensity model of `job` in the clustering `space`, with
/// `segments` indicator columns for the final `centroids` (clustering
/// space, row-major), starting from the base rate `converted / customers`;
/// then evaluates it on the holdout.
pub async fn fit(
    releases: &mut Releases<'_, '_>,
    job: &Job,
    space: Space,
    segments: u32,
    centroids: Vec<f64>,
    (converted, customers): (f64, f64),
) -> Result<PropensityResult, PropensityError> {
    let mut fit = Fit {
        releases,
        job,
        space,
        segments,
        centroids,
    };
    fit.run(converted, customers).await
}

/// Runs one fit and its evaluation.
struct Fit<'s, 'e, 'a> {
    releases: &'s mut Releases<'e, 'a>,
    job: &'s Job,
    space: Space,
    segments: u32,
    /// The final centroids, clustering space, row-major.
    centroids: Vec<f64>,
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
            as_of: self.releases.as_of.clone(),
            space: Some(wire_space(&self.space)),
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

    /// Fits the model and evaluates it on the holdout.
    async fn run(
        &mut self,
        converted: f64,
        customers: f64,
    ) -> Result<PropensityResult, PropensityError> {
        let design = self.design();
        let d = design.columns();
        // Start from the base rate, all slopes 0.
        let rate = ((converted + 0.5) / (customers + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        let mut start = vec![0.0; d];
        start[0] = (rate / (1.0 - rate)).ln();
        let training = customers * (1.0 - self.job.config.holdout_fraction);
        let fitted = match self.settings().optimizer {
            Optimizer::Newton => self.newton(&design, start).await?,
            Optimizer::Fedprox => self.fedprox(&design, start, training).await?,
        };
        let evaluation = if self.job.config.holdout_fraction > 0.0 {
            Some(self.evaluate(&design, &fitted.beta).await?)
        } else {
            None
        };
        let names = design.names(&NAMES);
        Ok(PropensityResult {
            features: names[1..].to_vec(),
            intercept: fitted.beta[0],
            coefficients: fitted.beta[1..].to_vec(),
            l2: self.job.config.l2,
            iterations: fitted.iterations,
            converged: fitted.converged,
            reason: fitted.reason,
            optimizer: self.settings().optimizer,
            objective: fitted.objective,
            training_count: fitted.training_count,
            design_features: design.features,
            design_segments: design.segments,
            evaluation,
        })
    }
}
