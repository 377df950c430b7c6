//! `fedseg-participant score --joint TRAINING`: the label holder's analyst
//! asks for a joint scoring job on newer data. A joint score needs every
//! party's fresh intersection and the partners' masked parts, which travel
//! through the coordinator's sessions, so no site can compute it alone:
//! this command writes the scoring job from what the site kept of the
//! training job (its `result.json`: the parties and `min_overlap`; its
//! model block), signs it with the analyst's key, submits it to the job
//! service, waits for it to end, and names the `scores.csv` the site's own
//! node wrote. Every party's policy admits or refuses it like any other
//! analyst's job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fedseg_common::analyst::{Analyst, ClientError};
use fedseg_common::result::VerticalJobResult;
use thiserror::Error;

use crate::joint_raw::SavedBlock;

/// Why a joint scoring job could not be asked for or did not end well.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JointSubmitError {
    /// The training job's local files are missing or unreadable.
    #[error("{path}: {why}")]
    Training {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The training job cannot score for this site.
    #[error("{0}")]
    NotScorable(String),
    /// The job service refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The scoring job ended without scores.
    #[error("job {job_id} ended {state}{}", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Ended {
        /// The scoring job.
        job_id: String,
        /// How it ended.
        state: String,
        /// What the coordinator said.
        reason: String,
    },
    /// The job did not end in time.
    #[error("job {0} had not ended after {1:?}")]
    Timeout(String, Duration),
}

/// The text of a joint scoring job for `training` as of `as_of`, from this
/// site's files under `output/<training>/`; only the label holder, which
/// alone receives scores, may ask.
pub fn scoring_job(
    output: &Path,
    me: &str,
    training: &str,
    as_of: &str,
    stamp: &str,
) -> Result<String, JointSubmitError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if training.is_empty() || training.starts_with('.') || !training.chars().all(plain) {
        return Err(JointSubmitError::NotScorable(format!(
            "{training:?} is not a job id"
        )));
    }
    let dir = output.join(training);
    let path = dir.join("result.json");
    let bad = |why: String| JointSubmitError::Training {
        path: path.clone(),
        why,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let result: VerticalJobResult = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let v = &result.vertical;
    if v.label_holder != me {
        return Err(JointSubmitError::NotScorable(format!(
            "{training}: the label holder is {}, not {me}; only it receives joint scores",
            v.label_holder
        )));
    }
    if v.score_with.is_some() || v.steps == 0 {
        return Err(JointSubmitError::NotScorable(format!(
            "{training} fitted no joint model"
        )));
    }
    let block = SavedBlock::read(&dir).map_err(|why| JointSubmitError::Training {
        path: dir.join("vertical_model.json"),
        why,
    })?;
    if block.intercept.is_none() {
        return Err(JointSubmitError::NotScorable(format!(
            "{training}: this site's block is not the label holder's"
        )));
    }
    if !v.converged {
        eprintln!(
            "warning: {training} stopped after {} Newton steps without converging; \
             its scores are those of its last step",
            v.steps
        );
    }
    // TOML strings, quoted and escaped by the toml crate
    let q = |text: &str| toml::Value::String(text.to_string()).to_string();
    let partners: Vec<String> = v.partners.iter().map(|p| q(p)).collect();
    let purpose = format!(
        "Joint scoring of {me}'s shared customers as of {as_of} with the model of {training}"
    );
    Ok(format!(
        "job_id = {}\npurpose = {}\nas_of = {}\n\
         # not used by a scoring job (no fit, no holdout), required of every job\n\
         seed = 1\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
         [vertical]\nlabel_holder = {}\npartners = [{}]\nmin_overlap = {}\nscore_with = {}\n",
        q(&format!("{training}-score-{stamp}")),
        q(&purpose),
        q(as_of),
        q(me),
        partners.join(", "),
        v.min_overlap,
        q(training)
    ))
}

