//! What the journal says of a job that did not finish: the rounds it
//! completed (handed back in order when the job retraces its steps) and the
//! round and key epoch numbers to go on from.

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
}

impl Resume {
    /// Rebuilds `job` from the journal: `None` if it was never submitted.
    pub fn from_journal(records: &[Record], job: &Job) -> Result<Option<Self>, EngineError> {
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
        for record in &records[start..] {
            let empty = RoundRecord::new;
            match &record.entry {
                Entry::JobFinished { job_id, .. } if *job_id == job.id => {
                    return Err(EngineError::AlreadyFinished(job.id.clone()));
                }
                Entry::AggregateReleased {
                    job_id,
                    round,
                    survivors,
                    values,
                } if *job_id == job.id => {
                    seen(*round, &mut resume);
                    let mut r = empty(*round, "released");
                    r.survivors = survivors.clone();
                    r.sum = Some(values.clone());
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
                    let mut r = empty(*round, "aborted");
                    r.reason = Some(reason.clone());
                    resume.completed.push(r);
                }
                Entry::PhaseCompleted { job_id, round, .. }
                | Entry::RoundOpened { job_id, round, .. }
                    if *job_id == job.id =>
                {
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
