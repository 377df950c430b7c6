//! A campaign agreed in a job (`[campaign]` of `job.toml`): which model's
//! scores a site's contact list is drawn from, which segments and top
//! deciles it takes, and the seed and fraction of its control group. The
//! same table drives `fedseg-participant campaign plan` (each site's list,
//! drawn locally) and the campaign evaluation job (the measured uplift), so
//! every site draws its control group the same auditable way and the
//! evaluation can check that the list it measures is the one agreed.

use serde::{Deserialize, Serialize};

use crate::job::Fault;

/// Most segments a model has (the segmentation's `k_max` bound).
pub const MAX_SEGMENTS: usize = 50;

/// Score deciles: 1 (lowest tenth of the model's holdout scores) to 10.
pub const DECILES: usize = 10;

/// `[campaign]` of `job.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    /// The campaign's name: the directory of each site's plan under its
    /// output directory (`campaigns/<name>/`).
    pub name: String,
    /// The propensity job whose scores the lists were drawn from; each
    /// site reads its own copy of that job's result.
    pub model: String,
    /// The model's segment names, in segment order (its k).
    pub segments: Vec<String>,
    /// Segments the list is drawn from, by name; empty: every segment.
    #[serde(default)]
    pub target: Vec<String>,
    /// Customers in the top this-many score deciles are chosen (1 to 10).
    pub top_deciles: u8,
    /// Share of the chosen customers held back as the control group.
    pub control: f64,
    /// Seed of the control group's draw.
    pub seed: u64,
    /// Two-sided confidence level of the reported intervals.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_confidence() -> f64 {
    0.95
}

/// Whether `name` can name a directory: letters, digits, `-`, `_` and
/// `.`, not starting with a dot.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl CampaignSettings {
    /// Checks every value's range; the key at fault and why.
    pub fn check(&self) -> Result<(), Fault> {
        let bad = |key: &str, why: &str| Err((format!("campaign.{key}"), why.to_string()));
        if !is_plain_name(&self.name) {
            return bad(
                "name",
                "must be 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'",
            );
        }
        if !is_plain_name(&self.model) {
            return bad("model", "must be a job id (letters, digits, '-', '_', '.')");
        }
        if self.segments.is_empty() || self.segments.len() > MAX_SEGMENTS {
            return bad("segments", "name the model's 1 to 50 segments in order");
        }
        if let Some(t) = self.target.iter().find(|t| !self.segments.contains(t)) {
            return Err((
                "campaign.target".into(),
                format!("{t:?} is not one of the model's segments"),
            ));
        }
        if !(1..=DECILES as u8).contains(&self.top_deciles) {
            return bad("top_deciles", "must be 1 to 10");
        }
        if !(self.control > 0.0 && self.control < 1.0) {
            return bad("control", "must lie in (0, 1)");
        }
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return bad("confidence", "must lie in (0.5, 1)");
        }
        Ok(())
    }

    /// Whether a customer of segment `segment` (index) and score decile
    /// `decile` (1 to 10) is chosen for the campaign.
    pub fn chooses(&self, segment: u32, decile: u8) -> bool {
        let targeted = self.target.is_empty()
            || self
                .segments
                .get(segment as usize)
                .is_some_and(|name| self.target.contains(name));
        targeted && decile as usize > DECILES - self.top_deciles as usize
    }

    /// Whether a chosen customer is held back in the control group: the
    /// design's holdout hash (SHA-256 of the seed and the id) under this
    /// campaign's own seed and fraction, so anyone holding the list can
    /// recompute every assignment.
    pub fn in_control(&self, customer_id: &str) -> bool {
        crate::propensity::is_holdout(self.seed, customer_id, self.control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CampaignSettings {
        CampaignSettings {
            name: "spring".into(),
            model: "job-1".into(),
            segments: vec!["high-value".into(), "general".into()],
            target: vec!["general".into()],
            top_deciles: 3,
            control: 0.1,
            seed: 5,
            confidence: 0.95,
        }
    }

    #[test]
    fn the_choice_takes_the_target_segments_top_deciles() {
        let s = settings();
        assert!(s.chooses(1, 10) && s.chooses(1, 8));
        assert!(!s.chooses(1, 7) && !s.chooses(0, 10) && !s.chooses(9, 10));
        let all = CampaignSettings {
            target: vec![],
            ..settings()
        };
        assert!(all.chooses(0, 9));
    }

    #[test]
    fn the_control_share_follows_the_fraction_and_the_seed() {
        let s = settings();
        let ids: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
        let control = ids.iter().filter(|id| s.in_control(id)).count();
        assert!((1_800..2_200).contains(&control), "{control}");
        let other = CampaignSettings {
            seed: 6,
            ..s.clone()
        };
        assert!(
            ids.iter()
                .any(|id| s.in_control(id) != other.in_control(id))
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (edit, key) in [
            (
                Box::new(|s: &mut CampaignSettings| s.name = "../x".into())
                    as Box<dyn Fn(&mut CampaignSettings)>,
                "campaign.name",
            ),
            (
                Box::new(|s| s.target = vec!["nope".into()]),
                "campaign.target",
            ),
            (Box::new(|s| s.top_deciles = 0), "campaign.top_deciles"),
            (Box::new(|s| s.control = 1.0), "campaign.control"),
            (Box::new(|s| s.segments.clear()), "campaign.segments"),
        ] {
            let mut s = settings();
            edit(&mut s);
            assert_eq!(s.check().unwrap_err().0, key);
        }
        assert_eq!(settings().check(), Ok(()));
    }
}
