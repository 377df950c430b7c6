//! The coordinator's journal: an append-only file of hash-chained records,
//! each signed with the coordinator's key, that anyone holding the
//! consortium CA certificate can verify offline.
//!
//! Byte layout of one record (all integers little-endian):
//!
//! ```text
//! record    = body_len:u32 | body | signature:[u8; 64]
//! body      = "FSJ1" | sequence:u64 | unix_ms:i64 | prev_hash:[u8; 32] | kind:u8 | payload
//! payload   = the entry as JSON (UTF-8), its "kind" tag matching `kind`
//! prev_hash = SHA-256 of the previous record's bytes (zeros for record 0)
//! signature = over SIGNING_CONTEXT | body, with the coordinator's key:
//!             Ed25519, or ECDSA P-256 with SHA-256 as r || s (32 bytes each,
//!             big-endian; see `crate::keys`)
//! ```
//!
//! Record 0 is always [`Entry::JournalOpened`] and carries the coordinator's
//! certificate: verification checks that it chains to the CA with the
//! coordinator role, then every sequence number, hash link and signature,
//! then the participants' own signatures on every release's survivor set
//! ([`cosigned`]).
//!
//! The signature algorithm is the one of the public key in that certificate,
//! so the layout carries no algorithm tag and keeps its 64-byte signature
//! field for both algorithms: journals written before ECDSA keys existed
//! (all Ed25519) read and verify exactly as before. A journal never mixes
//! algorithms, since every record is checked with record 0's key.

use crate::certs;
use crate::keys::{FixedSigner, KeyAlgorithm, SIGNATURE_LEN, VerifyingKey};
mod cosigned;
mod kinds;
mod opening;
use opening::{check_coordinator, coordinator_key_unchecked};
mod submitted;

pub use cosigned::CoSigned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

mod batch;
pub use batch::BatchDigest;
mod end;
pub use end::{EndRecordCheck, JobEnd, check_end_record, job_ends, peek, record_bytes, unfinished};

