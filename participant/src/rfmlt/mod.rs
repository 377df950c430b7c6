//! RFMLT features from a bank's three canonical tables (design.md, "Data
//! contract"), computed locally and streaming: memory grows with the number
//! of customers, never with the number of transactions.
//!
//! As of the job's `as_of` date, over rows with `ts <= as_of`: R = days from
//! the last purchase to `as_of` (no purchase: from `since`, or from the
//! earliest date in the site's data, among consenting customers' rows); F = number of purchases; M = total
//! amount; L = days from first to last purchase (0 with fewer than two);
//! T = number of interactions, also counted per kind. Customers who refused
//! marketing are dropped before anything else. A bad row is an error
//! naming the file, line and column, or, under the site's bad-row policy
//! ([`bad_rows`]), skipped and counted.
//!
//! A purchase is a row with an amount >= 0 (a free item is a purchase);
//! booleans are true/false, t/f, yes/no or 1/0 in any case.

mod bad_rows;
mod index;
pub(crate) mod reader;

use std::collections::BTreeMap;
use std::path::PathBuf;

use thiserror::Error;
use time::Date;

pub use bad_rows::{
    BadRowPolicy, DAYS_AFTER_AS_OF, EARLIEST_DATE, MAX_AMOUNT, MaxBadRows, OnBadRow, Reason,
    SkippedRows, TableSkips, parse_bool,
};
pub(crate) use bad_rows::{RowError, Tally};
use index::{CustomerIndex, CustomerRow, Lookup};
use reader::Reader;
pub use reader::is_parquet;

/// A table that cannot be used.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum DataError {
    /// The file cannot be opened or read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A required column is missing from the header.
    #[error("{path}: missing column `{header}` (the table's `{column}`)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The canonical column.
        column: String,
        /// The header it was looked for under (after any mapping).
        header: String,
    },
    /// A value is not acceptable.
    #[error("{path}: line {line}, column `{column}`: {reason}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// The column.
        column: String,
        /// Why.
        reason: String,
    },
    /// Under `on_bad_row = "skip"`, a table had more bad rows than the
    /// site allows.
    #[error(
        "{path}: {skipped} bad rows skipped, more than max_bad_rows = {limit} (the first: {first})"
    )]
    TooManyBadRows {
        /// The file.
        path: PathBuf,
        /// Rows skipped when the limit was passed.
        skipped: u64,
        /// The limit, as configured.
        limit: String,
        /// The first bad row's error.
        first: String,
    },
}

/// The three canonical tables of one site.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `customer_id, ts, amount`.
    pub transactions: PathBuf,
    /// `customer_id, ts, kind`.
    pub interactions: PathBuf,
    /// `customer_id, consent_marketing, converted[, since]`.
    pub customers: PathBuf,
    /// The bank's own names for canonical columns, per table.
    pub columns: ColumnNames,
}

/// Canonical columns of each table, as the data contract names them.
pub const TRANSACTION_COLUMNS: [&str; 3] = ["customer_id", "ts", "amount"];
/// Canonical columns of the interactions table.
pub const INTERACTION_COLUMNS: [&str; 3] = ["customer_id", "ts", "kind"];
/// Canonical columns of the customers table.
pub const CUSTOMER_COLUMNS: [&str; 4] = ["customer_id", "consent_marketing", "converted", "since"];

/// A bank's own column names: canonical name → header in its file, per
/// table. Columns not named keep their canonical name.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnNames {
    /// For the transactions table.
    pub transactions: BTreeMap<String, String>,
    /// For the interactions table.
    pub interactions: BTreeMap<String, String>,
    /// For the customers table.
    pub customers: BTreeMap<String, String>,
    /// For a feature partner's table (`customer_id`, the offered columns,
    /// the consent column).
    pub features: BTreeMap<String, String>,
}

