//! A job's start: submitted to the journal (or resumed from it), the cohort
//! formed from the listed participants that connect in time, the job
//! offered to every member and their answers awaited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fedseg_common::journal::Entry;
use fedseg_common::proto::{self, coordinator_message};
use fedseg_common::secagg::JobParams;
use tokio::time::Instant as Deadline;
use tracing::info;

use super::events::ToEngine;
use super::transport::{Received, Transport};
use super::{Engine, EngineError, PrivacyBudget, Resume};
use crate::config::{Job, RoundSettings};
use crate::journal::JournalWriter;

impl<'a> Engine<'a> {
    /// Submits (or resumes) `job`, waits for the cohort, fixes it and offers
    /// the job; rounds are then run one [`Engine::secure_sum`] at a time.
    /// A new job's `budget`, if any, is journaled after its submission.
    pub async fn start(
        transport: impl Transport + 'a,
        settings: RoundSettings,
        listed: &[String],
        job: &'a Job,
        journal: &'a mut JournalWriter,
        budget: Option<PrivacyBudget>,
    ) -> Result<Engine<'a>, EngineError> {
        let mut transport: Box<dyn Transport + 'a> = Box::new(transport);
        let resume = submit(journal, job, budget)?;
        let need = job
            .config
            .cohort
            .min_participants
            .map_or(listed.len(), |m| m as usize);
        let mut cohort =
            form_cohort(transport.as_mut(), listed, need, settings.cohort_timeout()).await?;
        if job.config.vertical.is_some() {
            // A vertical job needs every party, in party order.
            if cohort.len() < listed.len() {
                return Err(EngineError::CohortTooSmall {
                    have: cohort.len(),
                    need: listed.len(),
                });
            }
            cohort = listed.to_vec();
        }
        let params = Arc::new(cohort_params(job, cohort.len() as u32)?);
        info!(job = %job.id, cohort = ?cohort, threshold = params.threshold, quorum = params.quorum, neighbours = params.graph.neighbours(0).len(), "cohort formed");
        journal.append(Entry::CohortFixed {
            job_id: job.id.clone(),
            cohort: cohort.clone(),
            threshold: params.threshold,
            neighbours: params.graph.neighbours(0).len() as u32,
            quorum: params.quorum,
            signed_inputs: true,
        })?;
        let n = cohort.len() as u32;
        let mut engine =
            Engine::assemble(transport, settings, job, journal, cohort, params, resume);
        engine.connected = (0..n).collect();
        for m in 0..n {
            engine.offer(m).await;
        }
        engine.await_answers(0..n).await?;
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

