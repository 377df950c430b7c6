//! RFMLT features computed inside the bank's own PostgreSQL database: the
//! bank gives one query per canonical table in `participant.toml`; the
//! participant wraps them in its checks and its aggregation SQL, so the
//! heavy lifting runs where the data already lives and only one row per
//! consenting customer comes back. The same definitions as the file path
//! (`rfmlt`): the same features for the same rows (tested).

use time::Date;
use tokio_postgres::NoTls;

use crate::rfmlt::{Customer, DataError, Features, KindCounts};

/// The bank's database and its three queries.
#[derive(Debug, Clone)]
pub struct Source {
    /// libpq-style connection string (`host=… user=… dbname=…`).
    pub connection: String,
    /// Query yielding `customer_id, ts, amount`.
    pub transactions: String,
    /// Query yielding `customer_id, ts, kind`.
    pub interactions: String,
    /// Query yielding `customer_id, consent_marketing, converted, since`.
    pub customers: String,
}

/// The bank's rows, typed as the data contract says, as common table
/// expressions `c`, `t` and `i`.
fn canonical(source: &Source) -> String {
    format!(
        "c AS (SELECT customer_id::text AS id, consent_marketing::boolean AS consent, \
                converted::int AS converted, since::date AS since FROM ({customers}) AS q), \
         t AS (SELECT customer_id::text AS id, ts::date AS d, amount::float8 AS amount \
               FROM ({transactions}) AS q), \
         i AS (SELECT customer_id::text AS id, ts::date AS d, lower(kind::text) AS kind \
               FROM ({interactions}) AS q)",
        customers = source.customers,
        transactions = source.transactions,
        interactions = source.interactions,
    )
}

/// Every check the file path makes, as (table, problem, count, an example
/// customer id).
const CHECKS: &str = "\
    SELECT 'customers', 'a missing customer_id, consent_marketing or converted, or converted not 0/1', \
           count(*), min(id) FROM c \
     WHERE id IS NULL OR consent IS NULL OR converted IS NULL OR converted NOT IN (0, 1) \
    UNION ALL SELECT 'customers', 'a customer_id that appears twice', count(*), min(id) \
      FROM (SELECT id FROM c GROUP BY id HAVING count(*) > 1) AS d \
    UNION ALL SELECT 'transactions', 'a missing customer_id, ts or amount', count(*), min(id) FROM t \
     WHERE id IS NULL OR d IS NULL OR amount IS NULL \
    UNION ALL SELECT 'transactions', 'an amount that is not positive', count(*), min(id) FROM t \
     WHERE NOT amount > 0 \
    UNION ALL SELECT 'transactions', 'a customer_id not in the customers table', count(*), min(id) \
      FROM t WHERE id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM c WHERE c.id = t.id) \
    UNION ALL SELECT 'interactions', 'a missing customer_id or ts', count(*), min(id) FROM i \
     WHERE id IS NULL OR d IS NULL \
    UNION ALL SELECT 'interactions', 'a customer_id not in the customers table', count(*), min(id) \
      FROM i WHERE id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM c WHERE c.id = i.id)";

/// Counts over the whole tables: rows, refusals, rows after as_of ($1).
const COUNTS: &str = "\
    SELECT (SELECT count(*) FROM c)::float8, (SELECT count(*) FROM t)::float8, \
           (SELECT count(*) FROM i)::float8, (SELECT count(*) FROM c WHERE NOT consent)::float8, \
           ((SELECT count(*) FROM t WHERE d > $1::text::date) \
            + (SELECT count(*) FROM i WHERE d > $1::text::date))::float8";

