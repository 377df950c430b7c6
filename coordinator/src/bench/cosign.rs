//! What co-signing adds to a secure sum, counted and timed: the signatures
//! each member makes and checks per steady round and per key epoch, the
//! bytes they add on the wire and in the journal, and the time, from the
//! protocol's exact operation counts times each operation's cost measured
//! here with the consortium's real certificates and keys (ECDSA P-256 by
//! default, ring).
//!
//! Counts, per member and steady round: it signs its masked input's digest
//! (SHA-256 over the 8·d bytes of its words) and the survivor set; it checks
//! the quorum q of survivor signatures before revealing a share (the first
//! round of an epoch also checks each signer's certificate chain once). Per
//! key epoch: it signs its advertisement and checks each of its k
//! neighbours' certificate chain and signature. The coordinator checks every
//! survivor's input signature (with its digest) and survivor-set signature
//! each round, and every advertisement each epoch.

use std::time::Instant;

use fedseg_common::certs;
use fedseg_common::identity::Role;
use fedseg_common::keys::{KeyAlgorithm, SIGNATURE_LEN};
use fedseg_common::secagg::consortium::Consortium;
use fedseg_common::secagg::signing;
use serde::Serialize;

/// Bytes of a 64-byte signature in its protobuf field (tag and length).
const SIGNATURE_FIELD: u64 = SIGNATURE_LEN as u64 + 2;

/// The co-signing costs of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct CosignCost {
    /// Signatures a member makes per steady round (input, survivor set).
    pub member_signs_per_round: u32,
    /// Signatures a member verifies per steady round (the quorum).
    pub member_verifies_per_round: u32,
    /// Signatures (and certificate chains) a member verifies per key epoch.
    pub member_verifies_per_epoch: u32,
    /// Signatures the coordinator verifies per steady round.
    pub coordinator_verifies_per_round: u32,
    /// Bytes a member sends per round for co-signing (two signatures).
    pub member_bytes_up_per_round: u64,
    /// Bytes a member receives per round for co-signing (the survivor set
    /// and the quorum's signatures in its unmask request).
    pub member_bytes_down_per_round: u64,
    /// Bytes of certificate and signature a roster entry carries, per
    /// member and key epoch.
    pub roster_bytes_per_member_epoch: u64,
    /// Journal bytes per release for the survivors' signatures (hex JSON).
    pub journal_bytes_per_round: u64,
    /// One signature, milliseconds.
    pub sign_ms: f64,
    /// One signature verified, milliseconds.
    pub verify_ms: f64,
    /// One certificate chain checked against the CA, milliseconds.
    pub chain_ms: f64,
    /// SHA-256 of one masked input of d words, milliseconds.
    pub digest_ms: f64,
    /// A member's co-signing time per steady round, milliseconds.
    pub member_ms_per_round: f64,
    /// The coordinator's co-signing time per steady round, milliseconds.
    pub coordinator_ms_per_round: f64,
}

/// Median milliseconds of `f` over `runs` runs.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Counts and times co-signing for `n` members with `neighbours` each,
/// `survivors` per round, quorum `quorum` and vectors of `length` words.
pub fn cost(
    n: u32,
    neighbours: u32,
    survivors: u32,
    quorum: u32,
    length: usize,
) -> Result<CosignCost, super::BenchError> {
    let consortium = Consortium::generate(2, KeyAlgorithm::EcdsaP256);
    let member = &consortium.members[0];
    let certificate = member.credential.certificate();
    let words: Vec<u64> = (0..length as u64).collect();
    let message = signing::survivors_message("bench", 1, &(0..n).collect::<Vec<_>>());
    let signature = member.credential.sign(&message);
    let key = certs::key_unchecked(certificate)?;
    let id = consortium.cohort[0].as_str();
    let now = certs::unix_now();
    let sign_ms = median_ms(101, || {
        std::hint::black_box(member.credential.sign(&message));
    });
    let verify_ms = median_ms(101, || {
        std::hint::black_box(key.verify(&message, &signature).is_ok());
    });
    let chain_ms = median_ms(101, || {
        let checked =
            certs::verify_member(certificate, &consortium.ca, (id, Role::Participant), now);
        std::hint::black_box(checked.is_ok());
    });
    let digest_ms = median_ms(21, || {
        std::hint::black_box(signing::input_digest(&words));
    });
    let name = 8u64; // an identity such as "bank-a", quoted
    let hex_signature = 2 * SIGNATURE_LEN as u64 + 3;
    Ok(CosignCost {
        member_signs_per_round: 2,
        member_verifies_per_round: quorum,
        member_verifies_per_epoch: 2 * neighbours,
        coordinator_verifies_per_round: 2 * survivors,
        member_bytes_up_per_round: 2 * SIGNATURE_FIELD,
        member_bytes_down_per_round: 4 * u64::from(survivors)
            + u64::from(quorum) * (SIGNATURE_FIELD + 4),
        roster_bytes_per_member_epoch: certificate.len() as u64 + 4 + SIGNATURE_FIELD,
        journal_bytes_per_round: u64::from(survivors) * (2 * (name + hex_signature) + 64 + 30),
        sign_ms,
        verify_ms,
        chain_ms,
        digest_ms,
        member_ms_per_round: digest_ms + 2.0 * sign_ms + f64::from(quorum) * verify_ms,
        coordinator_ms_per_round: f64::from(survivors) * (digest_ms + 2.0 * verify_ms),
    })
}
