//! Activity: how many consenting customers are in each lifecycle stage by
//! recency, over the whole consortium — bought within 30, 90, 180 or 365
//! days of `as_of`, longer ago, or never (seed 001's lifecycle stages; the
//! report's activity table).
//!
//! Layout: one count per band, in [`BANDS`] order.

use serde::{Deserialize, Serialize};

use super::{LayoutError, check_length};

/// The bands: an upper bound on days since the last purchase, or none.
pub const BANDS: [(&str, Option<f64>); 6] = [
    ("within 30 days", Some(30.0)),
    ("within 90 days", Some(90.0)),
    ("within 180 days", Some(180.0)),
    ("within 365 days", Some(365.0)),
    ("over a year ago", None),
    ("never", None),
];

/// Entries of the vector.
pub const LENGTH: usize = BANDS.len();

/// The band of a customer with `purchases` and recency `r` (days).
pub fn band(purchases: f64, r: f64) -> usize {
    if purchases == 0.0 {
        return LENGTH - 1;
    }
    BANDS
        .iter()
        .position(|(_, upper)| upper.is_some_and(|u| r <= u))
        .unwrap_or(LENGTH - 2)
}

/// Adds one customer.
pub fn add(out: &mut [f64], purchases: f64, r: f64) {
    out[band(purchases, r)] += 1.0;
}

/// Per-customer bounds and the squared L2 bound: one band per customer.
pub fn customer_bounds() -> (Vec<f64>, f64) {
    (vec![1.0; LENGTH], 1.0)
}

/// One band of a released sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// What it holds.
    pub band: String,
    /// Customers in it (noisy under differential privacy, never below 0).
    pub customers: f64,
}

/// Reads a released sum.
pub fn decode(sum: &[f64]) -> Result<Vec<Band>, LayoutError> {
    check_length("activity", sum, LENGTH)?;
    Ok(BANDS
        .iter()
        .zip(sum)
        .map(|(&(band, _), &customers)| Band {
            band: band.to_string(),
            customers: customers.max(0.0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_customer_is_in_one_band() {
        let mut out = vec![0.0; LENGTH];
        for (f, r) in [
            (1.0, 0.0),
            (2.0, 30.0),
            (1.0, 31.0),
            (3.0, 365.0),
            (1.0, 366.0),
            (0.0, 5.0),
        ] {
            add(&mut out, f, r);
        }
        let bands = decode(&out).unwrap();
        let counts: Vec<f64> = bands.iter().map(|b| b.customers).collect();
        assert_eq!(counts, [2.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(bands[5].band, "never");
        assert!(decode(&out[1..]).is_err());
    }
}
