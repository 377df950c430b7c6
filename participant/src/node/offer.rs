//! A job offer: whether this site takes part (paused or not, its policy,
//! the analyst's signature, its privacy limits, the job's settings, its own
//! data) and, when it does, the job's state on this
//! session. An offer repeated while the coordinator forms the cohort keeps
//! the state it already has.

use std::sync::Arc;

use fedseg_common::job::JobConfig;
use fedseg_common::proto::{self, participant_message};
use fedseg_common::secagg::JobParams;
use tracing::{info, warn};

use super::{EpochState, JobState, Reply, blocking};
use crate::config::ParticipantConfig;
use crate::ledger::Ledger;
use crate::policy::{self, Origin};
use crate::rfmlt::DataError;
use crate::tasks::Site;
use crate::{output, pause, privacy};

/// Answers `offer` of job `job_id`: accepts (setting `job`) or declines
/// with the reason.
pub(super) fn accept_offer(
    config: &ParticipantConfig,
    job: &mut Option<JobState>,
    job_id: &str,
    offer: proto::JobOffer,
    ledger: &Ledger,
) -> Reply {
    let decline = |reason: String| {
        warn!(job = %job_id, %reason, "declining the job");
        Reply::Send(participant_message::Body::JobAnswer(proto::JobAnswer {
            accept: false,
            reason,
        }))
    };
    if offer.cohort.get(offer.index as usize) != Some(&config.id) {
        return decline("the offer does not place this site at its index".into());
    }
    // The same offer again on this session (the coordinator can send it
    // twice while it forms the cohort): the answer stands, and the job's
    // state, keys included, is kept.
    if job
        .as_ref()
        .is_some_and(|j| j.id == job_id && j.index == offer.index)
    {
        return Reply::Send(participant_message::Body::JobAnswer(proto::JobAnswer {
            accept: true,
            reason: String::new(),
        }));
    }
    // A paused site takes no new job; one it has already sent data for (a
    // job resumed after a coordinator restart) it finishes.
    if pause::is_paused(&config.ledger) && !ledger.contributed_to(job_id) {
        return decline(pause::PAUSED.into());
    }
    let Ok(seed) = <[u8; 32]>::try_from(offer.graph_seed.as_slice()) else {
        return decline("the graph seed is not 32 bytes".into());
    };
    let job_config = match JobConfig::parse(&offer.config) {
        Ok(parsed) => match parsed.check() {
            Ok(()) => parsed,
            Err((key, why)) => return decline(format!("the job's {key} is not valid: {why}")),
        },
        Err(_) => return decline("the job config does not parse".into()),
    };
    // The site's policy first: a job this site will not take part in
    // does not get its data read.
    let ca = || super::membership::read_der(&config.tls.ca);
    let analyst = match policy::analyst_of(&offer, ca, fedseg_common::certs::unix_now()) {
        Ok(analyst) => analyst,
        Err(reason) => return decline(reason),
    };
    if let Err(reason) = policy::admit(
        config.policy.as_ref(),
        analyst.as_deref(),
        &offer,
        &job_config,
    ) {
        return decline(reason);
    }
    let budget = match privacy::declared(job_config.privacy.as_ref()) {
        // A job resumed after a coordinator restart has spent before: the
        // ledger remembers what this session does not.
        Ok(budget) => budget.map(|mut b| {
            b.spent = ledger.rho_of_job(job_id);
            b
        }),
        Err(reason) => return decline(reason),
    };
    let now_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if let Err(reason) = privacy::admit(
        config.privacy.as_ref(),
        budget.as_ref(),
        ledger,
        now_unix_ms,
    ) {
        return decline(reason);
    }
    let mut vertical = None;
    let site = match &config.data {
        _ if job_config.vertical.is_some() => {
            match super::vertical::prepare(config, &job_config, job_id, &offer) {
                Ok(prepared) => vertical = Some(prepared),
                Err(reason) => return decline(reason),
            }
            None
        }
        None => None,
        Some(data) => {
            let Some(as_of) = job_config.as_of_date() else {
                return decline("the job config has no valid as_of date".into());
            };
            match blocking(|| data.features(as_of).map(|f| Site::from_features(f, as_of))) {
                Ok(site) => {
                    info!(
                        customers = site.features.customers.len(),
                        excluded_no_consent = site.features.excluded_no_consent,
                        skipped_rows = site.features.skipped.total(),
                        %as_of,
                        "features computed"
                    );
                    site.features.skipped.log();
                    Some(site)
                }
                Err(error) => return decline(unusable_data(job_id, &error)),
            }
        }
    };
    let site = match (site, &job_config.campaign) {
        (Some(mut site), Some(campaign)) => {
            match blocking(|| crate::campaign::observe(config, campaign)) {
                Ok(observed) => {
                    info!(campaign = %campaign.name, listed = observed.rows.len(), unlisted_outcomes = observed.unlisted_outcomes, "campaign list and outcomes read");
                    observed.skipped.log();
                    site.campaign = Some(observed);
                    Some(site)
                }
                Err(error) => return decline(unusable_campaign(job_id, &error)),
            }
        }
        (site, _) => site,
    };
    // Where this site keeps the job's results must be writable now, not
    // only when the job ends.
    if let Err(error) = output::check_writable(&config.output, job_id) {
        warn!(job = %job_id, output = %config.output.display(), %error, "this site cannot write its results");
        return decline(
            "this site cannot write its results to its output directory; see the site's log".into(),
        );
    }
    let n = offer.cohort.len() as u32;
    // The job's own bound, not the coordinator's word: a quorum or threshold
    // below what the job's collusion bound needs is refused.
    match job_config.cohort.protocol(n) {
        Ok(least) if offer.quorum < least.quorum || offer.threshold <= least.collusion => {
            return decline(format!(
                "the offer's threshold {} and quorum {} do not hold against {} colluders \
                 (the job needs a threshold above {} and a quorum of at least {})",
                offer.threshold, offer.quorum, least.collusion, least.collusion, least.quorum
            ));
        }
        Ok(_) => {}
        Err((key, why)) => return decline(format!("the job's {key} is not valid: {why}")),
    }
    match JobParams::new(job_id, n, offer.threshold, offer.neighbours, &seed)
        .and_then(|p| p.with_quorum(offer.quorum))
    {
        Ok(params) => {
            let origin = Origin {
                analyst,
                purpose: job_config.purpose.clone(),
            };
            info!(
                job = %job_id,
                index = offer.index,
                cohort = offer.cohort.len(),
                quorum = params.quorum,
                analyst = origin.analyst.as_deref().unwrap_or("(operator)"),
                purpose = origin.purpose.as_deref().unwrap_or("(none stated)"),
                "joined the job"
            );
            *job = Some(JobState {
                id: job_id.to_string(),
                params: Arc::new(params),
                index: offer.index,
                cohort: offer.cohort.clone(),
                membership: None,
                epoch: EpochState::Idle,
                site,
                budget,
                vertical,
                rounds_answered: ledger.masked_inputs_of(job_id),
            });
            Reply::Accepted(origin)
        }
        Err(error) => decline(error.to_string()),
    }
}

