//! Reading a canonical table row by row from CSV or Parquet, under the
//! bank's column names, with every value checked in one place so both
//! formats give the same errors (file, line or row, column).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::Array;
use time::Date;

use super::DataError;
use super::bad_rows::{BadRowPolicy, MAX_AMOUNT, Reason, RowError, TableSkips, Tally, parse_bool};

/// Where a table's records come from: a CSV file, or a Parquet file whose
/// needed columns are cast to text batch by batch so that both formats go
/// through the same checks.
enum Source {
    Csv(csv::Reader<std::fs::File>),
    Parquet(parquet::arrow::arrow_reader::ParquetRecordBatchReader),
}

/// One open table.
pub(crate) struct Reader<'c> {
    path: PathBuf,
    source: Source,
    /// Canonical column → position in the file (CSV) or in the batch
    /// projection (Parquet).
    columns: Vec<(&'c str, usize)>,
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

/// Runs a step of the `parquet` crate's reader, which panics on some
/// malformed files instead of returning an error (found by fuzzing): the
/// panic becomes a read error naming the file, so a bank's bad export
/// declines the job instead of killing the node.
fn parquet_step<T>(
    path: &Path,
    step: impl FnOnce() -> Result<T, DataError>,
) -> Result<T, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|_| {
        Err(read_error(
            path,
            &"the Parquet reader failed on a malformed file",
        ))
    })
}

