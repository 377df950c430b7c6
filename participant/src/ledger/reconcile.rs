//! Matching a site's ledger against a verified journal: every contribution
//! the journal attributes to the site must be in the ledger byte for byte;
//! every protocol message the ledger says left must be in the journal, or
//! have been in flight when the coordinator crashed (the journal then shows
//! the job resumed after it); and every job end the site was told must be
//! in the journal, so a journal cut at a record boundary does not pass.

use std::collections::BTreeMap;

use fedseg_common::journal::{self, BatchDigest, EndRecordCheck, Entry, VerifiedJournal};
use fedseg_common::secagg::Phase;
use sha2::{Digest, Sha256};

use super::LedgerEntry;

/// Kind of the ledger line that keeps the coordinator's signed
/// `job_finished` record, received with JobFinished (nothing was sent).
pub const END_RECORD_KIND: &str = "job-finished";

/// What matching a ledger against a journal found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reconciliation {
    /// Contributions the journal attributes to this site that the ledger
    /// confirms byte for byte.
    pub matched: usize,
    /// Contributions the journal attributes to this site whose digest the
    /// ledger does not hold.
    pub mismatched: Vec<String>,
    /// Protocol messages the ledger says left this site that the journal
    /// does not account for, with no crash to explain it.
    pub unaccounted: Vec<String>,
    /// Protocol messages sent to a coordinator that crashed before
    /// journaling them, each with the `job_resumed` record that shows it.
    pub in_flight: Vec<String>,
    /// Protocol messages the coordinator did not accept in time: the
    /// journal's record of that phase lists this site as silent.
    pub not_received: Vec<String>,
    /// Job ends this site was told that the journal holds byte for byte.
    pub ends_attested: usize,
    /// Job ends this site was told that the journal lacks (it was cut) or
    /// holds otherwise.
    pub ends_missing: Vec<String>,
    /// Jobs the journal does not show finished, with their last state.
    pub unfinished: Vec<String>,
    /// Releases the journal says include this site's input, released over
    /// a survivor set that does not carry this site's signature.
    pub unsigned: Vec<String>,
    /// Releases with this site's input over a survivor set it did not
    /// sign because its signature never arrived (the journal lists it
    /// silent in that round's confirmation: it dropped out after masking,
    /// and the quorum of the others confirmed the set): reported, not a
    /// failure.
    pub unconfirmed: Vec<String>,
}

impl Reconciliation {
    /// Whether the ledger and the journal agree (messages in flight at a
    /// crash and unfinished jobs are reported, not failures).
    pub fn agrees(&self) -> bool {
        self.mismatched.is_empty()
            && self.unaccounted.is_empty()
            && self.ends_missing.is_empty()
            && self.unsigned.is_empty()
    }
}

/// The ledger kinds of a vertical job's messages (`psi-hello`,
/// `mpc-opening`, ...): the journal records each by its digest.
fn is_vertical(kind: &str) -> bool {
    ["psi-", "mpc-", "vertical-"]
        .iter()
        .any(|prefix| kind.starts_with(prefix))
}

/// Whether the journal records a ledger line of this kind.
fn journaled_kind(kind: &str) -> bool {
    Phase::from_name(kind).is_some() || is_vertical(kind)
}

/// The group all of a vertical job's ledger lines are matched in.
const VERTICAL: &str = "vertical";

