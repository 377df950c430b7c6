//! This site's part in a job's signatures: its certificate's key signs its
//! key advertisements and the survivor sets it confirms, and the consortium
//! CA and the offer's cohort are what it checks the other members against.

use std::sync::Arc;

use fedseg_common::certs;
use fedseg_common::keys::SigningKey;
use fedseg_common::secagg::signing::{CohortTrust, Credential, Membership};

use super::JobState;
use crate::config::ParticipantConfig;

/// The job's membership, read from the TLS files the first time it is
/// needed; the reason, naming the file, when it cannot be.
pub(super) fn of_job(
    config: &ParticipantConfig,
    job: &mut JobState,
) -> Result<Arc<Membership>, String> {
    if let Some(membership) = &job.membership {
        return Ok(membership.clone());
    }
    let tls = &config.tls;
    let key_pem = String::from_utf8(read(&tls.key)?)
        .map_err(|_| format!("{}: not PEM text", tls.key.display()))?;
    let key =
        SigningKey::from_pkcs8_pem(&key_pem).map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let credential = Credential::new(key, read_der(&tls.cert)?)
        .map_err(|e| format!("{} and {}: {e}", tls.key.display(), tls.cert.display()))?;
    let membership = Arc::new(Membership {
        credential,
        trust: CohortTrust::new(read_der(&tls.ca)?, job.cohort.clone()),
    });
    job.membership = Some(membership.clone());
    Ok(membership)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The first certificate of a PEM file, DER; the reason, naming the file,
/// when it cannot be read.
pub(super) fn read_der(path: &std::path::Path) -> Result<Vec<u8>, String> {
    certs::pem_to_der(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}