/// Submits `job` and polls until it ends; returns the job id.
pub async fn submit_and_wait(
    analyst: &mut Analyst,
    job: String,
    wait: Duration,
) -> Result<String, JointSubmitError> {
    let job_id = analyst.submit_text(job).await?.job_id;
    let start = std::time::Instant::now();
    loop {
        let shown = analyst.show(&job_id).await?;
        match shown.state.as_str() {
            "finished" => return Ok(job_id),
            "failed" | "cancelled" => {
                let declined = shown
                    .declined
                    .iter()
                    .map(|(site, why)| format!("{site} declined: {why}"));
                let reason: Vec<String> = std::iter::once(shown.reason.clone())
                    .filter(|r| !r.is_empty())
                    .chain(declined)
                    .collect();
                return Err(JointSubmitError::Ended {
                    job_id,
                    state: shown.state,
                    reason: reason.join("; "),
                });
            }
            _ if start.elapsed() > wait => return Err(JointSubmitError::Timeout(job_id, wait)),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn training(dir: &Path, label_holder: &str, steps: u32, intercept: bool) {
        let job = dir.join("job-t");
        std::fs::create_dir_all(&job).unwrap();
        let result = serde_json::json!({
            "job_id": "job-t", "config_hash": "00", "cohort": [label_holder, "fintech-x"],
            "as_of": "2026-11-01",
            "vertical": {
                "intersection": 1200, "below_min_overlap": false, "min_overlap": 300,
                "overlap_only": false, "label_holder": label_holder,
                "partners": ["fintech-x", "fintech-y"], "set_sizes": {}, "steps": steps,
                "converged": true, "contribution": null, "relayed_bytes": {}
            }
        });
        std::fs::write(job.join("result.json"), result.to_string()).unwrap();
        let mut block = serde_json::json!({
            "features": ["R"], "mean": [1.0], "std": [2.0], "coefficients": [0.5]
        });
        if intercept {
            block["intercept"] = serde_json::json!(-1.0);
        }
        std::fs::write(job.join("vertical_model.json"), block.to_string()).unwrap();
    }

    #[test]
    fn the_label_holder_gets_a_job_with_the_training_parties_and_floor() {
        let dir = tempfile::tempdir().unwrap();
        training(dir.path(), "bank-a", 7, true);
        let text = scoring_job(dir.path(), "bank-a", "job-t", "2026-11-20", "1").unwrap();
        let job: fedseg_common::job::JobConfig = toml::from_str(&text).unwrap();
        job.check().unwrap();
        let v = job.vertical.unwrap();
        assert_eq!(v.partners, ["fintech-x", "fintech-y"]);
        assert_eq!(
            (v.min_overlap, v.score_with.as_deref()),
            (300, Some("job-t"))
        );
        assert_eq!(job.as_of, "2026-11-20");
        assert!(job.purpose.is_some());
    }

    #[test]
    fn a_partner_an_overlap_only_job_or_a_partner_block_cannot_ask() {
        let dir = tempfile::tempdir().unwrap();
        training(dir.path(), "bank-a", 7, true);
        let err = scoring_job(dir.path(), "fintech-x", "job-t", "2026-11-20", "1");
        assert!(
            matches!(err, Err(JointSubmitError::NotScorable(_))),
            "{err:?}"
        );
        training(dir.path(), "bank-a", 0, true);
        let err = scoring_job(dir.path(), "bank-a", "job-t", "2026-11-20", "1");
        assert!(
            matches!(err, Err(JointSubmitError::NotScorable(_))),
            "{err:?}"
        );
        training(dir.path(), "bank-a", 7, false);
        let err = scoring_job(dir.path(), "bank-a", "job-t", "2026-11-20", "1");
        assert!(
            matches!(err, Err(JointSubmitError::NotScorable(_))),
            "{err:?}"
        );
        let err = scoring_job(dir.path(), "bank-a", "job-none", "2026-11-20", "1");
        assert!(
            matches!(err, Err(JointSubmitError::Training { .. })),
            "{err:?}"
        );
    }
}
