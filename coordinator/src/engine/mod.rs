//! The round engine: forms the cohort, offers the job, then runs key epochs
//! and secure-sum rounds over the participants' sessions, each phase with a
//! deadline. It drives the same state machines as the in-process runner
//! (`fedseg_common::secagg::coordinator`); the engine only moves messages
//! and decides who is still there. It knows nothing of what a job computes:
//! a computation arrives as a [`proto::Computation`] and leaves as a
//! decoded sum.
//!
//! One file per phase:
//! - [`cohort`]: submitting (or resuming) the job, the cohort, the offer;
//! - [`events`]: session events decoded into what a phase can use;
//! - [`epoch`]: a key set-up;
//! - [`round`]: one secure sum and its privacy accounting;
//! - [`resume`]: what the journal says of a job that did not finish;
//! - [`transport`]: what the engine needs from the sessions;
//! - [`vertical`]: what a vertical job's driver needs from the sessions.

mod cohort;
mod end;
mod epoch;
mod events;
pub mod resume;
mod round;
pub mod transport;
pub mod vertical;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use fedseg_common::privacy::PrivacyError;
use fedseg_common::proto::{CoordinatorMessage, coordinator_message};
use fedseg_common::secagg::coordinator::Epoch;
use fedseg_common::secagg::{JobParams, SecAggError};
use serde::Serialize;
use thiserror::Error;

use crate::config::{Job, RoundSettings};
use crate::journal::{JournalWriteError, JournalWriter};
use crate::service::Traffic;

pub use resume::Resume;
pub use transport::{HubTransport, Transport};
pub use vertical::VerticalEvent;

/// Why a job could not run at all.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Too few listed participants connected in time.
    #[error("only {have} of the listed participants connected, the job needs {need}")]
    CohortTooSmall {
        /// Connected.
        have: usize,
        /// Needed.
        need: usize,
    },
    /// Too many cohort members declined the job for it to release anything.
    #[error(
        "only {accepted} cohort members accepted the job and a release needs {need}; declined: {declined}"
    )]
    TooFewAccepted {
        /// Members that accepted.
        accepted: usize,
        /// The Shamir threshold.
        need: usize,
        /// Who declined, with their reasons.
        declined: String,
    },
    /// The job's cohort settings do not hold for the cohort that formed.
    #[error("job setting {0}: {1}")]
    Settings(String, String),
    /// The job describes no computation this engine runs.
    #[error("the job has no [secure_sum] section")]
    NothingToRun,
    /// Parameters are inconsistent.
    #[error(transparent)]
    Protocol(#[from] SecAggError),
    /// The encoding is impossible for this cohort.
    #[error(transparent)]
    Encoding(#[from] fedseg_common::fixed_point::EncodingError),
    /// A release under differential privacy cannot be bounded.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// The event queue closed.
    #[error("the coordinator service stopped")]
    ServiceStopped,
    /// The journal holds this job with another configuration.
    #[error("the journal holds job {0} with another configuration; use another job_id")]
    ConfigChanged(String),
    /// The journal says this job already ended in failure.
    #[error("job {0} already ended (it failed); its rounds are in the journal")]
    AlreadyFinished(String),
    /// A finished job could not be retraced from its journal.
    #[error("job {job} finished, but its journaled rounds do not retrace it: {reason}")]
    NotRetraced {
        /// Job identifier.
        job: String,
        /// What went wrong.
        reason: String,
    },
    /// The journal could not be written; nothing more may happen.
    #[error(transparent)]
    Journal(#[from] JournalWriteError),
}

/// What one round did, as reported in `result.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRecord {
    /// Round number.
    pub round: u64,
    /// What the round computed.
    pub purpose: String,
    /// Key epoch the round ran in (its key set-up), if it got that far.
    pub epoch: Option<u32>,
    /// `released` or `aborted`.
    pub outcome: &'static str,
    /// Members whose input the sum covers.
    pub survivors: Vec<String>,
    /// Members asked for an input that did not send one.
    pub dropped: Vec<String>,
    /// The released sum (decoded), when released.
    pub sum: Option<Vec<f64>>,
    /// Why nothing was released, when aborted.
    pub reason: Option<String>,
    /// zCDP ρ the release spent, under differential privacy.
    pub rho: Option<f64>,
    /// Standard deviation of its noise on a count, under differential
    /// privacy.
    pub count_noise_sd: Option<f64>,
    /// Wall time of the round.
    pub duration_s: f64,
    /// Session traffic during the round (with its key set-up, if any).
    pub traffic: Traffic,
}

impl RoundRecord {
    /// A round with nothing recorded yet but its number and outcome.
    pub fn new(round: u64, outcome: &'static str) -> Self {
        Self {
            round,
            purpose: String::new(),
            epoch: None,
            outcome,
            survivors: vec![],
            dropped: vec![],
            sum: None,
            reason: None,
            rho: None,
            count_noise_sd: None,
            duration_s: 0.0,
            traffic: Traffic::default(),
        }
    }
}

/// The outcome of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Job identifier.
    pub job_id: String,
    /// SHA-256 of job.toml.
    pub config_hash: String,
    /// Cohort identities, index order.
    pub cohort: Vec<String>,
    /// Shamir threshold used.
    pub threshold: u32,
    /// Neighbours per member.
    pub neighbours: u32,
    /// Members whose input is in at least one released sum.
    pub took_part: Vec<String>,
    /// Members that declined the job, with their reasons.
    pub declined: Vec<crate::result::Declined>,
    /// Members missing from some released sums, from which round on.
    pub dropped_out: Vec<crate::result::DroppedOut>,
    /// Every round.
    pub rounds: Vec<RoundRecord>,
    /// Messages refused, by reason code.
    pub rejected_messages: BTreeMap<&'static str, u64>,
}

