//! A FedProx model update: a site trains a few local epochs from the
//! global β and sends its training count, its local model weighted by that
//! count, and its log-loss at the global β.
//!
//! Layout for a design of `d` columns: `[count, count·w (d), loss at β]`.
//! It has no per-customer bound: it cannot run under differential privacy.

use super::{LayoutError, check_length};

/// One site's (or the cohort's) update.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Training customers.
    pub count: f64,
    /// Local models weighted by their counts.
    pub weighted: Vec<f64>,
    /// Log-loss at the global β.
    pub loss: f64,
}

impl Update {
    /// The vector a site sends.
    pub fn to_vector(&self) -> Vec<f64> {
        let mut out = vec![self.count];
        out.extend(&self.weighted);
        out.push(self.loss);
        out
    }
}

/// Entries for a design of `d` columns.
pub fn length(d: usize) -> usize {
    d + 2
}

/// Reads a released sum for a design of `d` columns.
pub fn decode(sum: &[f64], d: usize) -> Result<Update, LayoutError> {
    check_length("local epochs", sum, length(d))?;
    Ok(Update {
        count: sum[0],
        weighted: sum[1..1 + d].to_vec(),
        loss: sum[1 + d],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_round_trips() {
        let u = Update {
            count: 3.0,
            weighted: vec![1.5, -3.0],
            loss: 2.0,
        };
        assert_eq!(u.to_vector(), [3.0, 1.5, -3.0, 2.0]);
        assert_eq!(decode(&u.to_vector(), 2), Ok(u));
        assert!(decode(&[1.0], 2).is_err());
    }
}
