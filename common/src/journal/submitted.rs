//! The analysts' signatures in the journal: every job queued on the job
//! service carries the submitting analyst's certificate and signature over
//! the job's exact text. `journal verify` checks each against the CA, so an
//! auditor sees who asked for every job without trusting the coordinator.

use sha2::{Digest, Sha256};

use super::{Entry, JournalError, Record};
use crate::submission;

/// Checks every `job_queued` record of `records`: its configuration hash,
/// and its analyst's certificate and signature against the CA (DER) at the
/// time it was journaled. The count of submissions checked.
pub fn verify(records: &[Record], ca_der: &[u8]) -> Result<usize, JournalError> {
    let mut checked = 0;
    for record in records {
        let Entry::JobQueued {
            analyst,
            config_hash,
            config,
            certificate,
            signature,
            ..
        } = &record.entry
        else {
            continue;
        };
        let bad = |reason: String| JournalError {
            record: record.sequence,
            reason,
        };
        if hex::encode(Sha256::digest(config.as_bytes())) != *config_hash {
            return Err(bad("job_queued: config_hash is not the config's".into()));
        }
        let decode = |what: &str, text: &str| {
            hex::decode(text).map_err(|_| bad(format!("job_queued: the {what} is not hex")))
        };
        let signed_by = submission::verify(
            &decode("certificate", certificate)?,
            &decode("signature", signature)?,
            config,
            ca_der,
            record.unix_ms / 1000,
        )
        .map_err(|e| bad(format!("job_queued: {e}")))?;
        if signed_by != *analyst {
            return Err(bad(format!(
                "job_queued names analyst {analyst} but {signed_by} signed it"
            )));
        }
        checked += 1;
    }
    Ok(checked)
}
