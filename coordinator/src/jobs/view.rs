//! What the journal says of each job, as the job service shows it: the
//! queue is not kept anywhere else, so a restarted coordinator sees exactly
//! the jobs, states and reasons it journaled.

use std::collections::BTreeMap;

use fedseg_common::job::JobConfig;
use fedseg_common::journal::{Entry, Record};
use fedseg_common::proto::QueuedJob;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting its turn.
    Queued,
    /// Started (and possibly interrupted by a restart): not finished.
    Running,
    /// Finished with a result.
    Finished,
    /// Ended without one.
    Failed,
    /// Cancelled by an analyst.
    Cancelled,
}

impl State {
    /// The name shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Finished => "finished",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// Whether the job is over.
    pub fn ended(self) -> bool {
        matches!(self, State::Finished | State::Failed | State::Cancelled)
    }
}

/// One job as the journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// Job identifier.
    pub job_id: String,
    /// Its state.
    pub state: State,
    /// The submitting analyst (empty: run by the operator from a file).
    pub analyst: String,
    /// Its purpose, as stated in the job.
    pub purpose: String,
    /// The job's text.
    pub config: String,
    /// SHA-256 of the text, hex.
    pub config_hash: String,
    /// The analyst's certificate and signature (DER, raw), when queued.
    pub signed: Option<(Vec<u8>, Vec<u8>)>,
    /// Last phase completed.
    pub phase: String,
    /// Rounds released and aborted.
    pub released: u64,
    /// Rounds aborted.
    pub aborted: u64,
    /// The cohort, once fixed.
    pub cohort: Vec<String>,
    /// Members that declined, with their reasons.
    pub declined: BTreeMap<String, String>,
    /// Why it failed, or who cancelled it and why.
    pub reason: String,
    /// Unix ms of its first record and of its end (0 while running).
    pub submitted_ms: i64,
    /// Unix ms of its end.
    pub ended_ms: i64,
    /// zCDP ρ its releases spent (0 without differential privacy).
    pub rho_spent: f64,
    /// The job's (ε, δ) budget, when it has one.
    pub budget: Option<(f64, f64)>,
}

impl JobView {
    fn new(job_id: &str, unix_ms: i64) -> Self {
        Self {
            job_id: job_id.to_string(),
            state: State::Queued,
            analyst: String::new(),
            purpose: String::new(),
            config: String::new(),
            config_hash: String::new(),
            signed: None,
            phase: String::new(),
            released: 0,
            aborted: 0,
            cohort: Vec::new(),
            declined: BTreeMap::new(),
            reason: String::new(),
            submitted_ms: unix_ms,
            ended_ms: 0,
            rho_spent: 0.0,
            budget: None,
        }
    }

    /// Whether the job service runs it: an analyst queued it and it has
    /// not ended.
    pub fn pending(&self) -> bool {
        self.signed.is_some() && !self.state.ended()
    }

    /// The ε its releases spent, under the job's δ (0 without a budget).
    pub fn epsilon_spent(&self) -> f64 {
        match self.budget {
            Some((_, delta)) if self.rho_spent > 0.0 => {
                fedseg_common::dp::epsilon_for(self.rho_spent, delta)
            }
            _ => 0.0,
        }
    }

    /// What the job computes, by its kinds' names.
    pub fn kinds(&self) -> Vec<String> {
        JobConfig::parse(&self.config)
            .map(|c| c.kinds().iter().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// The wire form.
    pub fn to_proto(&self) -> QueuedJob {
        QueuedJob {
            job_id: self.job_id.clone(),
            state: self.state.as_str().into(),
            analyst: self.analyst.clone(),
            purpose: self.purpose.clone(),
            kinds: self.kinds(),
            config_hash: self.config_hash.clone(),
            phase: self.phase.clone(),
            rounds_released: self.released,
            rounds_aborted: self.aborted,
            cohort: self.cohort.clone(),
            declined: self.declined.clone().into_iter().collect(),
            reason: self.reason.clone(),
            submitted_unix_ms: self.submitted_ms,
            ended_unix_ms: self.ended_ms,
            epsilon_spent: self.epsilon_spent(),
        }
    }
}

/// Every job of `records`, in the order the journal first names them.
pub fn jobs(records: &[Record]) -> Vec<JobView> {
    let mut jobs: Vec<JobView> = Vec::new();
    for record in records {
        let Some(id) = record.entry.job_id() else {
            continue;
        };
        let at = match jobs.iter().position(|j| j.job_id == id) {
            Some(at) => at,
            None => {
                jobs.push(JobView::new(id, record.unix_ms));
                jobs.len() - 1
            }
        };
        apply(&mut jobs[at], record);
    }
    jobs
}

fn apply(job: &mut JobView, record: &Record) {
    match &record.entry {
        Entry::JobQueued {
            analyst,
            purpose,
            config_hash,
            config,
            certificate,
            signature,
            ..
        } => {
            job.analyst = analyst.clone();
            job.purpose = purpose.clone();
            job.config = config.clone();
            job.config_hash = config_hash.clone();
            job.signed = Some((
                hex::decode(certificate).unwrap_or_default(),
                hex::decode(signature).unwrap_or_default(),
            ));
        }
        Entry::JobSubmitted {
            config_hash,
            config,
            ..
        } => {
            job.state = State::Running;
            if job.config.is_empty() {
                job.config = config.clone();
                job.config_hash = config_hash.clone();
                job.purpose = JobConfig::parse(config)
                    .ok()
                    .and_then(|c| c.purpose)
                    .unwrap_or_default();
            }
        }
        Entry::CohortFixed { cohort, .. } => job.cohort = cohort.clone(),
        Entry::ParticipantDeclined {
            participant,
            reason,
            ..
        } => {
            job.declined.insert(participant.clone(), reason.clone());
        }
        Entry::PhaseCompleted { phase, .. } => job.phase = phase.to_string(),
        Entry::AggregateReleased { .. } => job.released += 1,
        Entry::RoundAborted { .. } => job.aborted += 1,
        Entry::PrivacyBudget { epsilon, delta, .. } => job.budget = Some((*epsilon, *delta)),
        Entry::PrivacySpent { total_rho, .. } => job.rho_spent = *total_rho,
        Entry::JobCancelled { by, reason, .. } => {
            job.state = State::Cancelled;
            job.reason = format!("cancelled by {by}: {reason}");
        }
        Entry::JobFinished {
            success, reason, ..
        } => {
            job.ended_ms = record.unix_ms;
            if job.state != State::Cancelled {
                job.state = if *success {
                    State::Finished
                } else {
                    State::Failed
                };
                job.reason = reason.clone();
            }
        }
        _ => {}
    }
}
