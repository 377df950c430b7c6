//! The egress ledger: an append-only, hash-chained local record of every
//! message this site sent, written and flushed to disk before the message
//! leaves. It holds sizes and SHA-256 digests of the exact bytes sent, never
//! customer data, so the site's compliance team can check what left without
//! trusting the coordinator, and match it against the coordinator's journal.
//!
//! Format: one JSON object per line; `prev` is the SHA-256 (hex) of the
//! previous line's bytes (64 zeros for the first line).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fedseg_common::secagg::Phase;
use serde::{Deserialize, Serialize};

use crate::metrics::SiteMetrics;
use crate::policy::Origin;
use sha2::{Digest, Sha256};
use thiserror::Error;

mod inputs;
mod per_job;
mod reconcile;
pub use inputs::inputs_unsigned;
pub use per_job::{JobSent, by_analyst, per_job};
pub use reconcile::{END_RECORD_KIND, Reconciliation, reconcile};

/// Why the ledger cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds the ledger open for writing.
    #[error("{path}: the ledger is in use by another participant process")]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// A line is damaged or the chain is broken.
    #[error("{path}: line {line}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One message that left the site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// Position, from 0.
    pub seq: u64,
    /// Unix milliseconds when it was sent.
    pub unix_ms: i64,
    /// Job it belongs to (empty for session messages).
    pub job_id: String,
    /// Round (for key phases, the epoch's first round), if any.
    pub round: Option<u64>,
    /// What it was: hello, job-answer, advertise-keys, share-keys,
    /// masked-input, confirm-survivors, unmask, task-failed.
    pub kind: String,
    /// Size of the encoded message in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the encoded message.
    pub sha256: String,
    /// SHA-256 (hex) of the previous line.
    pub prev: String,
    /// The zCDP ρ this site spent on the message (a masked input of a job
    /// under differential privacy), as it computed it itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// On a line of kind [`END_RECORD_KIND`] (received, not sent): the
    /// coordinator's signed `job_finished` journal record, hex, as it came
    /// with JobFinished; `bytes` and `sha256` are its length and hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_record: Option<String>,
    /// On the job-answer line by which the site accepted a job: the
    /// analyst who asked for it (none for an operator's job) and its stated
    /// purpose. Absent from lines written before sites recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Origin>,
    /// On a masked-input line: SHA-256 (hex) of the masked words, the
    /// digest this site signed (`secagg::signing::input_digest`), which
    /// the journal must hold with its signature for every release that
    /// counts this input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
}

/// What a line holds besides its message's size and digest.
#[derive(Debug, Default)]
struct Extras {
    rho: Option<f64>,
    journal_record: Option<String>,
    input_sha256: Option<String>,
    accepted: Option<Origin>,
}

/// What `ledger verify` checks of a line of `kind` against the journal:
/// `journal` (job, round, kind and sha256 must match what the journal
/// records this site sent), `signed` (a job's end record signed by the
/// coordinator, which the journal must hold), or `local` (the site's own
/// word, covered only by the ledger's hash chain).
pub fn coverage(kind: &str) -> &'static str {
    if Phase::from_name(kind).is_some() {
        "journal"
    } else if kind == END_RECORD_KIND {
        "signed"
    } else {
        "local"
    }
}

/// What the journal covers of a ledger line, for `ledger show`.
pub const COVERAGE_NOTE: &str = "checked: `journal` lines have job, round, kind and sha256 \
matched against the coordinator's journal by `ledger verify`; `signed` lines keep a job's \
end record signed by the coordinator, which the journal must hold. Local only (the site's \
own word, guarded by the hash chain alone, which whoever can rewrite this file can \
recompute): seq, unix ms, bytes, rho and prev of every line, and every `local` line \
(hello, job-answer, task-failed).";

/// The kind of the line of a job answer, accepting or not.
pub const ACCEPTANCE_KIND: &str = "job-answer";

/// The open ledger.
pub struct Ledger {
    path: PathBuf,
    file: File,
    next: u64,
    prev: String,
    metrics: Option<SiteMetrics>,
    /// (unix ms, job, ρ) of every release this site paid privacy for.
    spends: Vec<(i64, String, f64)>,
    /// Jobs this site sent a protocol message for.
    contributed: HashSet<String>,
    /// Masked inputs sent, per job.
    masked: HashMap<String, u64>,
    /// SHA-256 of every job end record kept.
    ends: HashSet<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Reads and checks a whole ledger.
pub fn read(path: &Path) -> Result<Vec<LedgerEntry>, LedgerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut prev = GENESIS.to_string();
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let damaged = |reason: String| LedgerError::Damaged {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let entry: LedgerEntry = serde_json::from_str(line).map_err(|e| damaged(e.to_string()))?;
        if entry.seq != i as u64 {
            return Err(damaged(format!("sequence {} where {i} belongs", entry.seq)));
        }
        if entry.prev != prev {
            return Err(damaged("does not link to the previous line".into()));
        }
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        entries.push(entry);
    }
    Ok(entries)
}

