//! `result.json` of a segmentation job (design.md, "Results contract"):
//! what every step released, the propensity model, the privacy the job
//! spent and every round without its timings (those are in `rounds.json`),
//! so the same job on the same data gives the same file.

use fedseg_common::dp;
use std::collections::BTreeMap;

pub use fedseg_common::result::{Declined, DroppedOut, JobResult, Privacy, RoundSummary};

use crate::engine::RoundRecord;
use crate::release::ReleasePlan;

impl From<&RoundRecord> for RoundSummary {
    fn from(r: &RoundRecord) -> Self {
        Self {
            round: r.round,
            purpose: r.purpose.clone(),
            outcome: r.outcome.to_string(),
            survivors: r.survivors.clone(),
            dropped: r.dropped.clone(),
            rho: r.rho,
            count_noise_sd: r.count_noise_sd,
        }
    }
}

/// The results contract's privacy block: what the releases spent (`rho`)
/// under `plan`.
pub fn privacy_spent(plan: Option<&ReleasePlan>, rho: f64) -> Privacy {
    match plan {
        None => Privacy {
            dp: false,
            epsilon: None,
            delta: None,
            budget_epsilon: None,
            rho: None,
            planned_releases: None,
            clip: None,
        },
        Some(plan) => Privacy {
            dp: true,
            epsilon: Some(dp::epsilon_for(rho, plan.settings.delta)),
            delta: Some(plan.settings.delta),
            budget_epsilon: Some(plan.settings.epsilon),
            rho: Some(rho),
            planned_releases: Some(plan.planned),
            clip: Some(plan.settings.clip),
        },
    }
}

/// Who took part in a job: the members whose input is in some released
/// sum, those that declined (with their reasons), and those missing from
/// released sums after accepting (from which round, and whether they were
/// back by the end).
pub fn participation(
    cohort: &[String],
    declined: &BTreeMap<String, String>,
    rounds: &[RoundRecord],
) -> (Vec<String>, Vec<Declined>, Vec<DroppedOut>) {
    let released: Vec<&RoundRecord> = rounds.iter().filter(|r| r.sum.is_some()).collect();
    let covers = |r: &RoundRecord, id: &String| r.survivors.contains(id);
    let took_part = cohort
        .iter()
        .filter(|id| released.iter().any(|r| covers(r, id)))
        .cloned()
        .collect();
    let refused = declined
        .iter()
        .map(|(participant, reason)| Declined {
            participant: participant.clone(),
            reason: reason.clone(),
        })
        .collect();
    let dropped = cohort
        .iter()
        .filter(|id| !declined.contains_key(*id))
        .filter_map(|id| {
            let missed: Vec<&&RoundRecord> = released.iter().filter(|r| !covers(r, id)).collect();
            let first = missed.first()?;
            Some(DroppedOut {
                participant: id.clone(),
                round: first.round,
                purpose: first.purpose.clone(),
                rounds_missed: missed.len(),
                back_by_end: released.last().is_some_and(|r| covers(r, id)),
            })
        })
        .collect();
    (took_part, refused, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(round: u64, purpose: &str, survivors: &[&str]) -> RoundRecord {
        let mut r = RoundRecord::new(round, "released");
        r.purpose = purpose.to_string();
        r.survivors = survivors.iter().map(|s| s.to_string()).collect();
        r.sum = Some(vec![0.0]);
        r
    }

    #[test]
    fn participation_names_who_declined_and_who_dropped_out_from_when() {
        let cohort: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let declined = BTreeMap::from([("c".to_string(), "bad row".to_string())]);
        let rounds = [
            released(0, "census", &["a", "b", "d"]),
            RoundRecord::new(1, "aborted"),
            released(2, "kmeans", &["a", "d"]),
            released(3, "newton", &["a", "d"]),
        ];
        let (took_part, refused, dropped) = participation(&cohort, &declined, &rounds);
        assert_eq!(took_part, ["a", "b", "d"]);
        assert_eq!(
            refused,
            [Declined {
                participant: "c".into(),
                reason: "bad row".into()
            }]
        );
        assert_eq!(
            dropped,
            [DroppedOut {
                participant: "b".into(),
                round: 2,
                purpose: "kmeans".into(),
                rounds_missed: 2,
                back_by_end: false,
            }]
        );
    }
}
