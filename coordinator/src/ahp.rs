//! Analytic Hierarchy Process weights for the five RFMLT features: the
//! principal eigenvector of a reciprocal pairwise comparison matrix, and
//! Saaty's consistency ratio. A job whose judgments are inconsistent
//! (ratio above 0.1) is refused rather than clustered on arbitrary weights.

use thiserror::Error;

/// The default judgments, upper triangle in row order (R:F, R:M, R:L, R:T,
/// F:M, F:L, F:T, M:L, M:T, L:T) on Saaty's 1–9 scale. They reproduce the
/// weights of seed 001 (R 43.8%, F 23.7%, M 18.6%, L 9.1%, T 4.8%) within
/// 0.2 points, at a consistency ratio of 0.010.
pub use fedseg_common::job::DEFAULT_AHP_JUDGMENTS as DEFAULT_JUDGMENTS;

/// Saaty's random consistency index for matrices of order 1 to 10.
const RANDOM_INDEX: [f64; 10] = [0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49];

/// The largest consistency ratio a job may use.
pub const MAX_CONSISTENCY_RATIO: f64 = 0.1;

/// Why judgments cannot be used.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum AhpError {
    /// Not the upper triangle of an n×n matrix for n = 5.
    #[error("{got} judgments given, the 5 features need {expected}")]
    Count {
        /// Needed.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// A judgment is not a positive number.
    #[error("judgment {index} is {value}, every judgment must be a positive number")]
    NotPositive {
        /// 0-based position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The judgments contradict each other too much.
    #[error(
        "the comparison matrix is inconsistent: consistency ratio {ratio:.3} exceeds {MAX_CONSISTENCY_RATIO}"
    )]
    Inconsistent {
        /// Saaty's consistency ratio.
        ratio: f64,
    },
}

/// Weights derived from pairwise judgments.
#[derive(Debug, Clone, PartialEq)]
pub struct Ahp {
    /// Normalised principal eigenvector (sums to 1).
    pub weights: Vec<f64>,
    /// The principal eigenvalue.
    pub lambda_max: f64,
    /// Saaty's consistency ratio, CI / RI with CI = (λmax − n) / (n − 1).
    pub consistency_ratio: f64,
}

/// Weights for `n` criteria from the upper triangle of their comparison
/// matrix; refuses a consistency ratio above [`MAX_CONSISTENCY_RATIO`].
pub fn weights(n: usize, judgments: &[f64]) -> Result<Ahp, AhpError> {
    let expected = n * (n - 1) / 2;
    if judgments.len() != expected {
        return Err(AhpError::Count {
            expected,
            got: judgments.len(),
        });
    }
    if let Some((index, &value)) = judgments
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v > 0.0))
    {
        return Err(AhpError::NotPositive { index, value });
    }
    let mut matrix = vec![vec![1.0; n]; n];
    let pairs = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j)));
    for ((i, j), &a) in pairs.zip(judgments) {
        matrix[i][j] = a;
        matrix[j][i] = 1.0 / a;
    }
    // Power iteration: a positive matrix has a simple dominant eigenvalue
    // with a positive eigenvector (Perron–Frobenius), so this converges.
    let mut w = vec![1.0 / n as f64; n];
    for _ in 0..1000 {
        let next: Vec<f64> = matrix
            .iter()
            .map(|row| row.iter().zip(&w).map(|(a, x)| a * x).sum())
            .collect();
        let total: f64 = next.iter().sum();
        let next: Vec<f64> = next.iter().map(|x| x / total).collect();
        let change = next
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        w = next;
        if change < 1e-15 {
            break;
        }
    }
    let lambda_max = matrix
        .iter()
        .zip(&w)
        .map(|(row, wi)| row.iter().zip(&w).map(|(a, x)| a * x).sum::<f64>() / wi)
        .sum::<f64>()
        / n as f64;
    let ri = RANDOM_INDEX.get(n - 1).copied().unwrap_or(1.49);
    let consistency_ratio = if ri > 0.0 {
        ((lambda_max - n as f64) / (n as f64 - 1.0) / ri).max(0.0)
    } else {
        0.0
    };
    if consistency_ratio > MAX_CONSISTENCY_RATIO {
        return Err(AhpError::Inconsistent {
            ratio: consistency_ratio,
        });
    }
    Ok(Ahp {
        weights: w,
        lambda_max,
        consistency_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_judgments_reproduce_the_seed_weights() {
        let ahp = weights(5, &DEFAULT_JUDGMENTS).unwrap();
        let seed = [0.438, 0.237, 0.186, 0.091, 0.048];
        for (w, s) in ahp.weights.iter().zip(seed) {
            assert!((w - s).abs() < 0.005, "{:?}", ahp.weights);
        }
        assert!((ahp.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(ahp.consistency_ratio < 0.02, "{}", ahp.consistency_ratio);
    }

    #[test]
    fn a_perfectly_consistent_matrix_has_ratio_zero_and_exact_weights() {
        // Weights 8:4:2:1 give judgments a_ij = w_i / w_j.
        let w = [8.0, 4.0, 2.0, 1.0];
        let mut judgments = Vec::new();
        for i in 0..4 {
            for j in i + 1..4 {
                judgments.push(w[i] / w[j]);
            }
        }
        let ahp = weights(4, &judgments).unwrap();
        for (got, want) in ahp.weights.iter().zip(w) {
            assert!((got - want / 15.0).abs() < 1e-12);
        }
        assert!((ahp.lambda_max - 4.0).abs() < 1e-9);
        assert!(ahp.consistency_ratio < 1e-9);
    }

    #[test]
    fn a_known_three_by_three_matches_saaty_s_tables() {
        // A = [[1, 3, 5], [1/3, 1, 3], [1/5, 1/3, 1]]: λmax ≈ 3.0385,
        // CR ≈ 0.033, weights ≈ (0.637, 0.258, 0.105).
        let ahp = weights(3, &[3.0, 5.0, 3.0]).unwrap();
        assert!((ahp.lambda_max - 3.0385).abs() < 1e-3, "{}", ahp.lambda_max);
        assert!((ahp.consistency_ratio - 0.0332).abs() < 1e-3);
        for (got, want) in ahp.weights.iter().zip([0.637, 0.258, 0.105]) {
            assert!((got - want).abs() < 1e-3);
        }
    }

    #[test]
    fn inconsistent_or_malformed_judgments_are_refused() {
        // R ≫ F, F ≫ M, but M ≫ R: circular.
        let circular = [9.0, 1.0 / 9.0, 1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        match weights(5, &circular) {
            Err(AhpError::Inconsistent { ratio }) => assert!(ratio > 0.1),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            weights(5, &[1.0; 9]),
            Err(AhpError::Count {
                expected: 10,
                got: 9
            })
        );
        assert!(matches!(
            weights(5, &[2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            Err(AhpError::NotPositive { index: 1, .. })
        ));
    }
}
