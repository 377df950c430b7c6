//! The engine driven in process: participants that run the real protocol
//! roles (`fedseg_common::secagg::participant`) behind a [`Transport`] that
//! delivers their answers at once, with a fault plan per participant. A
//! phase's deadline is the moment no answer is left to deliver, so no test
//! waits for a clock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use fedseg_common::fixed_point::{ClipRange, FixedPointEncoder};
use fedseg_common::journal::{Entry, Record};
use fedseg_common::keys::KeyAlgorithm;
use fedseg_common::proto::{
    self, CoordinatorMessage, ParticipantMessage, coordinator_message::Body as Down,
    participant_message::Body as Up,
};
use fedseg_common::secagg::JobParams;
use fedseg_common::secagg::consortium::Consortium;
use fedseg_common::secagg::messages::UnmaskRequest;
use fedseg_common::secagg::participant::{self, AwaitingRoster, AwaitingShares, ReadyEpoch};
use fedseg_common::secagg::signing::{CohortTrust, Membership};
use fedseg_common::wire;
use tokio::time::Instant as Deadline;

use super::transport::{Pending, Received, Transport};
use super::{Engine, EngineError, JobReport, PrivacyBudget};
use crate::config::{Job, RoundSettings};
use crate::journal::JournalWriter;
use crate::metrics::Metrics;
use crate::service::{Event, Traffic};

/// Values per input.
const LENGTH: usize = 3;

/// The phases a participant can fail at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    Offer,
    AdvertiseKeys,
    ShareKeys,
    MaskedInput,
    ConfirmSurvivors,
    Unmask,
}

impl Phase {
    fn of(body: &Down) -> Option<Self> {
        Some(match body {
            Down::JobOffer(_) => Phase::Offer,
            Down::EpochStart(_) => Phase::AdvertiseKeys,
            Down::EpochRoster(_) => Phase::ShareKeys,
            Down::MaskRequest(_) => Phase::MaskedInput,
            Down::SurvivorSet(_) => Phase::ConfirmSurvivors,
            Down::UnmaskRequest(_) => Phase::Unmask,
            _ => return None,
        })
    }
}

/// What one participant does wrong, once, at the first `phase` of round
/// `round` (for the key phases, of the key set-up that starts at `round`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Its session closes instead of answering, for good.
    Leave(Phase, u64),
    /// Its answer arrives only after the phase's deadline.
    Late(Phase, u64),
    /// Its answer arrives twice.
    Duplicate(Phase, u64),
    /// Before its answer, it sends again its answer to the previous round.
    ReplayPrevious(Phase, u64),
    /// It declines the job.
    Decline,
    /// It refuses the request, reporting the coordinator at fault (as for
    /// a forged key or an unconfirmed survivor set).
    BlameCoordinator(Phase, u64),
    /// It advertises its keys of the key set-up starting at this round
    /// with another identity's certificate (a valid one of the consortium,
    /// whose key it holds), signed with that key.
    ForeignCertificate(u64),
    /// From then on it answers nothing, though its session stays open (a
    /// process stopped, a machine frozen).
    Hang(Phase, u64),
}

/// The round (or first round of the key set-up) a request is for.
fn round_of(body: &Down) -> u64 {
    match body {
        Down::EpochStart(s) => s.first_round,
        Down::EpochRoster(r) => r.first_round,
        Down::MaskRequest(m) => m.round,
        Down::SurvivorSet(s) => s.round,
        Down::UnmaskRequest(u) => u.round,
        _ => 0,
    }
}

/// Member `index`'s input in round `round`: distinct per member and round,
/// so a sum over the wrong members or of the wrong round shows.
fn input(index: u32, round: u64) -> Vec<f64> {
    let base = f64::from(index + 1) + 100.0 * round as f64;
    (0..LENGTH).map(|j| base * 10f64.powi(j as i32)).collect()
}

enum KeyState {
    None,
    AwaitingRoster(AwaitingRoster),
    AwaitingShares(AwaitingShares),
    Ready(ReadyEpoch),
}

struct Member {
    id: String,
    pki: Arc<Consortium>,
    membership: Option<Arc<Membership>>,
    connected: bool,
    /// Answers nothing any more (see [`Fault::Hang`]).
    hung: bool,
    fault: Option<Fault>,
    params: Option<(Arc<JobParams>, u32)>,
    keys: KeyState,
    /// Its last answer in each phase, for a replay.
    last: HashMap<Phase, ParticipantMessage>,
}

