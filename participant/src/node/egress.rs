//! What leaves the site: every message is written to the egress ledger,
//! and on disk, before it is handed to the session.

use fedseg_common::proto::{ParticipantMessage, participant_message};
use fedseg_common::secagg::Phase;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::warn;

use super::{NodeError, vertical};
use crate::ledger::Ledger;
use crate::policy::Origin;

/// Environment variable for fault-injection tests: the ledger kind (e.g.
/// `masked-input`) after whose first ledger line the process dies before
/// sending the message, as if killed between the two.
pub const DIE_AFTER_LEDGER_ENV: &str = "FEDSEG_FAULT_DIE_AFTER_LEDGER";

/// Records `body` in the ledger, then sends it: nothing leaves unrecorded.
pub(super) async fn send(
    tx: &mpsc::Sender<ParticipantMessage>,
    ledger: &mut Ledger,
    job_id: &str,
    round: Option<u64>,
    body: participant_message::Body,
    rho: Option<f64>,
    origin: Option<Origin>,
) -> Result<bool, NodeError> {
    let kind = match &body {
        participant_message::Body::Hello(_) => "hello",
        participant_message::Body::JobAnswer(_) => crate::ledger::ACCEPTANCE_KIND,
        participant_message::Body::KeyAdvertisement(_) => Phase::AdvertiseKeys.name(),
        participant_message::Body::ShareBundle(_) => Phase::ShareKeys.name(),
        participant_message::Body::MaskedInput(_) => Phase::MaskedInput.name(),
        participant_message::Body::SurvivorSignature(_) => Phase::ConfirmSurvivors.name(),
        participant_message::Body::UnmaskResponse(_) => Phase::Unmask.name(),
        participant_message::Body::TaskFailed(_) => "task-failed",
        participant_message::Body::Vertical(v) => vertical::ledger_kind(v),
    };
    // The digest of a masked input's words is what this site signed in it.
    let input_sha256 = match &body {
        participant_message::Body::MaskedInput(m) => Some(hex::encode(Sha256::digest(&m.words))),
        _ => None,
    };
    let message = ParticipantMessage { body: Some(body) };
    let encoded = message.encode_to_vec();
    match (input_sha256, origin) {
        (Some(digest), _) => ledger.record_masked_input(job_id, round, &encoded, rho, digest)?,
        (None, Some(origin)) => ledger.record_acceptance(job_id, &encoded, origin)?,
        (None, None) => ledger.record(job_id, round, kind, &encoded, rho)?,
    }
    if std::env::var(DIE_AFTER_LEDGER_ENV).is_ok_and(|k| k == kind) {
        warn!(
            kind,
            "fault injection: dying between the ledger line and the send"
        );
        std::process::abort();
    }
    Ok(tx.send(message).await.is_ok())
}
