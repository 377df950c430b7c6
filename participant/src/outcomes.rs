//! A campaign's outcomes table (`[data] outcomes`): `customer_id`,
//! `contacted`, `converted_after`, one row per customer, read from a CSV or
//! Parquet file or, beside `[data] postgres`, from the bank's database by
//! its query, under the site's bad-row policy either way.

use std::collections::HashMap;
use std::path::Path;

use tokio_postgres::NoTls;

use crate::database::{failed, judge_bad_rows};
use crate::rfmlt::reader::Reader;
use crate::rfmlt::{BadRowPolicy, DataError, Reason, SkippedRows, Tally, parse_bool};

/// The table's good rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcomes {
    /// `customer_id → (contacted, converted_after)`.
    pub by_id: HashMap<String, (bool, bool)>,
    /// Bad rows skipped under the site's policy.
    pub skipped: SkippedRows,
}

/// Reads the table from a CSV or Parquet file.
pub fn read_file(path: &Path, policy: &BadRowPolicy) -> Result<Outcomes, DataError> {
    let mut reader = Reader::open(
        path,
        &Default::default(),
        &["customer_id", "contacted", "converted_after"],
        &[],
    )?;
    let mut out = Outcomes::default();
    let (_, skips) = reader.for_each(Tally::new(policy, "outcomes"), |row| {
        let id = row.text("customer_id")?;
        let value = (row.boolean("contacted")?, row.boolean("converted_after")?);
        if out.by_id.insert(id.to_string(), value).is_some() {
            return Err(row.bad(
                Reason::DuplicateCustomer,
                "customer_id",
                format!("{id:?} appears twice"),
            ));
        }
        Ok(())
    })?;
    if skips.1.total() > 0 {
        out.skipped.tables.insert(skips.0, skips.1);
    }
    Ok(out)
}

/// Runs the bank's `query` (yielding the table's three columns) in its
/// database. Every row of an id that appears twice is bad (a database has
/// no row order to say which came first).
pub async fn read_sql(
    connection: &str,
    query: &str,
    policy: &BadRowPolicy,
) -> Result<Outcomes, DataError> {
    let (client, driver) = tokio_postgres::connect(connection, NoTls)
        .await
        .map_err(|e| failed(format!("connecting: {e}")))?;
    let driver = tokio::spawn(driver);
    let sql = format!(
        "SELECT customer_id::text, lower(contacted::text), lower(converted_after::text), \
         count(*) OVER (PARTITION BY customer_id::text) FROM ({query}) AS q"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| failed(format!("the outcomes query failed: {e}")));
    drop(client);
    let _ = driver.await;
    let rows = rows?;
    let mut out = Outcomes::default();
    let mut bad: std::collections::BTreeMap<&'static str, (i64, Option<String>)> =
        Default::default();
    for row in &rows {
        let id: Option<String> = row.get(0);
        let contacted: Option<String> = row.get(1);
        let converted: Option<String> = row.get(2);
        let copies: i64 = row.get(3);
        let flags = (
            contacted.as_deref().and_then(parse_bool),
            converted.as_deref().and_then(parse_bool),
        );
        let reason = match (&id, &contacted, &converted, flags) {
            (None, ..) | (_, None, ..) | (_, _, None, _) => "missing_value",
            (.., (None, _) | (_, None)) => "bad_boolean",
            _ if copies > 1 => "duplicate_customer",
            (Some(id), .., (Some(contacted), Some(converted))) => {
                out.by_id.insert(id.clone(), (contacted, converted));
                continue;
            }
        };
        let entry = bad.entry(reason).or_insert((0, None));
        entry.0 += 1;
        entry.1 = entry.1.take().or(id);
    }
    let bad: Vec<(String, String, i64, Option<String>)> = bad
        .into_iter()
        .map(|(reason, (n, example))| ("outcomes".into(), reason.into(), n, example))
        .collect();
    out.skipped = judge_bad_rows(&bad, policy, |_| rows.len() as u64)?;
    Ok(out)
}