impl Member {
    /// The answer to `body` of job `job_id`, if it has one.
    fn answer(&mut self, job_id: &str, body: Down) -> Option<Up> {
        let rng = &mut rand::rng();
        match (body, std::mem::replace(&mut self.keys, KeyState::None)) {
            (Down::JobOffer(offer), _) => {
                let seed: [u8; 32] = offer.graph_seed.try_into().expect("32 bytes");
                let params = JobParams::new(
                    job_id,
                    offer.cohort.len() as u32,
                    offer.threshold,
                    offer.neighbours,
                    &seed,
                )
                .and_then(|p| p.with_quorum(offer.quorum))
                .expect("valid offer");
                self.params = Some((Arc::new(params), offer.index));
                let issued = self.pki.issue(&self.id, "participant");
                self.membership = Some(Arc::new(Membership {
                    credential: issued.credential,
                    trust: CohortTrust::new(self.pki.ca.clone(), offer.cohort),
                }));
                Some(Up::JobAnswer(proto::JobAnswer {
                    accept: true,
                    reason: String::new(),
                }))
            }
            (Down::EpochStart(start), _) => {
                let (params, index) = self.params.clone().expect("offered");
                let membership = self.membership.clone().expect("offered");
                let (advert, next) =
                    participant::start_epoch(params, index, start.into(), membership, rng).ok()?;
                self.keys = KeyState::AwaitingRoster(next);
                Some(Up::KeyAdvertisement((&advert).into()))
            }
            (Down::EpochRoster(roster), KeyState::AwaitingRoster(state)) => {
                let roster = wire::roster_from_wire(roster, state.start()).ok()?;
                let (bundle, next) = state.receive_roster(roster, rng).ok()?;
                self.keys = KeyState::AwaitingShares(next);
                Some(Up::ShareBundle((&bundle).into()))
            }
            (Down::ShareDelivery(delivery), KeyState::AwaitingShares(state)) => {
                self.keys = KeyState::Ready(state.receive_shares(delivery.into()).ok()?);
                None
            }
            (Down::MaskRequest(request), KeyState::Ready(mut ready)) => {
                let index = self.params.as_ref().expect("offered").1;
                let encoder = encoder();
                let words = encoder.encode(&input(index, request.round)).ok()?.words;
                let masked = ready.mask(&wire::mask_request_from_wire(&request), &words);
                self.keys = KeyState::Ready(ready);
                Some(Up::MaskedInput((&masked.ok()?).into()))
            }
            (Down::SurvivorSet(set), KeyState::Ready(mut ready)) => {
                let signature = ready.confirm(&set.into());
                self.keys = KeyState::Ready(ready);
                Some(Up::SurvivorSignature((&signature.ok()?).into()))
            }
            (Down::UnmaskRequest(request), KeyState::Ready(mut ready)) => {
                let response = UnmaskRequest::try_from(request)
                    .ok()
                    .and_then(|request| ready.unmask(&request).ok());
                self.keys = KeyState::Ready(ready);
                Some(Up::UnmaskResponse((&response?).into()))
            }
            (_, keys) => {
                self.keys = keys;
                None
            }
        }
    }
}

impl Member {
    /// Its advertisement for the key set-up `body` starts, made with the
    /// certificate and key of `other` in place of its own.
    fn advertise_as(&mut self, other: &str, body: Down) -> Option<Up> {
        let Down::EpochStart(start) = body else {
            return None;
        };
        let (params, index) = self.params.clone()?;
        let membership = Arc::new(Membership {
            credential: self.pki.issue(other, "participant").credential,
            trust: self.membership.as_ref()?.trust.clone(),
        });
        let (advert, next) =
            participant::start_epoch(params, index, start.into(), membership, &mut rand::rng())
                .ok()?;
        self.keys = KeyState::AwaitingRoster(next);
        Some(Up::KeyAdvertisement((&advert).into()))
    }
}

fn encoder() -> FixedPointEncoder {
    FixedPointEncoder::new(16, vec![ClipRange::new(-1e6, 1e6)]).expect("valid encoding")
}

#[derive(Default)]
struct Sessions {
    members: BTreeMap<String, Member>,
    /// Events delivered in order.
    queue: VecDeque<Event>,
    /// Late events, delivered after the next deadline.
    late: Vec<Event>,
}

/// In-process participants behind the engine's transport.
struct InProcess {
    sessions: Mutex<Sessions>,
    metrics: Metrics,
}

