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

use fedseg_common::job::JobConfig;
use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{
    self, CoordinatorMessage, ParticipantMessage, coordinator_message::Body, participant_message,
};
use fedseg_common::secagg::participant::{self, AwaitingRoster, AwaitingShares, ReadyEpoch};
use fedseg_common::secagg::{JobParams, Phase, SecAggError};
use fedseg_common::wire;
use prost::Message;
use rand::RngExt;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{info, warn};

use crate::config::ParticipantConfig;
use crate::ledger::{Ledger, LedgerError};
use crate::output;
use crate::privacy::{self, JobBudget};
use crate::rfmlt::DataError;
use crate::tasks::{self, Site};

/// Wire protocol version this node speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variable for fault-injection tests: the phase
/// (`advertise-keys`, `share-keys`, `masked-input`, `unmask`) at whose first
/// request the node stops answering, as if it had hung.
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

enum EpochState {
    Idle,
    AwaitingRoster(AwaitingRoster),
    AwaitingShares(AwaitingShares),
    Ready(ReadyEpoch),
}

struct JobState {
    id: String,
    params: Arc<JobParams>,
    index: u32,
    epoch: EpochState,
    /// This site's data for the job, when it has tables configured.
    site: Option<Site>,
    /// The privacy budget the job declared, and what it has spent here.
    budget: Option<JobBudget>,
}

