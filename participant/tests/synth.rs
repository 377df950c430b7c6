//! Synthetic tables (`fedseg-synth`) read back through the participant's
//! own RFMLT reader: every row is accounted for and the behaviours the
//! generator promises are there.

use fedseg_participant::rfmlt::{self, ColumnNames, Tables};
use fedseg_synth::{HISTORY_END, write};
use time::Duration;

#[test]
fn synthetic_data_reads_back_with_the_promised_behaviours() {
    let a = tempfile::tempdir().unwrap();
    let written = write(a.path(), 500, 7, "retail").unwrap();
    let tables = Tables {
        transactions: a.path().join("transactions.csv"),
        interactions: a.path().join("interactions.csv"),
        customers: a.path().join("customers.csv"),
        columns: ColumnNames::default(),
    };
    let as_of = HISTORY_END + Duration::days(1);
    let features = rfmlt::compute(&tables, as_of).unwrap();
    assert_eq!(
        features.rows,
        [written.transactions, written.interactions, 500]
    );
    assert!(features.excluded_no_consent > 10 && features.excluded_no_consent < 80);
    assert!(features.rows_after_as_of > 0);
    let buyers = features.customers.iter().filter(|c| c.f > 0.0).count();
    let converted = features.customers.iter().filter(|c| c.converted).count();
    assert!(buyers > 300 && buyers < features.customers.len());
    assert!(converted > 20 && converted < 400, "{converted}");
    // Heavy tail: the largest spender far above the median.
    let mut m: Vec<f64> = features.customers.iter().map(|c| c.m).collect();
    m.sort_by(f64::total_cmp);
    assert!(m[m.len() - 1] > 10.0 * m[m.len() / 2]);
}