impl ColumnNames {
    /// The first mapped name that is not a column of its table, as
    /// `table.name`; a feature table's columns are `customer_id`, the
    /// `offered` ones and its `consent` column.
    pub fn unknown(&self, offered: &[&str], consent: Option<&str>) -> Option<String> {
        let tables: [(&str, &BTreeMap<String, String>, &[&str]); 3] = [
            ("transactions", &self.transactions, &TRANSACTION_COLUMNS),
            ("interactions", &self.interactions, &INTERACTION_COLUMNS),
            ("customers", &self.customers, &CUSTOMER_COLUMNS),
        ];
        let canonical = tables.into_iter().find_map(|(table, map, canonical)| {
            map.keys()
                .find(|k| !canonical.contains(&k.as_str()))
                .map(|k| format!("{table}.{k}"))
        });
        canonical.or_else(|| {
            self.features
                .keys()
                .find(|k| {
                    k.as_str() != "customer_id"
                        && !offered.contains(&k.as_str())
                        && Some(k.as_str()) != consent
                })
                .map(|k| format!("features.{k}"))
        })
    }
}

/// Interaction counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// `inquiry` rows.
    pub inquiry: u64,
    /// `save` rows.
    pub save: u64,
    /// `search` rows.
    pub search: u64,
    /// Any other kind.
    pub other: u64,
}

/// One consenting customer's features.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// The bank's identifier (never leaves the site).
    pub id: String,
    /// Recency, days.
    pub r: f64,
    /// Frequency: purchases.
    pub f: f64,
    /// Monetary: total amount.
    pub m: f64,
    /// Length: days from first to last purchase.
    pub l: f64,
    /// Interactions.
    pub t: f64,
    /// Interactions by kind.
    pub kinds: KindCounts,
    /// The propensity label.
    pub converted: bool,
}

/// The features of a site, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Consenting customers, in the order of the customers table.
    pub customers: Vec<Customer>,
    /// Customers dropped for refusing marketing.
    pub excluded_no_consent: usize,
    /// Rows read from each table: transactions, interactions, customers.
    pub rows: [u64; 3],
    /// Rows dated after `as_of`, ignored.
    pub rows_after_as_of: u64,
    /// Bad rows skipped under the site's bad-row policy.
    pub skipped: SkippedRows,
}

#[derive(Default, Clone, Copy)]
struct Purchases {
    count: u64,
    total: f64,
    first: Option<Date>,
    last: Option<Date>,
}

/// Parses an ISO-8601 date (`YYYY-MM-DD`), or an ISO-8601 date-time
/// (`T` or a space between date and time) whose day is taken in UTC when it
/// carries an offset (`Z`, `+01:00`) and as written when it does not.
/// Anything else after the date is refused.
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || !matches!(bytes.get(10), None | Some(b'T' | b' ')) {
        return None;
    }
    // The fixed YYYY-MM-DD layout is read directly (the hot path of every
    // dated row); `time` still validates the calendar date.
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    let date = Date::from_calendar_date(digits(0..4)? as i32, month, day).ok()?;
    if bytes.len() == 10 {
        return Some(date);
    }
    date_time(&text[11..], date)
}

/// The day of `date` at the ISO-8601 time (and offset) `rest`.
fn date_time(rest: &str, date: Date) -> Option<Date> {
    use time::format_description::well_known::Iso8601;
    // `time` parses the time of day with its offset; the date is ours.
    let iso = format!("{date}T{rest}");
    if let Ok(at) = time::OffsetDateTime::parse(&iso, &Iso8601::DEFAULT) {
        return Some(at.to_offset(time::UtcOffset::UTC).date());
    }
    time::PrimitiveDateTime::parse(&iso, &Iso8601::DEFAULT)
        .ok()
        .map(|at| at.date())
}

/// Which dated rows count: those on or before `as_of`. Also tracks the
/// earliest such date among consenting customers' rows.
struct Window {
    as_of: Date,
    earliest: Option<Date>,
    after: u64,
}

impl Window {
    /// Whether a row dated `ts` counts.
    fn admit(&mut self, ts: Date, customer: &CustomerRow) -> bool {
        if ts > self.as_of {
            self.after += 1;
            return false;
        }
        if customer.index.is_some() {
            self.earliest = Some(self.earliest.map_or(ts, |e| e.min(ts)));
        }
        true
    }
}

/// Computes the features of every consenting customer as of `as_of`; the
/// first bad row stops it.
pub fn compute(tables: &Tables, as_of: Date) -> Result<Features, DataError> {
    compute_with(tables, as_of, &BadRowPolicy::default())
}

