//! A feature partner's table (design.md, "Vertical joint modelling
//! contract"): `customer_id` (the join key both institutions hold, compared
//! as exact bytes) and the numeric columns this site offers, each clipped to
//! its declared range and optionally `log1p`-transformed. An optional
//! consent column of the partner's own drops customers who refused before
//! anything else. Bad rows follow the site's bad-row policy, as for the
//! canonical tables.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::Deserialize;

use crate::rfmlt::reader::Reader;
use crate::rfmlt::{BadRowPolicy, DataError, Reason, SkippedRows, Tally};

/// How a column is transformed after clipping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// The value as it is.
    #[default]
    Identity,
    /// `ln(1 + x)`, for counts and amounts with long tails.
    Log1p,
}

/// One offered column: `{ clip = [lo, hi], transform = "log1p" }`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureColumn {
    /// Per-customer bounds; values outside are clipped to them.
    pub clip: [f64; 2],
    /// Applied after clipping.
    #[serde(default)]
    pub transform: Transform,
}

impl FeatureColumn {
    /// Why the declaration is unusable, if it is.
    pub fn problem(&self) -> Option<&'static str> {
        let [lo, hi] = self.clip;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            Some("clip must be [lo, hi] with finite lo < hi")
        } else if self.transform == Transform::Log1p && lo <= -1.0 {
            Some("log1p needs clip lo > -1")
        } else {
            None
        }
    }

    /// The value a customer contributes: clipped, then transformed.
    pub fn apply(&self, value: f64) -> f64 {
        let clipped = value.clamp(self.clip[0], self.clip[1]);
        match self.transform {
            Transform::Identity => clipped,
            Transform::Log1p => clipped.ln_1p(),
        }
    }

    /// The bounds of [`FeatureColumn::apply`]'s result.
    pub fn bounds(&self) -> [f64; 2] {
        self.clip.map(|v| self.apply(v))
    }
}

/// Where a partner's table is and what it offers.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    /// The file (CSV, or Parquet by its extension).
    pub path: PathBuf,
    /// Offered columns by name (in name order).
    pub columns: BTreeMap<String, FeatureColumn>,
    /// The partner's own consent column (booleans), if it has one.
    pub consent: Option<String>,
    /// The bank's own header for a column, where it differs.
    pub names: BTreeMap<String, String>,
}

/// A partner's consenting customers and their transformed values.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerRows {
    /// Column names, in the order of each row's values.
    pub columns: Vec<String>,
    /// Customer ids, in table order (they never leave the site).
    pub ids: Vec<String>,
    /// Values, row-major: `columns.len()` per customer.
    pub values: Vec<f64>,
    /// Customers dropped for refusing marketing at this partner.
    pub excluded_no_consent: usize,
    /// Rows read (skipped ones included).
    pub rows: u64,
    /// Bad rows skipped under the site's policy.
    pub skipped: SkippedRows,
}

impl PartnerRows {
    /// The values of customer `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        let width = self.columns.len();
        &self.values[i * width..(i + 1) * width]
    }
}

