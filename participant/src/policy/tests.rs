//! Every rule of `[policy]` on offers built here, the analyst's signature
//! with certificates of a real in-memory CA, and `participant.toml` errors
//! naming the key at fault.

use fedseg_common::certs;
use fedseg_common::keys::KeyAlgorithm;
use fedseg_common::secagg::consortium::Consortium;

use super::*;
use crate::config::ParticipantConfig;

const SEGMENTATION: &str = "purpose = \"retention campaign\"\nseed = 1\nas_of = \"2026-11-01\"\n\
                            holdout_fraction = 0.2\nl2 = 1.0\n";

fn job(text: &str) -> JobConfig {
    let job = JobConfig::parse(text).unwrap();
    job.check().unwrap();
    job
}

fn offer(text: &str, cohort: usize) -> proto::JobOffer {
    proto::JobOffer {
        config: text.into(),
        cohort: (0..cohort).map(|i| format!("bank-{i}")).collect(),
        ..Default::default()
    }
}

/// `[policy]` as written in participant.toml, checked.
fn policy(text: &str) -> SitePolicy {
    let mut policy: SitePolicy = toml::from_str(text).unwrap();
    policy.check().unwrap();
    policy
}

fn admits(
    policy: &SitePolicy,
    analyst: Option<&str>,
    text: &str,
    cohort: usize,
) -> Result<(), String> {
    admit(Some(policy), analyst, &offer(text, cohort), &job(text))
}

#[test]
fn analysts_and_operator_jobs() {
    let any = policy("");
    // No analysts listed: any analyst, and operator jobs by default.
    assert_eq!(admits(&any, Some("analyst-z"), SEGMENTATION, 3), Ok(()));
    assert_eq!(admits(&any, None, SEGMENTATION, 3), Ok(()));
    let listed = policy("analysts = [\"analyst-a\", \"analyst-b\"]");
    assert_eq!(admits(&listed, Some("analyst-b"), SEGMENTATION, 3), Ok(()));
    let reason = admits(&listed, Some("analyst-z"), SEGMENTATION, 3).unwrap_err();
    assert!(
        reason.contains("analyst analyst-z") && reason.contains("analyst-a, analyst-b"),
        "{reason}"
    );
    // Analysts listed: operator jobs only when said so.
    let reason = admits(&listed, None, SEGMENTATION, 3).unwrap_err();
    assert!(reason.contains("no analyst signature"), "{reason}");
    let both = policy("analysts = [\"analyst-a\"]\noperator_jobs = true");
    assert_eq!(admits(&both, None, SEGMENTATION, 3), Ok(()));
    let signed_only = policy("operator_jobs = false");
    assert!(admits(&signed_only, None, SEGMENTATION, 3).is_err());
    assert_eq!(
        admits(&signed_only, Some("anyone"), SEGMENTATION, 3),
        Ok(())
    );
    // No policy at all: everything here.
    assert_eq!(
        admit(None, None, &offer(SEGMENTATION, 1), &job(SEGMENTATION)),
        Ok(())
    );
}

#[test]
fn kinds_cohort_purpose_dp_and_rounds() {
    // The default job is a segmentation with its propensity model: both
    // kinds must be admitted.
    let segmentation_only = policy("kinds = [\"segmentation\"]");
    assert_eq!(segmentation_only.kinds, Some(vec![JobKind::Segmentation]));
    let reason = admits(&segmentation_only, None, SEGMENTATION, 3).unwrap_err();
    assert!(
        reason.contains("propensity jobs") && reason.contains("admits segmentation"),
        "{reason}"
    );
    let without_model = format!("{SEGMENTATION}[propensity]\nenabled = false\n");
    assert_eq!(admits(&segmentation_only, None, &without_model, 3), Ok(()));
    let both = policy("kinds = [\"segmentation\", \"propensity\"]");
    assert_eq!(admits(&both, None, SEGMENTATION, 3), Ok(()));
    // (A secure-sum job cannot be private: its kind is checked first.)
    let sum = format!(
        "{SEGMENTATION}[secure_sum]\nvector = \"v\"\nlength = 4\nrounds = 12\nfrac_bits = 16\n\
         lo = -1.0\nhi = 1.0\n"
    );
    assert!(
        admits(&both, None, &sum, 3)
            .unwrap_err()
            .contains("secure-sum jobs")
    );

    let cohort = policy("min_cohort = 3");
    assert_eq!(admits(&cohort, None, SEGMENTATION, 3), Ok(()));
    let reason = admits(&cohort, None, SEGMENTATION, 2).unwrap_err();
    assert!(
        reason.contains("cohort of 2") && reason.contains("3 members"),
        "{reason}"
    );

    // A purpose is required by default once there is a policy.
    let unstated = SEGMENTATION.replace("purpose = \"retention campaign\"\n", "");
    let reason = admits(&policy(""), None, &unstated, 3).unwrap_err();
    assert!(reason.contains("no purpose"), "{reason}");
    assert_eq!(
        admits(&policy("require_purpose = false"), None, &unstated, 3),
        Ok(())
    );

    let dp = policy("require_dp = true");
    let reason = admits(&dp, None, SEGMENTATION, 3).unwrap_err();
    assert!(reason.contains("no differential privacy"), "{reason}");
    let private = format!(
        "{SEGMENTATION}[privacy]\nepsilon = 1.0\ndelta = 1e-6\nclip = [1095.0, 100.0, 20000.0, 1825.0, 50.0]\n"
    );
    assert_eq!(admits(&dp, None, &private, 3), Ok(()));

    // Rounds: a secure-sum job's are known up front; others are counted.
    let rounds = policy("max_rounds = 10");
    let reason = admits(&rounds, None, &sum, 3).unwrap_err();
    assert!(
        reason.contains("12 rounds") && reason.contains("at most 10"),
        "{reason}"
    );
    assert_eq!(admits(&policy("max_rounds = 12"), None, &sum, 3), Ok(()));
    assert_eq!(admits(&rounds, None, SEGMENTATION, 3), Ok(()));
    assert_eq!(rounds_refused(Some(&rounds), 9), None);
    let reason = rounds_refused(Some(&rounds), 10).unwrap();
    assert!(reason.contains("at most 10 secure-sum rounds"), "{reason}");
    assert_eq!(rounds_refused(None, 1_000), None);
    assert_eq!(rounds_refused(Some(&policy("")), 1_000), None);
}