/// The first bytes of every record body.
pub const MAGIC: &[u8; 4] = b"FSJ1";
/// Prefixed to the body before signing, so a journal signature can never be
/// taken for a signature of anything else.
pub const SIGNING_CONTEXT: &[u8] = b"fedseg/journal/v1\0";
const HEADER: usize = 4 + 8 + 8 + 32 + 1;

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// The journal's first record: who signs it.
    JournalOpened {
        /// The coordinator's identity.
        coordinator: String,
        /// Its certificate, PEM.
        certificate: String,
    },
    /// A job was accepted to run.
    JobSubmitted {
        /// Job identifier.
        job_id: String,
        /// SHA-256 of the job configuration, hex.
        config_hash: String,
        /// The configuration text.
        config: String,
    },
    /// An analyst queued a job on the job service (before its
    /// [`Entry::JobSubmitted`], written when it starts to run).
    JobQueued {
        /// Job identifier.
        job_id: String,
        /// The analyst, as its certificate names it.
        analyst: String,
        /// What the job is for, in the analyst's words.
        purpose: String,
        /// SHA-256 of the job configuration, hex.
        config_hash: String,
        /// The configuration text.
        config: String,
        /// The analyst's certificate, DER, hex.
        certificate: String,
        /// Its signature over the text (`submission::message`), hex.
        signature: String,
    },
    /// A job was cancelled: nothing of it is released after this record.
    JobCancelled {
        /// Job identifier.
        job_id: String,
        /// Who cancelled it.
        by: String,
        /// Their reason.
        reason: String,
    },
    /// A coordinator restarted an unfinished job from its journal.
    JobResumed {
        /// Job identifier.
        job_id: String,
        /// Rounds already completed (released or aborted), kept as journaled.
        completed: u64,
        /// The round number it goes on from; a round that was in flight is
        /// run again under this new number.
        next_round: u64,
    },
    /// The cohort and protocol parameters were fixed.
    CohortFixed {
        /// Job identifier.
        job_id: String,
        /// Cohort identities in index order.
        cohort: Vec<String>,
        /// Shamir threshold.
        threshold: u32,
        /// Neighbours per member.
        neighbours: u32,
        /// Signatures of survivors each release's survivor set carries (0 in
        /// journals written before survivor sets were signed).
        #[serde(default, skip_serializing_if = "is_zero")]
        quorum: u32,
        /// Whether every survivor's masked input carries its signature
        /// (false in journals written before inputs were signed).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        signed_inputs: bool,
    },
    /// The certificates the members advertised their keys with for a key
    /// epoch, so that their signatures can be checked offline.
    MemberCertificates {
        /// Job identifier.
        job_id: String,
        /// Epoch number.
        epoch: u32,
        /// Certificate (DER, hex) by member identity.
        certificates: std::collections::BTreeMap<String, String>,
    },
    /// The survivors of a round signed their set before any share was
    /// revealed (written before its [`Entry::AggregateReleased`]).
    SurvivorsConfirmed {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// The survivor set signed, in cohort order.
        survivors: Vec<String>,
        /// Signature (64 bytes, hex) by signer identity, over
        /// `secagg::signing::survivors_message` of the survivors' indices.
        signatures: std::collections::BTreeMap<String, String>,
        /// Each survivor's masked input as it signed it, by identity (in
        /// jobs whose cohort was fixed with `signed_inputs`).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        inputs: std::collections::BTreeMap<String, SignedInputRecord>,
    },
    /// A participant refused a request and named who is at fault (journaled
    /// when it names the coordinator: a forged key, an unconfirmed or
    /// second survivor set), or the coordinator refused a participant's
    /// message and names it (`fault` is then `participant`: keys advertised
    /// with a certificate other than its session's).
    FaultReported {
        /// Job identifier.
        job_id: String,
        /// Round (0 for key set-up).
        round: u64,
        /// The participant.
        participant: String,
        /// Who it says is at fault.
        fault: String,
        /// Its reason.
        reason: String,
    },
    /// A key epoch's set-up completed.
    KeySetupDone {
        /// Job identifier.
        job_id: String,
        /// Epoch number.
        epoch: u32,
        /// First round it covers.
        first_round: u64,
        /// Rounds it covers.
        rounds: u32,
        /// Members that completed it.
        members: Vec<String>,
    },
    /// A round was opened for these members.
    RoundOpened {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// Key epoch it uses.
        epoch: u32,
        /// Members asked for an input.
        members: Vec<String>,
    },
    /// A phase of a round ended.
    PhaseCompleted {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// The phase (serialised by its name, e.g. `masked-input`).
        phase: crate::secagg::Phase,
        /// Members whose answer was accepted, with the SHA-256 (hex) of the
        /// exact message each sent, for matching against its egress ledger.
        answered: std::collections::BTreeMap<String, String>,
        /// Members that were asked and did not answer acceptably.
        silent: Vec<String>,
    },
    /// A round released its sum.
    AggregateReleased {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// Members whose inputs the sum covers.
        survivors: Vec<String>,
        /// The released values.
        values: Vec<f64>,
    },
    /// A round ended without a release.
    RoundAborted {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// Why.
        reason: String,
    },
    /// A job's differential privacy, journaled when it is submitted: its
    /// budget, the per-customer clip bounds every release is held to, and
    /// the release plan the budget is split over.
    PrivacyBudget {
        /// Job identifier.
        job_id: String,
        /// ε of the whole job.
        epsilon: f64,
        /// δ of the whole job.
        delta: f64,
        /// The zCDP ρ that (ε, δ) allows.
        rho: f64,
        /// Upper clip bounds of R, F, M, L, T per customer, original units.
        clip: [f64; 5],
        /// Releases the budget is split over, evenly.
        planned_releases: u32,
    },
    /// The privacy a released round spent under differential privacy
    /// (written right after its [`Entry::AggregateReleased`]).
    PrivacySpent {
        /// Job identifier.
        job_id: String,
        /// Round.
        round: u64,
        /// L2 sensitivity to one customer, in fixed-point steps.
        sensitivity: f64,
        /// Variance of each contributor's discrete Gaussian noise, steps².
        variance: u64,
        /// Participants whose noise the sum carries.
        contributors: u32,
        /// zCDP ρ of this release.
        rho: f64,
        /// Standard deviation of the noise on an entry bounded by one per
        /// customer (a count), in released units.
        count_noise_sd: f64,
        /// ρ of the job so far, this release included.
        total_rho: f64,
    },
    /// A cohort member declined a job (its data failed its own checks, or
    /// the job asks for more than its policy allows), in its own words.
    ParticipantDeclined {
        /// Job identifier.
        job_id: String,
        /// The member.
        participant: String,
        /// Its reason.
        reason: String,
    },
    /// A message of a vertical job a party sent the coordinator (a hello,
    /// a sealed chunk it relayed, the verdict): sizes and digests only,
    /// for matching against the sender's egress ledger.
    VerticalMessage {
        /// Job identifier.
        job_id: String,
        /// Protocol step (`hello`, `link-0`, `verdict`, ...).
        step: String,
        /// The sending party.
        from: String,
        /// The party it was relayed to (empty when for the coordinator).
        to: String,
        /// Size of the encoded message.
        bytes: u64,
        /// SHA-256 (hex) of the message exactly as encoded on the wire.
        sha256: String,
    },
    /// A vertical job's private set intersection ended.
    IntersectionDone {
        /// Job identifier.
        job_id: String,
        /// Ids each party brought, by identity.
        set_sizes: std::collections::BTreeMap<String, u64>,
        /// The intersection's size; `None` when below `min_overlap` (then
        /// nothing else was released).
        intersection: Option<u64>,
    },
    /// A vertical job's security assumption, written when it is submitted:
    /// what the parties agreed to rely on, so an auditor reads it beside
    /// what was computed.
    VerticalThreatModel {
        /// Job identifier.
        job_id: String,
        /// The label holder and the partners, in party order.
        parties: Vec<String>,
        /// Who deals the correlated randomness (the coordinator).
        dealer: String,
        /// The assumption, in words.
        assumption: String,
    },
    /// A batch of a vertical job's messages from one party, journaled as
    /// one record instead of one each (the joint model's openings and
    /// dealer requests: hundreds per Newton step): how many, their bytes,
    /// and SHA-256 over their wire digests in order, which the party's
    /// egress ledger recomputes from its own lines.
    VerticalBatch {
        /// Job identifier.
        job_id: String,
        /// What the batch was for (`mpc-setup`, `mpc-step-3`,
        /// `mpc-finish`).
        step: String,
        /// The sending party.
        from: String,
        /// Messages in the batch.
        messages: u64,
        /// Their encoded bytes.
        bytes: u64,
        /// SHA-256 (hex) of the concatenated raw SHA-256 digests of the
        /// messages exactly as encoded on the wire, in the order sent.
        sha256: String,
    },
    /// A job ended.
    JobFinished {
        /// Job identifier.
        job_id: String,
        /// Whether it completed.
        success: bool,
        /// Why not, if not.
        reason: String,
    },
}

