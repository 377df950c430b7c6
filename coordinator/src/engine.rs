//! The round engine: forms the cohort, offers the job, then runs key epochs
//! and secure-sum rounds over the participants' sessions, each phase with a
//! deadline. It drives the same state machines as the in-process runner
//! (`fedseg_common::secagg::coordinator`); this module only moves messages
//! and decides who is still there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use fedseg_common::fixed_point::{ClipRange, FixedPointEncoder};
use fedseg_common::journal::Entry;
use fedseg_common::privacy::{self, PrivacyError};
use fedseg_common::proto::{self, CoordinatorMessage, coordinator_message, participant_message};
use fedseg_common::secagg::coordinator::{self as role, Epoch};
use fedseg_common::secagg::messages::ToCoordinator;
use fedseg_common::secagg::{JobParams, NeighbourGraph, SecAggError};
use fedseg_common::wire;
use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant as Deadline, timeout_at};
use tracing::{info, warn};

use crate::config::{Job, RoundSettings};
use crate::journal::{JournalWriteError, JournalWriter};
use crate::segmentation::ReleasePlan;
use crate::service::{Event, Hub, Traffic};

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
    /// The journal says this job already finished.
    #[error("job {0} already finished; its rounds are in the journal")]
    AlreadyFinished(String),
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
    /// Every round.
    pub rounds: Vec<RoundRecord>,
    /// Messages refused, by reason code.
    pub rejected_messages: BTreeMap<&'static str, u64>,
}

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
    pub fn from_journal(
        records: &[fedseg_common::journal::Record],
        job: &Job,
    ) -> Result<Option<Self>, EngineError> {
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

/// One phase's collecting state, whatever the phase.
trait Collecting {
    fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError>;
    fn is_complete(&self) -> bool;
}

macro_rules! collecting {
    ($($t:ty),*) => {$(
        impl Collecting for $t {
            fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
                <$t>::handle(self, from, message)
            }
            fn is_complete(&self) -> bool {
                <$t>::is_complete(self)
            }
        }
    )*};
}
collecting!(
    role::KeyCollection,
    role::ShareCollection,
    role::InputCollection,
    role::UnmaskCollection
);

/// Runs one job to its end over the participants connected to `hub`.
pub struct Engine<'a> {
    hub: Arc<Hub>,
    events: &'a mut UnboundedReceiver<Event>,
    settings: RoundSettings,
    job: &'a Job,
    cohort: Vec<String>,
    index: HashMap<String, u32>,
    params: Arc<JobParams>,
    connected: BTreeSet<u32>,
    accepted: BTreeSet<u32>,
    /// Members that declined the job, with their reasons.
    declined: BTreeMap<String, String>,
    rejected: BTreeMap<&'static str, u64>,
    journal: &'a mut JournalWriter,
    /// Rounds the journal says already ran, handed back in order before
    /// any new round runs.
    replay: std::collections::VecDeque<RoundRecord>,
    /// Every round of the job so far, replayed ones included.
    rounds: Vec<RoundRecord>,
    next_round: u64,
    epoch: Option<Epoch>,
    next_epoch: u32,
    /// zCDP ρ the job's releases spent so far, replayed ones included.
    privacy_spent: f64,
}

impl<'a> Engine<'a> {
    /// Runs a `[secure_sum]` job to its end: the same vector summed in each
    /// of its rounds.
    pub async fn run_vector_sums(mut self) -> Result<JobReport, EngineError> {
        let engine = &mut self;
        let sum = engine
            .job
            .config
            .secure_sum
            .clone()
            .ok_or(EngineError::NothingToRun)?;
        let encoder = FixedPointEncoder::new(sum.frac_bits, vec![ClipRange::new(sum.lo, sum.hi)])?;
        encoder.check_capacity(engine.cohort.len() as u64)?;
        let computation = proto::Computation {
            encoding: Some(proto::Encoding {
                frac_bits: sum.frac_bits,
                ranges: vec![proto::ClipRange {
                    lo: sum.lo,
                    hi: sum.hi,
                }],
                units: vec![],
            }),
            noise: None,
            kind: Some(proto::computation::Kind::VectorFile(proto::VectorFile {
                name: sum.vector.clone(),
            })),
        };
        for _ in 0..sum.rounds {
            engine
                .secure_sum("vector", &computation, &encoder, sum.length)
                .await?;
        }
        self.finish(true, "", String::new()).await
    }

