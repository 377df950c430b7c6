//! This site's local results of a job: every customer's segment, score and
//! decile, written beside a copy of the job's aggregate result. These files
//! stay on the site's own disk.

use std::path::{Path, PathBuf};

use crate::scoring::{SavedModel, ScoreError};
use crate::tasks::Site;

/// Checks, before this site takes part in `job_id`, that it will be able
/// to keep the job's results: `DIR/<job_id>/` is created and a file can be
/// written there and removed. So a job never ends with this site's result
/// copy and scores lost to an unwritable directory.
pub fn check_writable(dir: &Path, job_id: &str) -> std::io::Result<()> {
    let dir = dir.join(job_id);
    std::fs::create_dir_all(&dir)?;
    let probe = dir.join(".fedseg-write-check");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Writes `DIR/<job_id>/result.json` and, when this site took part with its
/// data, `DIR/<job_id>/scores.csv` (`customer_id, segment, segment_name,
/// score, decile`) and `DIR/<job_id>/bad_rows.json` (the rows its bad-row
/// policy skipped, per table and reason, with the first line numbers).
/// Returns the job's directory.
pub fn write_job(
    dir: &Path,
    job_id: &str,
    site: Option<&Site>,
    result_json: &str,
) -> Result<PathBuf, ScoreError> {
    let dir = dir.join(job_id);
    let failed = |e: std::io::Error| ScoreError::Write {
        path: dir.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    std::fs::write(dir.join("result.json"), result_json).map_err(failed)?;
    if let Some(site) = site {
        let skipped =
            serde_json::to_string_pretty(&site.features.skipped).expect("skipped rows serialise");
        std::fs::write(dir.join("bad_rows.json"), skipped).map_err(failed)?;
        SavedModel::from_result(result_json)?.write(site, &dir.join("scores.csv"))?;
    }
    Ok(dir)
}