/// Matches `site`'s ledger against a verified journal.
pub fn reconcile(site: &str, ledger: &[LedgerEntry], journal: &VerifiedJournal) -> Reconciliation {
    let mut found = Reconciliation::default();
    // Ledger line number -> the journal record that accounts for it.
    let used = match_contributions(site, ledger, journal, &mut found);
    for (at, entry) in ledger
        .iter()
        .enumerate()
        .filter(|(_, e)| journaled_kind(&e.kind) && !used.contains_key(&e.seq))
    {
        if let Some(evidence) = crash_evidence(at, ledger, &used, journal)
            .or_else(|| cancel_evidence(&ledger[at], journal))
        {
            found
                .in_flight
                .push(format!("{}: {evidence}", describe(entry)));
        } else if let Some(record) = silent_in(&ledger[at], site, journal) {
            found.not_received.push(format!(
                "{}: journal record {record} lists this site silent in that phase \
                 (the message came late or never arrived)",
                describe(entry)
            ));
        } else {
            found
                .unaccounted
                .push(format!("{} is not in the journal", describe(entry)));
        }
    }
    for entry in ledger.iter().filter(|e| e.kind == END_RECORD_KIND) {
        match check_end(entry, journal) {
            Ok(()) => found.ends_attested += 1,
            Err(problem) => found
                .ends_missing
                .push(format!("ledger line {}: {problem}", entry.seq + 1)),
        }
    }
    (found.unsigned, found.unconfirmed) = releases_without_signature(site, journal);
    found.unfinished = journal::unfinished(&journal.records)
        .iter()
        .map(ToString::to_string)
        .collect();
    found
}

/// The releases of `journal` over a survivor set with `site`, in a job whose
/// survivor sets are signed, that `site` did not sign: those it was not
/// asked to sign or whose signature the journal does not show missing
/// (failures), and those whose confirmation the journal lists it silent in
/// (it dropped out after masking; reported).
fn releases_without_signature(site: &str, journal: &VerifiedJournal) -> (Vec<String>, Vec<String>) {
    let mut signed_jobs = std::collections::BTreeSet::new();
    let mut signed = std::collections::BTreeSet::new();
    let mut silent = std::collections::BTreeSet::new();
    let (mut missing, mut unconfirmed) = (Vec::new(), Vec::new());
    for record in &journal.records {
        match &record.entry {
            Entry::CohortFixed { job_id, quorum, .. } if *quorum > 0 => {
                signed_jobs.insert(job_id.clone());
            }
            Entry::SurvivorsConfirmed {
                job_id,
                round,
                signatures,
                ..
            } if signatures.contains_key(site) => {
                signed.insert((job_id.clone(), *round));
            }
            Entry::PhaseCompleted {
                job_id,
                round,
                phase: Phase::ConfirmSurvivors,
                silent: quiet,
                ..
            } if quiet.iter().any(|s| s == site) => {
                silent.insert((job_id.clone(), *round));
            }
            Entry::AggregateReleased {
                job_id,
                round,
                survivors,
                ..
            } if signed_jobs.contains(job_id)
                && survivors.iter().any(|s| s == site)
                && !signed.contains(&(job_id.clone(), *round)) =>
            {
                let what = format!(
                    "journal record {}: round {round} of {job_id} was released with {site}'s \
                     input over a survivor set {site} did not sign",
                    record.sequence
                );
                if silent.contains(&(job_id.clone(), *round)) {
                    unconfirmed.push(format!(
                        "{what}: its signature never reached the coordinator (silent in the \
                         round's confirmation) and the quorum of the others confirmed the set"
                    ));
                } else {
                    missing.push(what);
                }
            }
            _ => {}
        }
    }
    (missing, unconfirmed)
}

fn describe(e: &LedgerEntry) -> String {
    format!(
        "ledger line {}: {} of round {} in {} ({} bytes)",
        e.seq + 1,
        e.kind,
        e.round.map_or("-".to_string(), |r| r.to_string()),
        e.job_id,
        e.bytes
    )
}

