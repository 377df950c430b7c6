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
use thiserror::Error;

use crate::config::{Job, Optimizer, PropensitySettings};
use crate::release::{ReleaseError, Releases, wire_space};

pub use evaluation::binned_roc;
pub use fedseg_common::result::{CalibrationBin, CampaignRow, Evaluation, PropensityResult};

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