#[test]
fn an_analyst_signature_is_checked_against_the_sites_ca() {
    for algorithm in KeyAlgorithm::ALL {
        let consortium = Consortium::for_cohort(vec!["bank-a".into()], algorithm);
        let analyst = consortium.issue("analyst-a", "analyst").credential;
        let now = certs::unix_now();
        let ca = || Ok(consortium.ca.clone());
        let mut signed = offer(SEGMENTATION, 3);
        signed.analyst_certificate = analyst.certificate().to_vec();
        signed.analyst_signature = submission::sign(&analyst, SEGMENTATION).to_vec();
        assert_eq!(analyst_of(&signed, ca, now), Ok(Some("analyst-a".into())));
        assert_eq!(analyst_of(&offer(SEGMENTATION, 3), ca, now), Ok(None));
        // The text changed after signing.
        let mut changed = signed.clone();
        changed.config = SEGMENTATION.replace("seed = 1", "seed = 2");
        let reason = analyst_of(&changed, ca, now).unwrap_err();
        assert!(
            reason.starts_with("the job's analyst signature does not verify: "),
            "{reason}"
        );
        // A signature without its certificate, a bank's certificate, an
        // analyst of another CA.
        let mut bare = signed.clone();
        bare.analyst_certificate.clear();
        assert!(analyst_of(&bare, ca, now).is_err());
        let bank = &consortium.members[0].credential;
        let mut by_bank = signed.clone();
        by_bank.analyst_certificate = bank.certificate().to_vec();
        by_bank.analyst_signature = submission::sign(bank, SEGMENTATION).to_vec();
        assert!(analyst_of(&by_bank, ca, now).is_err());
        let outsider = Consortium::for_cohort(vec!["x".into()], algorithm)
            .issue("analyst-a", "analyst")
            .credential;
        let mut foreign = signed.clone();
        foreign.analyst_certificate = outsider.certificate().to_vec();
        foreign.analyst_signature = submission::sign(&outsider, SEGMENTATION).to_vec();
        assert!(analyst_of(&foreign, ca, now).is_err());
        // An unreadable CA file declines too, naming why.
        let reason = analyst_of(&signed, || Err("ca.crt: missing".into()), now).unwrap_err();
        assert!(reason.contains("ca.crt: missing"), "{reason}");
    }
}

/// participant.toml with `extra` appended; the error of loading it, if any.
fn load(extra: &str) -> Result<ParticipantConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("participant.toml");
    let text = format!(
        "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\n\
         coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
         [tls]\nca = \"ca.pem\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    ParticipantConfig::load(&path).map_err(|e| e.to_string())
}

