//! RFMLT features from a bank's three canonical tables (design.md, "Data
//! contract"), computed locally and streaming: memory grows with the number
//! of customers, never with the number of transactions.
//!
//! As of the job's `as_of` date, over rows with `ts <= as_of`: R = days from
//! the last purchase to `as_of` (no purchase: from `since`, or from the
//! earliest date in the site's data, among consenting customers' rows); F = number of purchases; M = total
//! amount; L = days from first to last purchase (0 with fewer than two);
//! T = number of interactions, also counted per kind. Customers who refused
//! marketing are dropped before anything else. Every bad row is an error
//! naming the file, line and column; nothing is computed from a bad file.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use arrow_array::Array;
use std::path::{Path, PathBuf};

use thiserror::Error;
use time::Date;

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
        column: &'static str,
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
        column: &'static str,
        /// Why.
        reason: String,
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
}

impl ColumnNames {
    /// The first mapped name that is not a canonical column of its table,
    /// as `table.name`.
    pub fn unknown(&self) -> Option<String> {
        let tables: [(&str, &BTreeMap<String, String>, &[&str]); 3] = [
            ("transactions", &self.transactions, &TRANSACTION_COLUMNS),
            ("interactions", &self.interactions, &INTERACTION_COLUMNS),
            ("customers", &self.customers, &CUSTOMER_COLUMNS),
        ];
        tables.into_iter().find_map(|(table, map, canonical)| {
            map.keys()
                .find(|k| !canonical.contains(&k.as_str()))
                .map(|k| format!("{table}.{k}"))
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
}

struct CustomerRow {
    index: Option<usize>,
    since: Option<Date>,
}

#[derive(Default, Clone, Copy)]
struct Purchases {
    count: u64,
    total: f64,
    first: Option<Date>,
    last: Option<Date>,
}

/// Parses an ISO-8601 date, or the date part of an ISO-8601 date-time.
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
    Date::from_calendar_date(digits(0..4)? as i32, month, day).ok()
}

/// The customers table by id, with a one-entry cache: rows of one customer
/// usually come together.
struct Lookup<'k> {
    known: &'k CustomerIndex,
    last_id: String,
    last: Option<&'k CustomerRow>,
}

/// The customers table by id. Each id is stored once, in table order, and
/// later moved into its customer's features.
#[derive(Default)]
struct CustomerIndex {
    hasher: foldhash::fast::RandomState,
    table: hashbrown::HashTable<u32>,
    ids: Vec<String>,
    rows: Vec<CustomerRow>,
}

impl CustomerIndex {
    fn with_capacity(customers: usize) -> Self {
        Self {
            table: hashbrown::HashTable::with_capacity(customers),
            ids: Vec::with_capacity(customers),
            rows: Vec::with_capacity(customers),
            ..Self::default()
        }
    }

    fn get(&self, id: &str) -> Option<&CustomerRow> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&i| self.ids[i as usize] == id)
            .map(|&i| &self.rows[i as usize])
    }

    /// Adds a customer; false if the id is already there.
    fn insert(&mut self, id: &str, row: CustomerRow) -> bool {
        let Self {
            hasher,
            table,
            ids,
            rows,
        } = self;
        let hash = hasher.hash_one(id);
        if table.find(hash, |&i| ids[i as usize] == id).is_some() {
            return false;
        }
        table.insert_unique(hash, ids.len() as u32, |&i| {
            hasher.hash_one(&ids[i as usize])
        });
        ids.push(id.to_string());
        rows.push(row);
        true
    }
}

impl<'k> Lookup<'k> {
    fn new(known: &'k CustomerIndex) -> Self {
        Self {
            known,
            last_id: String::new(),
            last: None,
        }
    }

