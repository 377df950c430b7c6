//! The participant node: connects out to the coordinator over mutual TLS,
//! keeps one session open, answers each request with masked data only, and
//! reconnects with jittered exponential back-off when the coordinator goes
//! away. It never listens on a port.
//!
//! Key material lives only as long as the session: a new session starts
//! with none, and the coordinator lets the site take part again from the
//! next key epoch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fedseg_common::journal::Entry;
use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{
    self, CoordinatorMessage, coordinator_message::Body, participant_message,
};
use fedseg_common::secagg::messages::UnmaskRequest;
use fedseg_common::secagg::participant::{self, AwaitingRoster, AwaitingShares, ReadyEpoch};
use fedseg_common::secagg::signing::Membership;
use fedseg_common::secagg::{Fault, JobParams, Phase, SecAggError};
use fedseg_common::wire;
use rand::RngExt;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use crate::config::ParticipantConfig;
use crate::ledger::{Ledger, LedgerError};
use crate::output;
use crate::policy::{self as site_policy, Origin};
use crate::privacy::{self, JobBudget};
use crate::tasks::{self, Site};

mod catch_up;
mod egress;
mod fit;
mod helper;
mod membership;
mod offer;
mod score;
pub(crate) mod vertical;
use catch_up::catch_up;
pub use egress::DIE_AFTER_LEDGER_ENV;
use egress::send;
use offer::accept_offer;

pub use fedseg_common::PROTOCOL_VERSION;

/// Environment variable for fault-injection tests: the phase
/// (`advertise-keys`, `share-keys`, `masked-input`, `confirm-survivors`,
/// `unmask`) at whose first request the node stops answering, as if it had
/// hung.
pub const STALL_AT_ENV: &str = "FEDSEG_FAULT_STALL_AT";