/// A new job's differential-privacy budget, journaled right after the job
/// is submitted (the caller decides the plan; the engine only records it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacyBudget {
    /// ε of the whole job.
    pub epsilon: f64,
    /// δ of the whole job.
    pub delta: f64,
    /// The zCDP ρ the releases are planned to spend.
    pub rho: f64,
    /// Upper clip bounds of R, F, M, L, T per customer.
    pub clip: [f64; 5],
    /// Releases the budget is split over.
    pub planned_releases: u32,
}

/// Runs one job to its end over the participants' sessions.
pub struct Engine<'a> {
    transport: Box<dyn Transport + 'a>,
    settings: RoundSettings,
    job: &'a Job,
    cohort: Vec<String>,
    index: HashMap<String, u32>,
    params: Arc<JobParams>,
    connected: BTreeSet<u32>,
    accepted: BTreeSet<u32>,
    /// Members that declined the job, with their reasons.
    declined: BTreeMap<String, String>,
    /// Members connected that let a phase's deadline pass without a word,
    /// left out of every round from then on; `true` once they were heard
    /// from again, so they rejoin at the next key set-up ([`events`]).
    hung: BTreeMap<u32, bool>,
    rejected: BTreeMap<&'static str, u64>,
    journal: &'a mut JournalWriter,
    /// Rounds the journal says already ran, handed back in order before
    /// any new round runs.
    replay: VecDeque<RoundRecord>,
    /// Every round of the job so far, replayed ones included.
    rounds: Vec<RoundRecord>,
    next_round: u64,
    epoch: Option<Epoch>,
    next_epoch: u32,
    /// zCDP ρ the job's releases spent so far, replayed ones included.
    privacy_spent: f64,
    /// When retracing a finished job: the sequence number of its journaled
    /// `job_finished` record.
    end_record: Option<u64>,
}

impl Engine<'_> {
    /// zCDP ρ the job's releases spent so far.
    pub fn privacy_spent(&self) -> f64 {
        self.privacy_spent
    }

    /// The Shamir threshold: the fewest members whose inputs, and noise, a
    /// released sum can cover.
    pub fn threshold(&self) -> u32 {
        self.params.threshold
    }

    /// The job being run.
    pub fn job(&self) -> &Job {
        self.job
    }

    /// The cohort, in index order.
    pub fn cohort(&self) -> &[String] {
        &self.cohort
    }

    /// Every round so far.
    pub fn rounds(&self) -> &[RoundRecord] {
        &self.rounds
    }

    /// Members that declined the job, with their reasons.
    pub fn declined(&self) -> &BTreeMap<String, String> {
        &self.declined
    }

    /// Neighbours per member.
    fn neighbours(&self) -> u32 {
        self.params.graph.neighbours(0).len() as u32
    }

    async fn send(&self, member: u32, body: coordinator_message::Body) -> bool {
        let message = CoordinatorMessage {
            job_id: self.job.id.clone(),
            body: Some(body),
        };
        self.transport
            .send(&self.cohort[member as usize], message)
            .await
    }

    async fn broadcast(
        &self,
        members: impl IntoIterator<Item = u32>,
        body: coordinator_message::Body,
    ) {
        for m in members {
            self.send(m, body.clone()).await;
        }
    }

    /// Members connected that accepted the job and are not hung.
    fn present(&self) -> BTreeSet<u32> {
        self.connected
            .intersection(&self.accepted)
            .copied()
            .filter(|m| !self.hung.contains_key(m))
            .collect()
    }

    fn names(&self, members: &[u32]) -> Vec<String> {
        members
            .iter()
            .map(|&m| self.cohort[m as usize].clone())
            .collect()
    }
}
