//! Differential privacy primitives for distributed noise (design.md,
//! "Differential privacy"): an exact sampler of the discrete Gaussian
//! (Canonne, Kamath, Steinke, NeurIPS 2020, Algorithms 1–3: only integer
//! arithmetic and uniform integers, no floating point that could leak), the
//! zCDP cost of a release whose noise is a sum of participants' discrete
//! Gaussians (Kairouz, Liu, Steinke, ICML 2021, Theorem 1), composition, and
//! the tight conversion from ρ-zCDP to (ε, δ)-DP (Canonne, Kamath, Steinke
//! 2020, Proposition 12).

use rand::{Rng, RngExt};
use thiserror::Error;

/// Why noise cannot be drawn.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpError {
    /// The variance is not a positive rational with small enough terms for
    /// exact 128-bit arithmetic.
    #[error("the variance {num}/{den} is out of the sampler's exact range")]
    Variance {
        /// Numerator.
        num: u64,
        /// Denominator.
        den: u64,
    },
}

/// True with probability `num / den` (`num <= den`), from one uniform draw.
fn bernoulli_ratio(rng: &mut impl Rng, num: u128, den: u128) -> bool {
    rng.random_range(0..den) < num
}

/// True with probability exp(−num/den), exactly (CKS20 Algorithm 1).
fn bernoulli_exp(rng: &mut impl Rng, num: u128, den: u128) -> bool {
    if num <= den {
        // exp(−γ) for γ ≤ 1: the parity of the first K with A_K = 0, where
        // A_k ~ Bernoulli(γ / k).
        let mut k: u128 = 1;
        while bernoulli_ratio(rng, num, den * k) {
            k += 1;
        }
        k % 2 == 1
    } else {
        for _ in 0..num / den {
            if !bernoulli_exp(rng, 1, 1) {
                return false;
            }
        }
        bernoulli_exp(rng, num % den, den)
    }
}

