//! A site's bad-row policy (`[data] on_bad_row`, `max_bad_rows`) and the
//! tally of what it skipped. By default the first bad row stops the site
//! with its file, line and column; with `on_bad_row = "skip"` bad rows are
//! left out and counted per table and reason, until a table has more than
//! `max_bad_rows` of them. The tally stays at the site (its log, `features`
//! and its local output); only the total count may leave, in the census.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DataError;

/// What the site does with a bad row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// The first bad row stops the site (the job is declined).
    #[default]
    Fail,
    /// Bad rows are skipped and counted, up to `max_bad_rows` per table.
    Skip,
}

/// The most rows one table may have skipped: a whole number, or a fraction
/// of the table's rows (below 1, e.g. `0.001`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MaxBadRows {
    /// A count of rows.
    Count(u64),
    /// A fraction of the rows read from the table.
    Fraction(f64),
}

impl Default for MaxBadRows {
    fn default() -> Self {
        Self::Count(0)
    }
}

impl MaxBadRows {
    /// Whether `skipped` rows of a table of `rows` rows are over the limit.
    /// A fraction is judged once the table is read (`rows` final).
    pub(crate) fn exceeded(self, skipped: u64, rows: Option<u64>) -> bool {
        match (self, rows) {
            (Self::Count(max), _) => skipped > max,
            (Self::Fraction(f), Some(rows)) => skipped as f64 > f * rows as f64,
            (Self::Fraction(_), None) => false,
        }
    }

    /// Whether the value is usable (a fraction in [0, 1)).
    pub fn is_valid(self) -> bool {
        match self {
            Self::Count(_) => true,
            Self::Fraction(f) => (0.0..1.0).contains(&f),
        }
    }
}

impl std::fmt::Display for MaxBadRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Fraction(x) => write!(f, "{x} of the table's rows"),
        }
    }
}

/// What makes a row bad beyond its format, and what the site does with
/// one: `on_bad_row`, `max_bad_rows` and the plausible dates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadRowPolicy {
    /// Fail or skip.
    pub on_bad_row: OnBadRow,
    /// The limit per table when skipping.
    pub max_bad_rows: MaxBadRows,
    /// The earliest plausible date of a row (`since` included).
    pub earliest_date: time::Date,
    /// Rows dated more than this many days after `as_of` are implausible
    /// (rows after `as_of` within it are ignored and counted, as always).
    pub days_after_as_of: u32,
}

/// The earliest plausible date by default.
pub const EARLIEST_DATE: time::Date = time::macros::date!(1900 - 01 - 01);
/// Days after `as_of` a row may be dated by default.
pub const DAYS_AFTER_AS_OF: u32 = 366;
/// The largest amount one purchase may have (a larger one is a bad row):
/// far above any retail payment, and small enough that no customer's sum
/// overflows.
pub const MAX_AMOUNT: f64 = 1e12;

impl Default for BadRowPolicy {
    fn default() -> Self {
        Self {
            on_bad_row: OnBadRow::default(),
            max_bad_rows: MaxBadRows::default(),
            earliest_date: EARLIEST_DATE,
            days_after_as_of: DAYS_AFTER_AS_OF,
        }
    }
}

impl BadRowPolicy {
    /// Whether a row dated `day` is plausible for a job as of `as_of`.
    pub fn plausible(&self, day: time::Date, as_of: time::Date) -> bool {
        let latest = as_of.saturating_add(time::Duration::days(i64::from(self.days_after_as_of)));
        self.earliest_date <= day && day <= latest
    }
}

/// Why a row is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A required value is empty.
    MissingValue,
    /// A customer id not in the customers table.
    UnknownCustomer,
    /// A customer id that appears twice in the customers table.
    DuplicateCustomer,
    /// A date that is not ISO-8601, or not plausible (before the earliest
    /// date, or too far after `as_of`).
    BadDate,
    /// An amount that is not a number from 0 to [`MAX_AMOUNT`].
    BadAmount,
    /// A boolean that is none of the accepted spellings.
    BadBoolean,
    /// A feature value that is not a finite number.
    BadNumber,
    /// A record that cannot be read as a row (wrong number of fields,
    /// invalid UTF-8).
    Malformed,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 8] = [
        Reason::MissingValue,
        Reason::UnknownCustomer,
        Reason::DuplicateCustomer,
        Reason::BadDate,
        Reason::BadAmount,
        Reason::BadBoolean,
        Reason::BadNumber,
        Reason::Malformed,
    ];

    /// The name used in configs, logs and local output.
    pub fn name(self) -> &'static str {
        match self {
            Reason::MissingValue => "missing_value",
            Reason::UnknownCustomer => "unknown_customer",
            Reason::DuplicateCustomer => "duplicate_customer",
            Reason::BadDate => "bad_date",
            Reason::BadAmount => "bad_amount",
            Reason::BadBoolean => "bad_boolean",
            Reason::BadNumber => "bad_number",
            Reason::Malformed => "malformed",
        }
    }
}

/// A bad row: why, and the error that names its file, line and column.
#[derive(Debug, Clone)]
pub struct RowError {
    /// The reason, for the tally.
    pub reason: Reason,
    /// The error reported when the row is not skipped.
    pub error: DataError,
}

impl From<RowError> for DataError {
    fn from(e: RowError) -> Self {
        e.error
    }
}