/// A survivor's signature on its masked input, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedInputRecord {
    /// SHA-256 (hex) of the masked words (`secagg::signing::input_digest`).
    pub digest: String,
    /// Its signature (64 bytes, hex) over `secagg::signing::input_message`.
    pub signature: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A decoded, verified record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Position in the journal, from 0.
    pub sequence: u64,
    /// When it was written, Unix milliseconds.
    pub unix_ms: i64,
    /// SHA-256 of the record's bytes (what the next record links to).
    pub hash: [u8; 32],
    /// The entry.
    pub entry: Entry,
}

/// Why a journal does not verify; `record` is the first bad one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("record {record}: {reason}")]
pub struct JournalError {
    /// Index of the first bad record (the count of good ones before it).
    pub record: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Encodes and signs one record (with a [`crate::keys::SigningKey`] of
/// either algorithm, or an Ed25519 key directly).
pub fn encode_record(
    key: &(impl FixedSigner + ?Sized),
    sequence: u64,
    unix_ms: i64,
    prev_hash: &[u8; 32],
    entry: &Entry,
) -> Vec<u8> {
    let payload = serde_json::to_vec(entry).expect("entries serialize");
    let mut body = Vec::with_capacity(HEADER + payload.len());
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&sequence.to_le_bytes());
    body.extend_from_slice(&unix_ms.to_le_bytes());
    body.extend_from_slice(prev_hash);
    body.push(entry.kind_code());
    body.extend_from_slice(&payload);
    let mut signed = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    signed.extend_from_slice(SIGNING_CONTEXT);
    signed.extend_from_slice(&body);
    let signature = key.sign_fixed(&signed);
    let mut record = Vec::with_capacity(4 + body.len() + SIGNATURE_LEN);
    record.extend_from_slice(&(body.len() as u32).to_le_bytes());
    record.extend_from_slice(&body);
    record.extend_from_slice(&signature);
    record
}

/// SHA-256 of a record's bytes.
pub fn record_hash(record: &[u8]) -> [u8; 32] {
    Sha256::digest(record).into()
}

struct Raw<'a> {
    bytes: &'a [u8],
    body: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

/// Splits `journal` into records, failing at the first truncated one.
fn split(journal: &[u8]) -> Result<Vec<Raw<'_>>, JournalError> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < journal.len() {
        let index = records.len() as u64;
        let truncated = || JournalError {
            record: index,
            reason: "truncated".into(),
        };
        let len_bytes = journal.get(at..at + 4).ok_or_else(truncated)?;
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let end = at + 4 + len + SIGNATURE_LEN;
        let bytes = journal.get(at..end).ok_or_else(truncated)?;
        records.push(Raw {
            bytes,
            body: &bytes[4..4 + len],
            signature: bytes[4 + len..].try_into().expect("signature length"),
        });
        at = end;
    }
    Ok(records)
}