/// Discrete Laplace with scale `t`: P(x) ∝ exp(−|x| / t) (CKS20 Algorithm 2).
fn discrete_laplace(rng: &mut impl Rng, t: u128) -> i128 {
    loop {
        let u = rng.random_range(0..t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp(rng, 1, 1) {
            v += 1;
        }
        let x = u + t * v;
        let negative = rng.random::<bool>();
        if negative && x == 0 {
            continue;
        }
        return if negative { -(x as i128) } else { x as i128 };
    }
}

/// Largest variance numerator or denominator accepted: keeps every
/// intermediate of the exact arithmetic within 128 bits.
const MAX_TERM: u64 = 1 << 40;

/// Samples the discrete Gaussian N_Z(0, σ²) with σ² = `num` / `den`
/// exactly: P(x) ∝ exp(−x² / 2σ²) over the integers (CKS20 Algorithm 3).
pub fn discrete_gaussian(rng: &mut impl Rng, num: u64, den: u64) -> Result<i64, DpError> {
    if num == 0 || den == 0 || num > MAX_TERM || den > MAX_TERM {
        return Err(DpError::Variance { num, den });
    }
    let (num, den) = (num as u128, den as u128);
    // t = ⌊σ⌋ + 1, and ⌊√x⌋ = ⌊√⌊x⌋⌋.
    let t: u128 = (num / den).isqrt() + 1;
    loop {
        let y = discrete_laplace(rng, t);
        let magnitude = y.unsigned_abs();
        // Accept with exp(−(|y| − σ²/t)² / 2σ²) = exp(−(|y|·t·den − num)² / (2·num·den·t²)).
        let gap = (magnitude * t * den).abs_diff(num);
        let (Some(top), Some(bottom)) = (gap.checked_mul(gap), (2 * num * den).checked_mul(t * t))
        else {
            // A draw this far out has acceptance probability 0 in f64 terms;
            // it cannot be evaluated exactly, so draw again (exp(−huge)).
            continue;
        };
        if bernoulli_exp(rng, top, bottom) {
            return Ok(y as i64);
        }
    }
}

/// Adds independent discrete Gaussian noise of variance `num`/`den` (in
/// fixed-point steps) to every encoded word, before masking; returns the
/// noise added, which the caller must not keep or log outside tests.
pub fn add_noise(
    words: &mut [u64],
    rng: &mut impl Rng,
    num: u64,
    den: u64,
) -> Result<Vec<i64>, DpError> {
    words
        .iter_mut()
        .map(|w| {
            let noise = discrete_gaussian(rng, num, den)?;
            *w = w.wrapping_add(noise as u64);
            Ok(noise)
        })
        .collect()
}

/// The zCDP parameter ρ of one release with L2 sensitivity `sensitivity`
/// whose noise is the sum of `n` independent discrete Gaussians of variance
/// `sigma2` each, on `dimension` coordinates (KLS21 Theorem 1):
/// ε = min(√(Δ²/(nσ²) + τ·d/2), Δ/(√n·σ) + τ·√d), ρ = ε²/2, with
/// τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)).
pub fn distributed_rho(sensitivity: f64, sigma2: f64, n: u32, dimension: usize) -> f64 {
    let tau: f64 = 10.0
        * (1..n)
            .map(|k| {
                let k = k as f64;
                (-2.0 * std::f64::consts::PI.powi(2) * sigma2 * k / (k + 1.0)).exp()
            })
            .sum::<f64>();
    let total = n as f64 * sigma2;
    let d = dimension as f64;
    let first = (sensitivity * sensitivity / total + tau * d / 2.0).sqrt();
    let second = sensitivity / total.sqrt() + tau * d.sqrt();
    let epsilon = first.min(second);
    epsilon * epsilon / 2.0
}

/// The tight δ of a ρ-zCDP mechanism at `epsilon` (CKS20 Proposition 12):
/// inf over α > 1 of exp((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α, evaluated in
/// logs, minimised by golden-section search over ln(α − 1) (the expression
/// is unimodal there).
pub fn delta_for(rho: f64, epsilon: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    let log_delta = |log_a1: f64| -> f64 {
        let a = 1.0 + log_a1.exp();
        (a - 1.0) * (a * rho - epsilon) - (a - 1.0).ln() + a * (1.0 - 1.0 / a).ln()
    };
    let (mut lo, mut hi) = (-30.0f64, 30.0f64);
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let m1 = hi - golden * (hi - lo);
        let m2 = lo + golden * (hi - lo);
        if log_delta(m1) < log_delta(m2) {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    log_delta((lo + hi) / 2.0).exp().min(1.0)
}

/// The smallest ε at which a ρ-zCDP mechanism is (ε, δ)-DP, by bisection on
/// [`delta_for`] (decreasing in ε).
pub fn epsilon_for(rho: f64, delta: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    // The classic bound ρ + 2√(ρ ln 1/δ) is always enough.
    let (mut lo, mut hi) = (0.0, rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt());
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if delta_for(rho, mid) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The largest ρ whose tight conversion gives at most `epsilon` at `delta`,
/// by bisection on [`epsilon_for`] (increasing in ρ).
pub fn rho_for(epsilon: f64, delta: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, epsilon.max(1e-300));
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if epsilon_for(mid, delta) > epsilon {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

/// Composition of a job's releases: zCDP adds up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accountant {
    /// ρ of each release, in order.
    pub releases: Vec<f64>,
}

impl Accountant {
    /// Records one release.
    pub fn spend(&mut self, rho: f64) {
        self.releases.push(rho);
    }

    /// Total ρ so far.
    pub fn rho(&self) -> f64 {
        self.releases.iter().sum()
    }

    /// The job's (ε, δ) so far at `delta`.
    pub fn epsilon(&self, delta: f64) -> f64 {
        epsilon_for(self.rho(), delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    #[test]
    fn bernoulli_exp_has_the_right_frequency() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for (num, den) in [(1u128, 2u128), (3, 1), (7, 3)] {
            let n = 100_000;
            let hits = (0..n).filter(|_| bernoulli_exp(&mut rng, num, den)).count() as f64;
            let p = (-(num as f64) / den as f64).exp();
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (hits / n as f64 - p).abs() < 5.0 * sd,
                "{num}/{den}: {}",
                hits / n as f64
            );
        }
    }

    #[test]
    fn discrete_gaussian_matches_its_distribution() {
        // σ² = 9/2: exact pmf ∝ exp(−x²/9).
        let (num, den) = (9u64, 2u64);
        let sigma2 = num as f64 / den as f64;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = 200_000;
        let draws: Vec<i64> = (0..n)
            .map(|_| discrete_gaussian(&mut rng, num, den).unwrap())
            .collect();
        let weight = |x: i64| (-(x * x) as f64 / (2.0 * sigma2)).exp();
        let z: f64 = (-60..=60).map(weight).sum();
        let exact_var: f64 = (-60..=60).map(|x| (x * x) as f64 * weight(x)).sum::<f64>() / z;
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        let var = draws
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(
            mean.abs() < 5.0 * (exact_var / n as f64).sqrt(),
            "mean {mean}"
        );
        // Var of the sample variance ≈ (μ4 − σ⁴)/n; μ4 ≈ 3σ⁴.
        let sd_var = (2.0 * exact_var * exact_var / n as f64).sqrt();
        assert!(
            (var - exact_var).abs() < 5.0 * sd_var,
            "var {var} vs {exact_var}"
        );
        // Tail: P(|X| ≥ 7) against the exact pmf.
        let tail_exact: f64 = (-60..=60)
            .filter(|x: &i64| x.abs() >= 7)
            .map(weight)
            .sum::<f64>()
            / z;
        let tail = draws.iter().filter(|x| x.abs() >= 7).count() as f64 / n as f64;
        let sd_tail = (tail_exact * (1.0 - tail_exact) / n as f64).sqrt();
        assert!(
            (tail - tail_exact).abs() < 5.0 * sd_tail,
            "tail {tail} vs {tail_exact}"
        );
        // Chi-square over the central values against the exact pmf.
        let mut chi2 = 0.0;
        for x in -6..=6 {
            let expected = n as f64 * weight(x) / z;
            let observed = draws.iter().filter(|&&d| d == x).count() as f64;
            chi2 += (observed - expected).powi(2) / expected;
        }
        // 13 cells: the 0.999 quantile of χ²(12) is 32.9.
        assert!(chi2 < 32.9, "chi-square {chi2}");
    }

    #[test]
    fn out_of_range_variances_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        assert!(discrete_gaussian(&mut rng, 0, 1).is_err());
        assert!(discrete_gaussian(&mut rng, 1, 0).is_err());
        assert!(discrete_gaussian(&mut rng, 1 << 41, 1).is_err());
        // A large σ still samples.
        assert!(discrete_gaussian(&mut rng, 1 << 40, 1).is_ok());
    }

    #[test]
    fn accountant_matches_reference_values() {
        // Gaussian mechanism, one party: ρ = Δ²/(2σ²) (Bun & Steinke 2016);
        // with σ = 4 the discrete correction τ is 0 for n = 1.
        assert!((distributed_rho(1.0, 16.0, 1, 10) - 1.0 / 32.0).abs() < 1e-15);
        // n = 10 parties of σ² = 4: total variance 40, τ ≈ 10·9·e^{−2π²·4·k/(k+1)}
        // is below 1e-30, so ρ = 1/(2·40) to double precision.
        assert!((distributed_rho(1.0, 4.0, 10, 100) - 1.0 / 80.0).abs() < 1e-15);
        // Small σ² makes τ matter: σ² = 0.05, n = 3, d = 1, Δ = 1.
        // τ = 10·(e^{−2π²·0.05/2} + e^{−2π²·0.05·2/3}) = 10·(0.6104980 + 0.5178997)
        //   = 11.283978 (values from Python's math.exp); the first branch
        // √(Δ²/(nσ²) + τd/2) = √(6.66667 + 5.64199) = 3.50837 is the smaller.
        let rho = distributed_rho(1.0, 0.05, 3, 1);
        let expected_eps = (1.0f64 / 0.15 + 11.283_978 / 2.0)
            .sqrt()
            .min(1.0 / 0.15f64.sqrt() + 11.283_978);
        assert!(((2.0 * rho).sqrt() - expected_eps).abs() < 1e-4, "{rho}");
        // Tight conversion (CKS20 Prop. 12). References computed
        // independently in Python by a grid over α in (1, 200] with step
        // 1e-4 and bisection on ε: ρ = 0.5, δ = 1e-5 → ε = 4.7284; ρ = 0.1,
        // δ = 1e-6 → ε = 2.1419; ρ = 1/32, δ = 1e-5 → ε = 1.0123.
        for (rho, delta, eps) in [
            (0.5, 1e-5, 4.7284),
            (0.1, 1e-6, 2.1419),
            (1.0 / 32.0, 1e-5, 1.0123),
        ] {
            let got = epsilon_for(rho, delta);
            assert!(
                (got - eps).abs() < 2e-3,
                "ρ {rho}, δ {delta}: {got} vs {eps}"
            );
            // Never worse than the classic conversion.
            assert!(got <= rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt());
        }
        // The inverse: the budget of ε at δ, converted back.
        for (eps, delta) in [(1.0, 1e-6), (4.7284, 1e-5), (0.5, 1e-5)] {
            let rho = rho_for(eps, delta);
            assert!((epsilon_for(rho, delta) - eps).abs() < 1e-6, "{eps}: {rho}");
        }
        assert!((rho_for(4.7284, 1e-5) - 0.5).abs() < 1e-3);
        let mut accountant = Accountant::default();
        accountant.spend(0.25);
        accountant.spend(0.25);
        assert_eq!(accountant.rho(), 0.5);
        assert!((accountant.epsilon(1e-5) - 4.7284).abs() < 2e-3);
    }
}