    /// Submits (or resumes) `job`, waits for the cohort, fixes it and offers
    /// the job; rounds are then run one [`Engine::secure_sum`] at a time.
    pub async fn start(
        hub: Arc<Hub>,
        events: &'a mut UnboundedReceiver<Event>,
        settings: RoundSettings,
        listed: &[String],
        job: &'a Job,
        journal: &'a mut JournalWriter,
    ) -> Result<Engine<'a>, EngineError> {
        let resume = Resume::from_journal(journal.records(), job)?;
        match &resume {
            None => {
                journal.append(Entry::JobSubmitted {
                    job_id: job.id.clone(),
                    config_hash: job.config_hash.clone(),
                    config: job.text.clone(),
                })?;
                if let Some(plan) = ReleasePlan::of(job) {
                    journal.append(Entry::PrivacyBudget {
                        job_id: job.id.clone(),
                        epsilon: plan.settings.epsilon,
                        delta: plan.settings.delta,
                        rho: plan.rho_per_release * f64::from(plan.planned),
                        clip: plan.settings.clip,
                        planned_releases: plan.planned,
                    })?;
                }
            }
            Some(r) => {
                info!(job = %job.id, completed = r.completed.len(), next_round = r.next_round, "resuming from the journal");
                journal.append(Entry::JobResumed {
                    job_id: job.id.clone(),
                    completed: r.completed.len() as u64,
                    next_round: r.next_round,
                })?
            }
        }
        let resume = resume.unwrap_or_default();
        let need = job
            .config
            .cohort
            .min_participants
            .map_or(listed.len(), |m| m as usize);
        let cohort = form_cohort(&hub, events, listed, need, settings.cohort_timeout()).await?;
        let n = cohort.len() as u32;
        let neighbours = job
            .config
            .cohort
            .neighbours
            .unwrap_or_else(|| NeighbourGraph::default_degree(n));
        let graph = NeighbourGraph::new(n, neighbours, &job.graph_seed())?;
        let threshold = job
            .config
            .cohort
            .threshold
            .unwrap_or((graph.min_holders() / 2 + 1) as u32);
        let params = Arc::new(JobParams::new(
            job.id.clone(),
            n,
            threshold,
            neighbours,
            &job.graph_seed(),
        )?);
        info!(job = %job.id, cohort = ?cohort, threshold, neighbours, "cohort formed");
        journal.append(Entry::CohortFixed {
            job_id: job.id.clone(),
            cohort: cohort.clone(),
            threshold,
            neighbours: params.graph.neighbours(0).len() as u32,
        })?;
        let connected = (0..n).collect();
        let index = cohort
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        let mut engine = Engine {
            hub,
            events,
            settings,
            job,
            cohort,
            index,
            params,
            connected,
            accepted: BTreeSet::new(),
            declined: BTreeMap::new(),
            rejected: BTreeMap::new(),
            journal,
            replay: resume.completed.into(),
            rounds: Vec::new(),
            next_round: resume.next_round,
            epoch: None,
            next_epoch: resume.next_epoch,
            privacy_spent: 0.0,
        };
        let members: Vec<u32> = (0..n).collect();
        for &m in &members {
            engine.offer(m).await;
        }
        engine.await_answers(&members).await?;
        let need = engine.params.threshold as usize;
        if engine.accepted.len() < need && !engine.declined.is_empty() {
            return Err(EngineError::TooFewAccepted {
                accepted: engine.accepted.len(),
                need,
                declined: engine
                    .declined
                    .iter()
                    .map(|(id, reason)| format!("{id} ({reason})"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(engine)
    }

    /// zCDP ρ the job's releases spent so far.
    pub fn privacy_spent(&self) -> f64 {
        self.privacy_spent
    }

    /// The Shamir threshold: the fewest members whose inputs, and noise, a
    /// released sum can cover.
    pub fn threshold(&self) -> u32 {
        self.params.threshold
    }

    /// The cohort, in index order.
    pub fn cohort(&self) -> &[String] {
        &self.cohort
    }

    /// Every round so far.
    pub fn rounds(&self) -> &[RoundRecord] {
        &self.rounds
    }

    /// One secure sum of `computation` over the members present: the
    /// released (decoded) sum, or an aborted round when too few members
    /// answered. A job resumed from the journal first gets back, in order,
    /// the rounds the journal holds, so a deterministic job retraces its
    /// steps without asking anyone again.
    pub async fn secure_sum(
        &mut self,
        purpose: &str,
        computation: &proto::Computation,
        encoder: &FixedPointEncoder,
        length: u32,
    ) -> Result<&RoundRecord, EngineError> {
        if let Some(mut done) = self.replay.pop_front() {
            done.purpose = purpose.to_string();
            match done.rho {
                Some(rho) => self.privacy_spent += rho,
                // The coordinator stopped between journaling the release
                // and its privacy: account for it now.
                None if done.sum.is_some() => self.spend_privacy(&mut done, computation, length)?,
                None => {}
            }
            self.rounds.push(done);
            return Ok(self.rounds.last().expect("pushed"));
        }
        let round = self.next_round;
        self.next_round += 1;
        let started = Instant::now();
        let traffic_before = self.hub.traffic();
        let mut record = RoundRecord::new(round, "aborted");
        record.purpose = purpose.to_string();
        let result = self
            .run_round(round, computation, encoder, length, &mut record)
            .await;
        if let Err(error) = result {
            match error {
                EngineError::Protocol(e) => {
                    warn!(round, code = e.code(), %e, "round aborted, nothing released");
                    record.reason = Some(e.to_string());
                    self.journal.append(Entry::RoundAborted {
                        job_id: self.job.id.clone(),
                        round,
                        reason: e.to_string(),
                    })?;
                    let members: Vec<u32> = self.present().into_iter().collect();
                    for m in members {
                        self.send(
                            m,
                            coordinator_message::Body::RoundAborted(proto::RoundAborted {
                                round,
                                reason: e.to_string(),
                            }),
                        )
                        .await;
                    }
                }
                other => return Err(other),
            }
        }
        record.duration_s = started.elapsed().as_secs_f64();
        record.traffic = self.hub.traffic() - traffic_before;
        self.hub.metrics.round(record.outcome, record.dropped.len());
        self.rounds.push(record);
        Ok(self.rounds.last().expect("pushed"))
    }

    /// Journals the job's end and tells every member, with the job's
    /// result when it succeeded.
    pub async fn finish(
        self,
        success: bool,
        reason: &str,
        result_json: String,
    ) -> Result<JobReport, EngineError> {
        self.journal.append(Entry::JobFinished {
            job_id: self.job.id.clone(),
            success,
            reason: reason.to_string(),
        })?;
        self.broadcast_all(coordinator_message::Body::JobFinished(proto::JobFinished {
            success,
            reason: reason.to_string(),
            result_json,
        }))
        .await;
        Ok(JobReport {
            job_id: self.job.id.clone(),
            config_hash: self.job.config_hash.clone(),
            cohort: self.cohort.clone(),
            threshold: self.params.threshold,
            neighbours: self.params.graph.neighbours(0).len() as u32,
            rounds: self.rounds,
            rejected_messages: self.rejected,
        })
    }

    fn message(&self, body: coordinator_message::Body) -> CoordinatorMessage {
        CoordinatorMessage {
            job_id: self.job.id.clone(),
            body: Some(body),
        }
    }

    async fn send(&self, member: u32, body: coordinator_message::Body) -> bool {
        self.hub
            .send(&self.cohort[member as usize], self.message(body))
            .await
    }

    async fn broadcast_all(&self, body: coordinator_message::Body) {
        for m in 0..self.cohort.len() as u32 {
            self.send(m, body.clone()).await;
        }
    }

    async fn offer(&self, member: u32) {
        let offer = proto::JobOffer {
            job_version: 1,
            config_hash: self.job.config_hash.clone(),
            config: self.job.text.clone(),
            cohort: self.cohort.clone(),
            index: member,
            threshold: self.params.threshold,
            neighbours: self.params.graph.neighbours(0).len() as u32,
            graph_seed: self.job.graph_seed().to_vec(),
        };
        self.send(member, coordinator_message::Body::JobOffer(offer))
            .await;
    }

    async fn await_answers(&mut self, members: &[u32]) -> Result<(), EngineError> {
        let deadline = Deadline::now() + self.settings.phase_timeout();
        let mut waiting: BTreeSet<u32> = members.iter().copied().collect();
        while !waiting.is_empty() {
            match self.next_event(deadline).await? {
                Some((from, ToEngine::Answered)) => {
                    waiting.remove(&from);
                }
                Some((from, ToEngine::Gone)) => {
                    waiting.remove(&from);
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    }

    /// The next event that concerns the job, handling connections and
    /// answers to offers on the way; `None` at the deadline.
    async fn next_event(
        &mut self,
        deadline: Deadline,
    ) -> Result<Option<(u32, ToEngine)>, EngineError> {
        loop {
            let event = match timeout_at(deadline, self.events.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(EngineError::ServiceStopped),
                Ok(Some(event)) => event,
            };
            let (id, event) = match event {
                Event::Connected(id) => {
                    let Some(&m) = self.index.get(&id) else {
                        continue;
                    };
                    // A new session has none of its old key material: it
                    // may take part again from the next key epoch.
                    self.connected.insert(m);
                    self.accepted.remove(&m);
                    self.offer(m).await;
                    continue;
                }
                Event::Disconnected(id) => (id, None),
                Event::Message(id, message) => (id, Some(message)),
            };
            // What the journal records of a contribution: the SHA-256 of the
            // message exactly as it was encoded on the wire.
            let digest = event
                .as_ref()
                .map(|m| hex::encode(Sha256::digest(m.encode_to_vec())))
                .unwrap_or_default();
            let Some(&from) = self.index.get(&id) else {
                self.reject("not_in_cohort", &id);
                continue;
            };
            let Some(message) = event else {
                self.connected.remove(&from);
                self.accepted.remove(&from);
                return Ok(Some((from, ToEngine::Gone)));
            };
            let decoded = match message.body {
                Some(participant_message::Body::JobAnswer(answer)) => {
                    if answer.accept {
                        self.accepted.insert(from);
                    } else {
                        warn!(participant = %id, reason = %answer.reason, "participant declined the job");
                        self.journal.append(Entry::ParticipantDeclined {
                            job_id: self.job.id.clone(),
                            participant: id.clone(),
                            reason: answer.reason.clone(),
                        })?;
                        self.declined.insert(id.clone(), answer.reason.clone());
                    }
                    ToEngine::Answered
                }
                Some(participant_message::Body::TaskFailed(failed)) => {
                    warn!(participant = %id, round = failed.round, reason = %failed.reason, "participant could not do its task");
                    ToEngine::Gone
                }
                Some(participant_message::Body::KeyAdvertisement(k)) => match k.try_into() {
                    Ok(k) => ToEngine::Protocol(ToCoordinator::Keys(k), digest),
                    Err(e) => {
                        self.reject_wire(&id, e);
                        continue;
                    }
                },
                Some(participant_message::Body::ShareBundle(b)) => {
                    ToEngine::Protocol(ToCoordinator::Shares(b.into()), digest)
                }
                Some(participant_message::Body::MaskedInput(m)) => match m.try_into() {
                    Ok(m) => ToEngine::Protocol(ToCoordinator::Masked(m), digest),
                    Err(e) => {
                        self.reject_wire(&id, e);
                        continue;
                    }
                },
                Some(participant_message::Body::UnmaskResponse(u)) => match u.try_into() {
                    Ok(u) => ToEngine::Protocol(ToCoordinator::Unmask(u), digest),
                    Err(e) => {
                        self.reject_wire(&id, e);
                        continue;
                    }
                },
                Some(participant_message::Body::Hello(_)) | None => {
                    self.reject("malformed", &id);
                    continue;
                }
            };
            return Ok(Some((from, decoded)));
        }
    }

    fn reject(&mut self, code: &'static str, from: &str) {
        *self.rejected.entry(code).or_default() += 1;
        self.hub.metrics.rejected(code);
        warn!(participant = %from, code, "rejected a message");
    }

    fn reject_wire(&mut self, from: &str, error: wire::WireError) {
        warn!(participant = %from, %error, "undecodable message");
        self.reject("malformed", from);
    }

    /// One phase: sends `request` to `members`, then collects their answers.
    async fn ask(
        &mut self,
        phase: &str,
        round: u64,
        state: &mut dyn Collecting,
        members: &[u32],
        request: coordinator_message::Body,
    ) -> Result<(), EngineError> {
        for &m in members {
            self.send(m, request.clone()).await;
        }
        self.collect(phase, round, state, members.iter().copied().collect())
            .await
    }

    /// Collects one phase's answers from `waiting` until all answered, all
    /// that had not answered left, or the phase deadline passed, then
    /// journals who answered (with their messages' digests) and who did not.
    async fn collect(
        &mut self,
        phase: &str,
        round: u64,
        state: &mut dyn Collecting,
        mut waiting: BTreeSet<u32>,
    ) -> Result<(), EngineError> {
        let asked = waiting.clone();
        let started = Instant::now();
        let mut answered = BTreeMap::new();
        let deadline = Deadline::now() + self.settings.phase_timeout();
        while !waiting.is_empty() && !state.is_complete() {
            let Some((from, event)) = self.next_event(deadline).await? else {
                break;
            };
            match event {
                ToEngine::Protocol(message, digest) => match state.handle(from, message) {
                    Ok(()) => {
                        waiting.remove(&from);
                        answered.insert(self.cohort[from as usize].clone(), digest);
                    }
                    Err(error) => {
                        let id = self.cohort[from as usize].clone();
                        warn!(participant = %id, code = error.code(), fault = ?error.fault(), %error, "rejected a protocol message");
                        *self.rejected.entry(error.code()).or_default() += 1;
                        self.hub.metrics.rejected(error.code());
                    }
                },
                ToEngine::Gone => {
                    waiting.remove(&from);
                }
                ToEngine::Answered => {}
            }
        }
        let silent = asked
            .iter()
            .map(|&m| self.cohort[m as usize].clone())
            .filter(|id| !answered.contains_key(id))
            .collect();
        self.hub
            .metrics
            .phase(phase, started.elapsed().as_secs_f64());
        tracing::debug!(
            round,
            phase,
            answered = answered.len(),
            asked = asked.len(),
            "phase complete"
        );
        self.journal.append(Entry::PhaseCompleted {
            job_id: self.job.id.clone(),
            round,
            phase: phase.to_string(),
            answered,
            silent,
        })?;
        Ok(())
    }

    fn present(&self) -> BTreeSet<u32> {
        self.connected
            .intersection(&self.accepted)
            .copied()
            .collect()
    }

    async fn set_up_epoch(
        &mut self,
        number: u32,
        first_round: u64,
        rounds: u32,
    ) -> Result<Epoch, EngineError> {
        let invited: Vec<u32> = self.present().into_iter().collect();
        let (start, mut keys) = role::start_epoch(
            self.params.clone(),
            number,
            first_round,
            rounds,
            invited.clone(),
        )?;
        info!(
            epoch = number,
            first_round,
            rounds,
            members = invited.len(),
            "key set-up"
        );
        let request = coordinator_message::Body::EpochStart((&start).into());
        self.ask("advertise-keys", first_round, &mut keys, &invited, request)
            .await?;
        let (roster, mut shares) = keys.close()?;
        let members: Vec<u32> = shares.members().collect();
        let request = coordinator_message::Body::EpochRoster((&roster).into());
        self.ask("share-keys", first_round, &mut shares, &members, request)
            .await?;
        let (deliveries, epoch) = shares.close()?;
        self.journal.append(Entry::KeySetupDone {
            job_id: self.job.id.clone(),
            epoch: number,
            first_round,
            rounds,
            members: self.names(epoch.members()),
        })?;
        for (m, delivery) in &deliveries {
            self.send(
                *m,
                coordinator_message::Body::ShareDelivery(delivery.into()),
            )
            .await;
        }
        Ok(epoch)
    }

    async fn run_round(
        &mut self,
        round: u64,
        computation: &proto::Computation,
        encoder: &FixedPointEncoder,
        length: u32,
        record: &mut RoundRecord,
    ) -> Result<(), EngineError> {
        if self.epoch.as_ref().is_none_or(|e| !e.start().covers(round)) {
            self.epoch = None;
            let number = self.next_epoch;
            self.next_epoch += 1;
            let epoch = self
                .set_up_epoch(number, round, self.settings.epoch_rounds)
                .await?;
            self.epoch = Some(epoch);
        }
        let present = self.present();
        let state = self.epoch.as_mut().expect("set up above");
        record.epoch = Some(state.start().epoch);
        let members: Vec<u32> = state
            .members()
            .iter()
            .copied()
            .filter(|m| present.contains(m))
            .collect();
        let (request, mut inputs) = state.open_round(round, members.clone(), length as usize)?;
        let epoch_number = state.start().epoch;
        self.journal.append(Entry::RoundOpened {
            job_id: self.job.id.clone(),
            round,
            epoch: epoch_number,
            members: self.names(&members),
        })?;
        let mut wire_request: proto::MaskRequest = proto::MaskRequest {
            round,
            members: request.members.clone(),
            length,
            computation: Some(computation.clone()),
        };
        wire_request.members.sort_unstable();
        let request = coordinator_message::Body::MaskRequest(wire_request);
        self.ask("masked-input", round, &mut inputs, &members, request)
            .await?;
        let (unmask_request, mut unmask) = inputs.close()?;
        record.survivors = self.names(&unmask_request.survivors);
        record.dropped = self.names(&unmask_request.dropped);
        let request = coordinator_message::Body::UnmaskRequest((&unmask_request).into());
        let survivors = unmask_request.survivors.clone();
        self.ask("unmask", round, &mut unmask, &survivors, request)
            .await?;
        let state = self.epoch.as_mut().expect("set up above");
        let words = unmask.finish(state)?;
        let decoded = encoder.decode(&words);
        info!(
            round,
            purpose = %record.purpose,
            survivors = record.survivors.len(),
            dropped = record.dropped.len(),
            "round released"
        );
        self.journal.append(Entry::AggregateReleased {
            job_id: self.job.id.clone(),
            round,
            survivors: record.survivors.clone(),
            values: decoded.clone(),
        })?;
        record.outcome = "released";
        record.sum = Some(decoded);
        self.spend_privacy(record, computation, length)
    }

    /// Accounts and journals the privacy a released round of a noisy
    /// computation spent; only the survivors' noise is in its sum.
    fn spend_privacy(
        &mut self,
        record: &mut RoundRecord,
        computation: &proto::Computation,
        length: u32,
    ) -> Result<(), EngineError> {
        let Some(noise) = &computation.noise else {
            return Ok(());
        };
        let bounds = privacy::customer_bounds(computation, length as usize)?;
        let contributors = record.survivors.len() as u32;
        let rho = bounds.rho(noise.step, noise.variance, contributors);
        let count_noise_sd = noise.step * (noise.variance as f64 * f64::from(contributors)).sqrt();
        self.privacy_spent += rho;
        self.journal.append(Entry::PrivacySpent {
            job_id: self.job.id.clone(),
            round: record.round,
            sensitivity: bounds.sensitivity(noise.step),
            variance: noise.variance,
            contributors,
            rho,
            total_rho: self.privacy_spent,
            count_noise_sd,
        })?;
        record.rho = Some(rho);
        record.count_noise_sd = Some(count_noise_sd);
        Ok(())
    }

    fn names(&self, members: &[u32]) -> Vec<String> {
        members
            .iter()
            .map(|&m| self.cohort[m as usize].clone())
            .collect()
    }
}

/// What a participant event means to the engine.
enum ToEngine {
    /// A protocol message and the SHA-256 (hex) of its wire encoding.
    Protocol(ToCoordinator, String),
    Answered,
    Gone,
}

async fn form_cohort(
    hub: &Hub,
    events: &mut UnboundedReceiver<Event>,
    listed: &[String],
    need: usize,
    timeout: std::time::Duration,
) -> Result<Vec<String>, EngineError> {
    let deadline = Deadline::now() + timeout;
    let listed: BTreeSet<&String> = listed.iter().collect();
    let present = |hub: &Hub| -> Vec<String> {
        hub.connected()
            .into_iter()
            .filter(|id| listed.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    loop {
        if present(hub).len() == listed.len() {
            break;
        }
        match timeout_at(deadline, events.recv()).await {
            Err(_) => break,
            Ok(None) => return Err(EngineError::ServiceStopped),
            Ok(Some(_)) => {}
        }
    }
    let cohort = present(hub);
    if cohort.len() < need.max(2) {
        return Err(EngineError::CohortTooSmall {
            have: cohort.len(),
            need: need.max(2),
        });
    }
    Ok(cohort)
}
