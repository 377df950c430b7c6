//! The journal's first record: the coordinator certificate it carries,
//! read for display or checked against the consortium CA.

use super::Entry;
use crate::certs;
use crate::identity::Role;
use crate::keys::VerifyingKey;

fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    certs::pem_to_der(pem.as_bytes()).map_err(|e| e.to_string())
}

pub(super) fn coordinator_key_unchecked(entry: &Entry) -> Result<VerifyingKey, String> {
    let Entry::JournalOpened { certificate, .. } = entry else {
        return Err("no certificate".into());
    };
    certs::key_unchecked(&pem_to_der(certificate)?).map_err(|e| format!("the coordinator key: {e}"))
}

/// Checks that the certificate in the opening entry was issued by the CA
/// (PEM `ca_pem`), names a coordinator, and was valid when the journal
/// opened; returns the coordinator's identity and key.
pub(super) fn check_coordinator(
    entry: &Entry,
    opened_ms: i64,
    ca_pem: &[u8],
) -> Result<(String, VerifyingKey), String> {
    let Entry::JournalOpened {
        coordinator,
        certificate,
    } = entry
    else {
        return Err("no certificate".into());
    };
    let ca_der = certs::pem_to_der(ca_pem).map_err(|e| format!("CA: {e}"))?;
    let der = pem_to_der(certificate)?;
    let (member, key) = certs::verify_member(
        &der,
        &ca_der,
        (coordinator, Role::Coordinator),
        opened_ms / 1000,
    )
    .map_err(|e| match e {
        certs::CertError::NotIssuedByCa => {
            "the coordinator certificate was not issued by this CA".to_string()
        }
        certs::CertError::NotValidAt(_) => {
            "the coordinator certificate was not valid when the journal opened".to_string()
        }
        other => format!("the coordinator certificate: {other}"),
    })?;
    Ok((member.id, key))
}