/// How many line numbers of each reason are kept for the site's log.
pub const FIRST_LINES: usize = 5;

/// The rows one table skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSkips {
    /// Skipped rows by reason.
    pub by_reason: BTreeMap<Reason, u64>,
    /// The first few lines (rows, for Parquet) skipped for each reason;
    /// empty where the source has no line numbers (a database).
    pub first_lines: BTreeMap<Reason, Vec<u64>>,
}

impl TableSkips {
    /// Rows skipped in all.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    /// Counts one skipped row.
    pub fn add(&mut self, reason: Reason, line: Option<u64>) {
        *self.by_reason.entry(reason).or_default() += 1;
        if let Some(line) = line {
            let lines = self.first_lines.entry(reason).or_default();
            if lines.len() < FIRST_LINES {
                lines.push(line);
            }
        }
    }
}

/// The rows a site skipped, per table (`transactions`, `interactions`,
/// `customers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRows {
    /// Per table name.
    pub tables: BTreeMap<String, TableSkips>,
}

impl SkippedRows {
    /// Rows skipped over every table.
    pub fn total(&self) -> u64 {
        self.tables.values().map(TableSkips::total).sum()
    }

    /// Rows skipped for `reason` over every table.
    pub fn of_reason(&self, reason: Reason) -> u64 {
        self.tables
            .values()
            .filter_map(|t| t.by_reason.get(&reason))
            .sum()
    }

    /// Logs each table's skipped rows with their first line numbers.
    pub fn log(&self) {
        for (table, skips) in &self.tables {
            for (reason, count) in &skips.by_reason {
                let lines = skips.first_lines.get(reason).cloned().unwrap_or_default();
                tracing::warn!(
                    table = table.as_str(),
                    reason = reason.name(),
                    count,
                    first_lines = ?lines,
                    "bad rows skipped"
                );
            }
        }
    }
}

/// The skipping of one table as it is read.
pub(crate) struct Tally<'p> {
    policy: &'p BadRowPolicy,
    table: &'static str,
    skips: TableSkips,
    /// The first skipped row's error, quoted when the limit is passed.
    first: Option<DataError>,
}

impl<'p> Tally<'p> {
    pub(crate) fn new(policy: &'p BadRowPolicy, table: &'static str) -> Self {
        Self {
            policy,
            table,
            skips: TableSkips::default(),
            first: None,
        }
    }

    /// Decides about one bad row: skipped (Ok) or the site stops (Err).
    pub(crate) fn bad_row(&mut self, path: &Path, bad: RowError) -> Result<(), DataError> {
        if self.policy.on_bad_row == OnBadRow::Fail {
            return Err(bad.error);
        }
        let line = match &bad.error {
            DataError::BadValue { line, .. } => Some(*line),
            _ => None,
        };
        self.skips.add(bad.reason, line);
        self.first.get_or_insert(bad.error);
        self.check(path, None)
    }

    /// After the whole table: the fraction limit, and the table's tally.
    pub(crate) fn finish(self, path: &Path, rows: u64) -> Result<(String, TableSkips), DataError> {
        self.check(path, Some(rows))?;
        Ok((self.table.to_string(), self.skips))
    }

    fn check(&self, path: &Path, rows: Option<u64>) -> Result<(), DataError> {
        let skipped = self.skips.total();
        if !self.policy.max_bad_rows.exceeded(skipped, rows) {
            return Ok(());
        }
        Err(DataError::TooManyBadRows {
            path: path.to_path_buf(),
            skipped,
            limit: self.policy.max_bad_rows.to_string(),
            first: self
                .first
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        })
    }
}

/// Reads a boolean as the data contract spells it: true/false, t/f,
/// yes/no, 1/0, in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "t", "yes", "1"];
    const FALSE: [&str; 4] = ["false", "f", "no", "0"];
    if TRUE.iter().any(|t| text.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| text.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_accepted_spelling() {
        for t in ["true", "TRUE", "True", "t", "T", "yes", "YES", "Yes", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "FALSE", "f", "F", "no", "No", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "y", "n", "2", "-1", "1.0", "on", "off", "truee", "yes "] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn limits_by_count_and_fraction() {
        assert!(!MaxBadRows::Count(2).exceeded(2, None));
        assert!(MaxBadRows::Count(2).exceeded(3, None));
        assert!(!MaxBadRows::Fraction(0.01).exceeded(3, None));
        assert!(!MaxBadRows::Fraction(0.01).exceeded(3, Some(300)));
        assert!(MaxBadRows::Fraction(0.01).exceeded(4, Some(300)));
        assert!(MaxBadRows::Fraction(0.5).is_valid());
        assert!(!MaxBadRows::Fraction(1.5).is_valid());
        assert!(!MaxBadRows::Fraction(f64::NAN).is_valid());
    }

    #[test]
    fn first_lines_are_capped() {
        let mut t = TableSkips::default();
        for line in 0..9 {
            t.add(Reason::BadDate, Some(line));
        }
        t.add(Reason::BadAmount, None);
        assert_eq!(t.total(), 10);
        assert_eq!(t.first_lines[&Reason::BadDate], vec![0, 1, 2, 3, 4]);
        assert!(!t.first_lines.contains_key(&Reason::BadAmount));
    }
}
