//! Federated Newton: each step is one secure sum of [count, loss,
//! gradient, Hessian upper triangle] at a candidate β; a candidate that does
//! not lower the objective enough (Armijo) is halved toward the last
//! accepted β. The fit has converged when half the squared Newton decrement
//! is under the job's tolerance. Under differential privacy the step is
//! taken without a line search (each trial would cost budget, and the noisy
//! loss cannot rank close candidates); instead the Hessian gets a ridge the
//! size of its noise and no coefficient moves by more than 1 per step.

use fedseg_common::computation::newton;
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::propensity::{Design, MAX_LOSS};
use fedseg_common::proto::{self, propensity::Task};

use super::linalg::{cholesky_solve, damped_solve};
use super::{DIVERGENT, Fit, Fitted, PropensityError};

/// Largest change of any coefficient in one Newton step under differential
/// privacy, where no line search guards against a step the noise
/// inflated.
const MAX_PRIVATE_STEP: f64 = 1.0;

/// The released terms of one Newton round, with the noise they carry.
struct Terms {
    /// Count, loss, gradient and the full symmetric Hessian.
    sums: newton::Terms,
    /// Standard deviation of the release's noise on a count, under
    /// differential privacy.
    count_noise_sd: Option<f64>,
}

impl Fit<'_, '_, '_> {
    async fn newton_terms(
        &mut self,
        design: &Design,
        beta: &[f64],
        step: u32,
    ) -> Result<Terms, PropensityError> {
        let n = self.releases.customers;
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
        let released = self
            .releases
            .release(&format!("newton step {step}"), kind, ranges)
            .await?;
        Ok(Terms {
            sums: newton::decode(&released.sums, d)?,
            count_noise_sd: released.count_noise_sd,
        })
    }

    /// Under differential privacy, a ridge per design column that covers
    /// the noise in the last released Hessian (`terms`): a symmetric d×d
    /// matrix of independent entries of standard deviation σ has spectral
    /// norm about 2√d·σ, and a column's diagonal noise is its Hessian bound
    /// ¼·B_a² times the noise on a count.
    fn noise_ridge(&self, design: &Design, terms: &Terms) -> Option<Vec<f64>> {
        self.releases.privacy.as_ref()?;
        let sd = terms.count_noise_sd?;
        let d = design.columns();
        let spread = 2.0 * (d as f64).sqrt() * sd;
        Some(
            self.column_bounds(design)
                .iter()
                .map(|b| spread * 0.25 * b * b)
                .collect(),
        )
    }

    /// The Newton direction at `beta` from `terms` with the L2 penalty
    /// added (and, under differential privacy, the noise ridge and the step
    /// cap); the penalised gradient and the direction, or `None` when the
    /// Hessian is singular.
    fn direction(
        &self,
        design: &Design,
        beta: &[f64],
        terms: &Terms,
    ) -> (Vec<f64>, Option<Vec<f64>>) {
        let d = design.columns();
        let l2 = self.job.config.l2;
        let mut gradient = terms.sums.gradient.clone();
        let mut hessian = terms.sums.hessian.clone();
        for a in 1..d {
            gradient[a] += l2 * beta[a];
            hessian[a * d + a] += l2;
        }
        let minus: Vec<f64> = gradient.iter().map(|g| -g).collect();
        let solved = match self.noise_ridge(design, terms) {
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
        (gradient, solved)
    }

    /// Federated Newton with step halving.
    pub(super) async fn newton(
        &mut self,
        design: &Design,
        start: Vec<f64>,
    ) -> Result<Fitted, PropensityError> {
        let max_iterations = self.settings().max_iterations;
        let tolerance = self.settings().tolerance;
        let mut beta = start;
        let mut rounds = 1;
        let mut terms = self.newton_terms(design, &beta, rounds).await?;
        let mut objective = self.objective(terms.sums.loss, &beta);
        let stop = |beta: Vec<f64>, iterations, reason: Option<String>, objective, count| Fitted {
            beta,
            iterations,
            converged: reason.is_none(),
            reason,
            objective,
            training_count: count,
        };
        for iteration in 0..max_iterations {
            let (gradient, solved) = self.direction(design, &beta, &terms);
            let Some(direction) = solved else {
                return Ok(stop(
                    beta,
                    iteration,
                    Some("the Hessian is singular: a column is constant or the classes are separable; set l2 > 0".into()),
                    objective,
                    terms.sums.count,
                ));
            };
            let slope: f64 = gradient.iter().zip(&direction).map(|(g, x)| g * x).sum();
            if -slope / 2.0 <= tolerance {
                return Ok(stop(beta, iteration, None, objective, terms.sums.count));
            }
            let mut step = 1.0;
            // Under differential privacy every trial costs budget and the
            // summed loss is noisy: the full Newton step is taken.
            let private = self.releases.is_private();
            loop {
                let candidate: Vec<f64> = beta
                    .iter()
                    .zip(&direction)
                    .map(|(b, x)| b + step * x)
                    .collect();
                rounds += 1;
                let next = self.newton_terms(design, &candidate, rounds).await?;
                let next_objective = self.objective(next.sums.loss, &candidate);
                if private || next_objective <= objective + 1e-4 * step * slope {
                    beta = candidate;
                    terms = next;
                    objective = next_objective;
                    break;
                }
                step /= 2.0;
                if step < 1e-8 {
                    return Ok(stop(
                        beta,
                        iteration,
                        Some("the line search found no descent: the sums are too coarse for the tolerance".into()),
                        objective,
                        terms.sums.count,
                    ));
                }
            }
            if beta.iter().any(|b| b.abs() > DIVERGENT) {
                return Ok(stop(
                    beta,
                    iteration + 1,
                    Some(format!(
                        "coefficients passed {DIVERGENT} while the loss kept falling: the training data separate the classes, so without an L2 penalty the log-loss has no finite minimum; set l2 > 0"
                    )),
                    objective,
                    terms.sums.count,
                ));
            }
        }
        Ok(stop(
            beta,
            max_iterations,
            Some(format!(
                "no convergence within {max_iterations} Newton steps"
            )),
            objective,
            terms.sums.count,
        ))
    }
}
