//! A campaign at this site, before and after: [`plan`] draws the site's
//! contact list from a finished propensity job's scores (the segments and
//! top deciles the job's `[campaign]` names) and holds back a seeded
//! control group; [`observe`] reads that list back with the site's outcomes
//! table for a campaign evaluation job, checking first that the list is the
//! one the job agreed. The list, its assignment and the outcomes never
//! leave the site: only the evaluation's secure sum of counts does.
//!
//! Files, under the site's output directory: `campaigns/<name>/contacts.csv`
//! (`customer_id, segment, segment_name, score, decile, group` with group
//! `treatment` or `control`) and `campaigns/<name>/plan.json` (the agreed
//! settings, the counts and the list's SHA-256).

use std::path::{Path, PathBuf};

use fedseg_common::campaign::{CampaignSettings, DECILES};
use fedseg_common::computation::uplift;
use fedseg_common::result::JobResult;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::ParticipantConfig;
use crate::rfmlt::{DataError, SkippedRows};
use crate::scoring::{SavedModel, ScoreError};
use crate::tasks::Site;

/// Why a campaign's list cannot be drawn or read back.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// A file cannot be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model cannot be used.
    #[error("the model {path}: {source}")]
    Model {
        /// Its result.json.
        path: PathBuf,
        /// Why.
        source: ScoreError,
    },
    /// A table cannot be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The plan or the job disagree, or the list was changed.
    #[error("{0}")]
    Mismatch(String),
}

/// What `plan.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The agreed settings the list was drawn with.
    pub campaign: CampaignSettings,
    /// The model's reference date, at which the customers were scored.
    pub as_of: String,
    /// Customers chosen.
    pub chosen: u64,
    /// Of them in the treatment group (to contact).
    pub treatment: u64,
    /// Of them held back.
    pub control: u64,
    /// SHA-256 of `contacts.csv`, hex.
    pub contacts_sha256: String,
}

/// `DIR/campaigns/<name>/` of the site's output directory.
pub fn dir(config: &ParticipantConfig, name: &str) -> PathBuf {
    config.output.join("campaigns").join(name)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> CampaignError {
    CampaignError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Draws this site's list for `settings` from its copy of the model job's
/// result (`<output>/<model>/result.json`) and writes `contacts.csv` and
/// `plan.json`. Local only.
pub fn plan(
    config: &ParticipantConfig,
    settings: &CampaignSettings,
) -> Result<Plan, CampaignError> {
    settings
        .check()
        .map_err(|(key, why)| CampaignError::Mismatch(format!("{key}: {why}")))?;
    let data = config.data.as_ref().ok_or_else(|| {
        CampaignError::Mismatch("participant.toml has no [data] tables to score".into())
    })?;
    let result_path = config.output.join(&settings.model).join("result.json");
    let text = std::fs::read_to_string(&result_path).map_err(|e| file_error(&result_path, e))?;
    let model = SavedModel::from_result(&text).map_err(|source| CampaignError::Model {
        path: result_path.clone(),
        source,
    })?;
    let result: JobResult = serde_json::from_str(&text).map_err(|e| file_error(&result_path, e))?;
    let names: Vec<&str> = result
        .segmentation
        .segments
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    if names != settings.segments {
        return Err(CampaignError::Mismatch(format!(
            "the campaign names segments {:?}, the model {} has {names:?}",
            settings.segments, settings.model
        )));
    }
    let as_of = crate::rfmlt::parse_date(&result.as_of)
        .ok_or_else(|| CampaignError::Mismatch(format!("the model's as_of {:?}", result.as_of)))?;
    let site = Site::from_features(data.features(as_of)?, as_of);
    let scored = model.score(&site);
    if scored.iter().any(|s| s.decile == 0) {
        return Err(CampaignError::Mismatch(format!(
            "the model {} has no score deciles (a propensity job with a holdout is needed)",
            settings.model
        )));
    }
    let mut text = String::from("customer_id,segment,segment_name,score,decile,group\n");
    let (mut treatment, mut control) = (0, 0);
    for (customer, s) in site.features.customers.iter().zip(&scored) {
        if !settings.chooses(s.segment, s.decile) {
            continue;
        }
        let held = settings.in_control(&customer.id);
        if held {
            control += 1;
        } else {
            treatment += 1;
        }
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            csv_field(&customer.id),
            s.segment,
            csv_field(model.segment_name(s.segment)),
            s.score,
            s.decile,
            if held { "control" } else { "treatment" }
        ));
    }
    let dir = dir(config, &settings.name);
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let contacts = dir.join("contacts.csv");
    std::fs::write(&contacts, &text).map_err(|e| file_error(&contacts, e))?;
    let plan = Plan {
        campaign: settings.clone(),
        as_of: result.as_of.clone(),
        chosen: treatment + control,
        treatment,
        control,
        contacts_sha256: hex::encode(Sha256::digest(text.as_bytes())),
    };
    let path = dir.join("plan.json");
    let json = serde_json::to_string_pretty(&plan).expect("a plan serialises") + "\n";
    std::fs::write(&path, json).map_err(|e| file_error(&path, e))?;
    Ok(plan)
}

