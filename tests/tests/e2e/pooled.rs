//! The pooled data the federated results are compared with: every site's
//! customers read straight from its files by the participant's own reader
//! (a centralized computation on the same rows).

use fedseg_common::features::{DEFAULT_BOUNDS, DIM};
use fedseg_participant::rfmlt::{self, ColumnNames, Customer, Tables};
use fedseg_tests::Consortium;

/// Every site's consenting customers as of `as_of`, per site in the order
/// of its customers table.
pub fn customers(c: &Consortium, as_of: time::Date) -> Vec<Vec<Customer>> {
    c.sites
        .iter()
        .map(|site| {
            let dir = c.path().join("sites").join(site);
            let tables = Tables {
                transactions: dir.join("transactions.csv"),
                interactions: dir.join("interactions.csv"),
                customers: dir.join("customers.csv"),
                columns: ColumnNames::default(),
            };
            rfmlt::compute(&tables, as_of).unwrap().customers
        })
        .collect()
}

/// A customer's x = [R, log1p F, log1p M, L, T], clipped to the default
/// bounds.
pub fn x_of(c: &Customer) -> [f64; DIM] {
    let x = [c.r, c.f.ln_1p(), c.m.ln_1p(), c.l, c.t];
    std::array::from_fn(|j| x[j].clamp(DEFAULT_BOUNDS[j].0, DEFAULT_BOUNDS[j].1))
}