    /// The customer a row names, which must be in the customers table.
    fn customer(&mut self, row: &Row<'_>) -> Result<&'k CustomerRow, DataError> {
        let id = row.text("customer_id")?;
        if let Some(last) = self.last.filter(|_| self.last_id == id) {
            return Ok(last);
        }
        let found = self.known.get(id).ok_or_else(|| {
            row.bad(
                "customer_id",
                format!("{id:?} is not in the customers table"),
            )
        })?;
        self.last_id.clear();
        self.last_id.push_str(id);
        self.last = Some(found);
        Ok(found)
    }
}

/// Where a table's records come from: a CSV file, or a Parquet file whose
/// needed columns are cast to text batch by batch so that both formats go
/// through the same checks.
enum Source {
    Csv(csv::Reader<std::fs::File>),
    Parquet(parquet::arrow::arrow_reader::ParquetRecordBatchReader),
}

struct Reader {
    path: PathBuf,
    source: Source,
    /// Canonical column → position in the file (CSV) or in the batch
    /// projection (Parquet).
    columns: Vec<(&'static str, usize)>,
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

impl Reader {
    fn open(
        path: &Path,
        names: &BTreeMap<String, String>,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> Result<Self, DataError> {
        let read_error = |e: &dyn std::fmt::Display| DataError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let (source, headers): (Source, Vec<String>) = if is_parquet(path) {
            let file = std::fs::File::open(path).map_err(|e| read_error(&e))?;
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| read_error(&e))?;
            let headers = builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let reader = builder
                .with_batch_size(8192)
                .build()
                .map_err(|e| read_error(&e))?;
            (Source::Parquet(reader), headers)
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .from_path(path)
                .map_err(|e| read_error(&e))?;
            let headers = reader
                .headers()
                .map_err(|e| read_error(&e))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            (Source::Csv(reader), headers)
        };
        let mut columns = Vec::new();
        for &name in required.iter().chain(optional) {
            let header = names.get(name).map_or(name, String::as_str);
            match headers.iter().position(|h| h == header) {
                Some(i) => {
                    columns.push((name, i));
                }
                None if required.contains(&name) => {
                    return Err(DataError::MissingColumn {
                        path: path.to_path_buf(),
                        column: name,
                        header: header.to_string(),
                    });
                }
                None => {}
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            source,
            columns,
        })
    }

    /// Calls `row` for every record with its line number (CSV) or 1-based
    /// row number (Parquet).
    fn for_each(
        &mut self,
        mut row: impl FnMut(&Row<'_>) -> Result<(), DataError>,
    ) -> Result<u64, DataError> {
        let read_error = |path: &Path, e: &dyn std::fmt::Display| DataError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut record = csv::StringRecord::new();
        let mut count = 0;
        let reader = match &mut self.source {
            Source::Parquet(batches) => {
                // The projection: the needed columns, in `columns` order.
                let projected: Vec<(&'static str, usize)> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(k, &(name, _))| (name, k))
                    .collect();
                for batch in batches {
                    let batch = batch.map_err(|e| read_error(&self.path, &e))?;
                    let texts = self
                        .columns
                        .iter()
                        .map(|&(_, i)| {
                            arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Utf8)
                                .map_err(|e| read_error(&self.path, &e))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let texts: Vec<&arrow_array::StringArray> = texts
                        .iter()
                        .map(|a| {
                            a.as_any()
                                .downcast_ref()
                                .expect("a cast to Utf8 gives a StringArray")
                        })
                        .collect();
                    for i in 0..batch.num_rows() {
                        record.clear();
                        for text in &texts {
                            record.push_field(if text.is_null(i) { "" } else { text.value(i) });
                        }
                        count += 1;
                        row(&Row {
                            path: &self.path,
                            columns: &projected,
                            record: &record,
                            line: count,
                        })?;
                    }
                }
                return Ok(count);
            }
            Source::Csv(reader) => reader,
        };
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => return Ok(count),
                Ok(true) => {
                    count += 1;
                    let line = record.position().map_or(0, |p| p.line());
                    row(&Row {
                        path: &self.path,
                        columns: &self.columns,
                        record: &record,
                        line,
                    })?;
                }
                Err(e) => return Err(read_error(&self.path, &e)),
            }
        }
    }
}

struct Row<'a> {
    path: &'a Path,
    columns: &'a [(&'static str, usize)],
    record: &'a csv::StringRecord,
    line: u64,
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

impl Row<'_> {
    fn bad(&self, column: &'static str, reason: impl Into<String>) -> DataError {
        DataError::BadValue {
            path: self.path.to_path_buf(),
            line: self.line,
            column,
            reason: reason.into(),
        }
    }

