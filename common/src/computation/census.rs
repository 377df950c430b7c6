//! The census: how many customers and rows each site has, the first round
//! of every job, whose totals bound the ranges of every later round.

use serde::Serialize;

use super::{LayoutError, check_length};

/// Entries of the census vector.
pub const LENGTH: usize = 7;

/// The largest total any census entry may reach (the round's range).
pub const MAX_TOTAL: f64 = (1u64 << 40) as f64;

/// One site's counts, or their sum over the cohort. The vector order is
/// the field order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Consenting customers.
    pub customers: f64,
    /// Customers excluded for refusing marketing.
    pub excluded_no_consent: f64,
    /// Transaction rows read.
    pub transactions: f64,
    /// Interaction rows read.
    pub interactions: f64,
    /// Rows dated after as_of, ignored.
    pub rows_after_as_of: f64,
    /// Consenting customers who converted.
    pub converted: f64,
    /// Bad rows skipped under the sites' bad-row policies (the total only:
    /// per-table and per-reason counts stay at the site).
    pub skipped_rows: f64,
}

impl Counts {
    /// The vector a site sends.
    pub fn to_vector(&self) -> Vec<f64> {
        vec![
            self.customers,
            self.excluded_no_consent,
            self.transactions,
            self.interactions,
            self.rows_after_as_of,
            self.converted,
            self.skipped_rows,
        ]
    }

    /// Reads a released sum.
    pub fn decode(sum: &[f64]) -> Result<Self, LayoutError> {
        check_length("census", sum, LENGTH)?;
        Ok(Self {
            customers: sum[0],
            excluded_no_consent: sum[1],
            transactions: sum[2],
            interactions: sum[3],
            rows_after_as_of: sum[4],
            converted: sum[5],
            skipped_rows: sum[6],
        })
    }

    /// What one customer can change in each entry, and the squared L2
    /// bound of that change: a customer is either a consenting one (and
    /// maybe converted) or a refusal. Row counts have no per-customer bound
    /// and are withheld (bound 0) under differential privacy.
    pub fn customer_bounds() -> (Vec<f64>, f64) {
        let bounds = Self {
            customers: 1.0,
            excluded_no_consent: 1.0,
            converted: 1.0,
            ..Self::default()
        };
        (bounds.to_vector(), 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_round_trips_field_by_field() {
        let counts = Counts {
            customers: 1.0,
            excluded_no_consent: 2.0,
            transactions: 3.0,
            interactions: 4.0,
            rows_after_as_of: 5.0,
            converted: 6.0,
            skipped_rows: 7.0,
        };
        let vector = counts.to_vector();
        assert_eq!(vector, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(Counts::decode(&vector), Ok(counts));
        assert!(Counts::decode(&vector[..6]).is_err());
    }

    #[test]
    fn only_customer_counts_are_bounded() {
        let (entries, l2_squared) = Counts::customer_bounds();
        assert_eq!(entries, [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(l2_squared, 2.0);
    }
}
