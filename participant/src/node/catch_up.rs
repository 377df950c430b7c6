//! A job this site took part in whose end it learns only on a later
//! session (it was not connected when the job ended, or its node restarted
//! since): the result copy and its customers' scores are written then, from
//! the result the coordinator kept for it and this site's own data.

use fedseg_common::result::JobResult;
use tracing::{info, warn};

use super::blocking;
use crate::config::ParticipantConfig;
use crate::ledger::Ledger;
use crate::output;
use crate::rfmlt;
use crate::tasks::Site;

/// Writes this site's local results of `job_id` from `result_json`, when
/// the ledger shows the site took part and nothing was written yet.
pub(super) fn catch_up(
    config: &ParticipantConfig,
    ledger: &Ledger,
    job_id: &str,
    result_json: &str,
) {
    if !ledger.contributed_to(job_id) || config.output.join(job_id).join("result.json").exists() {
        return;
    }
    let site = match &config.data {
        None => None,
        Some(data) => {
            let as_of = serde_json::from_str::<JobResult>(result_json)
                .ok()
                .and_then(|r| rfmlt::parse_date(&r.as_of));
            let Some(as_of) = as_of else {
                warn!(job = %job_id, "the job's result names no as_of date; not caught up");
                return;
            };
            match blocking(|| data.features(as_of)) {
                Ok(features) => Some(Site::from_features(features, as_of)),
                Err(error) => {
                    warn!(job = %job_id, %error, "this site's data cannot be read again; not caught up");
                    return;
                }
            }
        }
    };
    match output::write_job(&config.output, job_id, site.as_ref(), result_json) {
        Ok(dir) => info!(
            job = %job_id,
            dir = %dir.display(),
            "caught up: wrote this site's local results of a job it took part in"
        ),
        Err(error) => warn!(job = %job_id, %error, "could not write the local results"),
    }
}