/// A CSV field, quoted when it needs to be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A campaign's list at this site, joined with its outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The campaign's name.
    pub name: String,
    /// The model's segments.
    pub segments: usize,
    /// One row per customer on the list.
    pub rows: Vec<uplift::Row>,
    /// Outcome rows of customers not on the list (ignored).
    pub unlisted_outcomes: u64,
    /// Bad outcome rows skipped under the site's policy.
    pub skipped: SkippedRows,
}

impl Observed {
    /// The evaluation's vector (layout in `uplift`).
    pub fn vector(&self) -> Vec<f64> {
        let mut out = vec![0.0; uplift::length(self.segments)];
        for row in &self.rows {
            uplift::add(&mut out, self.segments, row);
        }
        out
    }
}

/// Reads the plan of the job's `[campaign]` back, checks that it was drawn
/// with exactly the job's settings and that the list is unchanged (its
/// hash, and every customer's group recomputed from the seed), and joins it
/// with the site's outcomes table.
pub fn observe(
    config: &ParticipantConfig,
    settings: &CampaignSettings,
) -> Result<Observed, CampaignError> {
    let dir = dir(config, &settings.name);
    let plan_path = dir.join("plan.json");
    let text = std::fs::read_to_string(&plan_path).map_err(|e| file_error(&plan_path, e))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| file_error(&plan_path, e))?;
    let agreed = CampaignSettings {
        confidence: plan.campaign.confidence,
        ..settings.clone()
    };
    if plan.campaign != agreed {
        return Err(CampaignError::Mismatch(format!(
            "{}: the list was drawn with other settings than the job's [campaign]",
            plan_path.display()
        )));
    }
    let contacts = dir.join("contacts.csv");
    let bytes = std::fs::read(&contacts).map_err(|e| file_error(&contacts, e))?;
    if hex::encode(Sha256::digest(&bytes)) != plan.contacts_sha256 {
        return Err(CampaignError::Mismatch(format!(
            "{}: the list changed since it was drawn (its SHA-256 differs from plan.json's)",
            contacts.display()
        )));
    }
    let listed = read_contacts(&contacts, settings)?;
    let data = config.data.as_ref().ok_or_else(|| CampaignError::File {
        path: "participant.toml".into(),
        reason: "has no [data] table".into(),
    })?;
    let crate::outcomes::Outcomes {
        by_id: outcome,
        skipped,
    } = data.outcomes_table()?;
    let mut on_list = 0u64;
    let rows = listed
        .into_iter()
        .map(|(id, mut row)| {
            row.outcome = outcome.get(&id).copied();
            on_list += u64::from(row.outcome.is_some());
            row
        })
        .collect();
    Ok(Observed {
        name: settings.name.clone(),
        segments: settings.segments.len(),
        rows,
        unlisted_outcomes: outcome.len() as u64 - on_list,
        skipped,
    })
}