/// Why a session ended.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// TLS material is missing or wrong.
    #[error(transparent)]
    Tls(#[from] fedseg_common::mtls::TlsError),
    /// Connecting or the stream failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The coordinator refused or ended the session.
    #[error("coordinator: {0}")]
    Status(#[from] tonic::Status),
    /// The coordinator named this site differently from its certificate.
    #[error("the coordinator calls this site {0:?}")]
    WrongIdentity(String),
    /// The egress ledger cannot be written, so nothing may be sent.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub(super) enum EpochState {
    Idle,
    AwaitingRoster(AwaitingRoster),
    AwaitingShares(AwaitingShares),
    Ready(ReadyEpoch),
}

pub(super) struct JobState {
    pub(super) id: String,
    pub(super) params: Arc<JobParams>,
    pub(super) index: u32,
    /// Cohort identities by index, as the offer named them.
    pub(super) cohort: Vec<String>,
    /// This site's signing key and trust for the job, read at its first
    /// key set-up.
    pub(super) membership: Option<Arc<Membership>>,
    pub(super) epoch: EpochState,
    /// This site's data for the job, when it has tables configured.
    pub(super) site: Option<Site>,
    /// The privacy budget the job declared, and what it has spent here.
    pub(super) budget: Option<JobBudget>,
    /// A vertical job's state, when the job is one.
    pub(super) vertical: Option<vertical::VerticalJob>,
    /// Masked inputs this site sent for the job (this session or earlier
    /// ones), held against its policy's `max_rounds`.
    pub(super) rounds_answered: u64,
}

/// Runs CPU-bound local work without stalling the session's other tasks.
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What the node does with one coordinator message.
pub(super) enum Reply {
    Send(participant_message::Body),
    /// Several messages, in order (a list's chunks).
    SendAll(Vec<participant_message::Body>),
    /// A masked input that spends this much ρ of the site's privacy.
    Spend(participant_message::Body, f64),
    /// The site accepts the job offered; who asked for it and why go to
    /// the ledger with the answer.
    Accepted(Origin),
    Nothing,
    Stall,
}

/// Runs the node until `shutdown` resolves.
pub async fn run(
    config: ParticipantConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    // Refuse bad TLS material at start-up rather than on every retry.
    config.tls.client_config(&config.coordinator_id)?;
    let stall_at = std::env::var(STALL_AT_ENV).ok();
    let mut ledger = Ledger::open(&config.ledger)?;
    if let Some(path) = &config.metrics_file {
        ledger = ledger.with_metrics(path);
    }
    tokio::pin!(shutdown);
    let mut ceiling = config.reconnect.initial_ms;
    loop {
        tokio::select! {
            ended = session(&config, &mut ledger, stall_at.as_deref(), &mut ceiling) => match ended {
                Ok(()) => info!("the coordinator closed the session"),
                Err(error) => warn!(%error, "session ended"),
            },
            _ = &mut shutdown => return Ok(()),
        }
        let delay = rand::rng().random_range(0..=ceiling);
        ceiling = (ceiling * 2).min(config.reconnect.max_ms);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay)) => {},
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// The round a coordinator request concerns (a key epoch's first round for
/// key set-up), as the journal records it.
fn request_round(message: &CoordinatorMessage) -> Option<u64> {
    match message.body.as_ref()? {
        Body::EpochStart(s) => Some(s.first_round),
        Body::EpochRoster(r) => Some(r.first_round),
        Body::MaskRequest(m) => Some(m.round),
        Body::SurvivorSet(s) => Some(s.round),
        Body::UnmaskRequest(u) => Some(u.round),
        _ => None,
    }
}

async fn session(
    config: &ParticipantConfig,
    ledger: &mut Ledger,
    stall_at: Option<&str>,
    ceiling: &mut u64,
) -> Result<(), NodeError> {
    let tls = config.tls.client_config(&config.coordinator_id)?;
    let channel = fedseg_common::mtls::connect(&config.coordinator, tls).await?;
    let mut client = CoordinatorClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(16);
    let hello = proto::Hello {
        protocol_version: PROTOCOL_VERSION,
        software: format!("fedseg-participant {}", env!("CARGO_PKG_VERSION")),
        resumable_jobs: Vec::new(),
    };
    send(
        &tx,
        ledger,
        "",
        None,
        participant_message::Body::Hello(hello),
        None,
        None,
    )
    .await?;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    let mut job: Option<JobState> = None;
    // What a vertical job's worker thread produces, sent (ledgered) here.
    let (outbox, mut produced) = mpsc::unbounded_channel();
    loop {
        let message = tokio::select! {
            message = inbound.message() => match message? {
                Some(message) => message,
                None => break,
            },
            Some((job_id, body)) = produced.recv() => {
                let job_id: String = job_id;
                if !send(&tx, ledger, &job_id, None, body, None, None).await? {
                    break;
                }
                continue;
            }
        };
        let (job_id, round) = (message.job_id.clone(), request_round(&message));
        keep_end_record(ledger, &message)?;
        match handle(config, &mut job, message, stall_at, ledger, &outbox)? {
            Reply::Send(body) => {
                if !send(&tx, ledger, &job_id, round, body, None, None).await? {
                    break;
                }
            }
            Reply::SendAll(bodies) => {
                for body in bodies {
                    if !send(&tx, ledger, &job_id, round, body, None, None).await? {
                        return Ok(());
                    }
                }
            }
            Reply::Spend(body, rho) => {
                if let Some(budget) = job.as_mut().and_then(|j| j.budget.as_mut()) {
                    budget.spend(round.unwrap_or_default(), rho);
                }
                if !send(&tx, ledger, &job_id, round, body, Some(rho), None).await? {
                    break;
                }
            }
            Reply::Accepted(origin) => {
                let body = participant_message::Body::JobAnswer(proto::JobAnswer {
                    accept: true,
                    reason: String::new(),
                });
                if !send(&tx, ledger, &job_id, round, body, None, Some(origin)).await? {
                    break;
                }
            }
            Reply::Nothing => {}
            Reply::Stall => {
                warn!("fault injection: no longer answering");
                std::future::pending::<()>().await;
            }
        }
        *ceiling = config.reconnect.initial_ms;
    }
    Ok(())
}

/// Keeps the signed `job_finished` journal record a JobFinished carries in
/// the ledger, once it reads as the end of that job.
fn keep_end_record(ledger: &mut Ledger, message: &CoordinatorMessage) -> Result<(), NodeError> {
    let Some(Body::JobFinished(done)) = &message.body else {
        return Ok(());
    };
    if done.journal_record.is_empty() {
        return Ok(());
    }
    match fedseg_common::journal::peek(&done.journal_record) {
        Ok((_, Entry::JobFinished { job_id, .. })) if job_id == message.job_id => {
            ledger.keep_end_record(&message.job_id, &done.journal_record)?;
        }
        Ok(_) => {
            warn!(job = %message.job_id, "JobFinished carried another record than this job's end; not kept")
        }
        Err(error) => {
            warn!(job = %message.job_id, %error, "JobFinished carried an unreadable journal record; not kept")
        }
    }
    Ok(())
}

fn phase_name(body: &Body) -> Option<&'static str> {
    use fedseg_common::proto::vertical_down;
    let phase = match body {
        // A vertical job's steps, for fault injection.
        Body::Vertical(v) => {
            return match v.body {
                Some(vertical_down::Body::PsiStart(_)) => Some("psi-start"),
                Some(vertical_down::Body::PsiRoster(_)) => Some("psi-roster"),
                Some(vertical_down::Body::PsiChunk(_)) => Some("psi-chunk"),
                _ => None,
            };
        }
        Body::EpochStart(_) => Phase::AdvertiseKeys,
        Body::EpochRoster(_) => Phase::ShareKeys,
        Body::MaskRequest(_) => Phase::MaskedInput,
        Body::SurvivorSet(_) => Phase::ConfirmSurvivors,
        Body::UnmaskRequest(_) => Phase::Unmask,
        _ => return None,
    };
    Some(phase.name())
}

