//! What the journal says of a job that did not finish: the rounds it
//! completed (handed back in order when the job retraces its steps) and the
//! round and key epoch numbers to go on from.

use std::collections::BTreeMap;

use fedseg_common::journal::{Entry, Record};

use super::{EngineError, RoundRecord};
use crate::config::Job;

/// What the journal says of a job that did not finish.
#[derive(Debug, Default)]
pub struct Resume {
    /// Rounds that released or aborted, exactly as journaled.
    pub completed: Vec<RoundRecord>,
    /// The round number to go on from: past every round the journal
    /// mentions, so a round in flight runs again under a new number.
    pub next_round: u64,
    /// The key epoch number to go on from.
    pub next_epoch: u32,
    /// The cohort as last journaled, in index order.
    pub cohort: Vec<String>,
    /// Members that declined, with their reasons.
    pub declined: BTreeMap<String, String>,
    /// Whether the journal shows the job finished successfully.
    pub finished: bool,
    /// The sequence number of its `job_finished` record, then.
    pub end_record: Option<u64>,
}

impl Resume {
    /// Rebuilds an unfinished `job` from the journal: `None` if it was
    /// never submitted; an error if it finished.
    pub fn from_journal(records: &[Record], job: &Job) -> Result<Option<Self>, EngineError> {
        match Self::read(records, job)? {
            Some(resume) if resume.finished => Err(EngineError::AlreadyFinished(job.id.clone())),
            other => Ok(other),
        }
    }

    /// What the journal says of `job`, finished or not: `None` if it was
    /// never submitted; an error if it failed (its end is final) or the
    /// journal holds it with another configuration.
    pub fn read(records: &[Record], job: &Job) -> Result<Option<Self>, EngineError> {
        let Some(start) = records.iter().rposition(
            |r| matches!(&r.entry, Entry::JobSubmitted { job_id, .. } if *job_id == job.id),
        ) else {
            return Ok(None);
        };
        if matches!(&records[start].entry, Entry::JobSubmitted { config_hash, .. } if *config_hash != job.config_hash)
        {
            return Err(EngineError::ConfigChanged(job.id.clone()));
        }
        let mut resume = Resume::default();
        let seen =
            |round: u64, resume: &mut Resume| resume.next_round = resume.next_round.max(round + 1);
        // Key epoch and members asked, per opened round.
        let mut opened: BTreeMap<u64, (u32, &[String])> = BTreeMap::new();
        let empty =
            |round: u64, outcome: &'static str, opened: &BTreeMap<u64, (u32, &[String])>| {
                let mut r = RoundRecord::new(round, outcome);
                r.epoch = opened.get(&round).map(|(epoch, _)| *epoch);
                r
            };
        // When each round started, by the journal's clock: the time of the
        // record before its first one (the previous round's last record, or
        // the cohort's, for a round that opens the job or a key set-up), as
        // the live engine times a round from the end of the one before.
        let mut last_ms = records[start].unix_ms;
        let mut started: BTreeMap<u64, i64> = BTreeMap::new();
        for record in &records[start..] {
            if let Some(round) = round_of(&record.entry, &job.id) {
                started.entry(round).or_insert(last_ms);
            }
            last_ms = record.unix_ms;
            let took = |round: &u64| {
                let from = started.get(round).copied().unwrap_or(record.unix_ms);
                (record.unix_ms - from).max(0) as f64 / 1000.0
            };
            match &record.entry {
                Entry::JobFinished {
                    job_id, success, ..
                } if *job_id == job.id => {
                    if !success {
                        return Err(EngineError::AlreadyFinished(job.id.clone()));
                    }
                    resume.finished = true;
                    resume.end_record = Some(record.sequence);
                }
                Entry::CohortFixed { job_id, cohort, .. } if *job_id == job.id => {
                    resume.cohort = cohort.clone();
                }
                Entry::ParticipantDeclined {
                    job_id,
                    participant,
                    reason,
                } if *job_id == job.id => {
                    resume.declined.insert(participant.clone(), reason.clone());
                }
                Entry::RoundOpened {
                    job_id,
                    round,
                    epoch,
                    members,
                } if *job_id == job.id => {
                    seen(*round, &mut resume);
                    opened.insert(*round, (*epoch, members));
                }
                Entry::AggregateReleased {
                    job_id,
                    round,
                    survivors,
                    values,
                } if *job_id == job.id => {
                    seen(*round, &mut resume);
                    let mut r = empty(*round, "released", &opened);
                    r.survivors = survivors.clone();
                    // Asked for an input and not covered by the sum.
                    r.dropped = opened.get(round).map_or(Vec::new(), |(_, asked)| {
                        asked
                            .iter()
                            .filter(|m| !survivors.contains(m))
                            .cloned()
                            .collect()
                    });
                    r.sum = Some(values.clone());
                    r.duration_s = took(round);
                    resume.completed.push(r);
                }
                Entry::PrivacySpent {
                    job_id,
                    round,
                    rho,
                    count_noise_sd,
                    ..
                } if *job_id == job.id => {
                    if let Some(released) = resume
                        .completed
                        .iter_mut()
                        .rev()
                        .find(|r| r.round == *round)
                    {
                        released.rho = Some(*rho);
                        released.count_noise_sd = Some(*count_noise_sd);
                    }
                }
                Entry::RoundAborted {
                    job_id,
                    round,
                    reason,
                } if *job_id == job.id => {
                    seen(*round, &mut resume);
                    let mut r = empty(*round, "aborted", &opened);
                    r.reason = Some(reason.clone());
                    r.duration_s = took(round);
                    resume.completed.push(r);
                }
                Entry::PhaseCompleted { job_id, round, .. } if *job_id == job.id => {
                    seen(*round, &mut resume)
                }
                Entry::KeySetupDone { job_id, epoch, .. } if *job_id == job.id => {
                    resume.next_epoch = resume.next_epoch.max(epoch + 1);
                }
                Entry::JobResumed {
                    job_id, next_round, ..
                } if *job_id == job.id => {
                    resume.next_round = resume.next_round.max(*next_round);
                }
                _ => {}
            }
        }
        Ok(Some(resume))
    }
}

/// The round a record of job `job_id` belongs to, for the records a round
/// writes (its key set-up's phases included).
fn round_of(entry: &Entry, job_id: &str) -> Option<u64> {
    match entry {
        Entry::RoundOpened {
            job_id: j, round, ..
        }
        | Entry::PhaseCompleted {
            job_id: j, round, ..
        }
        | Entry::AggregateReleased {
            job_id: j, round, ..
        }
        | Entry::RoundAborted {
            job_id: j, round, ..
        } if j == job_id => Some(*round),
        _ => None,
    }
}
