//! The banks' own signatures in the coordinator's journal: for every
//! release of a job whose cohort has a quorum, the survivor set it was
//! released over was signed by at least the quorum of distinct survivors,
//! each under a certificate that chains to the consortium CA, names that
//! member, and was valid when the signatures were journaled. The
//! coordinator's key cannot make these signatures, so a compliance officer
//! at one bank can check who took part in every release without trusting
//! the coordinator. In a job whose cohort was fixed with `signed_inputs`,
//! every survivor also signed the digest of the masked input the release
//! sums, and each of those signatures must verify too.

use std::collections::{BTreeMap, HashMap};

use super::{Entry, JournalError, Record, SignedInputRecord};
use crate::certs;
use crate::secagg::signing::{self, CohortTrust, Signature};

/// What the co-signature check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoSigned {
    /// Releases whose survivor set carried the quorum of signatures.
    pub releases: usize,
    /// Survivor signatures verified.
    pub signatures: usize,
    /// Signatures of survivors on their own masked input verified.
    pub inputs: usize,
}

#[derive(Default)]
struct JobSigners {
    cohort: Vec<String>,
    quorum: u32,
    signed_inputs: bool,
    certificates: HashMap<String, Vec<u8>>,
    /// Survivor sets confirmed, by round.
    confirmed: HashMap<u64, Vec<String>>,
}