    fn get(&self, column: &'static str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(name, _)| *name == column)
            .and_then(|&(_, i)| self.record.get(i))
            .map(str::trim)
    }

    fn text(&self, column: &'static str) -> Result<&str, DataError> {
        match self.get(column) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.bad(column, "empty")),
        }
    }

    fn date(&self, column: &'static str) -> Result<Date, DataError> {
        let text = self.text(column)?;
        parse_date(text)
            .ok_or_else(|| self.bad(column, format!("{text:?} is not an ISO-8601 date")))
    }
}

/// Computes the features of every consenting customer as of `as_of`.
pub fn compute(tables: &Tables, as_of: Date) -> Result<Features, DataError> {
    // Sized from the file (rows are rarely under 24 bytes) so the index is
    // not rebuilt as it grows.
    let expected = std::fs::metadata(&tables.customers).map_or(0, |m| m.len() / 24) as usize;
    let mut known = CustomerIndex::with_capacity(expected);
    let mut customers: Vec<Customer> = Vec::with_capacity(expected);
    let mut excluded_no_consent = 0;
    let mut reader = Reader::open(
        &tables.customers,
        &tables.columns.customers,
        &CUSTOMER_COLUMNS[..3],
        &CUSTOMER_COLUMNS[3..],
    )?;
    let customer_rows = reader.for_each(|row| {
        let id = row.text("customer_id")?;
        let consent = match row.text("consent_marketing")? {
            v if v.eq_ignore_ascii_case("true") => true,
            v if v.eq_ignore_ascii_case("false") => false,
            other => {
                return Err(row.bad(
                    "consent_marketing",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let converted = match row.text("converted")? {
            "1" => true,
            "0" => false,
            other => return Err(row.bad("converted", format!("{other:?} is not 0 or 1"))),
        };
        let since = match row.get("since") {
            Some(v) if !v.is_empty() => Some(row.date("since")?),
            _ => None,
        };
        let index = consent.then_some(customers.len());
        if !known.insert(id, CustomerRow { index, since }) {
            return Err(row.bad("customer_id", format!("{id:?} appears twice")));
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

    // Both dated tables are read at once, one thread each; they share only
    // the read-only customer index.
    let index = &known;
    let consenting = customers.len();
    let (transactions, interactions) = std::thread::scope(|scope| {
        let transactions = scope.spawn(move || read_purchases(tables, index, consenting, as_of));
        let interactions = read_interactions(tables, index, consenting, as_of);
        (transactions.join(), interactions)
    });
    let transactions = transactions.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let interactions = interactions?;
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
    })
}

/// What one pass over a dated table found.
struct Pass<T> {
    per_customer: Vec<T>,
    window: Window,
    rows: u64,
}

fn read_purchases(
    tables: &Tables,
    known: &CustomerIndex,
    consenting: usize,
    as_of: Date,
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
    let rows = reader.for_each(|row| {
        let customer = lookup.customer(row)?;
        let ts = row.date("ts")?;
        let amount_text = row.text("amount")?;
        let amount: f64 = amount_text
            .parse()
            .map_err(|_| row.bad("amount", format!("{amount_text:?} is not a number")))?;
        if !(amount > 0.0 && amount.is_finite()) {
            return Err(row.bad("amount", format!("{amount_text} is not a positive amount")));
        }
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
    })
}

fn read_interactions(
    tables: &Tables,
    known: &CustomerIndex,
    consenting: usize,
    as_of: Date,
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
    let rows = reader.for_each(|row| {
        let customer = lookup.customer(row)?;
        let ts = row.date("ts")?;
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
    })
}