fn failed(round: u64, fault: proto::FaultKind, reason: String) -> Reply {
    Reply::Send(participant_message::Body::TaskFailed(proto::TaskFailed {
        round,
        fault: fault as i32,
        reason,
    }))
}

/// Refuses a request; a request only a misbehaving coordinator would send
/// (forged keys, an unconfirmed or second survivor set) is reported as the
/// coordinator's fault.
fn protocol_failure(round: u64, error: SecAggError) -> Reply {
    let fault = match error.fault() {
        Fault::Coordinator => proto::FaultKind::Coordinator,
        _ => proto::FaultKind::Peer,
    };
    warn!(round, code = error.code(), ?fault, %error, "refused a request");
    failed(round, fault, error.to_string())
}

fn handle(
    config: &ParticipantConfig,
    job: &mut Option<JobState>,
    message: CoordinatorMessage,
    stall_at: Option<&str>,
    ledger: &Ledger,
    outbox: &fit::Outbox,
) -> Result<Reply, NodeError> {
    let Some(body) = message.body else {
        return Ok(Reply::Nothing);
    };
    if stall_at.is_some() && phase_name(&body) == stall_at {
        return Ok(Reply::Stall);
    }
    let body = match body {
        Body::Welcome(welcome) => {
            if welcome.identity != config.id {
                return Err(NodeError::WrongIdentity(welcome.identity));
            }
            info!(identity = %welcome.identity, "session open");
            return Ok(Reply::Nothing);
        }
        Body::JobOffer(offer) => {
            return Ok(accept_offer(config, job, &message.job_id, offer, ledger));
        }
        Body::JobFinished(done) => {
            info!(job = %message.job_id, success = done.success, "job finished");
            let ours = job
                .take_if(|j| j.id == message.job_id)
                .map(|finished| finished.site);
            if done.success && !done.result_json.is_empty() {
                match ours {
                    Some(site) => {
                        match output::write_job(
                            &config.output,
                            &message.job_id,
                            site.as_ref(),
                            &done.result_json,
                        ) {
                            Ok(dir) => {
                                info!(dir = %dir.display(), "wrote this site's local results")
                            }
                            Err(error) => warn!(%error, "could not write the local results"),
                        }
                    }
                    None => catch_up(config, ledger, &message.job_id, &done.result_json),
                }
            }
            return Ok(Reply::Nothing);
        }
        Body::RoundAborted(aborted) => {
            warn!(round = aborted.round, reason = %aborted.reason, "round aborted by the coordinator");
            if let Some(returned) = job
                .as_mut()
                .filter(|j| j.id == message.job_id)
                .and_then(|j| j.budget.as_mut())
                .and_then(|b| b.aborted(aborted.round))
            {
                info!(
                    round = aborted.round,
                    rho = returned,
                    "privacy of an input never unmasked returned to the job's budget"
                );
            }
            return Ok(Reply::Nothing);
        }
        other => other,
    };
    let Some(state) = job.as_mut().filter(|j| j.id == message.job_id) else {
        return Ok(failed(
            0,
            proto::FaultKind::Peer,
            format!("no job {:?} on this session", message.job_id),
        ));
    };
    if let Body::Vertical(down) = body {
        return Ok(match state.vertical.as_mut() {
            Some(vertical) => Reply::SendAll(vertical.step(down, outbox)),
            None => failed(
                0,
                proto::FaultKind::Peer,
                "a vertical message in a job that is not vertical".into(),
            ),
        });
    }
    Ok(step(config, state, body))
}

