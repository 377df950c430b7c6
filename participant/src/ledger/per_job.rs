//! What a site sent per job and analyst, from its ledger: for `ledger
//! show`, so a bank's compliance team sees at a glance who had which jobs
//! run on its data, why, and what left for each.

use super::LedgerEntry;

/// One job's share of the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSent {
    /// The job.
    pub job_id: String,
    /// Who asked for it: the analyst, `(operator)` for a job the
    /// coordinator's operator ran from a file, `(not recorded)` for a job
    /// accepted before the ledger kept it.
    pub analyst: String,
    /// Its stated purpose, if any.
    pub purpose: Option<String>,
    /// Messages sent for it.
    pub messages: u64,
    /// Bytes sent for it.
    pub bytes: u64,
    /// zCDP ρ spent on it.
    pub rho: f64,
}

/// Every job of the ledger, in the order it first appears, with what was
/// sent for it; session lines (no job) are left out.
pub fn per_job(entries: &[LedgerEntry]) -> Vec<JobSent> {
    let mut jobs: Vec<JobSent> = Vec::new();
    for e in entries.iter().filter(|e| !e.job_id.is_empty()) {
        let at = match jobs.iter().position(|j| j.job_id == e.job_id) {
            Some(at) => at,
            None => {
                jobs.push(JobSent {
                    job_id: e.job_id.clone(),
                    analyst: "(not recorded)".into(),
                    purpose: None,
                    messages: 0,
                    bytes: 0,
                    rho: 0.0,
                });
                jobs.len() - 1
            }
        };
        let job = &mut jobs[at];
        if let Some(origin) = &e.accepted {
            job.analyst = origin
                .analyst
                .clone()
                .unwrap_or_else(|| "(operator)".into());
            job.purpose = origin.purpose.clone();
        }
        // The end record is received, not sent.
        if e.kind != super::END_RECORD_KIND {
            job.messages += 1;
            job.bytes += e.bytes;
        }
        job.rho += e.rho.unwrap_or(0.0);
    }
    jobs
}

/// The jobs grouped by analyst, analysts in the order they first appear.
pub fn by_analyst(jobs: &[JobSent]) -> Vec<(&str, Vec<&JobSent>)> {
    let mut groups: Vec<(&str, Vec<&JobSent>)> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|(a, _)| *a == job.analyst) {
            Some((_, list)) => list.push(job),
            None => groups.push((&job.analyst, vec![job])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, read};
    use crate::policy::Origin;

    #[test]
    fn what_was_sent_is_grouped_per_job_and_analyst() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.log");
        let mut ledger = Ledger::open(&path).unwrap();
        // A line written before origins were kept, as an older site's.
        ledger
            .record("old", None, "job-answer", b"a", None)
            .unwrap();
        let origin = |analyst: Option<&str>| Origin {
            analyst: analyst.map(str::to_string),
            purpose: Some("retention campaign".into()),
        };
        ledger.record("", None, "hello", b"hello", None).unwrap();
        for (job, analyst) in [
            ("j1", Some("analyst-a")),
            ("j2", None),
            ("j3", Some("analyst-a")),
        ] {
            ledger
                .record_acceptance(job, b"ok", origin(analyst))
                .unwrap();
            ledger
                .record(job, Some(0), "masked-input", &[0; 100], Some(0.5))
                .unwrap();
        }
        drop(ledger);
        // The new field reads back and the chain holds.
        let entries = read(&path).unwrap();
        let jobs = per_job(&entries);
        assert_eq!(jobs.len(), 4);
        assert_eq!(jobs[0].analyst, "(not recorded)");
        assert_eq!(jobs[1].analyst, "analyst-a");
        assert_eq!(jobs[1].purpose.as_deref(), Some("retention campaign"));
        assert_eq!(
            (jobs[1].messages, jobs[1].bytes, jobs[1].rho),
            (2, 102, 0.5)
        );
        assert_eq!(jobs[2].analyst, "(operator)");
        let groups = by_analyst(&jobs);
        let names: Vec<&str> = groups.iter().map(|(a, _)| *a).collect();
        assert_eq!(names, ["(not recorded)", "analyst-a", "(operator)"]);
        let of_a: Vec<&str> = groups[1].1.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(of_a, ["j1", "j3"]);
    }
}
