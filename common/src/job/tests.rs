use super::*;

const JOB: &str = "seed = 7\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n";

#[test]
fn a_job_parses_with_its_defaults_and_checks() {
    let job = JobConfig::parse(JOB).unwrap();
    assert_eq!(job.as_of_date(), Some(time::macros::date!(2026 - 11 - 01)));
    assert_eq!(job.segmentation.ahp_judgments, DEFAULT_AHP_JUDGMENTS);
    assert!(job.privacy.is_none() && job.secure_sum.is_none());
    assert_eq!(job.check(), Ok(()));
}

#[test]
fn unknown_keys_and_bad_values_are_refused_naming_the_key() {
    assert!(JobConfig::parse(&format!("{JOB}colour = \"red\"\n")).is_err());
    for (extra, key) in [
        ("[segmentation]\nk_min = 1\n", "segmentation.k_max"),
        ("[propensity]\nscore_bins = 5\n", "propensity.score_bins"),
        ("[privacy]\nepsilon = 0\ndelta = 1e-6\n", "privacy.epsilon"),
        (
            "[privacy]\nepsilon = 1\ndelta = 1e-6\nclip = [1, 1, 1, 1, 0]\n",
            "privacy.clip",
        ),
    ] {
        let job = JobConfig::parse(&format!("{JOB}{extra}")).unwrap();
        assert_eq!(job.check().unwrap_err().0, key, "{extra}");
    }
    let job = JobConfig::parse(&JOB.replace("2026-11-01", "2026-13-01")).unwrap();
    assert_eq!(job.check().unwrap_err().0, "as_of");
}

#[test]
fn a_job_names_what_it_computes_and_its_purpose_is_checked() {
    let kinds = |extra: &str| JobConfig::parse(&format!("{JOB}{extra}")).unwrap().kinds();
    assert_eq!(kinds(""), [JobKind::Segmentation, JobKind::Propensity]);
    assert_eq!(
        kinds("[propensity]\nenabled = false\n"),
        [JobKind::Segmentation]
    );
    let sum = "[secure_sum]\nvector = \"v\"\nlength = 3\nrounds = 1\nlo = 0\nhi = 1\n";
    assert_eq!(kinds(sum), [JobKind::SecureSum]);
    let vertical = "[vertical]\nlabel_holder = \"a\"\npartners = [\"b\"]\n";
    assert_eq!(kinds(vertical), [JobKind::Vertical]);
    let with = |purpose: &str| {
        JobConfig::parse(&format!("purpose = {purpose:?}\n{JOB}"))
            .unwrap()
            .check()
    };
    assert_eq!(with("Q1 retention campaign"), Ok(()));
    assert_eq!(with("  ").unwrap_err().0, "purpose");
    assert_eq!(
        with(&"x".repeat(MAX_PURPOSE_CHARS + 1)).unwrap_err().0,
        "purpose"
    );
}

#[test]
fn a_vertical_table_is_checked_naming_the_key() {
    let v = "[vertical]\nlabel_holder = \"bank-a\"\n";
    let job = JobConfig::parse(&format!("{JOB}{v}partners = [\"fintech-x\"]\n")).unwrap();
    let vertical = job.vertical.as_ref().unwrap();
    assert_eq!((vertical.min_overlap, vertical.overlap_only), (1000, false));
    assert_eq!(vertical.parties(), ["bank-a", "fintech-x"]);
    assert_eq!(job.check(), Ok(()));
    for (partners, extra, key) in [
        ("[]", "", "vertical.partners"),
        ("[\"bank-a\"]", "", "vertical.partners"),
        ("[\"x\", \"x\"]", "", "vertical.partners"),
        ("[\" \"]", "", "vertical.partners"),
        (
            "[\"x\"]",
            "[privacy]\nepsilon = 1\ndelta = 1e-6\n",
            "vertical",
        ),
    ] {
        let text = format!("{JOB}{extra}{v}partners = {partners}\n");
        let job = JobConfig::parse(&text).unwrap();
        assert_eq!(job.check().unwrap_err().0, key, "{text}");
    }
    let unknown = format!("{JOB}{v}partners = [\"x\"]\ncolour = 1\n");
    assert!(JobConfig::parse(&unknown).is_err());
}

#[test]
fn default_protocol_parameters_meet_the_consistency_bound() {
    let defaults = CohortSettings::default();
    let p = |n| defaults.protocol(n).unwrap();
    assert_eq!(
        p(5),
        ProtocolParams {
            neighbours: 4,
            threshold: 3,
            collusion: 1,
            quorum: 4
        }
    );
    assert_eq!((p(3).threshold, p(3).collusion, p(3).quorum), (2, 0, 2));
    assert_eq!(
        (p(100).threshold, p(100).collusion, p(100).quorum),
        (11, 10, 56)
    );
    for n in 2..300 {
        let ProtocolParams {
            threshold: t,
            collusion: c,
            quorum: q,
            ..
        } = p(n);
        assert!(c < t && 2 * q > n + c && q <= n, "n {n}: t {t} c {c} q {q}");
    }
}

#[test]
fn protocol_settings_below_the_bound_are_refused_naming_the_key() {
    let settings = |text: &str| JobConfig::parse(&format!("{JOB}[cohort]\n{text}")).unwrap();
    let key = |text: &str, n| settings(text).cohort.protocol(n).unwrap_err().0;
    assert_eq!(key("collusion = 3\n", 5), "cohort.collusion");
    assert_eq!(key("threshold = 2\ncollusion = 2\n", 5), "cohort.collusion");
    assert_eq!(key("quorum = 3\n", 5), "cohort.quorum");
    assert_eq!(key("quorum = 6\n", 5), "cohort.quorum");
    assert_eq!(key("collusion = 2\nquorum = 4\n", 6), "cohort.quorum");
    let ok = settings("collusion = 2\nquorum = 4\n")
        .cohort
        .protocol(4)
        .unwrap();
    assert_eq!((ok.threshold, ok.quorum), (3, 4));
}
