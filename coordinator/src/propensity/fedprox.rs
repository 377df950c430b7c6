//! FedProx: each round, every site runs local full-batch gradient epochs
//! from the current β with a proximal term, and the sites' results are
//! averaged by training count (one secure sum per round). For models too
//! large for a Hessian.

use fedseg_common::computation::local_epochs;
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::propensity::{Design, MAX_LOSS};
use fedseg_common::proto::{self, propensity::Task};

use super::{DIVERGENT, Fit, Fitted, PropensityError};

impl Fit<'_, '_, '_> {
    /// FedProx: local epochs at every site, averaged by training count.
    pub(super) async fn fedprox(
        &mut self,
        design: &Design,
        start: Vec<f64>,
        training: f64,
    ) -> Result<Fitted, PropensityError> {
        let d = design.columns();
        let settings = self.settings().clone();
        let n = self.releases.customers;
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
                .releases
                .sum(&format!("fedprox round {round}"), kind, ranges)
                .await?;
            let update = local_epochs::decode(&sums, d)?;
            count = update.count;
            objective = self.objective(update.loss, &beta);
            let next: Vec<f64> = update.weighted.iter().map(|s| s / count.max(1.0)).collect();
            let shift = next
                .iter()
                .zip(&beta)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            beta = next;
            if shift <= settings.tolerance {
                return Ok(Fitted {
                    beta,
                    iterations: round,
                    converged: true,
                    reason: None,
                    objective,
                    training_count: count,
                });
            }
        }
        Ok(Fitted {
            beta,
            iterations: settings.max_iterations,
            converged: false,
            reason: Some(format!(
                "no convergence within {} FedProx rounds",
                settings.max_iterations
            )),
            objective,
            training_count: count,
        })
    }
}