    /// Retraces `job`, which the journal (`resume`) shows finished: the
    /// cohort, its refusals and every round as journaled, handed back to
    /// the job's steps in order, with nobody asked anything and nothing
    /// appended to the journal (which is made read-only). A job that asks
    /// for a round the journal does not hold fails instead of running it.
    pub fn retrace(
        transport: impl Transport + 'a,
        settings: RoundSettings,
        job: &'a Job,
        journal: &'a mut JournalWriter,
        mut resume: Resume,
    ) -> Result<Engine<'a>, EngineError> {
        let cohort = std::mem::take(&mut resume.cohort);
        let params = Arc::new(cohort_params(job, cohort.len() as u32)?);
        info!(job = %job.id, rounds = resume.completed.len(), "the journal says this job finished: retracing its journaled rounds, asking nobody");
        journal.make_read_only();
        let declined = std::mem::take(&mut resume.declined);
        let end_record = resume.end_record;
        let mut engine = Engine::assemble(
            Box::new(transport),
            settings,
            job,
            journal,
            cohort,
            params,
            resume,
        );
        engine.accepted = (0..engine.cohort.len() as u32)
            .filter(|&m| !declined.contains_key(&engine.cohort[m as usize]))
            .collect();
        engine.declined = declined;
        engine.end_record = end_record;
        Ok(engine)
    }

    /// An engine over `cohort` that nobody is connected to yet, with the
    /// rounds `resume` holds to hand back first.
    fn assemble(
        transport: Box<dyn Transport + 'a>,
        settings: RoundSettings,
        job: &'a Job,
        journal: &'a mut JournalWriter,
        cohort: Vec<String>,
        params: Arc<JobParams>,
        resume: Resume,
    ) -> Engine<'a> {
        let index = cohort
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Engine {
            transport,
            settings,
            job,
            cohort,
            index,
            params,
            connected: BTreeSet::new(),
            accepted: BTreeSet::new(),
            declined: BTreeMap::new(),
            hung: BTreeMap::new(),
            rejected: BTreeMap::new(),
            journal,
            replay: resume.completed.into(),
            rounds: Vec::new(),
            next_round: resume.next_round,
            epoch: None,
            next_epoch: resume.next_epoch,
            privacy_spent: 0.0,
            end_record: None,
        }
    }

    /// Offers the job to `member` (again, after it reconnected).
    pub(super) async fn offer(&self, member: u32) {
        let offer = proto::JobOffer {
            job_version: 1,
            config_hash: self.job.config_hash.clone(),
            config: self.job.text.clone(),
            cohort: self.cohort.clone(),
            index: member,
            threshold: self.params.threshold,
            neighbours: self.neighbours(),
            graph_seed: self.job.graph_seed().to_vec(),
            quorum: self.params.quorum,
            analyst_certificate: self
                .job
                .submission
                .as_ref()
                .map(|s| s.certificate.clone())
                .unwrap_or_default(),
            analyst_signature: self
                .job
                .submission
                .as_ref()
                .map(|s| s.signature.clone())
                .unwrap_or_default(),
        };
        self.send(member, coordinator_message::Body::JobOffer(offer))
            .await;
    }

    /// Waits until each of `members` answered the offer or left, or the
    /// phase deadline passed.
    async fn await_answers(
        &mut self,
        members: impl Iterator<Item = u32>,
    ) -> Result<(), EngineError> {
        let deadline = Deadline::now() + self.settings.phase_timeout();
        let mut waiting: BTreeSet<u32> = members.collect();
        while !waiting.is_empty() {
            match self.next_event(deadline).await? {
                Some((from, ToEngine::Answered | ToEngine::Gone)) => {
                    waiting.remove(&from);
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    }
}

/// Journals the job's submission, or its resumption when the journal
/// already holds it.
fn submit(
    journal: &mut JournalWriter,
    job: &Job,
    budget: Option<PrivacyBudget>,
) -> Result<Resume, EngineError> {
    let resume = Resume::from_journal(&journal.records(), job)?;
    match &resume {
        None => {
            journal.append(Entry::JobSubmitted {
                job_id: job.id.clone(),
                config_hash: job.config_hash.clone(),
                config: job.text.clone(),
            })?;
            if let Some(vertical) = &job.config.vertical {
                journal.append(crate::vertical::threat_model(&job.id, vertical))?;
            }
            if let Some(budget) = budget {
                journal.append(Entry::PrivacyBudget {
                    job_id: job.id.clone(),
                    epsilon: budget.epsilon,
                    delta: budget.delta,
                    rho: budget.rho,
                    clip: budget.clip,
                    planned_releases: budget.planned_releases,
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
    Ok(resume.unwrap_or_default())
}

/// The secure sums' parameters for a cohort of `n`: the job's neighbour
/// degree, threshold, collusion bound and quorum, or their defaults.
fn cohort_params(job: &Job, n: u32) -> Result<JobParams, EngineError> {
    let p = job
        .config
        .cohort
        .protocol(n)
        .map_err(|(key, why)| EngineError::Settings(key, why))?;
    Ok(JobParams::new(
        job.id.clone(),
        n,
        p.threshold,
        p.neighbours,
        &job.graph_seed(),
    )?
    .with_quorum(p.quorum)?)
}

/// Waits until every listed participant is connected or the timeout
/// passed; the cohort is who is there, in a fixed order.
async fn form_cohort(
    transport: &mut dyn Transport,
    listed: &[String],
    need: usize,
    timeout: std::time::Duration,
) -> Result<Vec<String>, EngineError> {
    let deadline = Deadline::now() + timeout;
    let listed: BTreeSet<&String> = listed.iter().collect();
    let present = |transport: &dyn Transport| -> Vec<String> {
        transport
            .connected()
            .into_iter()
            .filter(|id| listed.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    loop {
        if present(transport).len() == listed.len() {
            break;
        }
        match transport.next(deadline).await {
            Received::Deadline => break,
            Received::Stopped => return Err(EngineError::ServiceStopped),
            Received::Event(_) => {}
        }
    }
    let cohort = present(transport);
    if cohort.len() < need.max(2) {
        return Err(EngineError::CohortTooSmall {
            have: cohort.len(),
            need: need.max(2),
        });
    }
    Ok(cohort)
}
