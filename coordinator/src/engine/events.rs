//! Session events turned into what a phase can use: connections and
//! answers to the offer are handled on the way, messages from outside the
//! cohort or undecodable ones are refused and counted, and a phase
//! ([`Engine::ask`]) sends its request and collects answers into the
//! protocol's collecting state until all answered, all left, or the
//! deadline passed.

use fedseg_common::secagg::Phase;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fedseg_common::journal::Entry;
use fedseg_common::proto::{FaultKind, coordinator_message, participant_message};
use fedseg_common::secagg::SecAggError;
use fedseg_common::secagg::coordinator as role;
use fedseg_common::secagg::messages::ToCoordinator;
use fedseg_common::wire;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::time::Instant as Deadline;
use tracing::warn;

use super::transport::Received;
use super::{Engine, EngineError};
use crate::service::Event;

/// What a participant event means to the engine.
pub(super) enum ToEngine {
    /// A protocol message and the SHA-256 (hex) of its wire encoding.
    Protocol(ToCoordinator, String),
    /// A vertical job's message, the SHA-256 (hex) and size of its wire
    /// encoding.
    Vertical(fedseg_common::proto::VerticalUp, String, u64),
    /// The member answered the job offer.
    Answered,
    /// The member left or could not do its task.
    Gone,
}

/// One phase's collecting state, whatever the phase.
pub(super) trait Collecting {
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
    role::ConfirmCollection,
    role::UnmaskCollection
);

