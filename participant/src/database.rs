//! RFMLT features computed inside the bank's own PostgreSQL database: the
//! bank gives one query per canonical table in `participant.toml`; the
//! participant wraps them in its checks and its aggregation SQL, so the
//! heavy lifting runs where the data already lives and only one row per
//! consenting customer comes back. The same definitions as the file path
//! (`rfmlt`): the same features for the same rows (tested).

use time::Date;
use tokio_postgres::NoTls;

use std::collections::BTreeMap;

use crate::partner::{FeatureTable, PartnerRows};
use crate::rfmlt::{
    BadRowPolicy, Customer, DataError, Features, KindCounts, MAX_AMOUNT, OnBadRow, Reason,
    SkippedRows, parse_bool,
};

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

/// The bank's rows, typed as the data contract says, each with the reason
/// it is bad (NULL when good), as common table expressions `cx`, `tx`, `ix`;
/// then the good rows as `c`, `t` and `i`. Booleans take the contract's
/// spellings whatever the column's type; an id that appears twice makes
/// every one of its rows bad (a database has no row order to say which
/// came first), and a customer with a bad row is left out like one who
/// refused marketing, its other rows ignored.
fn canonical(source: &Source, as_of: Date, policy: &BadRowPolicy) -> String {
    // Dates the participant formats itself: safe to put in the text.
    let earliest = policy.earliest_date;
    let latest = as_of.saturating_add(time::Duration::days(i64::from(policy.days_after_as_of)));
    let dated =
        |column: &str| format!("({column} < DATE '{earliest}' OR {column} > DATE '{latest}')");
    let (since, t_date, i_date) = (dated("since"), dated("d"), dated("d"));
    const TRUE: &str = "('true', 't', 'yes', '1')";
    const FALSE: &str = "('false', 'f', 'no', '0')";
    format!(
        "cr AS (SELECT customer_id::text AS id, lower(consent_marketing::text) AS consent, \
                lower(converted::text) AS converted, since::date AS since FROM ({customers}) AS q), \
         cx AS (SELECT id, since, \
                CASE WHEN consent IN {TRUE} THEN true WHEN consent IN {FALSE} THEN false END AS consent, \
                CASE WHEN converted IN {TRUE} THEN 1 WHEN converted IN {FALSE} THEN 0 END AS converted, \
                CASE WHEN id IS NULL OR consent IS NULL OR converted IS NULL THEN 'missing_value' \
                     WHEN consent NOT IN {TRUE} AND consent NOT IN {FALSE} \
                       OR converted NOT IN {TRUE} AND converted NOT IN {FALSE} THEN 'bad_boolean' \
                     WHEN since IS NOT NULL AND {since} THEN 'bad_date' \
                     WHEN count(*) OVER (PARTITION BY id) > 1 THEN 'duplicate_customer' END AS bad \
                FROM cr), \
         c AS (SELECT id, consent, converted, since FROM cx WHERE bad IS NULL), \
         tr AS (SELECT customer_id::text AS id, ts::date AS d, amount::float8 AS amount \
                FROM ({transactions}) AS q), \
         tx AS (SELECT id, d, amount, \
                CASE WHEN id IS NULL OR d IS NULL OR amount IS NULL THEN 'missing_value' \
                     WHEN NOT (amount >= 0 AND amount <= {MAX_AMOUNT:?}) THEN 'bad_amount' \
                     WHEN {t_date} THEN 'bad_date' \
                     WHEN NOT EXISTS (SELECT 1 FROM cx WHERE cx.id = tr.id) THEN 'unknown_customer' \
                END AS bad FROM tr), \
         t AS (SELECT id, d, amount FROM tx WHERE bad IS NULL AND id IN (SELECT id FROM c)), \
         ir AS (SELECT customer_id::text AS id, ts::date AS d, lower(kind::text) AS kind \
                FROM ({interactions}) AS q), \
         ix AS (SELECT id, d, kind, \
                CASE WHEN id IS NULL OR d IS NULL THEN 'missing_value' \
                     WHEN {i_date} THEN 'bad_date' \
                     WHEN NOT EXISTS (SELECT 1 FROM cx WHERE cx.id = ir.id) THEN 'unknown_customer' \
                END AS bad FROM ir), \
         i AS (SELECT id, d, kind FROM ix WHERE bad IS NULL AND id IN (SELECT id FROM c))",
        customers = source.customers,
        transactions = source.transactions,
        interactions = source.interactions,
    )
}

