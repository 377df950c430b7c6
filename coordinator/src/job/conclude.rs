//! A job's end as the operator sees it: a finished job's `result.json`,
//! `rounds.json` and reports written under the output directory, or a
//! failed job's end journaled (unless the engine already did).

use std::error::Error;
use std::path::{Path, PathBuf};

use fedseg_common::journal::Entry;
use tracing::info;

use super::{Finished, JobError, Produced};
use crate::config::CoordinatorConfig;
use crate::journal::JournalWriter;
use crate::report;

/// Records a failed job's end (unless the engine did), or writes a finished
/// job's result and reports under `out`. For a segmentation job, the lines
/// to show on the terminal (summary, journal check, report path).
pub fn conclude(
    outcome: Result<Finished, JobError>,
    journal: &mut JournalWriter,
    config: &CoordinatorConfig,
    job_id: String,
    out: &Path,
) -> Result<Option<String>, JobError> {
    let (report, result) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            journal_failure(journal, job_id, &error);
            return Err(error);
        }
    };
    std::fs::create_dir_all(out).map_err(|source| JobError::Write {
        what: "creating",
        path: out.to_path_buf(),
        source,
    })?;
    let write = |name: &str, text: String| -> Result<PathBuf, JobError> {
        let path = out.join(name);
        match std::fs::write(&path, text) {
            Ok(()) => Ok(path),
            Err(source) => Err(JobError::Write {
                what: "writing",
                path,
                source,
            }),
        }
    };
    let (path, shown) = match &result {
        Produced::Sums => (
            write("result.json", serde_json::to_string_pretty(&report)? + "\n")?,
            None,
        ),
        Produced::Vertical(result) => {
            write("rounds.json", serde_json::to_string_pretty(&report)? + "\n")?;
            let report_path = write("report.md", report::vertical_markdown(result))?;
            let status = journal_status(&config.journal, &config.tls.ca);
            let html = report::vertical_html(result, &status)
                .map_err(|e| JobError::Report(e.to_string()))?;
            write("report.html", html)?;
            let path = write("result.json", serde_json::to_string_pretty(result)? + "\n")?;
            let shown = format!(
                "{}\nreport: {}",
                report::vertical_summary(result),
                report_path.display()
            );
            (path, Some(shown))
        }
        Produced::Campaign(result) => {
            write("rounds.json", serde_json::to_string_pretty(&report)? + "\n")?;
            write("report.md", crate::campaign::report::markdown(result))?;
            let html = crate::campaign::report::html(result)
                .map_err(|e| JobError::Report(e.to_string()))?;
            let report_path = write("report.html", html)?;
            let path = write("result.json", serde_json::to_string_pretty(result)? + "\n")?;
            let shown = format!(
                "{}\nreport: {}",
                crate::campaign::report::summary(result),
                report_path.display()
            );
            (path, Some(shown))
        }
        Produced::Segmentation(result) => {
            write("rounds.json", serde_json::to_string_pretty(&report)? + "\n")?;
            write("report.md", report::markdown(result))?;
            let status = journal_status(&config.journal, &config.tls.ca);
            let html =
                report::html(result, &status).map_err(|e| JobError::Report(e.to_string()))?;
            let report_path = write("report.html", html)?;
            let shown = format!(
                "{}\njournal: {status}\nreport: {}",
                report::summary(result),
                report_path.display()
            );
            let path = write("result.json", serde_json::to_string_pretty(result)? + "\n")?;
            crate::series::History::record(config, result).map_err(super::PipelineError::from)?;
            (path, Some(shown))
        }
    };
    let released = report
        .rounds
        .iter()
        .filter(|r| r.outcome == "released")
        .count();
    info!(released, rounds = report.rounds.len(), result = %path.display(), "job finished");
    Ok(shown)
}

/// Checks, before the first round, that `out` is a directory this process
/// can write (creating it if need be), so that a job never runs to its end
/// only to find it cannot write its result.
pub fn check_out(out: &Path) -> Result<(), JobError> {
    std::fs::create_dir_all(out).map_err(|source| JobError::Write {
        what: "creating",
        path: out.to_path_buf(),
        source,
    })?;
    let probe = out.join(".fedseg-write-check");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| JobError::Write {
            what: "writing",
            path: probe,
            source,
        })
}

/// Journals that job `job_id` failed with `error`, unless the journal's
/// last record already ends it (the engine journals the failures it sees).
/// The journal itself may be what failed, so a failure to append is
/// ignored: the error is reported either way.
fn journal_failure(journal: &mut JournalWriter, job_id: String, error: &JobError) {
    let finished = matches!(
        journal.records().last().map(|r| &r.entry),
        Some(Entry::JobFinished { job_id: id, .. }) if *id == job_id
    );
    if !finished {
        let _ = journal.append(Entry::JobFinished {
            job_id,
            success: false,
            reason: chain(error),
        });
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The outcome of verifying the journal against the consortium CA, for the
/// report's audit section.
pub fn journal_status(journal: &Path, ca: &Path) -> String {
    let checked = std::fs::read(journal)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let ca = std::fs::read(ca).map_err(|e| e.to_string())?;
            fedseg_common::journal::verify(&bytes, &ca).map_err(|e| e.to_string())
        });
    match checked {
        Ok(v) => verdict(&v).0,
        Err(e) => format!("NOT verified: {e}"),
    }
}

/// What a verified journal attests, and whether it shows every job's end:
/// a journal cut at a record boundary (or one whose coordinator is still
/// running or crashed) verifies link by link, but is never called complete
/// while a job in it has no `job_finished` record.
pub fn verdict(v: &fedseg_common::journal::VerifiedJournal) -> (String, bool) {
    let checked = format!(
        "{} records signed by coordinator {} ({}), hash chain and signatures intact",
        v.records.len(),
        v.coordinator,
        v.algorithm
    );
    let jobs = fedseg_common::journal::job_ends(&v.records);
    let open: Vec<String> = jobs
        .iter()
        .filter(|j| j.finished.is_none())
        .map(ToString::to_string)
        .collect();
    if open.is_empty() {
        (
            format!("verified: {checked}; all {} jobs ended", jobs.len()),
            true,
        )
    } else {
        (
            format!(
                "verified up to record {} but UNFINISHED (a running or crashed coordinator, or a \
                 journal cut short): {checked}; {}",
                v.records.len().saturating_sub(1),
                open.join("; ")
            ),
            false,
        )
    }
}