impl Ledger {
    /// Opens `path` for appending after checking what it already holds.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        // One writer per ledger: a second node on the same site's ledger
        // would interleave and break the chain.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LedgerError::InUse {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        let entries = read(path)?;
        let prev = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().last().map_or(GENESIS.to_string(), |l| {
                hex::encode(Sha256::digest(l.as_bytes()))
            }),
            Err(_) => GENESIS.to_string(),
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            next: entries.len() as u64,
            prev,
            metrics: None,
            spends: entries
                .iter()
                .filter_map(|e| Some((e.unix_ms, e.job_id.clone(), e.rho?)))
                .collect(),
            contributed: entries
                .iter()
                .filter(|e| Phase::from_name(&e.kind).is_some())
                .map(|e| e.job_id.clone())
                .collect(),
            ends: entries
                .iter()
                .filter(|e| e.kind == END_RECORD_KIND)
                .map(|e| e.sha256.clone())
                .collect(),
            masked: entries
                .iter()
                .filter(|e| e.kind == Phase::MaskedInput.name())
                .fold(HashMap::new(), |mut counts, e| {
                    *counts.entry(e.job_id.clone()).or_default() += 1;
                    counts
                }),
        })
    }

    /// Total ρ spent on messages sent at or after `since_unix_ms`.
    pub fn rho_since(&self, since_unix_ms: i64) -> f64 {
        self.spends
            .iter()
            .filter(|(at, ..)| *at >= since_unix_ms)
            .map(|(.., rho)| rho)
            .sum()
    }

    /// Total ρ spent on `job_id` so far, in this session or earlier ones.
    pub fn rho_of_job(&self, job_id: &str) -> f64 {
        self.spends
            .iter()
            .filter(|(_, job, _)| job == job_id)
            .map(|(.., rho)| rho)
            .sum()
    }

    /// Masked inputs this site sent for `job_id`, in this session or
    /// earlier ones.
    pub fn masked_inputs_of(&self, job_id: &str) -> u64 {
        self.masked.get(job_id).copied().unwrap_or(0)
    }

    /// Records a message about to be sent: its encoded bytes' size and
    /// digest, and the privacy it spends, if any. Returns once the line is
    /// on disk.
    pub fn record(
        &mut self,
        job_id: &str,
        round: Option<u64>,
        kind: &str,
        encoded: &[u8],
        rho: Option<f64>,
    ) -> Result<(), LedgerError> {
        let extras = Extras {
            rho,
            ..Extras::default()
        };
        self.record_sent(job_id, round, kind, encoded, extras)
    }

    /// Records the job answer (`encoded`) by which the site accepts
    /// `job_id`, with who asked for the job and why.
    pub fn record_acceptance(
        &mut self,
        job_id: &str,
        encoded: &[u8],
        origin: Origin,
    ) -> Result<(), LedgerError> {
        let extras = Extras {
            accepted: Some(origin),
            ..Extras::default()
        };
        self.record_sent(job_id, None, ACCEPTANCE_KIND, encoded, extras)
    }

    /// Records a masked input of `round` as [`Ledger::record`] does, with
    /// the digest of its masked words this site signed.
    pub fn record_masked_input(
        &mut self,
        job_id: &str,
        round: Option<u64>,
        encoded: &[u8],
        rho: Option<f64>,
        input_sha256: String,
    ) -> Result<(), LedgerError> {
        let extras = Extras {
            rho,
            input_sha256: Some(input_sha256),
            ..Extras::default()
        };
        self.record_sent(job_id, round, Phase::MaskedInput.name(), encoded, extras)
    }

    /// Appends a sent message's line and keeps count of what it means.
    fn record_sent(
        &mut self,
        job_id: &str,
        round: Option<u64>,
        kind: &str,
        encoded: &[u8],
        extras: Extras,
    ) -> Result<(), LedgerError> {
        let (rho, size) = (extras.rho, encoded.len());
        let unix_ms = self.append(job_id, round, kind, encoded, extras)?;
        if Phase::from_name(kind).is_some() {
            self.contributed.insert(job_id.to_string());
        }
        if kind == Phase::MaskedInput.name() {
            *self.masked.entry(job_id.to_string()).or_default() += 1;
        }
        if let Some(rho) = rho {
            self.spends.push((unix_ms, job_id.to_string(), rho));
        }
        if let Some(metrics) = &self.metrics
            && let Err(error) = metrics.sent(kind, size as u64, self.next)
        {
            // Monitoring must not stop the protocol.
            tracing::warn!(%error, "could not write the metrics file");
        }
        Ok(())
    }

    /// Keeps the coordinator's signed `job_finished` record of `job_id`
    /// (sent with JobFinished) as a line of kind [`END_RECORD_KIND`], so
    /// `ledger verify` can tell when a journal was cut before it.
    pub fn keep_end_record(&mut self, job_id: &str, record: &[u8]) -> Result<(), LedgerError> {
        // The same end told again (after a reconnection) is kept once.
        if !self.ends.insert(hex::encode(Sha256::digest(record))) {
            return Ok(());
        }
        let extras = Extras {
            journal_record: Some(hex::encode(record)),
            ..Extras::default()
        };
        self.append(job_id, None, END_RECORD_KIND, record, extras)
            .map(|_| ())
    }

    /// Whether this site sent any protocol message of `job_id` (so took
    /// part in it), in this session or earlier ones.
    pub fn contributed_to(&self, job_id: &str) -> bool {
        self.contributed.contains(job_id)
    }

    /// Writes one line and returns its time once it is on disk.
    fn append(
        &mut self,
        job_id: &str,
        round: Option<u64>,
        kind: &str,
        bytes: &[u8],
        extras: Extras,
    ) -> Result<i64, LedgerError> {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let entry = LedgerEntry {
            seq: self.next,
            unix_ms,
            job_id: job_id.to_string(),
            round,
            kind: kind.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            prev: self.prev.clone(),
            rho: extras.rho,
            journal_record: extras.journal_record,
            input_sha256: extras.input_sha256,
            accepted: extras.accepted,
        };
        let line = serde_json::to_string(&entry).expect("ledger entries serialize");
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(io(&self.path))?;
        self.prev = hex::encode(Sha256::digest(line.as_bytes()));
        self.next += 1;
        Ok(unix_ms)
    }

    /// Also keeps a Prometheus text file of what was sent at `path`.
    pub fn with_metrics(mut self, path: &Path) -> Self {
        let metrics = SiteMetrics::new(path, self.next);
        if let Err(error) = metrics.write() {
            tracing::warn!(%error, path = %path.display(), "could not write the metrics file");
        }
        self.metrics = Some(metrics);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_has_one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.log");
        let mut first = Ledger::open(&path).unwrap();
        first
            .record("job", Some(0), "masked-input", b"abc", Some(0.25))
            .unwrap();
        assert!(matches!(
            Ledger::open(&path),
            Err(LedgerError::InUse { .. })
        ));
        drop(first);
        let mut again = Ledger::open(&path).unwrap();
        again
            .record("job", Some(1), "masked-input", b"def", None)
            .unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].seq, 1);
        // The privacy spent survives reopening; old lines without it parse.
        assert_eq!(entries[0].rho, Some(0.25));
        assert_eq!(again.rho_since(0), 0.25);
        assert_eq!(again.rho_since(i64::MAX), 0.0);
        assert_eq!(again.rho_of_job("job"), 0.25);
        assert_eq!(again.rho_of_job("other"), 0.0);
    }

    #[test]
    fn the_metrics_file_counts_what_was_sent_and_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.log");
        let prom = dir.path().join("participant.prom");
        let mut ledger = Ledger::open(&path).unwrap().with_metrics(&prom);
        ledger
            .record("job", Some(0), "masked-input", &[0; 100], None)
            .unwrap();
        ledger
            .record("job", Some(1), "masked-input", &[0; 50], None)
            .unwrap();
        ledger
            .record("job", Some(2), "task-failed", &[0; 7], None)
            .unwrap();
        let text = std::fs::read_to_string(&prom).unwrap();
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let value = |name: &str, kind: Option<&str>| -> f64 {
            let sample = scrape
                .samples
                .iter()
                .find(|s| s.metric == name && kind.is_none_or(|k| s.labels.get("kind") == Some(k)))
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"));
            match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{other:?}"),
            }
        };
        let sent = "fedseg_participant_messages_sent_total";
        assert_eq!(value(sent, Some("masked-input")), 2.0);
        assert_eq!(value(sent, Some("task-failed")), 1.0);
        let bytes = "fedseg_participant_bytes_sent_total";
        assert_eq!(value(bytes, Some("masked-input")), 150.0);
        assert_eq!(value("fedseg_participant_ledger_entries", None), 3.0);
        assert!(!dir.path().join("participant.prom.tmp").exists());
    }
}
