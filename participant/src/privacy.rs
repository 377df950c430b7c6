//! This site's side of differential privacy: the budget a job declares, the
//! site's own policy for accepting it, and the job's running spend, computed
//! here from each request's bounds and noise (`fedseg_common::privacy`) so
//! the site never relies on the coordinator's accounting.

use std::collections::BTreeMap;

use fedseg_common::dp;
use fedseg_common::job::PrivacySettings;
use fedseg_common::privacy::{self, Bounds};
use fedseg_common::proto;

use crate::config::PrivacyPolicy;
use crate::ledger::Ledger;

/// Slack for floating-point rounding when comparing spends with budgets.
const SLACK: f64 = 1e-9;

/// The (ε, δ) a job declares in its `[privacy]` table, and what this site
/// has spent on it so far.
#[derive(Debug, Clone, PartialEq)]
pub struct JobBudget {
    /// Declared ε.
    pub epsilon: f64,
    /// Declared δ.
    pub delta: f64,
    /// The zCDP ρ that (ε, δ) allows.
    pub rho: f64,
    /// ρ spent on this job's releases so far.
    pub spent: f64,
    /// ρ of masked inputs whose round has not asked this site to unmask.
    pending: BTreeMap<u64, f64>,
}

impl JobBudget {
    /// A masked input of `round` spending `rho` left the site.
    pub fn spend(&mut self, round: u64, rho: f64) {
        self.spent += rho;
        self.pending.insert(round, rho);
    }

    /// The site answered `round`'s unmask request: its input may be
    /// released, the spend stands.
    pub fn unmasking(&mut self, round: u64) {
        self.pending.remove(&round);
    }

    /// The coordinator aborted `round`. If this site was never asked to
    /// unmask it, its input stays masked and the spend is returned to the
    /// job's budget (retries of an aborted round would otherwise use it up;
    /// the ledger keeps the conservative total). Returns the ρ returned.
    pub fn aborted(&mut self, round: u64) -> Option<f64> {
        let rho = self.pending.remove(&round)?;
        self.spent -= rho;
        Some(rho)
    }
}

/// The budget a job declares in its `[privacy]`, if it asks for
/// differential privacy.
pub fn declared(privacy: Option<&PrivacySettings>) -> Result<Option<JobBudget>, String> {
    let Some(privacy) = privacy else {
        return Ok(None);
    };
    let (epsilon, delta) = (privacy.epsilon, privacy.delta);
    if !(epsilon > 0.0 && epsilon.is_finite() && delta > 0.0 && delta < 1.0) {
        return Err(format!(
            "the job's privacy budget ε = {epsilon}, δ = {delta} is not valid"
        ));
    }
    Ok(Some(JobBudget {
        epsilon,
        delta,
        rho: dp::rho_for(epsilon, delta),
        spent: 0.0,
        pending: BTreeMap::new(),
    }))
}

/// Whether this site's policy lets it join a job with `budget`; the reason
/// if not, for its log and the coordinator's journal.
pub fn admit(
    policy: Option<&PrivacyPolicy>,
    budget: Option<&JobBudget>,
    ledger: &Ledger,
    now_unix_ms: i64,
) -> Result<(), String> {
    if let Some(budget) = budget
        && budget.spent >= budget.rho * (1.0 - SLACK)
    {
        return Err(format!(
            "this site has already spent the job's whole privacy budget (ρ = {:.3e}) on it",
            budget.rho
        ));
    }
    let Some(policy) = policy else {
        return Ok(());
    };
    let Some(budget) = budget else {
        return Err(format!(
            "the job asks for no differential privacy; this site's policy accepts at most ε = {} per job",
            policy.max_epsilon_per_job
        ));
    };
    if budget.epsilon > policy.max_epsilon_per_job || budget.delta > policy.max_delta {
        return Err(format!(
            "the job's privacy budget ε = {}, δ = {:e} exceeds this site's policy of ε = {}, δ = {:e} per job",
            budget.epsilon, budget.delta, policy.max_epsilon_per_job, policy.max_delta
        ));
    }
    if let Some(limit) = policy.max_epsilon_per_period {
        let since = now_unix_ms - i64::from(policy.period_days) * 86_400_000;
        // What this job already spent (a resumed job) is part of its budget.
        let spent = (ledger.rho_since(since) - budget.spent).max(0.0);
        let total = dp::epsilon_for(spent + budget.rho, policy.max_delta);
        if total > limit {
            return Err(format!(
                "with this job, the privacy spent over the last {} days would reach ε = {total:.3} (δ = {:e}), above this site's limit of ε = {limit}",
                policy.period_days, policy.max_delta
            ));
        }
    }
    Ok(())
}