/// The bad rows: (table, reason, count, an example customer id).
const BAD_ROWS: &str = "\
    SELECT tab, bad, count(*), min(id) FROM ( \
        SELECT 'customers' AS tab, bad, id FROM cx WHERE bad IS NOT NULL \
        UNION ALL SELECT 'transactions', bad, id FROM tx WHERE bad IS NOT NULL \
        UNION ALL SELECT 'interactions', bad, id FROM ix WHERE bad IS NOT NULL) AS b \
    GROUP BY tab, bad ORDER BY tab, bad";

/// Counts over the whole tables: rows, refusals, rows after as_of ($1).
const COUNTS: &str = "\
    SELECT (SELECT count(*) FROM cx)::float8, (SELECT count(*) FROM tx)::float8, \
           (SELECT count(*) FROM ix)::float8, (SELECT count(*) FROM c WHERE NOT consent)::float8, \
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

pub(crate) fn failed(reason: String) -> DataError {
    DataError::Read {
        path: "postgres".into(),
        reason,
    }
}

/// The bad rows found by [`BAD_ROWS`] under the site's policy: the first
/// stops the site by default; skipped, each table's count is held against
/// `max_bad_rows` (`rows` gives a table's row count).
pub(crate) fn judge_bad_rows(
    bad: &[(String, String, i64, Option<String>)],
    policy: &BadRowPolicy,
    rows: impl Fn(&str) -> u64,
) -> Result<SkippedRows, DataError> {
    let mut skipped = SkippedRows::default();
    for (table, reason, count, example) in bad {
        let path = format!("postgres {table} query");
        let what = format!(
            "{count} rows with {} (customer {:?} among them)",
            describe(reason),
            example.as_deref().unwrap_or_default()
        );
        if policy.on_bad_row == OnBadRow::Fail {
            return Err(DataError::Read {
                path: path.into(),
                reason: what,
            });
        }
        let reason = Reason::ALL
            .into_iter()
            .find(|r| r.name() == reason)
            .unwrap_or(Reason::Malformed);
        let skips = skipped.tables.entry(table.clone()).or_default();
        *skips.by_reason.entry(reason).or_default() += *count as u64;
        if policy
            .max_bad_rows
            .exceeded(skips.total(), Some(rows(table)))
        {
            return Err(DataError::TooManyBadRows {
                path: path.into(),
                skipped: skips.total(),
                limit: policy.max_bad_rows.to_string(),
                first: what,
            });
        }
    }
    Ok(skipped)
}

/// A bad-row reason of [`BAD_ROWS`] in words.
fn describe(reason: &str) -> &'static str {
    match reason {
        "missing_value" => "a missing value (missing_value)",
        "bad_boolean" => "a boolean not true/false, t/f, yes/no or 1/0 (bad_boolean)",
        "duplicate_customer" => "a customer_id that appears twice (duplicate_customer)",
        "bad_amount" => "an amount that is negative or too large (bad_amount)",
        "unknown_customer" => "a customer_id not in the customers table (unknown_customer)",
        "bad_number" => "a feature value that is not a finite number (bad_number)",
        "bad_date" => "a date outside the plausible range (bad_date)",
        _ => "an unreadable value",
    }
}