/// Finds, for every phase the journal says this site answered, the ledger
/// line with that digest; returns which journal record matched which line.
fn match_contributions(
    site: &str,
    ledger: &[LedgerEntry],
    journal: &VerifiedJournal,
    found: &mut Reconciliation,
) -> BTreeMap<u64, u64> {
    let mut sent: BTreeMap<(&str, &str, Option<u64>), Vec<&LedgerEntry>> = BTreeMap::new();
    for entry in ledger.iter().filter(|e| journaled_kind(&e.kind)) {
        // A vertical job's messages are matched by digest alone.
        let kind = if is_vertical(&entry.kind) {
            VERTICAL
        } else {
            &entry.kind
        };
        sent.entry((&entry.job_id, kind, entry.round))
            .or_default()
            .push(entry);
    }
    let mut used = BTreeMap::new();
    let mut cursors: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &journal.records {
        if let Entry::VerticalBatch {
            job_id,
            step,
            from,
            messages,
            sha256,
            ..
        } = &record.entry
        {
            if from != site {
                continue;
            }
            let cursor = cursors.entry(job_id.as_str()).or_insert(0);
            let lines = sent
                .get(&(job_id.as_str(), VERTICAL, None))
                .map_or(&[][..], |es| &es[(*cursor).min(es.len())..]);
            match find_batch(lines, *messages, sha256) {
                Some(offset) => {
                    for entry in &lines[offset..offset + *messages as usize] {
                        used.insert(entry.seq, record.sequence);
                    }
                    *cursor += offset + *messages as usize;
                    found.matched += 1;
                }
                None => found.mismatched.push(format!(
                    "journal record {}: {step} of vertical job {job_id}, {messages} messages with batch digest {sha256}, is not in the ledger",
                    record.sequence
                )),
            }
            continue;
        }
        if let Entry::VerticalMessage {
            job_id,
            step,
            from,
            sha256,
            ..
        } = &record.entry
        {
            if from != site {
                continue;
            }
            // In order: the journal's records of a job are a subsequence
            // of the site's lines (some lost in flight at a crash), and
            // identical messages recur (a rerun's dealer requests), so each
            // record matches the first equal line after the last match.
            let key = (job_id.as_str(), VERTICAL, None);
            let cursor = cursors.entry(job_id.as_str()).or_insert(0);
            let lines = sent
                .get(&key)
                .map_or(&[][..], |es| &es[(*cursor).min(es.len())..]);
            match lines.iter().position(|e| &e.sha256 == sha256) {
                Some(offset) => {
                    let entry = lines[offset];
                    *cursor += offset + 1;
                    found.matched += 1;
                    used.insert(entry.seq, record.sequence);
                }
                None => found.mismatched.push(format!(
                    "journal record {}: {step} of vertical job {job_id} with digest {sha256} is not in the ledger",
                    record.sequence
                )),
            }
            continue;
        }
        let Entry::PhaseCompleted {
            job_id,
            round,
            phase,
            answered,
            ..
        } = &record.entry
        else {
            continue;
        };
        let Some(digest) = answered.get(site) else {
            continue;
        };
        let key = (job_id.as_str(), phase.name(), Some(*round));
        match sent.get(&key).and_then(|es| {
            es.iter()
                .find(|e| &e.sha256 == digest && !used.contains_key(&e.seq))
        }) {
            Some(entry) => {
                found.matched += 1;
                used.insert(entry.seq, record.sequence);
            }
            None => found.mismatched.push(format!(
                "journal record {}: {phase} of round {round} in {job_id} with digest {digest} is not in the ledger",
                record.sequence
            )),
        }
    }
    used
}

/// Where in `lines` the journal's batch of `messages` consecutive lines
/// with batch digest `sha256` begins (at once, normally; further on when
/// earlier lines were lost in flight at a crash).
fn find_batch(lines: &[&LedgerEntry], messages: u64, sha256: &str) -> Option<usize> {
    let m = usize::try_from(messages).ok().filter(|&m| m > 0)?;
    (0..=lines.len().checked_sub(m)?).find(|&offset| {
        let mut digest = BatchDigest::default();
        lines[offset..offset + m]
            .iter()
            .all(|e| BATCHED.contains(&e.kind.as_str()) && digest.add(&e.sha256))
            && digest.finish() == sha256
    })
}

/// The ledger kinds the coordinator journals in batches.
const BATCHED: [&str; 2] = ["mpc-opening", "mpc-request"];