fn decode(
    index: u64,
    raw: &Raw<'_>,
    key: Option<&VerifyingKey>,
    prev: &[u8; 32],
) -> Result<Record, JournalError> {
    let bad = |reason: &str| JournalError {
        record: index,
        reason: reason.to_string(),
    };
    let body = raw.body;
    if body.len() < HEADER || &body[..4] != MAGIC {
        return Err(bad("not a journal record"));
    }
    let sequence = u64::from_le_bytes(body[4..12].try_into().expect("8 bytes"));
    let unix_ms = i64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
    if sequence != index {
        return Err(bad(&format!(
            "sequence number {sequence} where {index} belongs"
        )));
    }
    if &body[20..52] != prev {
        return Err(bad("does not link to the previous record's hash"));
    }
    let check_signature = |key: &VerifyingKey| {
        let mut signed = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
        signed.extend_from_slice(SIGNING_CONTEXT);
        signed.extend_from_slice(body);
        key.verify(&signed, &raw.signature)
            .map_err(|_| bad("signature does not verify with the coordinator's key"))
    };
    // With the key known, nothing unsigned is parsed.
    if let Some(key) = key {
        check_signature(key)?;
    }
    let entry: Entry =
        serde_json::from_slice(&body[HEADER..]).map_err(|e| bad(&format!("payload: {e}")))?;
    if entry.kind_code() != body[52] {
        return Err(bad("kind byte does not match the payload"));
    }
    let opening = matches!(entry, Entry::JournalOpened { .. });
    if opening != (index == 0) {
        return Err(bad(
            "the journal must open, and only open, with its first record",
        ));
    }
    if key.is_none() {
        // Record 0 is signed by the key of the certificate it carries.
        check_signature(&coordinator_key_unchecked(&entry).map_err(|e| bad(&e))?)?;
    }
    Ok(Record {
        sequence,
        unix_ms,
        hash: record_hash(raw.bytes),
        entry,
    })
}

/// A verified journal: the coordinator that signed it and its records.
#[derive(Debug, Clone)]
pub struct VerifiedJournal {
    /// The coordinator's identity.
    pub coordinator: String,
    /// The algorithm of its key, which signed every record.
    pub algorithm: KeyAlgorithm,
    /// Every record, in order.
    pub records: Vec<Record>,
    /// The releases whose survivor sets the survivors signed, checked.
    pub cosigned: CoSigned,
    /// Jobs queued by analysts whose signatures were checked.
    pub submissions: usize,
}

/// Decodes a whole journal: record 0 first, then `signer` picks the key
/// every record must be signed with (or refuses the opening record).
fn decode_all<T>(
    journal: &[u8],
    signer: impl FnOnce(&Record) -> Result<(T, VerifyingKey), String>,
) -> Result<(T, Vec<Record>), JournalError> {
    let raws = split(journal)?;
    let first = raws.first().ok_or(JournalError {
        record: 0,
        reason: "the journal is empty".into(),
    })?;
    let opening = decode(0, first, None, &[0u8; 32])?;
    let (found, key) = signer(&opening).map_err(|reason| JournalError { record: 0, reason })?;
    let mut records = vec![opening];
    for (i, raw) in raws.iter().enumerate().skip(1) {
        let prev = records.last().expect("record 0").hash;
        records.push(decode(i as u64, raw, Some(&key), &prev)?);
    }
    Ok((found, records))
}

/// Verifies a whole journal against the consortium CA certificate (PEM).
pub fn verify(journal: &[u8], ca_pem: &[u8]) -> Result<VerifiedJournal, JournalError> {
    let ((coordinator, algorithm), records) = decode_all(journal, |opening| {
        let (id, key) = check_coordinator(&opening.entry, opening.unix_ms, ca_pem)?;
        Ok(((id, key.algorithm()), key))
    })?;
    let cosigned = cosigned::verify(&records, ca_pem)?;
    let ca_der = certs::pem_to_der(ca_pem).map_err(|e| JournalError {
        record: 0,
        reason: format!("CA: {e}"),
    })?;
    let submissions = submitted::verify(&records, &ca_der)?;
    Ok(VerifiedJournal {
        coordinator,
        algorithm,
        records,
        cosigned,
        submissions,
    })
}

/// Reads a journal's records, checking sequence, links and signatures with
/// the key of the certificate it carries, but not that certificate's chain
/// (for display; auditors use [`verify`]).
pub fn read(journal: &[u8]) -> Result<Vec<Record>, JournalError> {
    let ((), records) = decode_all(journal, |opening| {
        Ok(((), coordinator_key_unchecked(&opening.entry)?))
    })?;
    Ok(records)
}

/// Reads the records of a journal this process writes itself, checking
/// links and signatures with `key` (used to resume appending).
pub fn read_own(journal: &[u8], key: &VerifyingKey) -> Result<Vec<Record>, JournalError> {
    let mut records: Vec<Record> = Vec::new();
    for (i, raw) in split(journal)?.iter().enumerate() {
        let prev = records.last().map_or([0u8; 32], |r| r.hash);
        records.push(decode(i as u64, raw, Some(key), &prev)?);
    }
    Ok(records)
}
