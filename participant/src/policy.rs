//! This site's policy for job offers: the `[policy]` table of
//! `participant.toml`, in which a bank's data officer decides in advance
//! which analysts may run which kinds of jobs on its data, over how small a
//! cohort, for how many rounds, and whether the job must state its purpose
//! and use differential privacy. Every rule is checked on each offer before
//! any data is read; a refusal is the reason the site declines with, in its
//! own words, which the coordinator journals (`participant_declined`).
//!
//! Also who asked for a job: the analyst's signature an offer carries is
//! checked here against this site's own copy of the consortium CA, so a
//! coordinator cannot claim a job came from an analyst the policy admits.

use fedseg_common::job::{JobConfig, JobKind};
use fedseg_common::proto;
use fedseg_common::submission;
use serde::{Deserialize, Serialize};

use crate::config::PrivacyPolicy;

/// `[policy]` of `participant.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePolicy {
    /// Analysts (certificate identities) whose signed jobs this site takes;
    /// absent: any analyst of the consortium.
    pub analysts: Option<Vec<String>>,
    /// Whether jobs the coordinator's operator runs from a file (unsigned)
    /// are taken. Default: true without `analysts`, false with it.
    pub operator_jobs: Option<bool>,
    /// The kinds of job this site takes part in, as named in `job.toml`'s
    /// vocabulary (`segmentation`, `propensity`, `secure-sum`, `vertical`);
    /// absent: every kind. Checked at start-up into [`SitePolicy::kinds`].
    #[serde(rename = "kinds")]
    pub kind_names: Option<Vec<String>>,
    /// The parsed `kinds`.
    #[serde(skip)]
    pub kinds: Option<Vec<JobKind>>,
    /// The smallest cohort this site takes part in.
    pub min_cohort: Option<u32>,
    /// The most secure-sum rounds this site answers in one job.
    pub max_rounds: Option<u64>,
    /// Whether a job must state its `purpose` (default true).
    #[serde(default = "yes")]
    pub require_purpose: bool,
    /// Whether a job must declare a differential-privacy budget.
    #[serde(default)]
    pub require_dp: bool,
    /// `[policy.privacy]`: the privacy limits (the keys of the older
    /// top-level `[privacy]`, which `ParticipantConfig::load` moves here
    /// into `ParticipantConfig::privacy`).
    pub privacy: Option<PrivacyPolicy>,
}

fn yes() -> bool {
    true
}

/// Who asked for a job this site accepted, and why: logged, and kept in
/// the ledger on the line of the site's acceptance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The analyst whose signature the offer carried; none for a job the
    /// coordinator's operator ran from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyst: Option<String>,
    /// The job's stated purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl SitePolicy {
    /// Checks the keys at start-up; the key at fault and why.
    pub fn check(&mut self) -> Result<(), (String, String)> {
        let fault = |key: &str, why: String| Err((format!("policy.{key}"), why));
        if let Some(names) = &self.kind_names {
            let mut kinds = Vec::new();
            for name in names {
                let parsed = JobKind::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(name));
                match parsed {
                    Ok(kind) => kinds.push(kind),
                    Err(_) => {
                        let known: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
                        return fault(
                            "kinds",
                            format!("{name:?} is not a job kind (one of {})", known.join(", ")),
                        );
                    }
                }
            }
            self.kinds = Some(kinds);
        }
        if let Some(analysts) = &self.analysts {
            for id in analysts {
                if let Err(e) = fedseg_common::identity::validate_id(id) {
                    return fault("analysts", format!("{id:?}: {e}"));
                }
            }
        }
        if self.min_cohort == Some(0) {
            return fault("min_cohort", "must be at least 1".into());
        }
        if self.max_rounds == Some(0) {
            return fault("max_rounds", "must be at least 1".into());
        }
        Ok(())
    }

    /// Whether unsigned jobs run by the coordinator's operator are taken.
    pub fn operator_jobs(&self) -> bool {
        self.operator_jobs.unwrap_or(self.analysts.is_none())
    }
}

/// The analyst an offer names, checked: none for an unsigned offer, the
/// analyst's identity for one whose signature verifies against `ca_der`
/// at `unix_s`, and the reason for any other (always declined, policy or
/// not).
pub fn analyst_of(
    offer: &proto::JobOffer,
    ca_der: impl FnOnce() -> Result<Vec<u8>, String>,
    unix_s: i64,
) -> Result<Option<String>, String> {
    if offer.analyst_certificate.is_empty() && offer.analyst_signature.is_empty() {
        return Ok(None);
    }
    let bad = |why: String| format!("the job's analyst signature does not verify: {why}");
    let ca = ca_der().map_err(bad)?;
    submission::verify(
        &offer.analyst_certificate,
        &offer.analyst_signature,
        &offer.config,
        &ca,
        unix_s,
    )
    .map(Some)
    .map_err(|e| bad(e.to_string()))
}

/// Checks an offer of `job` by `analyst` (see [`analyst_of`]) against this
/// site's policy; the reason to decline with when a rule refuses it.
/// Without a policy every job is admitted here (the privacy limits are
/// checked by `privacy::admit`).
pub fn admit(
    policy: Option<&SitePolicy>,
    analyst: Option<&str>,
    offer: &proto::JobOffer,
    job: &JobConfig,
) -> Result<(), String> {
    let Some(policy) = policy else {
        return Ok(());
    };
    match (analyst, &policy.analysts) {
        (None, _) if !policy.operator_jobs() => {
            return Err(
                "this site takes only jobs signed by an analyst it admits; this job carries no \
                 analyst signature"
                    .into(),
            );
        }
        (Some(analyst), Some(admitted)) if !admitted.iter().any(|a| a == analyst) => {
            return Err(format!(
                "this site does not take jobs from analyst {analyst} (it admits {})",
                admitted.join(", ")
            ));
        }
        _ => {}
    }
    if let Some(kinds) = &policy.kinds
        && let Some(kind) = job.kinds().into_iter().find(|k| !kinds.contains(k))
    {
        let admitted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        return Err(format!(
            "this site does not take part in {kind} jobs (it admits {})",
            if admitted.is_empty() {
                "none".to_string()
            } else {
                admitted.join(", ")
            }
        ));
    }
    if let Some(least) = policy.min_cohort
        && offer.cohort.len() < least as usize
    {
        return Err(format!(
            "the job's cohort of {} is smaller than the {least} members this site requires",
            offer.cohort.len()
        ));
    }
    if policy.require_purpose && job.purpose.is_none() {
        return Err("the job states no purpose; this site requires one".into());
    }
    if policy.require_dp && job.privacy.is_none() {
        return Err(
            "the job asks for no differential privacy; this site requires a [privacy] budget"
                .into(),
        );
    }
    // A secure-sum job says how many rounds it takes; other jobs' rounds
    // depend on convergence and retries and are counted as they come
    // (`rounds_refused`).
    if let (Some(most), Some(sum)) = (policy.max_rounds, &job.secure_sum)
        && u64::from(sum.rounds) > most
    {
        return Err(format!(
            "the job sums its vector in {} rounds; this site answers at most {most} per job",
            sum.rounds
        ));
    }
    Ok(())
}

/// Whether this site refuses a mask request of a job it has already
/// answered `answered` secure-sum rounds of; the reason if so.
pub fn rounds_refused(policy: Option<&SitePolicy>, answered: u64) -> Option<String> {
    let most = policy?.max_rounds?;
    (answered >= most).then(|| {
        format!(
            "this site answers at most {most} secure-sum rounds per job and has answered {answered}"
        )
    })
}

#[cfg(test)]
mod tests;