#[test]
fn policy_errors_name_the_key() {
    let error = load("[policy]\nanalyst = [\"a\"]\n").unwrap_err();
    assert!(error.contains("unknown field `analyst`"), "{error}");
    let error = load("[policy]\nkinds = [\"segmentation\", \"clustering\"]\n").unwrap_err();
    assert!(
        error.contains("policy.kinds") && error.contains("\"clustering\""),
        "{error}"
    );
    let error = load("[policy]\nmin_cohort = 0\n").unwrap_err();
    assert!(error.contains("policy.min_cohort"), "{error}");
    let error = load("[policy]\nmax_rounds = 0\n").unwrap_err();
    assert!(error.contains("policy.max_rounds"), "{error}");
    let error = load("[policy]\nanalysts = [\"not an id!\"]\n").unwrap_err();
    assert!(error.contains("policy.analysts"), "{error}");
    let error = load("[policy.privacy]\nmax_epsilon_per_job = 1.0\nmax_delta = 2.0\n").unwrap_err();
    assert!(error.contains("policy.privacy.max_delta"), "{error}");
    let error = load("[policy.privacy]\nmax_epsilon_per_job = 1.0\nperiod = 3\n").unwrap_err();
    assert!(error.contains("unknown field `period`"), "{error}");
    // The old place still works, and still names its own keys.
    let error = load("[privacy]\nmax_epsilon_per_job = -1.0\n").unwrap_err();
    assert!(
        error.contains("privacy.max_epsilon_per_job") && !error.contains("policy."),
        "{error}"
    );
    let both =
        "[privacy]\nmax_epsilon_per_job = 1.0\n[policy.privacy]\nmax_epsilon_per_job = 2.0\n";
    let error = load(both).unwrap_err();
    assert!(
        error.contains("policy.privacy") && error.contains("keep one"),
        "{error}"
    );
    // [policy.privacy] is the site's privacy policy, as [privacy] was.
    let config =
        load("[policy]\nrequire_dp = true\n[policy.privacy]\nmax_epsilon_per_job = 2.0\n").unwrap();
    assert_eq!(config.privacy.map(|p| p.max_epsilon_per_job), Some(2.0));
    let policy = config.policy.unwrap();
    assert!(policy.require_dp && policy.require_purpose && policy.privacy.is_none());
    let config = load("[privacy]\nmax_epsilon_per_job = 1.5\n").unwrap();
    assert_eq!(config.privacy.map(|p| p.max_epsilon_per_job), Some(1.5));
    assert!(config.policy.is_none());
}

/// The worked example of the README's "Site policies".
const BANK_POLICY: &str = "[policy]\nanalysts = [\"analyst-a\"]\nkinds = [\"segmentation\", \"propensity\"]\n\
                           min_cohort = 3\nmax_rounds = 200\nrequire_dp = true\n\n\
                           [policy.privacy]\nmax_epsilon_per_job = 2.0\nmax_delta = 1e-6\n\
                           max_epsilon_per_period = 6.0\nperiod_days = 90\n";

#[test]
fn the_readme_example_admits_and_declines_as_documented() {
    let config = load(BANK_POLICY).unwrap();
    let policy = config.policy.as_ref().unwrap();
    assert!(!policy.operator_jobs());
    let private = |epsilon: f64| {
        format!(
            "{SEGMENTATION}[privacy]\nepsilon = {epsilon:?}\ndelta = 1e-6\n\
             clip = [1095.0, 100.0, 20000.0, 1825.0, 50.0]\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = crate::ledger::Ledger::open(&dir.path().join("ledger.log")).unwrap();
    // Admitted by the policy, then held to the privacy limits.
    let privacy_of = |text: &str| {
        let budget = crate::privacy::declared(job(text).privacy.as_ref()).unwrap();
        crate::privacy::admit(config.privacy.as_ref(), budget.as_ref(), &ledger, 0)
    };
    let within = private(2.0);
    assert_eq!(admits(policy, Some("analyst-a"), &within, 3), Ok(()));
    assert_eq!(privacy_of(&within), Ok(()));
    let over = private(4.0);
    assert_eq!(admits(policy, Some("analyst-a"), &over, 3), Ok(()));
    assert_eq!(
        privacy_of(&over).unwrap_err(),
        "the job's privacy budget ε = 4, δ = 1e-6 exceeds this site's policy of ε = 2, δ = 1e-6 per job"
    );
    // (A secure-sum job cannot be private: its kind is checked first.)
    let sum = format!(
        "{SEGMENTATION}[secure_sum]\nvector = \"v\"\nlength = 4\nrounds = 2\nfrac_bits = 16\nlo = -1.0\nhi = 1.0\n"
    );
    let declines = [
        (
            Some("analyst-a"),
            sum.as_str(),
            "this site does not take part in secure-sum jobs (it admits segmentation, propensity)",
        ),
        (
            Some("analyst-b"),
            within.as_str(),
            "this site does not take jobs from analyst analyst-b (it admits analyst-a)",
        ),
        (
            None,
            within.as_str(),
            "this site takes only jobs signed by an analyst it admits; this job carries no analyst signature",
        ),
        (
            Some("analyst-a"),
            SEGMENTATION,
            "the job asks for no differential privacy; this site requires a [privacy] budget",
        ),
    ];
    for (analyst, text, reason) in declines {
        assert_eq!(admits(policy, analyst, text, 3).unwrap_err(), reason);
    }
    assert!(admits(policy, Some("analyst-a"), &within, 2).is_err());
}