/// Why a protocol message the journal does not hold was lost to a
/// coordinator crash, if it was: the journal shows `job_resumed` for its
/// job after the site's last journaled message, and the message went out
/// on the same session as that one (so to the process that crashed); or,
/// with nothing of the job journaled before it, its session broke after
/// it and the job resumed at or before its round.
fn crash_evidence(
    at: usize,
    ledger: &[LedgerEntry],
    used: &BTreeMap<u64, u64>,
    journal: &VerifiedJournal,
) -> Option<String> {
    let line = &ledger[at];
    let after = &ledger[at + 1..];
    let previous = ledger[..at]
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| e.job_id == line.job_id)
        .find_map(|(i, e)| used.get(&e.seq).map(|j| (i, *j)));
    let hello = |lines: &[LedgerEntry]| lines.iter().any(|e| e.kind == "hello");
    let resumed = journal.records.iter().find_map(|r| match &r.entry {
        Entry::JobResumed {
            job_id, next_round, ..
        } if *job_id == line.job_id => {
            let fits = match previous {
                Some((i, journaled)) => r.sequence > journaled && !hello(&ledger[i + 1..at]),
                None => hello(after) && line.round.is_some_and(|round| round <= *next_round),
            };
            fits.then_some((r.sequence, *next_round))
        }
        _ => None,
    })?;
    Some(format!(
        "sent to a coordinator that crashed before journaling it: journal record {} \
         (job_resumed, next round {}) shows the job resumed after it",
        resumed.0, resumed.1
    ))
}

/// Why `line` is not in the journal when its job was cancelled while its
/// round was open: the coordinator stopped the round, journaled the
/// cancellation, and released nothing of it (a round the journal shows
/// released or aborted gets no such excuse).
fn cancel_evidence(line: &LedgerEntry, journal: &VerifiedJournal) -> Option<String> {
    let round = line.round?;
    let ended = journal.records.iter().any(|r| match &r.entry {
        Entry::AggregateReleased {
            job_id, round: n, ..
        }
        | Entry::RoundAborted {
            job_id, round: n, ..
        } => *job_id == line.job_id && *n == round,
        _ => false,
    });
    if ended {
        return None;
    }
    journal.records.iter().find_map(|r| match &r.entry {
        Entry::JobCancelled { job_id, by, .. } if *job_id == line.job_id => Some(format!(
            "sent in round {round}, which the job's cancellation by {by} (journal record {}) \
             cut short: nothing of that round was released",
            r.sequence
        )),
        _ => None,
    })
}

/// The journal record of `line`'s phase that lists `site` as silent, if
/// any: the coordinator states it did not accept that message.
fn silent_in(line: &LedgerEntry, site: &str, journal: &VerifiedJournal) -> Option<u64> {
    journal.records.iter().find_map(|r| match &r.entry {
        Entry::PhaseCompleted {
            job_id,
            round,
            phase,
            silent,
            ..
        } if *job_id == line.job_id
            && Some(*round) == line.round
            && phase.name() == line.kind
            && silent.iter().any(|s| s == site) =>
        {
            Some(r.sequence)
        }
        _ => None,
    })
}

/// Checks one kept `job_finished` record against the journal.
fn check_end(line: &LedgerEntry, journal: &VerifiedJournal) -> Result<(), String> {
    let bytes = line
        .journal_record
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
        .ok_or("the kept job_finished record is missing or not hex")?;
    if hex::encode(Sha256::digest(&bytes)) != line.sha256 {
        return Err("the kept job_finished record does not match the line's digest".into());
    }
    let check = journal::check_end_record(journal, &bytes).map_err(|e| {
        format!(
            "the job_finished record this site received for {} does not verify with this \
             journal's coordinator key ({e})",
            line.job_id
        )
    })?;
    match check {
        EndRecordCheck::Present(record) => match record.entry {
            Entry::JobFinished { job_id, .. } if job_id == line.job_id => Ok(()),
            _ => Err(format!(
                "journal record {} is not the end of job {}",
                record.sequence, line.job_id
            )),
        },
        EndRecordCheck::Missing {
            record,
            journal_records,
        } => Err(format!(
            "TRUNCATED JOURNAL: the coordinator told this site that job {} ended with its \
             signed record {} ({}), but this journal holds only {journal_records} records",
            line.job_id, record.sequence, line.sha256
        )),
        EndRecordCheck::Replaced(record) => Err(format!(
            "the journal's record {} is not the job_finished of {} this site received",
            record.sequence, line.job_id
        )),
    }
}

#[cfg(test)]
mod tests;