impl InProcess {
    fn new(ids: &[&str], faults: &[(&str, Fault)]) -> Self {
        let mut sessions = Sessions::default();
        let pki = Arc::new(Consortium::for_cohort(
            ids.iter().map(|id| id.to_string()).collect(),
            KeyAlgorithm::EcdsaP256,
        ));
        for id in ids {
            sessions.members.insert(
                id.to_string(),
                Member {
                    id: id.to_string(),
                    pki: pki.clone(),
                    membership: None,
                    connected: true,
                    hung: false,
                    fault: faults.iter().find(|(f, _)| f == id).map(|&(_, f)| f),
                    params: None,
                    keys: KeyState::None,
                    last: HashMap::new(),
                },
            );
        }
        Self {
            sessions: Mutex::new(sessions),
            metrics: Metrics::default(),
        }
    }

    /// Delivers `message` to `id`; false when its session is closed.
    fn deliver(&self, id: &str, message: CoordinatorMessage) -> bool {
        let Some(body) = message.body else {
            return false;
        };
        let mut sessions = self.sessions.lock().expect("sessions");
        let Sessions {
            members,
            queue,
            late,
        } = &mut *sessions;
        let Some(member) = members.get_mut(id).filter(|m| m.connected) else {
            return false;
        };
        let phase = Phase::of(&body);
        let round = round_of(&body);
        let due = |fault: Fault| {
            let (p, r) = match fault {
                Fault::Leave(p, r)
                | Fault::Late(p, r)
                | Fault::Duplicate(p, r)
                | Fault::ReplayPrevious(p, r)
                | Fault::BlameCoordinator(p, r)
                | Fault::Hang(p, r) => (p, r),
                Fault::ForeignCertificate(r) => (Phase::AdvertiseKeys, r),
                Fault::Decline => (Phase::Offer, 0),
            };
            Some(p) == phase && round >= r
        };
        let fault = member.fault.filter(|&f| due(f));
        if fault.is_some() {
            member.fault = None;
        }
        if let Some(Fault::Leave(..)) = fault {
            member.connected = false;
            queue.push_back(Event::Disconnected(id.to_string()));
            return true;
        }
        if let Some(Fault::Hang(..)) = fault {
            member.hung = true;
        }
        if member.hung {
            return true;
        }
        let answer = match fault {
            Some(Fault::Decline) => Some(Up::JobAnswer(proto::JobAnswer {
                accept: false,
                reason: "policy".into(),
            })),
            Some(Fault::BlameCoordinator(..)) => Some(Up::TaskFailed(proto::TaskFailed {
                round,
                fault: proto::FaultKind::Coordinator as i32,
                reason: "the survivor set carries too few signatures".into(),
            })),
            Some(Fault::ForeignCertificate(_)) => member.advertise_as("bank-z", body),
            _ => member.answer(&message.job_id, body),
        };
        let Some(answer) = answer else {
            return true;
        };
        let message = ParticipantMessage { body: Some(answer) };
        let event = |m: &ParticipantMessage| Event::Message(id.to_string(), m.clone());
        match fault {
            Some(Fault::Late(..)) => late.push(event(&message)),
            Some(Fault::Duplicate(..)) => {
                queue.push_back(event(&message));
                queue.push_back(event(&message));
            }
            Some(Fault::ReplayPrevious(..)) => {
                if let Some(previous) = phase.and_then(|p| member.last.get(&p)) {
                    queue.push_back(event(previous));
                }
                queue.push_back(event(&message));
            }
            _ => queue.push_back(event(&message)),
        }
        if let Some(phase) = phase {
            member.last.insert(phase, message);
        }
        true
    }
}