/// Checks the bank's rows and computes every consenting customer's
/// features as of `as_of` in the database.
pub async fn features(
    source: &Source,
    as_of: Date,
    policy: &BadRowPolicy,
) -> Result<Features, DataError> {
    let (client, connection) = tokio_postgres::connect(&source.connection, NoTls)
        .await
        .map_err(|e| failed(format!("connecting: {e}")))?;
    let driver = tokio::spawn(connection);
    let tables = canonical(source, as_of, policy);
    let sql = |e: tokio_postgres::Error| failed(format!("the queries failed: {e}"));
    // One snapshot for every statement.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(sql)?;
    let day = as_of.to_string();
    let counts = client
        .query_one(&format!("WITH {tables} {COUNTS}"), &[&day])
        .await
        .map_err(sql)?;
    let count = |i: usize| counts.get::<_, f64>(i) as u64;
    let bad = client
        .query(&format!("WITH {tables} {BAD_ROWS}"), &[])
        .await
        .map_err(sql)?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect::<Vec<(String, String, i64, Option<String>)>>();
    let skipped = judge_bad_rows(&bad, policy, |table| match table {
        "customers" => count(0),
        "transactions" => count(1),
        _ => count(2),
    })?;
    let rows = client
        .query(&format!("WITH {tables}, {FEATURES}"), &[&day])
        .await
        .map_err(sql)?;
    client.batch_execute("COMMIT").await.map_err(sql)?;
    skipped.log();
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
        skipped,
    })
}

/// A SQL identifier, quoted.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A feature partner's table from its query (`table.path` holds the query
/// text): the offered columns as numbers, the consent column read with the
/// contract's boolean spellings, bad rows under the site's policy. Values
/// are clipped and transformed here, as on the file path.
pub async fn partner_rows(
    connection: &str,
    table: &FeatureTable,
    policy: &BadRowPolicy,
) -> Result<PartnerRows, DataError> {
    let (client, driver) = tokio_postgres::connect(connection, NoTls)
        .await
        .map_err(|e| failed(format!("connecting: {e}")))?;
    let driver = tokio::spawn(driver);
    let sql = |e: tokio_postgres::Error| failed(format!("the features query failed: {e}"));
    let names: Vec<&String> = table.columns.keys().collect();
    let values: Vec<String> = names
        .iter()
        .map(|n| format!("({})::float8", quoted(n)))
        .collect();
    let consent = table
        .consent
        .as_deref()
        .map_or("NULL::text".to_string(), |c| {
            format!("lower({}::text)", quoted(c))
        });
    let query = format!(
        "SELECT customer_id::text, {consent}, count(*) OVER (PARTITION BY customer_id::text), {} \
         FROM ({}) AS q",
        values.join(", "),
        table.path.to_string_lossy()
    );
    let rows = client.query(&query, &[]).await.map_err(sql)?;
    drop(client);
    let _ = driver.await;
    let mut out = PartnerRows {
        columns: names.iter().map(|n| n.to_string()).collect(),
        ids: Vec::new(),
        values: Vec::new(),
        excluded_no_consent: 0,
        rows: rows.len() as u64,
        skipped: SkippedRows::default(),
    };
    let mut bad: BTreeMap<&'static str, (i64, Option<String>)> = BTreeMap::new();
    for row in &rows {
        let id: Option<String> = row.get(0);
        let consent: Option<String> = row.get(1);
        let copies: i64 = row.get(2);
        let raw: Vec<Option<f64>> = (0..names.len()).map(|i| row.get(3 + i)).collect();
        let reason = if id.is_none() || raw.iter().any(Option::is_none) {
            Some("missing_value")
        } else if raw.iter().flatten().any(|v| !v.is_finite()) {
            Some("bad_number")
        } else if table.consent.is_some() && consent.as_deref().and_then(parse_bool).is_none() {
            Some("bad_boolean")
        } else if copies > 1 {
            Some("duplicate_customer")
        } else {
            None
        };
        if let Some(reason) = reason {
            let entry = bad.entry(reason).or_insert((0, None));
            entry.0 += 1;
            entry.1 = entry.1.take().or(id);
            continue;
        }
        if consent.as_deref().and_then(parse_bool) == Some(false) {
            out.excluded_no_consent += 1;
            continue;
        }
        out.ids.push(id.unwrap_or_default());
        for ((_, column), v) in table.columns.iter().zip(raw.into_iter().flatten()) {
            out.values.push(column.apply(v));
        }
    }
    let bad: Vec<(String, String, i64, Option<String>)> = bad
        .into_iter()
        .map(|(reason, (n, example))| ("features".into(), reason.into(), n, example))
        .collect();
    out.skipped = judge_bad_rows(&bad, policy, |_| out.rows)?;
    out.skipped.log();
    Ok(out)
}