/// One row per consenting customer: RFMLT as of $1 and interactions by kind.
const FEATURES: &str = "\
    k AS (SELECT * FROM c WHERE consent), \
    tw AS (SELECT * FROM t WHERE d <= $1::text::date), \
    iw AS (SELECT * FROM i WHERE d <= $1::text::date), \
    site AS (SELECT least((SELECT min(d) FROM tw WHERE id IN (SELECT id FROM k)), \
                          (SELECT min(d) FROM iw WHERE id IN (SELECT id FROM k))) AS start), \
    ta AS (SELECT id, count(*) AS f, sum(amount) AS m, min(d) AS first, max(d) AS last \
           FROM tw GROUP BY id), \
    ia AS (SELECT id, count(*) AS t, count(*) FILTER (WHERE kind = 'inquiry') AS inquiry, \
                  count(*) FILTER (WHERE kind = 'save') AS save, \
                  count(*) FILTER (WHERE kind = 'search') AS search \
           FROM iw GROUP BY id) \
    SELECT k.id, k.converted = 1, \
           (CASE WHEN ta.last IS NOT NULL THEN $1::text::date - ta.last \
                 ELSE $1::text::date - least(coalesce(k.since, site.start, $1::text::date), $1::text::date) \
            END)::float8 AS r, \
           coalesce(ta.f, 0)::float8, coalesce(ta.m, 0)::float8, \
           (CASE WHEN ta.f >= 2 THEN ta.last - ta.first ELSE 0 END)::float8, \
           coalesce(ia.t, 0)::float8, coalesce(ia.inquiry, 0)::float8, \
           coalesce(ia.save, 0)::float8, coalesce(ia.search, 0)::float8 \
    FROM k CROSS JOIN site LEFT JOIN ta USING (id) LEFT JOIN ia USING (id)";

fn failed(reason: String) -> DataError {
    DataError::Read {
        path: "postgres".into(),
        reason,
    }
}

/// Checks the bank's rows and computes every consenting customer's
/// features as of `as_of` in the database.
pub async fn features(source: &Source, as_of: Date) -> Result<Features, DataError> {
    let (client, connection) = tokio_postgres::connect(&source.connection, NoTls)
        .await
        .map_err(|e| failed(format!("connecting: {e}")))?;
    let driver = tokio::spawn(connection);
    let tables = canonical(source);
    let sql = |e: tokio_postgres::Error| failed(format!("the queries failed: {e}"));
    // One snapshot for every statement.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(sql)?;
    for row in client
        .query(&format!("WITH {tables} {CHECKS}"), &[])
        .await
        .map_err(sql)?
    {
        let (table, problem, count, example): (&str, &str, i64, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if count > 0 {
            return Err(DataError::Read {
                path: format!("postgres {table} query").into(),
                reason: format!(
                    "{count} rows with {problem} (customer {:?} among them)",
                    example.unwrap_or_default()
                ),
            });
        }
    }
    let day = as_of.to_string();
    let counts = client
        .query_one(&format!("WITH {tables} {COUNTS}"), &[&day])
        .await
        .map_err(sql)?;
    let count = |i: usize| counts.get::<_, f64>(i) as u64;
    let rows = client
        .query(&format!("WITH {tables}, {FEATURES}"), &[&day])
        .await
        .map_err(sql)?;
    client.batch_execute("COMMIT").await.map_err(sql)?;
    drop(client);
    let _ = driver.await;
    let customers = rows
        .iter()
        .map(|row| {
            let value = |i: usize| row.get::<_, f64>(i);
            let (t, inquiry, save, search) = (value(6), value(7), value(8), value(9));
            Customer {
                id: row.get(0),
                converted: row.get(1),
                r: value(2),
                f: value(3),
                m: value(4),
                l: value(5),
                t,
                kinds: KindCounts {
                    inquiry: inquiry as u64,
                    save: save as u64,
                    search: search as u64,
                    other: (t - inquiry - save - search) as u64,
                },
            }
        })
        .collect();
    Ok(Features {
        customers,
        excluded_no_consent: count(3) as usize,
        rows: [count(1), count(2), count(0)],
        rows_after_as_of: count(4),
    })
}