/// Reads `contacts.csv`, every row checked against the settings: a segment
/// and decile the campaign chooses, and the group the seed gives.
fn read_contacts(
    path: &Path,
    settings: &CampaignSettings,
) -> Result<Vec<(String, uplift::Row)>, CampaignError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| file_error(path, e))?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let bad = |why: String| {
            CampaignError::Mismatch(format!("{}: line {line}: {why}", path.display()))
        };
        let record = record.map_err(|e| bad(e.to_string()))?;
        let (Some(id), Some(segment), Some(decile), Some(group)) =
            (record.get(0), record.get(1), record.get(4), record.get(5))
        else {
            return Err(bad("fewer than six columns".into()));
        };
        let segment: u32 = segment
            .parse()
            .map_err(|_| bad(format!("segment {segment:?}")))?;
        let decile: u8 = decile
            .parse()
            .ok()
            .filter(|d| (1..=DECILES as u8).contains(d))
            .ok_or_else(|| bad(format!("decile {decile:?}")))?;
        if !settings.chooses(segment, decile) {
            return Err(bad(format!(
                "segment {segment}, decile {decile} is not chosen by the campaign"
            )));
        }
        let control = settings.in_control(id);
        if group != if control { "control" } else { "treatment" } {
            return Err(bad(format!(
                "customer {id:?} is in group {group:?}, the seed puts it elsewhere"
            )));
        }
        rows.push((
            id.to_string(),
            uplift::Row {
                segment: segment as usize,
                decile,
                control,
                outcome: None,
            },
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The campaign as the job's `[campaign]` table states it.
    fn settings() -> CampaignSettings {
        let job = fedseg_common::job::JobConfig::parse(
            "seed = 1\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\
             [campaign]\nname = \"spring\"\nmodel = \"job-1\"\nsegments = [\"a\", \"b\"]\n\
             top_deciles = 2\ncontrol = 0.5\nseed = 3\n",
        )
        .unwrap();
        job.campaign.unwrap()
    }

    /// A site with a drawn list of 40 customers, `outcomes` as its
    /// outcomes table and `data` as extra `[data]` keys.
    fn site(dir: &Path, outcomes: &str, data: &str) -> ParticipantConfig {
        let s = settings();
        let mut list = String::from("customer_id,segment,segment_name,score,decile,group\n");
        for i in 0..40 {
            let id = format!("c{i}");
            let group = if s.in_control(&id) {
                "control"
            } else {
                "treatment"
            };
            list.push_str(&format!("{id},{},x,0.5,{},{group}\n", i % 2, 9 + i % 2));
        }
        write_plan(dir, &list);
        std::fs::write(dir.join("outcomes.csv"), outcomes).unwrap();
        let mut config: ParticipantConfig = toml::from_str(&format!(
            "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\n\
             coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
             [data]\noutcomes = {:?}\n{data}",
            dir.join("outcomes.csv")
        ))
        .unwrap();
        config.output = dir.to_path_buf();
        config
    }

    fn write_plan(dir: &Path, list: &str) {
        let plan_dir = dir.join("campaigns/spring");
        std::fs::create_dir_all(&plan_dir).unwrap();
        std::fs::write(plan_dir.join("contacts.csv"), list).unwrap();
        let plan = Plan {
            campaign: settings(),
            as_of: "2026-11-01".into(),
            chosen: 40,
            treatment: 0,
            control: 0,
            contacts_sha256: hex::encode(Sha256::digest(list.as_bytes())),
        };
        std::fs::write(
            plan_dir.join("plan.json"),
            serde_json::to_string(&plan).unwrap(),
        )
        .unwrap();
    }

    fn outcomes(bad: &str) -> String {
        let mut text = String::from("customer_id,contacted,converted_after\n");
        for i in 0..39 {
            text.push_str(&format!("c{i},yes,{}\n", i % 3 == 0));
        }
        text.push_str(bad);
        text.push_str("stranger,1,1\n");
        text
    }

    #[test]
    fn the_list_joins_its_outcomes_and_sums_by_cell() {
        let dir = tempfile::tempdir().unwrap();
        let config = site(dir.path(), &outcomes(""), "");
        let observed = observe(&config, &settings()).unwrap();
        assert_eq!(observed.rows.len(), 40);
        assert_eq!(observed.unlisted_outcomes, 1);
        let counts = uplift::decode(&observed.vector(), 2).unwrap();
        assert_eq!(counts.missing_outcomes, 1.0, "c39 has no outcome row");
        let total = counts.total();
        assert_eq!(total.treated.customers + total.control.customers, 39.0);
        assert_eq!(total.treated.converted + total.control.converted, 13.0);
        assert_eq!(
            counts.segment(1).treated.customers + counts.segment(1).control.customers,
            19.0
        );
    }

    #[test]
    fn a_bad_outcome_row_stops_the_site_unless_its_policy_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = site(dir.path(), &outcomes("c39,maybe,no\n"), "");
        let error = observe(&config, &settings()).unwrap_err();
        assert!(
            matches!(
                &error,
                CampaignError::Data(DataError::BadValue { line: 41, .. })
            ),
            "{error}"
        );
        let config = site(
            dir.path(),
            &outcomes("c39,maybe,no\n"),
            "on_bad_row = \"skip\"\nmax_bad_rows = 5\n",
        );
        let observed = observe(&config, &settings()).unwrap();
        assert_eq!(observed.skipped.total(), 1);
        assert_eq!(
            uplift::decode(&observed.vector(), 2)
                .unwrap()
                .missing_outcomes,
            1.0
        );
    }

    #[test]
    fn a_changed_list_or_other_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = site(dir.path(), &outcomes(""), "");
        let other = CampaignSettings {
            seed: 4,
            ..settings()
        };
        assert!(matches!(
            observe(&config, &other),
            Err(CampaignError::Mismatch(_))
        ));
        // A list edited after the draw, even with its hash redone: the
        // seed gives c0 another group.
        let path = dir.path().join("campaigns/spring/contacts.csv");
        let list = std::fs::read_to_string(&path).unwrap();
        let flipped = if list.contains("c0,0,x,0.5,9,control") {
            list.replace("c0,0,x,0.5,9,control", "c0,0,x,0.5,9,treatment")
        } else {
            list.replace("c0,0,x,0.5,9,treatment", "c0,0,x,0.5,9,control")
        };
        std::fs::write(&path, &flipped).unwrap();
        let error = observe(&config, &settings()).unwrap_err().to_string();
        assert!(error.contains("SHA-256"), "{error}");
        write_plan(dir.path(), &flipped);
        let error = observe(&config, &settings()).unwrap_err().to_string();
        assert!(error.contains("the seed puts it elsewhere"), "{error}");
    }
}