/// One protocol step; the epoch state is taken by value and replaced by the
/// next one, or left idle on any error.
fn step(config: &ParticipantConfig, job: &mut JobState, body: Body) -> Reply {
    let epoch = std::mem::replace(&mut job.epoch, EpochState::Idle);
    match (body, epoch) {
        (Body::EpochStart(start), _) => match membership::of_job(config, job)
            .map_err(|reason| failed(0, proto::FaultKind::Local, reason))
            .and_then(|membership| {
                participant::start_epoch(
                    job.params.clone(),
                    job.index,
                    start.into(),
                    membership,
                    &mut rand::rng(),
                )
                .map_err(|e| protocol_failure(0, e))
            }) {
            Ok((advert, next)) => {
                job.epoch = EpochState::AwaitingRoster(next);
                Reply::Send(participant_message::Body::KeyAdvertisement(
                    (&advert).into(),
                ))
            }
            Err(reply) => reply,
        },
        (Body::EpochRoster(roster), EpochState::AwaitingRoster(state)) => {
            let roster = match wire::roster_from_wire(roster, state.start()) {
                Ok(r) => r,
                Err(e) => return failed(0, proto::FaultKind::Peer, e.to_string()),
            };
            match state.receive_roster(roster, &mut rand::rng()) {
                Ok((bundle, next)) => {
                    job.epoch = EpochState::AwaitingShares(next);
                    Reply::Send(participant_message::Body::ShareBundle((&bundle).into()))
                }
                Err(e) => protocol_failure(0, e),
            }
        }
        (Body::ShareDelivery(delivery), EpochState::AwaitingShares(state)) => {
            match state.receive_shares(delivery.into()) {
                Ok(ready) => {
                    info!(
                        epoch = ready.start().epoch,
                        rounds = ready.start().rounds,
                        "key set-up complete"
                    );
                    job.epoch = EpochState::Ready(ready);
                    Reply::Nothing
                }
                Err(e) => protocol_failure(0, e),
            }
        }
        (Body::MaskRequest(request), EpochState::Ready(mut ready)) => {
            let reply = mask(config, job, &mut ready, &request);
            job.epoch = EpochState::Ready(ready);
            reply
        }
        (Body::SurvivorSet(set), EpochState::Ready(mut ready)) => {
            let round = set.round;
            let reply = match ready.confirm(&set.into()) {
                Ok(signature) => Reply::Send(participant_message::Body::SurvivorSignature(
                    (&signature).into(),
                )),
                Err(e) => protocol_failure(round, e),
            };
            job.epoch = EpochState::Ready(ready);
            reply
        }
        (Body::UnmaskRequest(request), EpochState::Ready(mut ready)) => {
            let round = request.round;
            let request = match UnmaskRequest::try_from(request) {
                Ok(request) => request,
                Err(e) => {
                    job.epoch = EpochState::Ready(ready);
                    return failed(round, proto::FaultKind::Peer, e.to_string());
                }
            };
            let reply = match ready.unmask(&request) {
                Ok(response) => {
                    if let Some(budget) = job.budget.as_mut() {
                        budget.unmasking(round);
                    }
                    Reply::Send(participant_message::Body::UnmaskResponse(
                        (&response).into(),
                    ))
                }
                Err(e) => protocol_failure(round, e),
            };
            job.epoch = EpochState::Ready(ready);
            reply
        }
        (body, _) => {
            let round = match &body {
                Body::MaskRequest(m) => m.round,
                Body::SurvivorSet(s) => s.round,
                Body::UnmaskRequest(u) => u.round,
                _ => 0,
            };
            failed(
                round,
                proto::FaultKind::Peer,
                format!(
                    "{} request without the key set-up it needs",
                    phase_name(&body).unwrap_or("unexpected")
                ),
            )
        }
    }
}

fn mask(
    config: &ParticipantConfig,
    job: &mut JobState,
    ready: &mut ReadyEpoch,
    request: &proto::MaskRequest,
) -> Reply {
    let Some(computation) = &request.computation else {
        return failed(
            request.round,
            proto::FaultKind::Peer,
            "the request names no computation".into(),
        );
    };
    if let Some(reason) = site_policy::rounds_refused(config.policy.as_ref(), job.rounds_answered) {
        warn!(round = request.round, %reason, "refused a round");
        return failed(request.round, proto::FaultKind::Policy, reason);
    }
    let length = request.length as usize;
    let privacy = match privacy::check_release(
        job.budget.as_ref(),
        computation,
        length,
        job.params.threshold,
    ) {
        Ok(privacy) => privacy,
        Err(reason) => {
            warn!(round = request.round, %reason, "refused a release");
            return failed(request.round, proto::FaultKind::Policy, reason);
        }
    };
    let (index, site) = (job.index, job.site.as_mut());
    let noise = privacy.as_ref().map(|(bounds, _)| bounds);
    let encoded = match blocking(|| tasks::compute(config, site, computation, index, length, noise))
    {
        Ok(encoded) => encoded,
        Err(error) => {
            warn!(round = request.round, %error, "local computation failed; nothing sent");
            return failed(request.round, proto::FaultKind::Local, error.to_string());
        }
    };
    if encoded.clipped > 0 {
        info!(
            round = request.round,
            clipped = encoded.clipped,
            "values clipped to the declared range"
        );
    }
    match ready.mask(&wire::mask_request_from_wire(request), &encoded.words) {
        Ok(masked) => {
            job.rounds_answered += 1;
            let body = participant_message::Body::MaskedInput((&masked).into());
            match privacy {
                Some((_, rho)) => Reply::Spend(body, rho),
                None => Reply::Send(body),
            }
        }
        Err(e) => protocol_failure(request.round, e),
    }
}
