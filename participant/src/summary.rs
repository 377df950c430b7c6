//! What `fedseg-participant features` prints: a site's data summarised
//! locally (row counts, exclusions, skipped rows, quantiles), as text for a
//! data team or one JSON line for scripts. Nothing here is sent anywhere.

use std::fmt::Write;

use crate::partner::PartnerRows;
use crate::rfmlt::{Customer, Features, SkippedRows};

/// The canonical tables' RFMLT summary as of `as_of`.
pub fn rfmlt(features: &Features, as_of: time::Date, seconds: f64, json: bool) -> String {
    let [transactions, interactions, customers] = features.rows;
    if json {
        let total = |get: fn(&Customer) -> f64| -> f64 { features.customers.iter().map(get).sum() };
        return serde_json::json!({
            "as_of": as_of.to_string(),
            "seconds": seconds,
            "rows": {"customers": customers, "transactions": transactions, "interactions": interactions},
            "rows_after_as_of": features.rows_after_as_of,
            "excluded_no_consent": features.excluded_no_consent,
            "skipped_rows": features.skipped,
            "consenting": features.customers.len(),
            "sum": {
                "R": total(|c| c.r), "F": total(|c| c.f), "M": total(|c| c.m),
                "L": total(|c| c.l), "T": total(|c| c.t),
            },
        })
        .to_string();
    }
    let mut out = String::new();
    let _ = writeln!(out, "as of {as_of}, read in {seconds:.2} s:");
    let _ = writeln!(out, "  customers table      {customers:>12} rows");
    let _ = writeln!(out, "  transactions table   {transactions:>12} rows");
    let _ = writeln!(out, "  interactions table   {interactions:>12} rows");
    let _ = writeln!(
        out,
        "  rows after as_of     {:>12} (ignored)",
        features.rows_after_as_of
    );
    consent(
        &mut out,
        features.excluded_no_consent,
        features.customers.len(),
        &features.skipped,
    );
    let _ = writeln!(
        out,
        "  converted            {:>12} customers\n",
        features.customers.iter().filter(|c| c.converted).count()
    );
    let columns = ["R days", "F", "M", "L days", "T"]
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let values = features
                .customers
                .iter()
                .map(|c| [c.r, c.f, c.m, c.l, c.t][j])
                .collect();
            (name.to_string(), values)
        });
    quantiles(&mut out, columns);
    out
}

/// A feature partner's table summary (values after clip and transform).
pub fn partner(rows: &PartnerRows, seconds: f64, json: bool) -> String {
    let column = |j: usize| -> Vec<f64> { (0..rows.ids.len()).map(|i| rows.row(i)[j]).collect() };
    if json {
        let sums: serde_json::Map<String, serde_json::Value> = rows
            .columns
            .iter()
            .enumerate()
            .map(|(j, name)| (name.clone(), column(j).iter().sum::<f64>().into()))
            .collect();
        return serde_json::json!({
            "seconds": seconds,
            "rows": {"features": rows.rows},
            "excluded_no_consent": rows.excluded_no_consent,
            "skipped_rows": rows.skipped,
            "consenting": rows.ids.len(),
            "sum": sums,
        })
        .to_string();
    }
    let mut out = String::new();
    let _ = writeln!(out, "feature table, read in {seconds:.2} s:");
    let _ = writeln!(out, "  features table       {:>12} rows", rows.rows);
    consent(
        &mut out,
        rows.excluded_no_consent,
        rows.ids.len(),
        &rows.skipped,
    );
    out.push('\n');
    quantiles(
        &mut out,
        rows.columns
            .iter()
            .enumerate()
            .map(|(j, name)| (name.clone(), column(j))),
    );
    out
}

/// Who was excluded, who is left, and the rows skipped (one line per table
/// and reason, with their first lines).
fn consent(out: &mut String, excluded: usize, consenting: usize, skipped: &SkippedRows) {
    let _ = writeln!(
        out,
        "  refused marketing    {excluded:>12} customers (excluded)"
    );
    let _ = writeln!(out, "  consenting           {consenting:>12} customers");
    for (table, skips) in &skipped.tables {
        for (reason, count) in &skips.by_reason {
            let lines = skips.first_lines.get(reason).cloned().unwrap_or_default();
            let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
            let at = if lines.is_empty() {
                String::new()
            } else {
                format!(" (lines {}…)", lines.join(", "))
            };
            let _ = writeln!(
                out,
                "  skipped {table:<12} {count:>12} rows: {}{at}",
                reason.name()
            );
        }
    }
}

/// Mean and quantiles of each named column.
fn quantiles(out: &mut String, columns: impl Iterator<Item = (String, Vec<f64>)>) {
    let _ = writeln!(
        out,
        "{:<14} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "feature", "mean", "min", "p25", "median", "p75", "p95", "max"
    );
    for (name, mut values) in columns {
        values.sort_by(f64::total_cmp);
        if values.is_empty() {
            let _ = writeln!(out, "{name:<14} (no customers)");
            continue;
        }
        let q = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let _ = writeln!(
            out,
            "{name:<14} {mean:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2}",
            q(0.0),
            q(0.25),
            q(0.5),
            q(0.75),
            q(0.95),
            q(1.0)
        );
    }
}