/// Checks every co-signed release of `records` against the CA (PEM).
pub fn verify(records: &[Record], ca_pem: &[u8]) -> Result<CoSigned, JournalError> {
    let ca = certs::pem_to_der(ca_pem).map_err(|e| JournalError {
        record: 0,
        reason: format!("CA: {e}"),
    })?;
    let mut jobs: HashMap<String, JobSigners> = HashMap::new();
    let mut found = CoSigned::default();
    for record in records {
        let bad = |reason: String| JournalError {
            record: record.sequence,
            reason,
        };
        match &record.entry {
            Entry::CohortFixed {
                job_id,
                cohort,
                quorum,
                signed_inputs,
                ..
            } => {
                let job = jobs.entry(job_id.clone()).or_default();
                job.cohort = cohort.clone();
                job.quorum = *quorum;
                job.signed_inputs = *signed_inputs;
            }
            Entry::MemberCertificates {
                job_id,
                certificates,
                ..
            } => {
                let job = jobs.entry(job_id.clone()).or_default();
                for (id, der) in certificates {
                    let der = hex::decode(der).map_err(|_| bad(format!("{id}: not hex")))?;
                    job.certificates.insert(id.clone(), der);
                }
            }
            Entry::SurvivorsConfirmed {
                job_id,
                round,
                survivors,
                signatures,
                inputs,
            } => {
                let job = jobs.entry(job_id.clone()).or_default();
                let trust =
                    CohortTrust::new(ca.clone(), job.cohort.clone()).at(record.unix_ms / 1000);
                let valid =
                    check_confirmation(job, &trust, (job_id, *round), survivors, signatures)
                        .map_err(bad)?;
                found.signatures += valid;
                found.inputs +=
                    check_inputs(job, &trust, (job_id, *round), survivors, inputs).map_err(bad)?;
                job.confirmed.insert(*round, survivors.clone());
            }
            Entry::AggregateReleased {
                job_id,
                round,
                survivors,
                ..
            } => {
                let Some(job) = jobs.get(job_id).filter(|j| j.quorum > 0) else {
                    continue;
                };
                if job.confirmed.get(round) != Some(survivors) {
                    return Err(bad(format!(
                        "round {round} of job {job_id} was released over a survivor set its \
                         survivors did not sign"
                    )));
                }
                found.releases += 1;
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The number of valid signatures of distinct survivors on `survivors`,
/// if it reaches the job's quorum and none is invalid.
fn check_confirmation(
    job: &JobSigners,
    trust: &CohortTrust,
    (job_id, round): (&str, u64),
    survivors: &[String],
    signatures: &BTreeMap<String, String>,
) -> Result<usize, String> {
    let index = |id: &str| -> Result<u32, String> {
        job.cohort
            .iter()
            .position(|c| c == id)
            .map(|i| i as u32)
            .ok_or_else(|| format!("{id} is not in the cohort of job {job_id}"))
    };
    let mut members = survivors
        .iter()
        .map(|id| index(id))
        .collect::<Result<Vec<u32>, _>>()?;
    members.sort_unstable();
    let message = signing::survivors_message(job_id, round, &members);
    for (signer, signature) in signatures {
        if !survivors.contains(signer) {
            return Err(format!(
                "round {round}: {signer} signed but is not a survivor"
            ));
        }
        let key = signer_key(job, trust, round, signer)?;
        let signature: Signature = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("round {round}: the signature of {signer} is not 64 bytes"))?;
        key.verify(&message, &signature).map_err(|_| {
            format!("round {round}: the signature of {signer} on the survivor set does not verify")
        })?;
    }
    if signatures.len() < job.quorum as usize {
        return Err(format!(
            "round {round}: {} signatures on the survivor set, the quorum is {}",
            signatures.len(),
            job.quorum
        ));
    }
    Ok(signatures.len())
}

/// The member's key from the certificate the journal holds for it,
/// checked against the CA and the cohort.
fn signer_key(
    job: &JobSigners,
    trust: &CohortTrust,
    round: u64,
    signer: &str,
) -> Result<crate::keys::VerifyingKey, String> {
    let index = job
        .cohort
        .iter()
        .position(|c| c == signer)
        .ok_or_else(|| format!("round {round}: {signer} is not in the cohort"))?;
    let der = job
        .certificates
        .get(signer)
        .ok_or_else(|| format!("round {round}: no certificate of {signer} in the journal"))?;
    trust
        .member_key(index as u32, der)
        .map_err(|e| format!("round {round}: the certificate of {signer}: {e}"))
}

/// The number of survivors' signatures on their own masked inputs, once
/// each survivor of a job with signed inputs has one that verifies (and
/// nobody else has one).
fn check_inputs(
    job: &JobSigners,
    trust: &CohortTrust,
    (job_id, round): (&str, u64),
    survivors: &[String],
    inputs: &BTreeMap<String, SignedInputRecord>,
) -> Result<usize, String> {
    if !job.signed_inputs {
        return Ok(0);
    }
    if let Some(stranger) = inputs.keys().find(|id| !survivors.contains(id)) {
        return Err(format!(
            "round {round}: {stranger} has a signed input but is not a survivor"
        ));
    }
    for survivor in survivors {
        let signed = inputs.get(survivor).ok_or_else(|| {
            format!("round {round}: the masked input of {survivor} carries no signature of its own")
        })?;
        let digest: [u8; 32] = hex::decode(&signed.digest)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!("round {round}: the input digest of {survivor} is not 32 bytes")
            })?;
        let signature: Signature = hex::decode(&signed.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!("round {round}: the input signature of {survivor} is not 64 bytes")
            })?;
        signer_key(job, trust, round, survivor)?
            .verify(&signing::input_message(job_id, round, &digest), &signature)
            .map_err(|_| {
                format!(
                    "round {round}: the signature of {survivor} on its masked input does not verify"
                )
            })?;
    }
    Ok(survivors.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::secagg::consortium::Consortium;

    const JOB: &str = "job-1";

    fn pem(der: &[u8]) -> String {
        pkcs8::der::pem::encode_string("CERTIFICATE", pkcs8::der::pem::LineEnding::LF, der).unwrap()
    }

    /// A co-signed release of round 3 by all three members of `pki`.
    fn journal(pki: &Consortium, quorum: u32) -> Vec<Record> {
        let ids = |v: &[usize]| v.iter().map(|&i| pki.cohort[i].clone()).collect::<Vec<_>>();
        let message = signing::survivors_message(JOB, 3, &[0, 1, 2]);
        let entries = vec![
            Entry::CohortFixed {
                job_id: JOB.into(),
                cohort: pki.cohort.clone(),
                threshold: 2,
                neighbours: 2,
                quorum,
                signed_inputs: true,
            },
            Entry::MemberCertificates {
                job_id: JOB.into(),
                epoch: 0,
                certificates: (0..3)
                    .map(|i| {
                        let der = pki.members[i].credential.certificate();
                        (pki.cohort[i].clone(), hex::encode(der))
                    })
                    .collect(),
            },
            Entry::SurvivorsConfirmed {
                job_id: JOB.into(),
                round: 3,
                survivors: ids(&[0, 1, 2]),
                signatures: (0..3)
                    .map(|i| {
                        let signature = pki.members[i].credential.sign(&message);
                        (pki.cohort[i].clone(), hex::encode(signature))
                    })
                    .collect(),
                inputs: (0..3)
                    .map(|i| {
                        let digest = signing::input_digest(&[i as u64, 7]);
                        let signed = SignedInputRecord {
                            digest: hex::encode(digest),
                            signature: hex::encode(
                                pki.members[i]
                                    .credential
                                    .sign(&signing::input_message(JOB, 3, &digest)),
                            ),
                        };
                        (pki.cohort[i].clone(), signed)
                    })
                    .collect(),
            },
            Entry::AggregateReleased {
                job_id: JOB.into(),
                round: 3,
                survivors: ids(&[0, 1, 2]),
                values: vec![1.0],
            },
        ];
        entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Record {
                sequence: i as u64 + 1,
                unix_ms: certs::unix_now() * 1000,
                hash: [0; 32],
                entry,
            })
            .collect()
    }

    fn signatures(record: &mut Record) -> &mut BTreeMap<String, String> {
        match &mut record.entry {
            Entry::SurvivorsConfirmed { signatures, .. } => signatures,
            _ => panic!("not a confirmation"),
        }
    }

    #[test]
    fn co_signed_releases_verify_and_tampering_is_located() {
        let pki = Consortium::generate(3, KeyAlgorithm::EcdsaP256);
        let ca = pem(&pki.ca);
        let honest = journal(&pki, 2);
        assert_eq!(
            verify(&honest, ca.as_bytes()),
            Ok(CoSigned {
                releases: 1,
                signatures: 3,
                inputs: 3
            })
        );
        // One signature altered.
        let mut records = honest.clone();
        let signature = signatures(&mut records[2]).get_mut("p1").unwrap();
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(..1, flipped);
        let error = verify(&records, ca.as_bytes()).unwrap_err();
        assert_eq!(error.record, 3, "{error}");
        assert!(error.reason.contains("p1"), "{error}");
        // Fewer signatures than the quorum.
        let mut records = journal(&pki, 3);
        signatures(&mut records[2]).remove("p2");
        let error = verify(&records, ca.as_bytes()).unwrap_err();
        assert!(error.reason.contains("quorum is 3"), "{error}");
        // A release over a set nobody signed.
        let mut records = honest.clone();
        if let Entry::AggregateReleased { survivors, .. } = &mut records[3].entry {
            survivors.pop();
        }
        assert_eq!(verify(&records, ca.as_bytes()).unwrap_err().record, 4);
        // Another CA's certificates.
        let rogue = Consortium::generate(3, KeyAlgorithm::EcdsaP256);
        let error = verify(&honest, pem(&rogue.ca).as_bytes()).unwrap_err();
        assert!(error.reason.contains("not issued"), "{error}");
    }

    fn inputs(record: &mut Record) -> &mut BTreeMap<String, SignedInputRecord> {
        match &mut record.entry {
            Entry::SurvivorsConfirmed { inputs, .. } => inputs,
            _ => panic!("not a confirmation"),
        }
    }

    #[test]
    fn every_survivors_signature_on_its_own_input_is_checked() {
        let pki = Consortium::generate(3, KeyAlgorithm::Ed25519);
        let ca = pem(&pki.ca);
        // Another digest than the one p2 signed.
        let mut records = journal(&pki, 2);
        inputs(&mut records[2]).get_mut("p2").unwrap().digest = hex::encode([1; 32]);
        let error = verify(&records, ca.as_bytes()).unwrap_err();
        assert_eq!(error.record, 3, "{error}");
        assert!(error.reason.contains("p2 on its masked input"), "{error}");
        // A survivor whose input carries no signature.
        let mut records = journal(&pki, 2);
        inputs(&mut records[2]).remove("p0");
        let error = verify(&records, ca.as_bytes()).unwrap_err();
        assert!(error.reason.contains("p0 carries no signature"), "{error}");
        // p1's signature presented as p0's.
        let mut records = journal(&pki, 2);
        let p1 = inputs(&mut records[2])["p1"].clone();
        inputs(&mut records[2]).insert("p0".into(), p1);
        assert!(verify(&records, ca.as_bytes()).is_err());
        // A job fixed without signed inputs needs none.
        let mut records = journal(&pki, 2);
        inputs(&mut records[2]).clear();
        if let Entry::CohortFixed { signed_inputs, .. } = &mut records[0].entry {
            *signed_inputs = false;
        }
        assert_eq!(verify(&records, ca.as_bytes()).unwrap().inputs, 0);
    }

    #[test]
    fn jobs_from_before_signed_survivor_sets_need_none() {
        let pki = Consortium::generate(3, KeyAlgorithm::Ed25519);
        let mut records = journal(&pki, 0);
        records.remove(2);
        assert_eq!(
            verify(&records, pem(&pki.ca).as_bytes()),
            Ok(CoSigned::default())
        );
    }
}
