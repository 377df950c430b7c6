//! Closing the marketing loop end to end, real processes over mutual TLS:
//! a propensity job; each bank draws its contact list with a seeded
//! control group (`campaign plan`, local only); outcomes with a planted
//! effect are recorded at each bank (an uplift of 25 points in one segment,
//! none in another, almost no outcome rows in a third); a campaign
//! evaluation job measures the uplift. The test pools the banks' local
//! files itself and checks the released counts against them, the planted
//! uplift against the intervals, suppression, a DP run's noise, and that a
//! bank whose list was changed after it was drawn refuses the job.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use fedseg_tests::{Consortium, binary};
use serde_json::Value;
use sha2::{Digest, Sha256};

const PLANTED_UPLIFT: f64 = 0.25;

fn write_model_job(c: &Consortium) {
    fs::write(
        c.path().join("job.toml"),
        "seed = 11\nas_of = \"2026-11-01\"\nholdout_fraction = 0.25\nl2 = 1.0\n\n\
         [segmentation]\nk_min = 3\nk_max = 3\nrestarts = 2\nmin_segment_size = 5\n",
    )
    .unwrap();
}

/// The campaign's job file: every segment of the model targeted, the top
/// nine deciles, half held back.
fn campaign_job(model: &str, segments: &[String], extra: &str) -> String {
    let names: Vec<String> = segments.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "{extra}seed = 12\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
         [segmentation]\nmin_segment_size = 20\n\n\
         [campaign]\nname = \"spring-offer\"\nmodel = \"{model}\"\nsegments = [{}]\n\
         top_deciles = 9\ncontrol = 0.5\nseed = 99\n",
        names.join(", ")
    )
}

/// A uniform number in [0, 1) per customer and purpose, reproducible.
fn uniform(what: &str, id: &str) -> f64 {
    let digest = Sha256::digest(format!("{what}/{id}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap()) as f64 / 2f64.powi(64)
}

/// One row of a site's `contacts.csv`: (id, segment, decile, control).
fn contacts(c: &Consortium, site: &str) -> Vec<(String, usize, u8, bool)> {
    let path = c.path().join(format!(
        "sites/{site}/out/campaigns/spring-offer/contacts.csv"
    ));
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5] == "control",
            )
        })
        .collect()
}

/// Writes the site's outcomes with the planted effect and names the table
/// in its participant.toml: segment 0 converts at 40% treated against 15%
/// in control, segment 1 at 20% in both; of segment 2 only three
/// customers per site have an outcome row.
fn record_outcomes(c: &Consortium, site: &str) {
    let mut text = String::from("customer_id,contacted,converted_after\n");
    let mut segment_two = 0;
    for (id, segment, _, control) in contacts(c, site) {
        let rate = match (segment, control) {
            (0, false) => 0.15 + PLANTED_UPLIFT,
            (0, true) => 0.15,
            (2, _) if segment_two >= 3 => continue,
            _ => 0.20,
        };
        segment_two += usize::from(segment == 2);
        let converted = uniform("converted", &id) < rate;
        text.push_str(&format!("{id},{},{converted}\n", !control));
    }
    // A customer who is not on the list is ignored.
    text.push_str("not-on-the-list,true,true\n");
    let dir = c.path().join("sites").join(site);
    fs::write(dir.join("outcomes.csv"), text).unwrap();
    let config = dir.join("participant.toml");
    let toml = fs::read_to_string(&config)
        .unwrap()
        .replace("[data]\n", "[data]\noutcomes = \"outcomes.csv\"\n");
    fs::write(config, toml).unwrap();
}

/// Per segment, pooled from every site's files: [treated, treated
/// converted, control, control converted] and the customers without an
/// outcome row.
fn pooled_counts(c: &Consortium) -> (BTreeMap<usize, [f64; 4]>, f64) {
    let mut counts: BTreeMap<usize, [f64; 4]> = BTreeMap::new();
    let mut missing = 0.0;
    for site in &c.sites {
        let dir = c.path().join("sites").join(site);
        let outcomes: BTreeMap<String, bool> = fs::read_to_string(dir.join("outcomes.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[2] == "true")
            })
            .collect();
        for (id, segment, _, control) in contacts(c, site) {
            let Some(&converted) = outcomes.get(&id) else {
                missing += 1.0;
                continue;
            };
            let slot = counts.entry(segment).or_default();
            let at = if control { 2 } else { 0 };
            slot[at] += 1.0;
            slot[at + 1] += f64::from(converted);
        }
    }
    (counts, missing)
}