/// Logs why this site's data cannot be used and returns the reason said to
/// the coordinator: the detail names local files and values, so it stays in
/// this site's log.
pub(super) fn unusable_data(job_id: &str, error: &DataError) -> String {
    warn!(job = %job_id, %error, "this site's data cannot be used");
    match error {
        DataError::TooManyBadRows { .. } => {
            "this site's data has more bad rows than its max_bad_rows allows; see the site's log"
        }
        _ => "this site's data failed validation; see the site's log",
    }
    .to_string()
}

/// Logs why this site's campaign list or outcomes cannot be used and
/// returns the reason said to the coordinator (without ids or values).
fn unusable_campaign(job_id: &str, error: &crate::campaign::CampaignError) -> String {
    use crate::campaign::CampaignError;
    warn!(job = %job_id, %error, "this site's campaign cannot be evaluated");
    match error {
        CampaignError::Data(data) => return unusable_data(job_id, data),
        CampaignError::Mismatch(_) => {
            "this site's campaign list does not match the job's [campaign] or was changed; see the site's log"
        }
        _ => "this site has no usable plan for the job's campaign; see the site's log",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> proto::JobOffer {
        proto::JobOffer {
            job_version: 1,
            config_hash: "h".into(),
            config: "seed = 1\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n".into(),
            cohort: vec!["bank-a".into(), "bank-b".into(), "bank-c".into()],
            index: 0,
            threshold: 2,
            neighbours: 2,
            graph_seed: vec![7; 32],
            quorum: 2,
            ..Default::default()
        }
    }

    /// A site without data whose results go to `output` and whose ledger
    /// is beside it.
    fn config(output: &std::path::Path) -> ParticipantConfig {
        let mut config: ParticipantConfig = toml::from_str(
            "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\n\
             coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
        )
        .unwrap();
        config.output = output.to_path_buf();
        // The pause marker lives beside the ledger: in the test's directory.
        config.ledger = output.with_file_name("ledger.log");
        config
    }

    /// Whether `reply` accepts the offer.
    fn accepted(reply: &Reply) -> bool {
        match reply {
            Reply::Accepted(_) => true,
            Reply::Send(participant_message::Body::JobAnswer(a)) => a.accept,
            _ => false,
        }
    }

    /// The reason `reply` declines with.
    fn declined(reply: &Reply) -> String {
        match reply {
            Reply::Send(participant_message::Body::JobAnswer(a)) if !a.accept => a.reason.clone(),
            _ => panic!("not a decline"),
        }
    }

    /// Base64 of `bytes`, for a PEM file.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out
    }

    #[test]
    fn a_signed_offer_is_taken_from_an_admitted_analyst_only_and_its_origin_kept() {
        use fedseg_common::secagg::consortium::Consortium;
        let dir = tempfile::tempdir().unwrap();
        let consortium = Consortium::for_cohort(
            vec!["bank-a".into()],
            fedseg_common::keys::KeyAlgorithm::EcdsaP256,
        );
        let mut config = config(&dir.path().join("out"));
        config.tls.ca = dir.path().join("ca.crt");
        std::fs::write(
            &config.tls.ca,
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64(&consortium.ca)
            ),
        )
        .unwrap();
        let mut policy: policy::SitePolicy = toml::from_str("analysts = [\"analyst-a\"]").unwrap();
        policy.check().unwrap();
        config.policy = Some(policy);
        let ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        let text = format!("purpose = \"churn study\"\n{}", offer().config);
        let signed_by = |id: &str, text: &str| {
            let analyst = consortium.issue(id, "analyst").credential;
            proto::JobOffer {
                config: text.to_string(),
                analyst_certificate: analyst.certificate().to_vec(),
                analyst_signature: fedseg_common::submission::sign(&analyst, text).to_vec(),
                ..offer()
            }
        };
        let mut job = None;
        let reply = accept_offer(
            &config,
            &mut job,
            "job-1",
            signed_by("analyst-a", &text),
            &ledger,
        );
        match reply {
            Reply::Accepted(origin) => assert_eq!(
                origin,
                Origin {
                    analyst: Some("analyst-a".into()),
                    purpose: Some("churn study".into())
                }
            ),
            _ => panic!("analyst-a's job was not accepted"),
        }
        let mut job = None;
        let reply = accept_offer(
            &config,
            &mut job,
            "job-2",
            signed_by("analyst-b", &text),
            &ledger,
        );
        assert!(declined(&reply).contains("analyst analyst-b"));
        // The operator's unsigned job, and a job changed after signing.
        let unsigned = proto::JobOffer {
            config: text.clone(),
            ..offer()
        };
        let reply = accept_offer(&config, &mut job, "job-3", unsigned, &ledger);
        assert!(declined(&reply).contains("no analyst signature"));
        let mut changed = signed_by("analyst-a", &text);
        changed.config = text.replace("seed = 1", "seed = 9");
        let reply = accept_offer(&config, &mut job, "job-4", changed, &ledger);
        assert!(declined(&reply).contains("analyst signature does not verify"));
        assert!(job.is_none());
    }

    #[test]
    fn a_paused_site_declines_new_jobs_and_takes_them_again_once_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("out"));
        let ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        pause::pause(&config.ledger).unwrap();
        let mut job = None;
        let reply = accept_offer(&config, &mut job, "job-1", offer(), &ledger);
        assert_eq!(declined(&reply), "paused by the site");
        pause::resume(&config.ledger).unwrap();
        let reply = accept_offer(&config, &mut job, "job-1", offer(), &ledger);
        assert!(accepted(&reply));
        // Paused while the job runs: the job's own offer, repeated, stands.
        pause::pause(&config.ledger).unwrap();
        let reply = accept_offer(&config, &mut job, "job-1", offer(), &ledger);
        assert!(accepted(&reply));
        let reply = accept_offer(&config, &mut job, "job-2", offer(), &ledger);
        assert_eq!(declined(&reply), "paused by the site");
    }

    #[test]
    fn a_site_that_could_not_keep_the_results_declines_before_the_first_round() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("out");
        std::fs::write(&taken, "a file where the directory belongs").unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        let mut job = None;
        let reply = accept_offer(&config(&taken), &mut job, "job-1", offer(), &ledger);
        assert!(
            matches!(&reply, Reply::Send(participant_message::Body::JobAnswer(a))
                if !a.accept && a.reason.contains("cannot write its results")),
        );
        assert!(job.is_none());
    }

    #[test]
    fn the_same_offer_twice_keeps_the_job_state() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("out"));
        let ledger = Ledger::open(&dir.path().join("ledger.log")).unwrap();
        let mut job = None;
        let offer_job = |job: &mut Option<JobState>, id: &str| {
            let reply = accept_offer(&config, job, id, offer(), &ledger);
            assert!(matches!(
                reply,
                Reply::Accepted(_) | Reply::Send(participant_message::Body::JobAnswer(_))
            ));
            assert!(accepted(&reply));
        };
        offer_job(&mut job, "job-1");
        // Mark the state; a second offer must not replace it.
        job.as_mut().unwrap().budget =
            privacy::declared(Some(&fedseg_common::job::PrivacySettings {
                epsilon: 1.0,
                delta: 1e-6,
                clip: [1095.0, 100.0, 20_000.0, 1825.0, 50.0],
            }))
            .unwrap();
        offer_job(&mut job, "job-1");
        assert!(job.as_ref().unwrap().budget.is_some());
        // Another job replaces it.
        offer_job(&mut job, "job-2");
        assert!(job.as_ref().unwrap().budget.is_none());
    }
}