/// Reads the table: one row per customer, consent applied first.
pub fn read(table: &FeatureTable, policy: &BadRowPolicy) -> Result<PartnerRows, DataError> {
    let columns: Vec<&str> = table.columns.keys().map(String::as_str).collect();
    let mut required = vec!["customer_id"];
    required.extend(&columns);
    let optional: Vec<&str> = table.consent.iter().map(String::as_str).collect();
    let mut reader = Reader::open(&table.path, &table.names, &required, &optional)?;
    let mut out = PartnerRows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        ids: Vec::new(),
        values: Vec::new(),
        excluded_no_consent: 0,
        rows: 0,
        skipped: SkippedRows::default(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut row_values = Vec::with_capacity(columns.len());
    let (rows, skips) = reader.for_each(Tally::new(policy, "features"), |row| {
        let id = row.text("customer_id")?;
        // A second row of an id is bad even when the first refused.
        if !seen.insert(id.to_string()) {
            return Err(row.bad(
                Reason::DuplicateCustomer,
                "customer_id",
                format!("{id:?} appears twice"),
            ));
        }
        if let Some(consent) = &table.consent
            && !row.boolean(consent)?
        {
            out.excluded_no_consent += 1;
            return Ok(());
        }
        row_values.clear();
        for (name, column) in &table.columns {
            let text = row.text(name)?;
            let value: f64 = text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    row.bad(
                        Reason::BadNumber,
                        name,
                        format!("{text:?} is not a finite number"),
                    )
                })?;
            row_values.push(column.apply(value));
        }
        out.ids.push(id.to_string());
        out.values.extend(&row_values);
        Ok(())
    })?;
    out.rows = rows;
    if skips.1.total() > 0 {
        out.skipped.tables.insert(skips.0, skips.1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};

    use super::*;
    use crate::config::ParticipantConfig;
    use crate::rfmlt::{MaxBadRows, OnBadRow};

    const TABLE: &str = "customer_id,app_sessions,wallet_spend,opt_in
p1,10,250.5,yes
p2,900,-3,TRUE
p3,0,0,no
p4,3,120000,1
";

    fn columns() -> BTreeMap<String, FeatureColumn> {
        BTreeMap::from([
            (
                "app_sessions".to_string(),
                FeatureColumn {
                    clip: [0.0, 500.0],
                    transform: Transform::Log1p,
                },
            ),
            (
                "wallet_spend".to_string(),
                FeatureColumn {
                    clip: [0.0, 100_000.0],
                    transform: Transform::Identity,
                },
            ),
        ])
    }

    fn table(path: PathBuf) -> FeatureTable {
        FeatureTable {
            path,
            columns: columns(),
            consent: Some("opt_in".into()),
            names: BTreeMap::new(),
        }
    }

    fn write(dir: &std::path::Path, text: &str) -> PathBuf {
        let path = dir.join("features.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn values_are_clipped_transformed_and_refusals_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let rows = read(&table(write(dir.path(), TABLE)), &BadRowPolicy::default()).unwrap();
        assert_eq!(rows.columns, ["app_sessions", "wallet_spend"]);
        assert_eq!(rows.ids, ["p1", "p2", "p4"]);
        assert_eq!(rows.excluded_no_consent, 1);
        assert_eq!(rows.rows, 4);
        // 900 sessions clip to 500; −3 spend clips to 0; 120000 to 100000.
        assert_eq!(rows.row(0), [11f64.ln(), 250.5]);
        assert_eq!(rows.row(1), [501f64.ln(), 0.0]);
        assert_eq!(rows.row(2), [4f64.ln(), 100_000.0]);
    }

    #[test]
    fn parquet_with_native_types_gives_the_csv_rows() {
        let dir = tempfile::tempdir().unwrap();
        let expected = read(&table(write(dir.path(), TABLE)), &BadRowPolicy::default()).unwrap();
        let path = dir.path().join("features.parquet");
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "customer_id",
                Arc::new(StringArray::from(vec!["p1", "p2", "p3", "p4"])),
            ),
            (
                "app_sessions",
                Arc::new(Int64Array::from(vec![10, 900, 0, 3])),
            ),
            (
                "wallet_spend",
                Arc::new(Float64Array::from(vec![250.5, -3.0, 0.0, 120_000.0])),
            ),
            (
                "opt_in",
                Arc::new(BooleanArray::from(vec![true, true, false, true])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        assert_eq!(
            read(&table(path), &BadRowPolicy::default()).unwrap(),
            expected
        );
    }

    #[test]
    fn bad_rows_stop_the_site_or_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let bad =
            format!("{TABLE}p5,abc,1,yes\np6,,1,yes\np1,1,1,yes\np7,1,1,maybe\np8,inf,1,yes\n");
        let t = table(write(dir.path(), &bad));
        let e = read(&t, &BadRowPolicy::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 6, column `app_sessions`: \"abc\" is not a finite number"),
            "{e}"
        );
        let skip = BadRowPolicy {
            on_bad_row: OnBadRow::Skip,
            max_bad_rows: MaxBadRows::Count(5),
            ..BadRowPolicy::default()
        };
        let rows = read(&t, &skip).unwrap();
        assert_eq!(rows.ids, ["p1", "p2", "p4"]);
        let by_reason = &rows.skipped.tables["features"].by_reason;
        assert_eq!(by_reason[&Reason::BadNumber], 2);
        assert_eq!(by_reason[&Reason::MissingValue], 1);
        assert_eq!(by_reason[&Reason::DuplicateCustomer], 1);
        assert_eq!(by_reason[&Reason::BadBoolean], 1);
        let strict = BadRowPolicy {
            max_bad_rows: MaxBadRows::Count(4),
            ..skip
        };
        assert!(matches!(
            read(&t, &strict),
            Err(DataError::TooManyBadRows { .. })
        ));
    }

    fn config(dir: &std::path::Path, data: &str) -> Result<ParticipantConfig, String> {
        let path = dir.join("participant.toml");
        std::fs::write(
            &path,
            format!(
                "id = \"fintech-x\"\ncoordinator = \"https://127.0.0.1:1\"\n\
                 coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
                 [tls]\nca = \"ca.crt\"\ncert = \"x.crt\"\nkey = \"x.key\"\n{data}"
            ),
        )
        .unwrap();
        ParticipantConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn a_partner_config_is_checked_at_start_up_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), TABLE);
        let good = "[data]\nfeatures = \"features.csv\"\nfeatures_consent = \"opt_in\"\n\
                    [data.feature_columns]\napp_sessions = { clip = [0, 500], transform = \"log1p\" }\n\
                    wallet_spend = { clip = [0, 100000] }\n";
        let loaded = config(dir.path(), good).unwrap();
        let data = loaded.data.unwrap();
        assert!(data.tables().is_none());
        assert_eq!(data.partner_rows().unwrap().ids, ["p1", "p2", "p4"]);
        assert!(data.features(time::macros::date!(2026 - 11 - 01)).is_err());
        for (bad, key) in [
            (
                "[data]\nfeatures = \"features.csv\"\n",
                "data.feature_columns",
            ),
            (
                "[data]\nfeatures = \"f.csv\"\n[data.feature_columns]\nx = { clip = [-2, 5], transform = \"log1p\" }\n",
                "data.feature_columns.x",
            ),
            (
                "[data]\nfeatures = \"f.csv\"\n[data.feature_columns]\nx = { clip = [5, 1] }\n",
                "data.feature_columns.x",
            ),
            ("[data]\ncustomers = \"c.csv\"\n", "`data`"),
            (
                "[data]\nfeatures = \"f.csv\"\n[data.feature_columns]\nx = { clip = [0, 1] }\n\
                 [data.columns.features]\ny = \"why\"\n",
                "data.columns.features.y",
            ),
        ] {
            let error = config(dir.path(), bad).unwrap_err();
            assert!(error.contains(key), "{key}: {error}");
        }
    }
}
