//! `demo --months N`: the whole marketing loop on the demo consortium. N
//! monthly segmentation jobs of one series (as of the first of each of the
//! last N months, so customers' recency and activity change from month to
//! month), the last with the propensity model; a campaign drawn from its
//! scores at every bank (`campaign plan`, 30% held back); simulated
//! outcomes with a known effect (the campaign lifts conversion by 10 points
//! in the first targeted segment and does nothing in the others); and the
//! campaign evaluation job. The binary runs the processes; this module
//! writes the files.

use std::path::{Path, PathBuf};

use fedseg_common::campaign::CampaignSettings;
use fedseg_common::result::JobResult;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The demo's series name.
pub const SERIES: &str = "demo-monthly";
/// The demo campaign's name.
pub const CAMPAIGN: &str = "demo-campaign";
/// The simulated lift in the first targeted segment.
pub const SIMULATED_UPLIFT: f64 = 0.10;

/// Why a step of the loop could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoopError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn failed(path: &Path) -> impl Fn(String) -> LoopError + '_ {
    move |reason| LoopError::File {
        path: path.to_path_buf(),
        reason,
    }
}

/// The reference date of month `m` of `months` (the last is the demo's
/// usual `as_of`, the first of the month after the synthetic history).
pub fn as_of(m: usize, months: usize) -> String {
    let last = fedseg_synth::HISTORY_END
        .next_day()
        .expect("a date after the history");
    let mut date = last;
    for _ in m + 1..months {
        date = date
            .replace_month(date.month().previous())
            .expect("the first of a month");
        if date.month() == time::Month::December {
            date = date.replace_year(date.year() - 1).expect("a year");
        }
    }
    date.to_string()
}

/// `job.toml` of month `m` of `months`.
pub fn month_job(m: usize, months: usize) -> String {
    let last = m + 1 == months;
    format!(
        "# Month {} of {months} of the demo series (see the README, \"The marketing loop\").\n\
         series = \"{SERIES}\"\nseed = 42\nas_of = \"{}\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
         [segmentation]\nmin_segment_size = 20\nk_min = 4\nk_max = 4\nrestarts = 4\n\n\
         [propensity]\nenabled = {last}\n",
        m + 1,
        as_of(m, months)
    )
}

/// The campaign on `model`'s scores: its two largest segments, top five
/// deciles, 30% held back.
pub fn campaign(model: &JobResult) -> CampaignSettings {
    let seg = &model.segmentation.segments;
    let mut largest: Vec<&fedseg_common::result::Segment> = seg.iter().collect();
    largest.sort_by(|a, b| b.size.total_cmp(&a.size));
    CampaignSettings {
        name: CAMPAIGN.into(),
        model: model.job_id.clone(),
        target: largest.iter().take(2).map(|s| s.name.clone()).collect(),
        segments: seg.iter().map(|s| s.name.clone()).collect(),
        top_deciles: 5,
        control: 0.3,
        seed: 7,
        confidence: 0.95,
    }
}

/// The campaign evaluation's `job.toml`.
pub fn campaign_job(settings: &CampaignSettings, as_of: &str) -> String {
    let list = |names: &[String]| {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    format!(
        "# The demo campaign's evaluation: measured uplift per segment.\n\
         seed = 42\nas_of = \"{as_of}\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
         [segmentation]\nmin_segment_size = 20\n\n[campaign]\nname = {:?}\nmodel = {:?}\n\
         segments = {}\ntarget = {}\ntop_deciles = {}\ncontrol = {:?}\nseed = {}\n",
        settings.name,
        settings.model,
        list(&settings.segments),
        list(&settings.target),
        settings.top_deciles,
        settings.control,
        settings.seed
    )
}

/// A reproducible uniform number per customer.
fn uniform(id: &str) -> f64 {
    let digest = Sha256::digest(format!("demo-outcome/{id}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64)
}

/// Writes a site's simulated `outcomes.csv` from its contact list (10%
/// base conversion, plus [`SIMULATED_UPLIFT`] for the treated of the
/// first targeted segment) and names it in its `participant.toml`.
pub fn simulate_outcomes(site: &Path, settings: &CampaignSettings) -> Result<(), LoopError> {
    let contacts = site
        .join("out/campaigns")
        .join(&settings.name)
        .join("contacts.csv");
    let text = std::fs::read_to_string(&contacts).map_err(|e| failed(&contacts)(e.to_string()))?;
    let lifted = settings
        .target
        .first()
        .and_then(|t| settings.segments.iter().position(|s| s == t));
    let mut out = String::from("customer_id,contacted,converted_after\n");
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(id), Some(segment), Some(group)) = (fields.first(), fields.get(1), fields.last())
        else {
            continue;
        };
        let treated = *group == "treatment";
        let lift = segment.parse::<usize>().ok() == lifted && treated;
        let rate = 0.10 + if lift { SIMULATED_UPLIFT } else { 0.0 };
        out.push_str(&format!("{id},{treated},{}\n", uniform(id) < rate));
    }
    let path = site.join("outcomes.csv");
    std::fs::write(&path, out).map_err(|e| failed(&path)(e.to_string()))?;
    let config = site.join("participant.toml");
    let toml = std::fs::read_to_string(&config).map_err(|e| failed(&config)(e.to_string()))?;
    if !toml.contains("outcomes = ") {
        let toml = toml.replacen("[data]\n", "[data]\noutcomes = \"outcomes.csv\"\n", 1);
        std::fs::write(&config, toml).map_err(|e| failed(&config)(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_step_back_from_the_demos_as_of() {
        assert_eq!(as_of(2, 3), "2026-11-01");
        assert_eq!(as_of(0, 3), "2026-09-01");
        assert_eq!(as_of(0, 12), "2025-12-01");
        let job = fedseg_common::job::JobConfig::parse(&month_job(0, 3)).unwrap();
        assert_eq!(job.check(), Ok(()));
        assert_eq!(job.series.as_deref(), Some(SERIES));
        assert!(!job.propensity.enabled);
        let settings = CampaignSettings {
            name: CAMPAIGN.into(),
            model: "job-1".into(),
            segments: vec!["high-value".into(), "general \"2\"".into()],
            target: vec!["high-value".into()],
            top_deciles: 3,
            control: 0.2,
            seed: 7,
            confidence: 0.95,
        };
        let job =
            fedseg_common::job::JobConfig::parse(&campaign_job(&settings, "2026-11-01")).unwrap();
        assert_eq!(job.campaign, Some(settings));
    }
}