impl Engine<'_> {
    /// The next event that concerns the job, handling connections and
    /// answers to offers on the way; `None` at the deadline.
    pub(super) async fn next_event(
        &mut self,
        deadline: Deadline,
    ) -> Result<Option<(u32, ToEngine)>, EngineError> {
        loop {
            let event = match self.transport.next(deadline).await {
                Received::Deadline => return Ok(None),
                Received::Stopped => return Err(EngineError::ServiceStopped),
                Received::Event(event) => event,
            };
            let (id, message) = match event {
                Event::Connected(id) => {
                    let Some(&m) = self.index.get(&id) else {
                        continue;
                    };
                    // A new session has none of its old key material: it
                    // may take part again from the next key epoch.
                    self.connected.insert(m);
                    self.accepted.remove(&m);
                    self.hung.remove(&m);
                    self.offer(m).await;
                    continue;
                }
                Event::Disconnected(id) => (id, None),
                Event::Message(id, message) => (id, Some(message)),
            };
            let Some(&from) = self.index.get(&id) else {
                self.reject("not_in_cohort", &id);
                continue;
            };
            if message.is_some()
                && let Some(heard) = self.hung.get_mut(&from)
            {
                *heard = true;
            }
            let Some(message) = message else {
                self.connected.remove(&from);
                self.accepted.remove(&from);
                return Ok(Some((from, ToEngine::Gone)));
            };
            if let Some(decoded) = self.decode(&id, from, message)? {
                return Ok(Some((from, decoded)));
            }
        }
    }

    /// What a cohort member's message means, or `None` when it is refused.
    fn decode(
        &mut self,
        id: &str,
        from: u32,
        message: fedseg_common::proto::ParticipantMessage,
    ) -> Result<Option<ToEngine>, EngineError> {
        use participant_message::Body;
        // What the journal records of a contribution: the SHA-256 of the
        // message exactly as it was encoded on the wire.
        let encoded = message.encode_to_vec();
        let digest = hex::encode(Sha256::digest(&encoded));
        let protocol = |m: ToCoordinator| Some(ToEngine::Protocol(m, digest.clone()));
        let decoded = match message.body {
            Some(Body::JobAnswer(answer)) => {
                if answer.accept {
                    self.accepted.insert(from);
                } else {
                    warn!(participant = %id, reason = %answer.reason, "participant declined the job");
                    self.journal.append(Entry::ParticipantDeclined {
                        job_id: self.job.id.clone(),
                        participant: id.to_string(),
                        reason: answer.reason.clone(),
                    })?;
                    self.declined.insert(id.to_string(), answer.reason);
                }
                Some(ToEngine::Answered)
            }
            Some(Body::TaskFailed(failed)) => {
                warn!(participant = %id, round = failed.round, reason = %failed.reason, "participant could not do its task");
                if failed.fault() == FaultKind::Coordinator {
                    self.journal.append(Entry::FaultReported {
                        job_id: self.job.id.clone(),
                        round: failed.round,
                        participant: id.to_string(),
                        fault: "coordinator".into(),
                        reason: failed.reason.clone(),
                    })?;
                }
                Some(ToEngine::Gone)
            }
            Some(Body::KeyAdvertisement(k)) => {
                if let Err(reason) = self.check_advertised_certificate(id, &k.certificate) {
                    return self.refuse_certificate(id, reason);
                }
                match k.try_into() {
                    Ok(k) => protocol(ToCoordinator::Keys(k)),
                    Err(e) => self.reject_wire(id, e),
                }
            }
            Some(Body::ShareBundle(b)) => protocol(ToCoordinator::Shares(b.into())),
            Some(Body::MaskedInput(m)) => match m.try_into() {
                Ok(m) => protocol(ToCoordinator::Masked(m)),
                Err(e) => self.reject_wire(id, e),
            },
            Some(Body::SurvivorSignature(c)) => match c.try_into() {
                Ok(c) => protocol(ToCoordinator::Confirm(c)),
                Err(e) => self.reject_wire(id, e),
            },
            Some(Body::UnmaskResponse(u)) => match u.try_into() {
                Ok(u) => protocol(ToCoordinator::Unmask(u)),
                Err(e) => self.reject_wire(id, e),
            },
            Some(Body::Vertical(v)) => {
                Some(ToEngine::Vertical(v, digest.clone(), encoded.len() as u64))
            }
            Some(Body::Hello(_)) | None => {
                self.reject("malformed", id);
                None
            }
        };
        Ok(decoded)
    }

    /// Whether `certificate` (DER), which `id` advertised its keys with, is
    /// the identity of its session: a participant certificate naming `id`
    /// and, when the transport knows it, the very certificate `id`'s TLS
    /// session was opened with. Every member checks the roster's
    /// certificates itself; this check finds the culprit first, so the
    /// members never have a forged roster to blame the coordinator for.
    fn check_advertised_certificate(&self, id: &str, certificate: &[u8]) -> Result<(), String> {
        let member = fedseg_common::identity::member_of(certificate)
            .map_err(|e| format!("the certificate it advertised its keys with: {e}"))?;
        if member.id != id || member.role != fedseg_common::identity::Role::Participant {
            return Err(format!(
                "it advertised its keys with the certificate of {} ({}), not its own",
                member.id, member.role
            ));
        }
        match self.transport.session_certificate(id) {
            Some(tls) if tls != certificate => Err(
                "it advertised its keys with a certificate other than the one its TLS session \
                 was opened with"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Refuses a key advertisement whose certificate is not its sender's
    /// session identity: journaled with the sender at fault, counted, and
    /// the sender left out of the epoch.
    fn refuse_certificate(
        &mut self,
        id: &str,
        reason: String,
    ) -> Result<Option<ToEngine>, EngineError> {
        warn!(participant = %id, %reason, "refused a key advertisement");
        self.journal.append(Entry::FaultReported {
            job_id: self.job.id.clone(),
            round: 0,
            participant: id.to_string(),
            fault: "participant".into(),
            reason,
        })?;
        self.reject("foreign_certificate", id);
        Ok(None)
    }

    /// Leaves out of every round from now on the members of `silent` still
    /// connected: they let the deadline of `phase` pass without a word, and
    /// waiting for them again each round would cost a deadline a round.
    /// They rejoin at the next key set-up once heard from again (a late
    /// answer, anything), or at once with a new session.
    fn suspend_hung(&mut self, phase: Phase, round: u64, silent: &BTreeSet<u32>) {
        for &m in silent {
            if self.connected.contains(&m) && self.hung.insert(m, false).is_none() {
                warn!(
                    participant = %self.cohort[m as usize],
                    round,
                    phase = phase.name(),
                    "connected but silent past the phase deadline: left out until it is heard \
                     from again and the next key set-up"
                );
            }
        }
    }

    /// Counts a refused message under `code`.
    pub(super) fn reject(&mut self, code: &'static str, from: &str) {
        *self.rejected.entry(code).or_default() += 1;
        self.transport.metrics().rejected(code);
        warn!(participant = %from, code, "rejected a message");
    }

    fn reject_wire(&mut self, from: &str, error: wire::WireError) -> Option<ToEngine> {
        warn!(participant = %from, %error, "undecodable message");
        self.reject("malformed", from);
        None
    }

    /// One phase: sends `request` to `members`, then collects their answers.
    pub(super) async fn ask(
        &mut self,
        phase: Phase,
        round: u64,
        state: &mut dyn Collecting,
        members: &[u32],
        request: coordinator_message::Body,
    ) -> Result<(), EngineError> {
        self.broadcast(members.iter().copied(), request).await;
        self.collect(phase, round, state, members.iter().copied().collect())
            .await
    }

    /// Collects one phase's answers from `waiting` until all answered, all
    /// that had not answered left, or the phase deadline passed, then
    /// journals who answered (with their messages' digests) and who did not.
    async fn collect(
        &mut self,
        phase: Phase,
        round: u64,
        state: &mut dyn Collecting,
        mut waiting: BTreeSet<u32>,
    ) -> Result<(), EngineError> {
        let asked = waiting.clone();
        let started = Instant::now();
        let mut answered = BTreeMap::new();
        let deadline = Deadline::now() + self.settings.phase_timeout();
        let mut timed_out = false;
        while !waiting.is_empty() && !state.is_complete() {
            let Some((from, event)) = self.next_event(deadline).await? else {
                timed_out = true;
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
                        self.transport.metrics().rejected(error.code());
                    }
                },
                ToEngine::Gone => {
                    waiting.remove(&from);
                }
                ToEngine::Vertical(..) => {
                    let id = self.cohort[from as usize].clone();
                    self.reject("out_of_phase", &id);
                }
                ToEngine::Answered => {}
            }
        }
        if timed_out {
            self.suspend_hung(phase, round, &waiting);
        }
        let silent = asked
            .iter()
            .map(|&m| self.cohort[m as usize].clone())
            .filter(|id| !answered.contains_key(id))
            .collect();
        self.transport
            .metrics()
            .phase(phase.name(), started.elapsed().as_secs_f64());
        tracing::debug!(
            round,
            phase = phase.name(),
            answered = answered.len(),
            asked = asked.len(),
            "phase complete"
        );
        self.journal.append(Entry::PhaseCompleted {
            job_id: self.job.id.clone(),
            round,
            phase,
            answered,
            silent,
        })?;
        Ok(())
    }
}