fn read_error(path: &Path, e: &dyn std::fmt::Display) -> DataError {
    DataError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl<'c> Reader<'c> {
    pub(crate) fn open(
        path: &Path,
        names: &BTreeMap<String, String>,
        required: &[&'c str],
        optional: &[&'c str],
    ) -> Result<Self, DataError> {
        // A device, a FIFO or a directory is no table: reading one could
        // block forever or never end.
        let metadata = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
        if !metadata.is_file() {
            return Err(read_error(path, &"not a regular file"));
        }
        let (source, headers): (Source, Vec<String>) = if is_parquet(path) {
            let file = std::fs::File::open(path).map_err(|e| read_error(path, &e))?;
            let (reader, headers) = parquet_step(path, || {
                let builder =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .map_err(|e| read_error(path, &e))?;
                let headers: Vec<String> = builder
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let reader = builder
                    .with_batch_size(8192)
                    .build()
                    .map_err(|e| read_error(path, &e))?;
                Ok((reader, headers))
            })?;
            (Source::Parquet(reader), headers)
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .from_path(path)
                .map_err(|e| read_error(path, &e))?;
            let headers = reader
                .headers()
                .map_err(|e| read_error(path, &e))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            (Source::Csv(reader), headers)
        };
        let mut columns = Vec::new();
        for &name in required.iter().chain(optional) {
            let header = names.get(name).map_or(name, String::as_str);
            match headers.iter().position(|h| h == header) {
                Some(i) => columns.push((name, i)),
                None if required.contains(&name) => {
                    return Err(DataError::MissingColumn {
                        path: path.to_path_buf(),
                        column: name.to_string(),
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
    /// row number (Parquet). A bad row goes to `tally`, which skips it or
    /// stops the table. Returns the records read (skipped ones included)
    /// and the table's skipped rows.
    pub(crate) fn for_each(
        &mut self,
        mut tally: Tally<'_>,
        mut row: impl FnMut(&Row<'_, 'c>) -> Result<(), RowError>,
    ) -> Result<(u64, (String, TableSkips)), DataError> {
        let mut record = csv::StringRecord::new();
        let mut count = 0;
        let path = self.path.clone();
        let mut visit = |row_result: Result<(), RowError>| match row_result {
            Ok(()) => Ok(()),
            Err(bad) => tally.bad_row(&path, bad),
        };
        match &mut self.source {
            Source::Parquet(batches) => {
                // The projection: the needed columns, in `columns` order.
                let projected: Vec<(&'c str, usize)> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(k, &(name, _))| (name, k))
                    .collect();
                let path = &self.path;
                let columns = &self.columns;
                while let Some((batch, texts)) = parquet_step(path, || {
                    let Some(batch) = batches.next() else {
                        return Ok(None);
                    };
                    let batch = batch.map_err(|e| read_error(path, &e))?;
                    let texts = columns
                        .iter()
                        .map(|&(_, i)| {
                            arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Utf8)
                                .map_err(|e| read_error(path, &e))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Some((batch, texts)))
                })? {
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
                        visit(row(&Row {
                            path: &self.path,
                            columns: &projected,
                            record: &record,
                            line: count,
                        }))?;
                    }
                }
            }
            Source::Csv(reader) => loop {
                match reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        count += 1;
                        let line = record.position().map_or(0, |p| p.line());
                        visit(row(&Row {
                            path: &self.path,
                            columns: &self.columns,
                            record: &record,
                            line,
                        }))?;
                    }
                    Err(e) => {
                        // A record of the wrong width or with invalid UTF-8
                        // is a bad row; anything else (I/O) stops the table.
                        let line = match e.kind() {
                            csv::ErrorKind::UnequalLengths { pos, .. }
                            | csv::ErrorKind::Utf8 { pos, .. } => pos.as_ref().map(|p| p.line()),
                            _ => None,
                        };
                        let Some(line) = line else {
                            return Err(read_error(&self.path, &e));
                        };
                        count += 1;
                        visit(Err(RowError {
                            reason: Reason::Malformed,
                            error: DataError::BadValue {
                                path: self.path.clone(),
                                line,
                                column: "(record)".into(),
                                reason: e.to_string(),
                            },
                        }))?;
                    }
                }
            },
        }
        Ok((count, tally.finish(&self.path, count)?))
    }
}

/// One record under its canonical column names.
pub(crate) struct Row<'a, 'c> {
    path: &'a Path,
    columns: &'a [(&'c str, usize)],
    record: &'a csv::StringRecord,
    line: u64,
}

impl<'c> Row<'_, 'c> {
    /// A bad value of `column`.
    pub(crate) fn bad(
        &self,
        reason: Reason,
        column: &'c str,
        message: impl Into<String>,
    ) -> RowError {
        RowError {
            reason,
            error: DataError::BadValue {
                path: self.path.to_path_buf(),
                line: self.line,
                column: column.to_string(),
                reason: message.into(),
            },
        }
    }

    /// The value of `column`, trimmed, if the table has it.
    pub(crate) fn get(&self, column: &'c str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(name, _)| *name == column)
            .and_then(|&(_, i)| self.record.get(i))
            .map(str::trim)
    }

    /// The non-empty value of `column`.
    pub(crate) fn text(&self, column: &'c str) -> Result<&str, RowError> {
        match self.get(column) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.bad(Reason::MissingValue, column, "empty")),
        }
    }

    /// An ISO-8601 date (or the day of a date-time), plausible for a job
    /// as of `as_of` under `policy`.
    pub(crate) fn date(
        &self,
        column: &'c str,
        as_of: Date,
        policy: &BadRowPolicy,
    ) -> Result<Date, RowError> {
        let text = self.text(column)?;
        let day = super::parse_date(text).ok_or_else(|| {
            self.bad(
                Reason::BadDate,
                column,
                format!("{text:?} is not an ISO-8601 date"),
            )
        })?;
        if !policy.plausible(day, as_of) {
            return Err(self.bad(
                Reason::BadDate,
                column,
                format!(
                    "{day} is not a plausible date (from {} to {} days after as_of)",
                    policy.earliest_date, policy.days_after_as_of
                ),
            ));
        }
        Ok(day)
    }

    /// A boolean in one of the data contract's spellings.
    pub(crate) fn boolean(&self, column: &'c str) -> Result<bool, RowError> {
        let text = self.text(column)?;
        parse_bool(text).ok_or_else(|| {
            self.bad(
                Reason::BadBoolean,
                column,
                format!("{text:?} is not a boolean (true/false, t/f, yes/no, 1/0)"),
            )
        })
    }

    /// A purchase amount: a finite number, zero included.
    pub(crate) fn amount(&self, column: &'c str) -> Result<f64, RowError> {
        let text = self.text(column)?;
        let amount: f64 = text.parse().map_err(|_| {
            self.bad(
                Reason::BadAmount,
                column,
                format!("{text:?} is not a number"),
            )
        })?;
        if !(0.0..=MAX_AMOUNT).contains(&amount) {
            return Err(self.bad(
                Reason::BadAmount,
                column,
                format!("{text} is not an amount from 0 to {MAX_AMOUNT:e}"),
            ));
        }
        Ok(amount)
    }
}