/// Checks one request against the job's budget before anything is
/// computed: the bounds to clip and withhold by, and the ρ it costs, if it
/// carries noise. A job that declared a budget gets nothing without noise,
/// and nothing beyond its budget.
pub fn check_release(
    budget: Option<&JobBudget>,
    computation: &proto::Computation,
    length: usize,
    threshold: u32,
) -> Result<Option<(Bounds, f64)>, String> {
    if computation.noise.is_none() {
        return match budget {
            Some(_) => {
                Err("the job declared a privacy budget but the request carries no noise".into())
            }
            None => Ok(None),
        };
    }
    let (bounds, rho) =
        privacy::checked_rho(computation, length, threshold).map_err(|e| e.to_string())?;
    if let Some(budget) = budget
        && budget.spent + rho > budget.rho * (1.0 + SLACK)
    {
        return Err(format!(
            "this release (ρ = {rho:.3e}) would take the job past its declared budget (ρ = {:.3e} spent of {:.3e})",
            budget.spent, budget.rho
        ));
    }
    Ok(Some((bounds, rho)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(epsilon: f64, delta: f64) -> PrivacySettings {
        PrivacySettings {
            epsilon,
            delta,
            clip: [1095.0, 100.0, 20_000.0, 1825.0, 50.0],
        }
    }
    use fedseg_common::computation::census::LENGTH;

    fn policy() -> PrivacyPolicy {
        PrivacyPolicy {
            max_epsilon_per_job: 2.0,
            max_delta: 1e-6,
            max_epsilon_per_period: Some(2.5),
            period_days: 30,
        }
    }

    #[test]
    fn a_site_admits_only_jobs_within_its_policy() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        let job = |epsilon: f64, delta: f64| declared(Some(&settings(epsilon, delta))).unwrap();
        let small = job(1.5, 1e-7);
        assert!((dp::epsilon_for(small.as_ref().unwrap().rho, 1e-7) - 1.5).abs() < 1e-6);
        let now = 100 * 86_400_000;
        assert_eq!(admit(Some(&policy()), small.as_ref(), &ledger, now), Ok(()));
        assert_eq!(admit(None, None, &ledger, now), Ok(()));
        // No DP at all, too large an ε, too large a δ.
        assert!(admit(Some(&policy()), None, &ledger, now).is_err());
        let large = job(4.0, 1e-7);
        let reason = admit(Some(&policy()), large.as_ref(), &ledger, now).unwrap_err();
        assert!(
            reason.contains("ε = 4") && reason.contains("ε = 2"),
            "{reason}"
        );
        let loose = job(1.0, 1e-3);
        assert!(admit(Some(&policy()), loose.as_ref(), &ledger, now).is_err());
        // The period: what this site already spent counts. ρ composes, so
        // two earlier jobs at ε = 2 and this one at 1.5 come to about ε = 3
        // at δ = 1e-6, not 5.5; still above the period's 2.5.
        let spent = dp::rho_for(2.0, 1e-6);
        for round in 0..2 {
            ledger
                .record("earlier", Some(round), "masked-input", b"x", Some(spent))
                .unwrap();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let reason = admit(Some(&policy()), small.as_ref(), &ledger, now).unwrap_err();
        assert!(reason.contains("last 30 days"), "{reason}");
        // Thirty-one days later the earlier spend has left the period.
        let later = now + 31 * 86_400_000;
        assert_eq!(
            admit(Some(&policy()), small.as_ref(), &ledger, later),
            Ok(())
        );
        assert!(declared(Some(&settings(-1.0, 1e-6))).is_err());
        // A job whose budget this site has spent already is declined, with
        // or without a policy.
        let spent = small.clone().map(|b| JobBudget { spent: b.rho, ..b });
        let reason = admit(None, spent.as_ref(), &ledger, later).unwrap_err();
        assert!(reason.contains("already spent"), "{reason}");
        assert_eq!(declared(None), Ok(None));
    }

    #[test]
    fn releases_are_checked_against_the_job_budget() {
        let census = || proto::Computation {
            encoding: None,
            noise: None,
            kind: Some(proto::computation::Kind::Census(proto::Census::default())),
        };
        let mut budget = declared(Some(&settings(1.0, 1e-6))).unwrap().unwrap();
        // No noise under a budget: refused; no noise, no budget: fine.
        assert!(check_release(Some(&budget), &census(), LENGTH, 2).is_err());
        assert_eq!(check_release(None, &census(), LENGTH, 2), Ok(None));
        let mut noisy = census();
        let bounds = privacy::customer_bounds(&noisy, LENGTH).unwrap();
        bounds.apply(&mut noisy, budget.rho / 2.0, 2).unwrap();
        // An aborted round that never asked to unmask gives its spend back;
        // a round this site unmasked keeps it.
        let (_, rho) = check_release(Some(&budget), &noisy, LENGTH, 2)
            .unwrap()
            .unwrap();
        budget.spend(0, rho);
        assert_eq!(budget.aborted(0), Some(rho));
        assert_eq!(budget.spent, 0.0);
        for round in 1..3 {
            let (_, rho) = check_release(Some(&budget), &noisy, LENGTH, 2)
                .unwrap()
                .unwrap();
            budget.spend(round, rho);
            budget.unmasking(round);
        }
        assert_eq!(budget.aborted(2), None);
        // A third half of the budget is too much.
        let reason = check_release(Some(&budget), &noisy, LENGTH, 2).unwrap_err();
        assert!(reason.contains("past its declared budget"), "{reason}");
        // Counted with fewer noisy participants than the coordinator
        // assumed, the same request costs more than it says.
        let fresh = declared(Some(&settings(1.0, 1e-6))).unwrap().unwrap();
        let (_, at_one) = check_release(Some(&fresh), &noisy, LENGTH, 1)
            .unwrap()
            .unwrap();
        assert!(at_one > fresh.rho / 2.0 * 1.9);
    }
}
