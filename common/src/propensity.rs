//! The propensity model's shared definitions (design.md, "Data contract"):
//! the holdout split rule, the design row of a customer, and the numerically
//! stable logistic loss. Participants use them to compute their sums; the
//! coordinator and the tests use them to read the results.

use sha2::{Digest, Sha256};

use crate::features::{DIM, Space};

/// Whether `customer_id` is in the holdout of a job with `seed`: the first
/// 8 bytes of SHA-256(seed as 8 little-endian bytes ‖ customer_id as UTF-8),
/// read as a little-endian u64 and divided by 2^64, are below `fraction`.
pub fn is_holdout(seed: u64, customer_id: &str, fraction: f64) -> bool {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let head: [u8; 8] = digest[..8].try_into().expect("32-byte digest");
    (u64::from_le_bytes(head) as f64) / 2f64.powi(64) < fraction
}

/// Which columns a model has: an intercept, the z-scores of the features
/// marked in `features`, then one indicator per segment 1..segments (the
/// first segment is the reference level).
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Features (R, F, M, L, T) that enter the model.
    pub features: [bool; DIM],
    /// Segments of the segmentation, or 0 for no segment columns.
    pub segments: u32,
}

impl Design {
    /// Number of columns, intercept included.
    pub fn columns(&self) -> usize {
        1 + self.features.iter().filter(|&&f| f).count() + self.segments.saturating_sub(1) as usize
    }

    /// Column names: `intercept`, feature names, `segment <i>`.
    pub fn names(&self, feature_names: &[&str; DIM]) -> Vec<String> {
        let mut names = vec!["intercept".to_string()];
        for (j, &used) in self.features.iter().enumerate() {
            if used {
                names.push(feature_names[j].to_string());
            }
        }
        for s in 1..self.segments {
            names.push(format!("segment {s}"));
        }
        names
    }

    /// Largest magnitude of each column over any customer of `space`: 1 for
    /// the intercept and the segment indicators, the z-score bound for a
    /// feature.
    pub fn column_bounds(&self, space: &Space) -> Vec<f64> {
        let z = space.z_bounds();
        let mut bounds = vec![1.0];
        bounds.extend((0..DIM).filter(|&j| self.features[j]).map(|j| z[j]));
        bounds.resize(self.columns(), 1.0);
        bounds
    }

    /// Most non-zero columns of one customer's row: the intercept, the
    /// features that can be non-zero, at most one segment indicator.
    pub fn row_nonzero(&self, space: &Space) -> usize {
        let z = space.z_bounds();
        1 + (0..DIM).filter(|&j| self.features[j] && z[j] > 0.0).count()
            + usize::from(self.segments > 1)
    }

    /// Writes the design row of a customer with z-scores `z` in `segment`
    /// into `row` (of [`Design::columns`] entries).
    pub fn row(&self, z: &[f64; DIM], segment: u32, row: &mut [f64]) {
        row.fill(0.0);
        row[0] = 1.0;
        let mut c = 1;
        for (&value, &used) in z.iter().zip(&self.features) {
            if used {
                row[c] = value;
                c += 1;
            }
        }
        if segment >= 1 && segment < self.segments {
            row[c + segment as usize - 1] = 1.0;
        }
    }
}

/// The largest log-loss one customer contributes; beyond it a prediction is
/// so wrong that the exact value no longer matters, and the bound keeps
/// every secure sum's range finite.
pub const MAX_LOSS: f64 = 100.0;

/// Probability of conversion for linear predictor `eta`.
pub fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// The log-loss of predictor `eta` for label `y`, ln(1 + e^eta) − y·eta,
/// computed without overflow and capped at [`MAX_LOSS`].
pub fn log_loss(eta: f64, y: bool) -> f64 {
    let softplus = if eta > 0.0 {
        eta + (-eta).exp().ln_1p()
    } else {
        eta.exp().ln_1p()
    };
    (softplus - if y { eta } else { 0.0 }).min(MAX_LOSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_rule_matches_pinned_values() {
        // Reference values computed independently in Python:
        //   h = hashlib.sha256(seed.to_bytes(8, "little") + id.encode()).digest()
        //   int.from_bytes(h[:8], "little") / 2**64
        let cases = [
            (42, "c1", 0.47887011566934196),
            (42, "c2", 0.9330613416688863),
            (42, "customer-0001", 0.929799439273362),
            (42, "Ümlaut", 0.3805535459690673),
            (7, "c1", 0.347332647484901),
        ];
        for (seed, id, u) in cases {
            assert!(is_holdout(seed, id, u + 1e-12), "{seed} {id}");
            assert!(!is_holdout(seed, id, u - 1e-12), "{seed} {id}");
        }
        assert!(!is_holdout(42, "c1", 0.0));
    }

    #[test]
    fn the_loss_is_stable_at_the_extremes() {
        assert!((log_loss(0.0, true) - 2f64.ln()).abs() < 1e-15);
        assert!((log_loss(800.0, false) - 100.0).abs() < 1e-12);
        assert!(log_loss(800.0, true) < 1e-300);
        assert!((log_loss(-800.0, true) - 100.0).abs() < 1e-12);
        assert!((log_loss(3.0, false) - (1.0 + 3f64.exp()).ln()).abs() < 1e-12);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((sigmoid(0.5) + sigmoid(-0.5) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn design_rows_put_each_column_in_place() {
        let design = Design {
            features: [true, false, true, true, false],
            segments: 3,
        };
        assert_eq!(design.columns(), 6);
        assert_eq!(
            design.names(&["R", "F", "M", "L", "T"]),
            ["intercept", "R", "M", "L", "segment 1", "segment 2"]
        );
        let mut row = vec![9.0; 6];
        design.row(&[0.5, 9.0, -1.0, 2.0, 9.0], 2, &mut row);
        assert_eq!(row, [1.0, 0.5, -1.0, 2.0, 0.0, 1.0]);
        design.row(&[0.5, 9.0, -1.0, 2.0, 9.0], 0, &mut row);
        assert_eq!(row, [1.0, 0.5, -1.0, 2.0, 0.0, 0.0]);
    }
}
