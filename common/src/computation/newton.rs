//! Newton terms of the logistic regression at a given β, over a site's
//! training customers: their count, log-loss, gradient and Hessian.
//!
//! Layout for a design of `d` columns: `[count, loss, gradient (d),
//! Hessian upper triangle row by row (d(d+1)/2)]`.

use super::{LayoutError, check_length};
use crate::propensity::{self, MAX_LOSS};

/// The released terms of one Newton round.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    /// Training customers.
    pub count: f64,
    /// Sum of their log-losses.
    pub loss: f64,
    /// Gradient of the summed log-loss.
    pub gradient: Vec<f64>,
    /// Full symmetric Hessian, row-major d × d.
    pub hessian: Vec<f64>,
}

/// Entries for a design of `d` columns.
pub fn length(d: usize) -> usize {
    2 + d + d * (d + 1) / 2
}

/// Adds one training customer with design `row`, linear predictor `eta`
/// and label `y`.
pub fn add(out: &mut [f64], row: &[f64], eta: f64, y: bool) {
    let d = row.len();
    let prob = propensity::sigmoid(eta);
    out[0] += 1.0;
    out[1] += propensity::log_loss(eta, y);
    let residual = prob - f64::from(y);
    let weight = prob * (1.0 - prob);
    let (gradient, hessian) = out[2..].split_at_mut(d);
    let mut k = 0;
    for a in 0..d {
        gradient[a] += residual * row[a];
        for b in a..d {
            hessian[k] += weight * row[a] * row[b];
            k += 1;
        }
    }
}

/// Per-customer bounds for design columns of largest magnitudes `columns`,
/// of which at most `row_nonzero` are non-zero in one row; and the squared
/// L2 bound.
pub fn customer_bounds(columns: &[f64], row_nonzero: usize) -> (Vec<f64>, f64) {
    let mut entries = vec![1.0, MAX_LOSS];
    entries.extend(columns);
    for a in 0..columns.len() {
        for c in a..columns.len() {
            // |p(1 − p)| ≤ ¼.
            entries.push(0.25 * columns[a] * columns[c]);
        }
    }
    let r = row_nonzero;
    (entries, (2 + r + r * (r + 1) / 2) as f64)
}

/// Reads a released sum for a design of `d` columns.
pub fn decode(sum: &[f64], d: usize) -> Result<Terms, LayoutError> {
    check_length("Newton terms", sum, length(d))?;
    let mut hessian = vec![0.0; d * d];
    let mut k = 2 + d;
    for a in 0..d {
        for b in a..d {
            hessian[a * d + b] = sum[k];
            hessian[b * d + a] = sum[k];
            k += 1;
        }
    }
    Ok(Terms {
        count: sum[0],
        loss: sum[1],
        gradient: sum[2..2 + d].to_vec(),
        hessian,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_of_two_customers_read_back_symmetric() {
        let mut out = vec![0.0; length(2)];
        add(&mut out, &[1.0, 2.0], 0.0, true);
        add(&mut out, &[1.0, -1.0], 0.0, false);
        let t = decode(&out, 2).unwrap();
        assert_eq!(t.count, 2.0);
        assert!((t.loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-12);
        // Residuals −½ and +½.
        assert_eq!(t.gradient, [0.0, -1.5]);
        // ¼·(x xᵀ) summed.
        assert_eq!(t.hessian, [0.5, 0.25, 0.25, 1.25]);
        assert!(decode(&out, 3).is_err());
    }
}
