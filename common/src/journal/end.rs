//! Where a journal ends: which jobs it shows finished, and the state of
//! those it does not (a running coordinator, a crash, or a file cut at a
//! record boundary, which the hash chain alone cannot tell apart); and the
//! check of a job's signed end record that a participant kept when it was
//! told the job finished, so a journal cut before that record is caught.

use std::fmt;

use super::{
    Entry, JournalError, Raw, Record, VerifiedJournal, coordinator_key_unchecked, decode, split,
};

/// What a journal says of one job's course and end.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    /// Job identifier.
    pub job_id: String,
    /// Its `job_finished` record: sequence number and success, if any.
    pub finished: Option<(u64, bool)>,
    /// Rounds released.
    pub released: u64,
    /// Rounds aborted.
    pub aborted: u64,
    /// Times the coordinator resumed it after a restart.
    pub resumed: u64,
    /// The job's last record: sequence number and kind.
    pub last: (u64, String),
}

impl fmt::Display for JobEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.finished {
            Some((seq, true)) => format!("finished (record {seq})"),
            Some((seq, false)) => format!("failed (record {seq})"),
            None => "UNFINISHED: no job_finished record".to_string(),
        };
        write!(
            f,
            "job {}: {state}; {} rounds released, {} aborted, resumed {} times; its last record is {} ({})",
            self.job_id, self.released, self.aborted, self.resumed, self.last.0, self.last.1
        )
    }
}

fn kind_name(entry: &Entry) -> String {
    serde_json::to_value(entry)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn job_of(entry: &Entry) -> Option<&str> {
    match entry {
        Entry::JournalOpened { .. } => None,
        Entry::JobSubmitted { job_id, .. }
        | Entry::JobResumed { job_id, .. }
        | Entry::CohortFixed { job_id, .. }
        | Entry::KeySetupDone { job_id, .. }
        | Entry::RoundOpened { job_id, .. }
        | Entry::PhaseCompleted { job_id, .. }
        | Entry::AggregateReleased { job_id, .. }
        | Entry::RoundAborted { job_id, .. }
        | Entry::PrivacyBudget { job_id, .. }
        | Entry::PrivacySpent { job_id, .. }
        | Entry::ParticipantDeclined { job_id, .. }
        | Entry::MemberCertificates { job_id, .. }
        | Entry::SurvivorsConfirmed { job_id, .. }
        | Entry::FaultReported { job_id, .. }
        | Entry::VerticalMessage { job_id, .. }
        | Entry::IntersectionDone { job_id, .. }
        | Entry::VerticalThreatModel { job_id, .. }
        | Entry::VerticalBatch { job_id, .. }
        | Entry::JobFinished { job_id, .. } => Some(job_id),
    }
}

/// Every job the journal holds, in the order they were submitted, with
/// its end (a job submitted again under the same identifier continues the
/// same entry).
pub fn job_ends(records: &[Record]) -> Vec<JobEnd> {
    let mut jobs: Vec<JobEnd> = Vec::new();
    for record in records {
        let Some(job_id) = job_of(&record.entry) else {
            continue;
        };
        let at = match jobs.iter().position(|j| j.job_id == job_id) {
            Some(at) => at,
            None => {
                jobs.push(JobEnd {
                    job_id: job_id.to_string(),
                    finished: None,
                    released: 0,
                    aborted: 0,
                    resumed: 0,
                    last: (0, String::new()),
                });
                jobs.len() - 1
            }
        };
        let job = &mut jobs[at];
        job.last = (record.sequence, kind_name(&record.entry));
        match &record.entry {
            Entry::AggregateReleased { .. } => job.released += 1,
            Entry::RoundAborted { .. } => job.aborted += 1,
            Entry::JobResumed { .. } => job.resumed += 1,
            Entry::JobFinished { success, .. } => job.finished = Some((record.sequence, *success)),
            _ => {}
        }
    }
    jobs
}

/// The jobs whose end the journal does not hold.
pub fn unfinished(records: &[Record]) -> Vec<JobEnd> {
    job_ends(records)
        .into_iter()
        .filter(|j| j.finished.is_none())
        .collect()
}

/// The sequence number and entry of one encoded record, read without its
/// signature (a participant keeps the record it was sent; it is checked
/// against the journal with [`check_end_record`]).
pub fn peek(record: &[u8]) -> Result<(u64, Entry), JournalError> {
    let raw = single(record)?;
    let bad = |reason: String| JournalError { record: 0, reason };
    if raw.body.len() < super::HEADER || &raw.body[..4] != super::MAGIC {
        return Err(bad("not a journal record".into()));
    }
    let sequence = u64::from_le_bytes(raw.body[4..12].try_into().expect("8 bytes"));
    let entry: Entry = serde_json::from_slice(&raw.body[super::HEADER..])
        .map_err(|e| bad(format!("payload: {e}")))?;
    Ok((sequence, entry))
}

/// The exact bytes of record `sequence` of an encoded journal (as a
/// participant receives it with JobFinished), if the journal holds it.
pub fn record_bytes(journal: &[u8], sequence: u64) -> Option<&[u8]> {
    split(journal)
        .ok()?
        .get(usize::try_from(sequence).ok()?)
        .map(|raw| raw.bytes)
}

fn single(record: &[u8]) -> Result<Raw<'_>, JournalError> {
    let mut raws = split(record)?;
    if raws.len() != 1 {
        return Err(JournalError {
            record: 0,
            reason: format!("{} records where one belongs", raws.len()),
        });
    }
    Ok(raws.remove(0))
}

/// How a kept end record compares with a verified journal.
#[derive(Debug, Clone, PartialEq)]
pub enum EndRecordCheck {
    /// The journal holds this very record.
    Present(Record),
    /// The coordinator signed the record, but the journal ends before it:
    /// the journal was cut.
    Missing {
        /// The record kept.
        record: Record,
        /// Records the journal holds.
        journal_records: u64,
    },
    /// The coordinator signed the record, but the journal holds another
    /// one at its place.
    Replaced(Record),
}

/// Checks a record a participant kept (the job's `job_finished`, sent with
/// JobFinished) against `journal`: it must be signed by the journal's
/// coordinator, and then be in the journal byte for byte.
pub fn check_end_record(
    journal: &VerifiedJournal,
    record: &[u8],
) -> Result<EndRecordCheck, JournalError> {
    let raw = single(record)?;
    let opening = journal.records.first().ok_or(JournalError {
        record: 0,
        reason: "the journal is empty".into(),
    })?;
    let key = coordinator_key_unchecked(&opening.entry)
        .map_err(|reason| JournalError { record: 0, reason })?;
    let (sequence, _) = peek(record)?;
    let prev: [u8; 32] = raw.body[20..52].try_into().expect("32 bytes");
    let kept = decode(sequence, &raw, Some(&key), &prev)?;
    Ok(match journal.records.get(sequence as usize) {
        Some(r) if r.hash == kept.hash => EndRecordCheck::Present(kept),
        Some(_) => EndRecordCheck::Replaced(kept),
        None => EndRecordCheck::Missing {
            record: kept,
            journal_records: journal.records.len() as u64,
        },
    })
}