/// Computes the features of every consenting customer as of `as_of`,
/// skipping bad rows as `policy` allows.
pub fn compute_with(
    tables: &Tables,
    as_of: Date,
    policy: &BadRowPolicy,
) -> Result<Features, DataError> {
    let CustomerPass {
        known,
        mut customers,
        excluded_no_consent,
        rows: customer_rows,
        skips: customer_skips,
    } = read_customers(tables, as_of, policy)?;

    // Both dated tables are read at once, one thread each; they share only
    // the read-only customer index.
    let index = &known;
    let consenting = customers.len();
    let (transactions, interactions) = std::thread::scope(|scope| {
        let transactions =
            scope.spawn(move || read_purchases(tables, index, consenting, as_of, policy));
        let interactions = read_interactions(tables, index, consenting, as_of, policy);
        (transactions.join(), interactions)
    });
    let transactions = transactions.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let interactions = interactions?;
    let skipped = SkippedRows {
        tables: [customer_skips, transactions.skips, interactions.skips]
            .into_iter()
            .filter(|(_, skips)| skips.total() > 0)
            .collect(),
    };
    let window = Window {
        as_of,
        earliest: match (transactions.window.earliest, interactions.window.earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        after: transactions.window.after + interactions.window.after,
    };
    let purchases = transactions.per_customer;
    for (c, (t, kinds)) in customers.iter_mut().zip(interactions.per_customer) {
        c.t = t as f64;
        c.kinds = kinds;
    }
    let (transaction_rows, interaction_rows) = (transactions.rows, interactions.rows);

    let days = |from: Date, to: Date| (to - from).whole_days().max(0) as f64;
    let site_start = window.earliest.unwrap_or(as_of);
    let CustomerIndex { ids, rows, .. } = known;
    for (id, row) in ids.into_iter().zip(rows) {
        let Some(i) = row.index else { continue };
        let p = purchases[i];
        let c = &mut customers[i];
        c.id = id;
        c.f = p.count as f64;
        c.m = p.total;
        c.r = match p.last {
            Some(last) => days(last, as_of),
            None => days(row.since.unwrap_or(site_start).min(as_of), as_of),
        };
        c.l = match (p.first, p.last) {
            (Some(first), Some(last)) if p.count >= 2 => days(first, last),
            _ => 0.0,
        };
    }
    Ok(Features {
        customers,
        excluded_no_consent,
        rows: [transaction_rows, interaction_rows, customer_rows],
        rows_after_as_of: window.after,
        skipped,
    })
}

/// The customers table read: the index of every customer (consenting or
/// not), the consenting customers' zeroed features with their labels, the
/// refusals, the rows read and the rows skipped.
struct CustomerPass {
    known: CustomerIndex,
    customers: Vec<Customer>,
    excluded_no_consent: usize,
    rows: u64,
    skips: (String, TableSkips),
}

fn read_customers(
    tables: &Tables,
    as_of: Date,
    policy: &BadRowPolicy,
) -> Result<CustomerPass, DataError> {
    // Sized from the file (rows are rarely under 24 bytes) so the index is
    // not rebuilt as it grows; capped, so a huge (or sparse) file cannot make
    // the first allocation fail.
    let expected = std::fs::metadata(&tables.customers)
        .map_or(0, |m| m.len() / 24)
        .min(1 << 22) as usize;
    let mut known = CustomerIndex::with_capacity(expected);
    let mut customers: Vec<Customer> = Vec::with_capacity(expected);
    let mut excluded_no_consent = 0;
    let mut reader = Reader::open(
        &tables.customers,
        &tables.columns.customers,
        &CUSTOMER_COLUMNS[..3],
        &CUSTOMER_COLUMNS[3..],
    )?;
    let (rows, skips) = reader.for_each(Tally::new(policy, "customers"), |row| {
        let id = row.text("customer_id")?;
        let parsed = (|| -> Result<_, RowError> {
            let consent = row.boolean("consent_marketing")?;
            let converted = row.boolean("converted")?;
            let since = match row.get("since") {
                Some(v) if !v.is_empty() => Some(row.date("since", as_of, policy)?),
                _ => None,
            };
            Ok((consent, converted, since))
        })();
        let (consent, converted, since) = match parsed {
            Ok(values) => values,
            Err(bad) => {
                // A customer whose row is skipped is left out like one
                // who refused marketing: their other rows are ignored,
                // never counted as unknown.
                let excluded = CustomerRow {
                    index: None,
                    since: None,
                };
                known.insert(id, excluded);
                return Err(bad);
            }
        };
        let index = consent.then_some(customers.len());
        if !known.insert(id, CustomerRow { index, since }) {
            return Err(row.bad(
                Reason::DuplicateCustomer,
                "customer_id",
                format!("{id:?} appears twice"),
            ));
        }
        if consent {
            let zero = Customer {
                id: String::new(),
                r: 0.0,
                f: 0.0,
                m: 0.0,
                l: 0.0,
                t: 0.0,
                kinds: KindCounts::default(),
                converted,
            };
            customers.push(zero);
        } else {
            excluded_no_consent += 1;
        }
        Ok(())
    })?;

    Ok(CustomerPass {
        known,
        customers,
        excluded_no_consent,
        rows,
        skips,
    })
}

/// What one pass over a dated table found.
struct Pass<T> {
    per_customer: Vec<T>,
    window: Window,
    rows: u64,
    skips: (String, TableSkips),
}

fn read_purchases(
    tables: &Tables,
    known: &CustomerIndex,
    consenting: usize,
    as_of: Date,
    policy: &BadRowPolicy,
) -> Result<Pass<Purchases>, DataError> {
    let mut window = Window {
        as_of,
        earliest: None,
        after: 0,
    };
    let mut purchases = vec![Purchases::default(); consenting];
    let mut reader = Reader::open(
        &tables.transactions,
        &tables.columns.transactions,
        &TRANSACTION_COLUMNS,
        &[],
    )?;
    let mut lookup = Lookup::new(known);
    let (rows, skips) = reader.for_each(Tally::new(policy, "transactions"), |row| {
        let customer = lookup.customer(row)?;
        let ts = row.date("ts", as_of, policy)?;
        let amount = row.amount("amount")?;
        if !window.admit(ts, customer) {
            return Ok(());
        }
        if let Some(i) = customer.index {
            let p = &mut purchases[i];
            p.count += 1;
            p.total += amount;
            p.first = Some(p.first.map_or(ts, |f| f.min(ts)));
            p.last = Some(p.last.map_or(ts, |l| l.max(ts)));
        }
        Ok(())
    })?;
    Ok(Pass {
        per_customer: purchases,
        window,
        rows,
        skips,
    })
}

fn read_interactions(
    tables: &Tables,
    known: &CustomerIndex,
    consenting: usize,
    as_of: Date,
    policy: &BadRowPolicy,
) -> Result<Pass<(u64, KindCounts)>, DataError> {
    let mut window = Window {
        as_of,
        earliest: None,
        after: 0,
    };
    let mut counts = vec![(0u64, KindCounts::default()); consenting];
    let mut reader = Reader::open(
        &tables.interactions,
        &tables.columns.interactions,
        &INTERACTION_COLUMNS,
        &[],
    )?;
    let mut lookup = Lookup::new(known);
    let (rows, skips) = reader.for_each(Tally::new(policy, "interactions"), |row| {
        let customer = lookup.customer(row)?;
        let ts = row.date("ts", as_of, policy)?;
        let kind = row.get("kind").unwrap_or_default();
        if !window.admit(ts, customer) {
            return Ok(());
        }
        if let Some(i) = customer.index {
            let (t, kinds) = &mut counts[i];
            *t += 1;
            if kind.eq_ignore_ascii_case("inquiry") {
                kinds.inquiry += 1;
            } else if kind.eq_ignore_ascii_case("save") {
                kinds.save += 1;
            } else if kind.eq_ignore_ascii_case("search") {
                kinds.search += 1;
            } else {
                kinds.other += 1;
            }
        }
        Ok(())
    })?;
    Ok(Pass {
        per_customer: counts,
        window,
        rows,
        skips,
    })
}
