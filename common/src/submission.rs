//! An analyst's signature on a job it submits: made by `job submit` with
//! the analyst's certificate key over the exact `job.toml` text, checked by
//! the coordinator at submission, journaled with the job, and carried in
//! every offer so that each site checks for itself who asked for the job
//! (a coordinator cannot claim a job came from an analyst a site's policy
//! admits).

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::certs::{self, CertError};
use crate::identity::{Role, member_of};
use crate::keys::{KeyError, SIGNATURE_LEN};
use crate::secagg::signing::Credential;

/// Prefixed to what an analyst signs, so the signature can be taken for
/// nothing else a consortium key signs.
pub const CONTEXT: &[u8] = b"fedseg/job-submission/v1\0";

/// Why a submission's signature does not hold.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmissionError {
    /// The certificate is not a consortium analyst's.
    #[error("the submitter's certificate: {0}")]
    Certificate(#[from] CertError),
    /// The signature is not 64 bytes.
    #[error("the submission signature is {0} bytes, not 64")]
    Length(usize),
    /// The signature does not verify over the job's text.
    #[error("the submission signature does not match the job's text: {0}")]
    Signature(#[from] KeyError),
}

/// The bytes an analyst signs for `config` (the job file's exact text).
pub fn message(config: &str) -> Vec<u8> {
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(&Sha256::digest(config.as_bytes()));
    message
}

/// The analyst's signature on `config`.
pub fn sign(credential: &Credential, config: &str) -> [u8; SIGNATURE_LEN] {
    credential.sign(&message(config))
}

/// Checks that `certificate` (DER) is an analyst's, issued by the CA
/// (`ca_der`) and valid at `unix_s`, and that `signature` is its signature
/// of `config`; the analyst's identity.
pub fn verify(
    certificate: &[u8],
    signature: &[u8],
    config: &str,
    ca_der: &[u8],
    unix_s: i64,
) -> Result<String, SubmissionError> {
    let member = member_of(certificate).map_err(CertError::from)?;
    let (member, key) =
        certs::verify_member(certificate, ca_der, (&member.id, Role::Analyst), unix_s)?;
    let signature: &[u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| SubmissionError::Length(signature.len()))?;
    key.verify(&message(config), signature)?;
    Ok(member.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::secagg::consortium::Consortium;

    #[test]
    fn a_signed_job_verifies_and_any_change_or_other_role_is_refused() {
        for algorithm in KeyAlgorithm::ALL {
            let consortium = Consortium::for_cohort(vec!["bank-a".into()], algorithm);
            let analyst = consortium.issue("analyst-a", "analyst").credential;
            let job = "purpose = \"retention\"\nseed = 1\n";
            let signature = sign(&analyst, job);
            let now = certs::unix_now();
            let ca = &consortium.ca;
            assert_eq!(
                verify(analyst.certificate(), &signature, job, ca, now),
                Ok("analyst-a".to_string())
            );
            let changed = job.replace("seed = 1", "seed = 2");
            assert!(matches!(
                verify(analyst.certificate(), &signature, &changed, ca, now),
                Err(SubmissionError::Signature(_))
            ));
            assert_eq!(
                verify(analyst.certificate(), &signature[..63], job, ca, now),
                Err(SubmissionError::Length(63))
            );
            let bank = &consortium.members[0].credential;
            assert!(matches!(
                verify(bank.certificate(), &sign(bank, job), job, ca, now),
                Err(SubmissionError::Certificate(CertError::WrongMember { .. }))
            ));
            let outsider = Consortium::for_cohort(vec!["x".into()], algorithm)
                .issue("analyst-a", "analyst")
                .credential;
            assert!(matches!(
                verify(outsider.certificate(), &sign(&outsider, job), job, ca, now),
                Err(SubmissionError::Certificate(CertError::NotIssuedByCa))
            ));
        }
    }
}