impl Transport for InProcess {
    fn connected(&self) -> HashSet<String> {
        let sessions = self.sessions.lock().expect("sessions");
        sessions
            .members
            .iter()
            .filter(|(_, m)| m.connected)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn send<'s>(&'s self, id: &'s str, message: CoordinatorMessage) -> Pending<'s, bool> {
        let sent = self.deliver(id, message);
        Box::pin(std::future::ready(sent))
    }

    fn next<'s>(&'s mut self, _deadline: Deadline) -> Pending<'s, Received> {
        let mut sessions = self.sessions.lock().expect("sessions");
        let received = match sessions.queue.pop_front() {
            Some(event) => Received::Event(event),
            None => {
                // Nothing left to answer: the phase's deadline; what was
                // late arrives after it.
                let late = std::mem::take(&mut sessions.late);
                sessions.queue.extend(late);
                Received::Deadline
            }
        };
        Box::pin(std::future::ready(received))
    }

    fn traffic(&self) -> Traffic {
        Traffic::default()
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

const MEMBERS: [&str; 4] = ["bank-a", "bank-b", "bank-c", "bank-d"];

/// Short deadlines, two rounds per key epoch.
fn settings() -> RoundSettings {
    RoundSettings {
        phase_timeout_s: 1.0,
        cohort_timeout_s: 1.0,
        epoch_rounds: 2,
        max_message_bytes: 1 << 20,
        ..RoundSettings::default()
    }
}

/// A consortium directory: a job of `rounds` secure sums with `threshold`,
/// and a key for the journal.
struct Fixture {
    dir: tempfile::TempDir,
    job: Job,
}

impl Fixture {
    fn new(rounds: u32, threshold: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(dir.path().join("coordinator.key"), pem.as_bytes()).unwrap();
        std::fs::write(dir.path().join("coordinator.crt"), "certificate").unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            format!(
                "seed = 7\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
                 [cohort]\nthreshold = {threshold}\n\n\
                 [secure_sum]\nvector = \"v\"\nlength = {LENGTH}\nrounds = {rounds}\n\
                 frac_bits = 16\nlo = -1000000.0\nhi = 1000000.0\n"
            ),
        )
        .unwrap();
        let job = Job::load(&job).unwrap();
        Self { dir, job }
    }

    fn journal(&self, name: &str) -> JournalWriter {
        let path = |file: &str| self.dir.path().join(file);
        JournalWriter::open(
            &path(name),
            &path("coordinator.key"),
            &path("coordinator.crt"),
            "coordinator",
        )
        .unwrap()
    }

    /// Runs the job over `members` with `faults`, journaling to `journal`.
    async fn run(
        &self,
        journal: &mut JournalWriter,
        faults: &[(&str, Fault)],
    ) -> Result<JobReport, EngineError> {
        self.run_with_budget(journal, faults, None).await
    }

    /// Like [`Fixture::run`], journaling `budget` when the job is new.
    async fn run_with_budget(
        &self,
        journal: &mut JournalWriter,
        faults: &[(&str, Fault)],
        budget: Option<PrivacyBudget>,
    ) -> Result<JobReport, EngineError> {
        let listed: Vec<String> = MEMBERS.iter().map(|m| m.to_string()).collect();
        let sessions = InProcess::new(&MEMBERS, faults);
        let engine =
            Engine::start(sessions, settings(), &listed, &self.job, journal, budget).await?;
        self.run_rounds(engine).await
    }

    /// Retraces the job from `journal`, which shows it finished, with
    /// nobody connected.
    async fn retrace(&self, journal: &mut JournalWriter) -> Result<JobReport, EngineError> {
        let resume = super::Resume::read(&journal.records(), &self.job)?.expect("journaled");
        assert!(resume.finished);
        let sessions = InProcess::new(&[], &[]);
        let engine = Engine::retrace(sessions, settings(), &self.job, journal, resume)?;
        self.run_rounds(engine).await
    }

    /// The job's rounds on `engine`, then its end.
    async fn run_rounds(&self, mut engine: Engine<'_>) -> Result<JobReport, EngineError> {
        let sum = self
            .job
            .config
            .secure_sum
            .clone()
            .expect("a [secure_sum] job");
        let computation = proto::Computation {
            encoding: Some(proto::Encoding {
                frac_bits: 16,
                ranges: vec![proto::ClipRange { lo: -1e6, hi: 1e6 }],
                units: vec![],
            }),
            noise: None,
            kind: Some(proto::computation::Kind::VectorFile(proto::VectorFile {
                name: sum.vector,
            })),
        };
        for _ in 0..sum.rounds {
            engine
                .secure_sum("vector", &computation, &encoder(), sum.length)
                .await?;
        }
        engine.finish(true, "", String::new()).await
    }
}

/// The sum of the inputs of `members` in `round`.
fn expected(members: &[&str], round: u64) -> Vec<f64> {
    let mut sum = vec![0.0; LENGTH];
    for m in members {
        let index = MEMBERS.iter().position(|x| x == m).unwrap() as u32;
        for (s, v) in sum.iter_mut().zip(input(index, round)) {
            *s += v;
        }
    }
    sum
}

/// Checks every round of `report` released the sum of exactly its
/// survivors' inputs, and returns (survivors, dropped) per round.
fn check_sums(report: &JobReport) -> Vec<(Vec<String>, Vec<String>)> {
    report
        .rounds
        .iter()
        .map(|r| {
            assert_eq!(r.outcome, "released", "round {}: {:?}", r.round, r.reason);
            let survivors: Vec<&str> = r.survivors.iter().map(String::as_str).collect();
            assert_eq!(
                r.sum.as_deref(),
                Some(&expected(&survivors, r.round)[..]),
                "round {}",
                r.round
            );
            (r.survivors.clone(), r.dropped.clone())
        })
        .collect()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

mod faults;
/// The kind of a journal entry, as the journal names it.
mod resume;