/// Runs CPU-bound local work without stalling the session's other tasks.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What the node does with one coordinator message.
enum Reply {
    Send(participant_message::Body),
    /// A masked input that spends this much ρ of the site's privacy.
    Spend(participant_message::Body, f64),
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

/// Records `body` in the ledger, then sends it: nothing leaves unrecorded.
async fn send(
    tx: &mpsc::Sender<ParticipantMessage>,
    ledger: &mut Ledger,
    job_id: &str,
    round: Option<u64>,
    body: participant_message::Body,
    rho: Option<f64>,
) -> Result<bool, NodeError> {
    let kind = match &body {
        participant_message::Body::Hello(_) => "hello",
        participant_message::Body::JobAnswer(_) => "job-answer",
        participant_message::Body::KeyAdvertisement(_) => Phase::AdvertiseKeys.name(),
        participant_message::Body::ShareBundle(_) => Phase::ShareKeys.name(),
        participant_message::Body::MaskedInput(_) => Phase::MaskedInput.name(),
        participant_message::Body::UnmaskResponse(_) => Phase::Unmask.name(),
        participant_message::Body::TaskFailed(_) => "task-failed",
    };
    let message = ParticipantMessage { body: Some(body) };
    ledger.record(job_id, round, kind, &message.encode_to_vec(), rho)?;
    Ok(tx.send(message).await.is_ok())
}

/// The round a coordinator request concerns (a key epoch's first round for
/// key set-up), as the journal records it.
fn request_round(message: &CoordinatorMessage) -> Option<u64> {
    match message.body.as_ref()? {
        Body::EpochStart(s) => Some(s.first_round),
        Body::EpochRoster(r) => Some(r.first_round),
        Body::MaskRequest(m) => Some(m.round),
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
    let channel = Endpoint::from_shared(config.coordinator.clone())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
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
    )
    .await?;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    let mut job: Option<JobState> = None;
    while let Some(message) = inbound.message().await? {
        let (job_id, round) = (message.job_id.clone(), request_round(&message));
        match handle(config, &mut job, message, stall_at, ledger)? {
            Reply::Send(body) => {
                if !send(&tx, ledger, &job_id, round, body, None).await? {
                    break;
                }
            }
            Reply::Spend(body, rho) => {
                if let Some(budget) = job.as_mut().and_then(|j| j.budget.as_mut()) {
                    budget.spend(round.unwrap_or_default(), rho);
                }
                if !send(&tx, ledger, &job_id, round, body, Some(rho)).await? {
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

fn phase_name(body: &Body) -> Option<&'static str> {
    let phase = match body {
        Body::EpochStart(_) => Phase::AdvertiseKeys,
        Body::EpochRoster(_) => Phase::ShareKeys,
        Body::MaskRequest(_) => Phase::MaskedInput,
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

fn protocol_failure(round: u64, error: SecAggError) -> Reply {
    warn!(round, code = error.code(), %error, "refused a request");
    failed(round, proto::FaultKind::Peer, error.to_string())
}

fn handle(
    config: &ParticipantConfig,
    job: &mut Option<JobState>,
    message: CoordinatorMessage,
    stall_at: Option<&str>,
    ledger: &Ledger,
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
            if let Some(finished) = job.take().filter(|j| j.id == message.job_id)
                && done.success
                && !done.result_json.is_empty()
            {
                match output::write_job(
                    &config.output,
                    &finished.id,
                    finished.site.as_ref(),
                    &done.result_json,
                ) {
                    Ok(dir) => info!(dir = %dir.display(), "wrote this site's local results"),
                    Err(error) => warn!(%error, "could not write the local results"),
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
    Ok(step(config, state, body))
}

fn accept_offer(
    config: &ParticipantConfig,
    job: &mut Option<JobState>,
    job_id: &str,
    offer: proto::JobOffer,
    ledger: &Ledger,
) -> Reply {
    let decline = |reason: String| {
        warn!(job = %job_id, %reason, "declining the job");
        Reply::Send(participant_message::Body::JobAnswer(proto::JobAnswer {
            accept: false,
            reason,
        }))
    };
    if offer.cohort.get(offer.index as usize) != Some(&config.id) {
        return decline("the offer does not place this site at its index".into());
    }
    // The same offer again on this session (the coordinator can send it
    // twice while it forms the cohort): the answer stands, and the job's
    // state, keys included, is kept.
    if job
        .as_ref()
        .is_some_and(|j| j.id == job_id && j.index == offer.index)
    {
        return Reply::Send(participant_message::Body::JobAnswer(proto::JobAnswer {
            accept: true,
            reason: String::new(),
        }));
    }
    let Ok(seed) = <[u8; 32]>::try_from(offer.graph_seed.as_slice()) else {
        return decline("the graph seed is not 32 bytes".into());
    };
    let job_config = match JobConfig::parse(&offer.config) {
        Ok(parsed) => match parsed.check() {
            Ok(()) => parsed,
            Err((key, why)) => return decline(format!("the job's {key} is not valid: {why}")),
        },
        Err(_) => return decline("the job config does not parse".into()),
    };
    // The privacy policy first: a job this site will not take part in
    // does not get its data read.
    let budget = match privacy::declared(job_config.privacy.as_ref()) {
        // A job resumed after a coordinator restart has spent before: the
        // ledger remembers what this session does not.
        Ok(budget) => budget.map(|mut b| {
            b.spent = ledger.rho_of_job(job_id);
            b
        }),
        Err(reason) => return decline(reason),
    };
    let now_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if let Err(reason) = privacy::admit(
        config.privacy.as_ref(),
        budget.as_ref(),
        ledger,
        now_unix_ms,
    ) {
        return decline(reason);
    }
    let site = match &config.data {
        None => None,
        Some(data) => {
            let Some(as_of) = job_config.as_of_date() else {
                return decline("the job config has no valid as_of date".into());
            };
            match blocking(|| data.features(as_of).map(|f| Site::from_features(f, as_of))) {
                Ok(site) => {
                    info!(
                        customers = site.features.customers.len(),
                        excluded_no_consent = site.features.excluded_no_consent,
                        skipped_rows = site.features.skipped.total(),
                        %as_of,
                        "features computed"
                    );
                    site.features.skipped.log();
                    Some(site)
                }
                Err(error) => {
                    // The detail names local files and values: it stays in
                    // this site's log.
                    warn!(job = %job_id, %error, "this site's data cannot be used");
                    let reason = match error {
                        DataError::TooManyBadRows { .. } => {
                            "this site's data has more bad rows than its max_bad_rows allows; \
                             see the site's log"
                        }
                        _ => "this site's data failed validation; see the site's log",
                    };
                    return decline(reason.into());
                }
            }
        }
    };
    match JobParams::new(
        job_id,
        offer.cohort.len() as u32,
        offer.threshold,
        offer.neighbours,
        &seed,
    ) {
        Ok(params) => {
            info!(job = %job_id, index = offer.index, cohort = offer.cohort.len(), "joined the job");
            *job = Some(JobState {
                id: job_id.to_string(),
                params: Arc::new(params),
                index: offer.index,
                epoch: EpochState::Idle,
                site,
                budget,
            });
            Reply::Send(participant_message::Body::JobAnswer(proto::JobAnswer {
                accept: true,
                reason: String::new(),
            }))
        }
        Err(error) => decline(error.to_string()),
    }
}

/// One protocol step; the epoch state is taken by value and replaced by the
/// next one, or left idle on any error.
fn step(config: &ParticipantConfig, job: &mut JobState, body: Body) -> Reply {
    let epoch = std::mem::replace(&mut job.epoch, EpochState::Idle);
    match (body, epoch) {
        (Body::EpochStart(start), _) => match participant::start_epoch(
            job.params.clone(),
            job.index,
            start.into(),
            &mut rand::rng(),
        ) {
            Ok((advert, next)) => {
                job.epoch = EpochState::AwaitingRoster(next);
                Reply::Send(participant_message::Body::KeyAdvertisement(
                    (&advert).into(),
                ))
            }
            Err(e) => protocol_failure(0, e),
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
        (Body::UnmaskRequest(request), EpochState::Ready(mut ready)) => {
            let round = request.round;
            if let Some(budget) = job.budget.as_mut() {
                budget.unmasking(round);
            }
            let reply = match ready.unmask(&request.into()) {
                Ok(response) => Reply::Send(participant_message::Body::UnmaskResponse(
                    (&response).into(),
                )),
                Err(e) => protocol_failure(round, e),
            };
            job.epoch = EpochState::Ready(ready);
            reply
        }
        (body, _) => {
            let round = match &body {
                Body::MaskRequest(m) => m.round,
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
            let body = participant_message::Body::MaskedInput((&masked).into());
            match privacy {
                Some((_, rho)) => Reply::Spend(body, rho),
                None => Reply::Send(body),
            }
        }
        Err(e) => protocol_failure(request.round, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> proto::JobOffer {
        proto::JobOffer {
            job_version: 1,
            config_hash: "h".into(),
            config: "seed = 1\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n".into(),
            cohort: vec!["bank-a".into(), "bank-b".into(), "bank-c".into()],
            index: 0,
            threshold: 2,
            neighbours: 2,
            graph_seed: vec![7; 32],
        }
    }

    #[test]
    fn the_same_offer_twice_keeps_the_job_state() {
        let dir = tempfile::tempdir().unwrap();
        let config: ParticipantConfig = toml::from_str(
            "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\n\
             coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
        )
        .unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        let mut job = None;
        let offer_job = |job: &mut Option<JobState>, id: &str| {
            let reply = accept_offer(&config, job, id, offer(), &ledger);
            assert!(
                matches!(reply, Reply::Send(participant_message::Body::JobAnswer(a)) if a.accept)
            );
        };
        offer_job(&mut job, "job-1");
        // Mark the state; a second offer must not replace it.
        job.as_mut().unwrap().budget =
            privacy::declared(Some(&fedseg_common::job::PrivacySettings {
                epsilon: 1.0,
                delta: 1e-6,
                clip: [1095.0, 100.0, 20_000.0, 1825.0, 50.0],
            }))
            .unwrap();
        offer_job(&mut job, "job-1");
        assert!(job.as_ref().unwrap().budget.is_some());
        // Another job replaces it.
        offer_job(&mut job, "job-2");
        assert!(job.as_ref().unwrap().budget.is_none());
    }
}