fn plan(c: &Consortium, site: &str) -> String {
    let out = Command::new(binary("fedseg-participant"))
        .args(["campaign", "plan", "--config"])
        .arg(c.path().join(format!("sites/{site}/participant.toml")))
        .arg("--job")
        .arg(c.path().join("campaign.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn segment(result: &Value, i: usize) -> &Value {
    &result["campaign"]["segments"][i]
}

/// Draws `site`'s list and checks it: the top nine deciles of every
/// segment, the seed's half held back, the same list when drawn twice.
fn check_list(c: &Consortium, site: &str, model_id: &str) {
    let said = plan(c, site);
    assert!(said.contains("held back as control"), "{said}");
    let first = contacts(c, site);
    plan(c, site);
    assert_eq!(contacts(c, site), first, "the draw is reproducible");
    assert!(first.iter().all(|(_, _, decile, _)| *decile >= 2));
    let scores = fs::read_to_string(
        c.path()
            .join(format!("sites/{site}/out/{model_id}/scores.csv")),
    )
    .unwrap();
    let top_nine = scores
        .lines()
        .skip(1)
        .filter(|l| l.rsplit(',').next().unwrap().parse::<u8>().unwrap() >= 2)
        .count();
    assert_eq!(first.len(), top_nine, "{site}: every top-nine customer");
    let held = first.iter().filter(|r| r.3).count() as f64 / first.len() as f64;
    assert!((0.4..0.6).contains(&held), "{site}: {held} held back");
}

/// The campaign job under a budget: the one release carries noise and
/// says how much; segment 0's treated count is near `treated`.
fn check_private_run(c: &Consortium, job: &str, treated_pooled: f64) {
    let private = job.replace(
        "[campaign]",
        "[privacy]\nepsilon = 1.0\ndelta = 1e-6\n\n[campaign]",
    );
    fs::write(c.path().join("job.toml"), private).unwrap();
    drop(c.run_job());
    let noisy = c.result();
    let sd = noisy["campaign"]["noise"]["count_sd"].as_f64().unwrap();
    eprintln!("DP run: count noise sd {sd}");
    assert!(sd > 0.5 && sd < 50.0, "{sd}");
    assert_eq!(noisy["privacy"]["dp"], true);
    let treated = segment(&noisy, 0)["treated"].as_f64().unwrap();
    // A segment's count adds up 9 noisy deciles.
    assert!(
        (treated - treated_pooled).abs() < 6.0 * sd * 3.0,
        "{treated}"
    );
}

/// A list changed after it was drawn: the bank refuses the job, which
/// goes on without it.
fn check_changed_list_is_refused(c: &Consortium, model_id: &str, names: &[String]) {
    let path = c
        .path()
        .join("sites/bank-a/out/campaigns/spring-offer/contacts.csv");
    let text = fs::read_to_string(&path).unwrap();
    let flipped = match text.find(",treatment\n") {
        Some(_) => text.replacen(",treatment\n", ",control\n", 1),
        None => unreachable!("half the list is treated"),
    };
    fs::write(&path, flipped).unwrap();
    fs::write(
        c.path().join("job.toml"),
        campaign_job(model_id, names, "job_id = \"tampered\"\n"),
    )
    .unwrap();
    let mut coordinator = c.run_coordinator();
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    coordinator.expect_success(120);
    c.assert_only_declined("bank-a", "does not match");
    let result = c.result();
    assert_eq!(result["took_part"], serde_json::json!(["bank-b", "bank-c"]));
}

#[test]
fn a_campaigns_measured_uplift_recovers_the_planted_one() {
    let c = Consortium::with_customers(3, 4000, 10.0, 16);
    write_model_job(&c);
    drop(c.run_job());
    let model = c.result();
    let model_id = model["job_id"].as_str().unwrap().to_string();
    let names: Vec<String> = model["segmentation"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let job = campaign_job(&model_id, &names, "");
    fs::write(c.path().join("campaign.toml"), &job).unwrap();

    for site in &c.sites {
        check_list(&c, site, &model_id);
        record_outcomes(&c, site);
    }

    fs::write(c.path().join("job.toml"), &job).unwrap();
    drop(c.run_job());
    let result = c.result();
    assert_eq!(result["kind"], "campaign-evaluation");
    let (pooled, missing) = pooled_counts(&c);
    assert_eq!(
        result["campaign"]["missing_outcomes"].as_f64(),
        Some(missing)
    );
    assert!(missing > 20.0, "segment 2's customers mostly lack outcomes");
    for s in [0, 1] {
        let got = segment(&result, s);
        let want = pooled[&s];
        let fields = [
            "treated",
            "treated_converted",
            "control",
            "control_converted",
        ];
        for (field, want) in fields.iter().zip(want) {
            assert_eq!(got[field].as_f64(), Some(want), "segment {s} {field}");
        }
        let rate = |x: f64, n: f64| x / n;
        let uplift = rate(want[1], want[0]) - rate(want[3], want[2]);
        assert!((got["uplift"].as_f64().unwrap() - uplift).abs() < 1e-12);
    }
    // The planted uplift lies inside segment 0's interval, which excludes
    // zero; segment 1's includes zero and is said to be no effect.
    let ci = |s: usize| -> [f64; 2] {
        let v = &segment(&result, s)["uplift_ci"];
        [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
    };
    for s in [0, 1] {
        let e = segment(&result, s);
        eprintln!(
            "segment {s}: treated {} control {} uplift {} interval {}",
            e["treated"], e["control"], e["uplift"], e["uplift_ci"]
        );
    }
    let [lo, hi] = ci(0);
    assert!(
        lo < PLANTED_UPLIFT && PLANTED_UPLIFT < hi && lo > 0.0,
        "{lo} {hi}"
    );
    assert_eq!(segment(&result, 0)["verdict"], "uplift");
    let [lo, hi] = ci(1);
    assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    assert_eq!(segment(&result, 1)["verdict"], "no_measurable_effect");
    // Segment 2 has a few outcome rows at most: withheld, no counts.
    let small = pooled.get(&2).copied().unwrap_or_default();
    assert!(small[0] + small[2] > 0.0 && (small[0] < 20.0 || small[2] < 20.0));
    assert_eq!(segment(&result, 2)["verdict"], "suppressed");
    assert!(segment(&result, 2)["treated"].is_null());
    assert!(result["campaign"]["noise"].is_null());
    // Run again with no bank connected: the result comes back from the
    // journal alone, the same to the byte (crash recovery's path).
    let reference = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    fs::remove_dir_all(c.path().join("out")).unwrap();
    let mut rerun = c.run_coordinator();
    rerun.expect_success(60);
    assert!(
        rerun.log_text().contains("retracing"),
        "{}",
        rerun.log_text()
    );
    assert_eq!(
        fs::read_to_string(c.path().join("out/result.json")).unwrap(),
        reference
    );
    // Every bank's ledger matches the journal's record of the release.
    for site in &c.sites {
        c.assert_ledger_verifies(site);
    }
    let report = fs::read_to_string(c.path().join("out/report.md")).unwrap();
    assert!(report.contains("did nothing measurable"), "{report}");
    assert!(report.contains(&format!("Segment {}: the campaign raised", names[0])));
    let html = fs::read_to_string(c.path().join("out/report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Uplift per segment"));

    check_private_run(&c, &job, pooled[&0][0]);
    check_changed_list_is_refused(&c, &model_id, &names);
}

#[test]
fn an_outcomes_table_from_the_database_gives_the_file_rows() {
    let Some(db) = fedseg_tests::Postgres::start() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have PostgreSQL");
        eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
        return;
    };
    let rows = [("c1", "yes", "true"), ("c2", "no", "f"), ("c3", "1", "0")];
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,contacted,converted_after\n");
    assert!(
        db.psql("CREATE TABLE results (cust text, reached text, sold text)")
            .status
            .success()
    );
    let insert = |id: &str, reached: &str, sold: &str| {
        let sql = format!("INSERT INTO results VALUES ('{id}', '{reached}', '{sold}')");
        assert!(db.psql(&sql).status.success(), "{sql}");
    };
    for (id, reached, sold) in rows {
        csv.push_str(&format!("{id},{reached},{sold}\n"));
        insert(id, reached, sold);
    }
    fs::write(dir.path().join("outcomes.csv"), csv).unwrap();
    let config = |data: &str| {
        let path = dir.path().join("participant.toml");
        fs::write(
            &path,
            format!(
                "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\ncoordinator_id = \"coordinator\"\n\
                 ledger = \"ledger.log\"\n[tls]\nca = \"ca.crt\"\ncert = \"x.crt\"\nkey = \"x.key\"\n\
                 [data]\ntransactions = \"t\"\ninteractions = \"i\"\ncustomers = \"c\"\n{data}"
            ),
        )
        .unwrap();
        fedseg_participant::config::ParticipantConfig::load(&path)
            .unwrap()
            .data
            .unwrap()
    };
    let from_file = config("outcomes = \"outcomes.csv\"\n")
        .outcomes_table()
        .unwrap();
    let query =
        "SELECT cust AS customer_id, reached AS contacted, sold AS converted_after FROM results";
    let database = |policy: &str| {
        config(&format!(
            "postgres = \"{}\"\noutcomes = \"{query}\"\n{policy}",
            db.connection()
        ))
        .outcomes_table()
    };
    let from_db = database("").unwrap();
    assert_eq!(from_db.by_id, from_file.by_id);
    assert_eq!(from_db.by_id["c1"], (true, true));
    // A bad boolean stops the site, or is skipped and counted under the
    // policy.
    insert("c4", "perhaps", "no");
    let error = database("").unwrap_err().to_string();
    assert!(error.contains("bad_boolean"), "{error}");
    let skipped = database("on_bad_row = \"skip\"\nmax_bad_rows = 1\n").unwrap();
    assert_eq!(skipped.skipped.total(), 1);
    assert_eq!(skipped.by_id, from_file.by_id);
}
