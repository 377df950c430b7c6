//! Vertical jobs over real processes and mutual TLS: a bank (the label
//! holder) and two feature partners whose shared customers are planted, so
//! the intersection is known from the files alone. Each party's local
//! `intersection.csv` must hold exactly the planted customers in one order
//! shared by all; nothing but sizes and digests may reach the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use fedseg_tests::{Consortium, Process};

/// The bank's customers from its `customers.csv`: (consenting, refusing).
fn bank_customers(c: &Consortium) -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(c.path().join("sites/bank-a/customers.csv")).unwrap();
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        match fields[1] {
            "true" => yes.push(fields[0].to_string()),
            _ => no.push(fields[0].to_string()),
        }
    }
    (yes, no)
}

fn row(id: &str, consent: bool) -> String {
    format!("{id},{},{}.5,{consent}", id.len() % 7, id.len() * 3)
}

/// Plants the partners' tables and returns the expected intersection:
/// `fintech-x` holds consenting bank customers 0..800 (refusing 300..320
/// itself), 50 who refused the bank, and 300 of its own; `fintech-y` holds
/// bank customers 300..1100, 30 who refused the bank, 100 of fintech-x's
/// own and 200 of its own. All three share customers 320..800 only.
fn plant(c: &mut Consortium) -> BTreeSet<String> {
    let (yes, no) = bank_customers(c);
    assert!(
        yes.len() >= 1100 && no.len() >= 80,
        "{} {}",
        yes.len(),
        no.len()
    );
    let own_x: Vec<String> = (0..300).map(|i| format!("XONLY-{i:04}")).collect();
    let mut x: Vec<String> = (0..800)
        .map(|i| row(&yes[i], !(300..320).contains(&i)))
        .collect();
    x.extend(no[..50].iter().map(|id| row(id, true)));
    x.extend(own_x.iter().map(|id| row(id, true)));
    c.write_features("fintech-x", &x);
    let mut y: Vec<String> = (300..1100).map(|i| row(&yes[i], true)).collect();
    y.extend(no[50..80].iter().map(|id| row(id, true)));
    y.extend(own_x[..100].iter().map(|id| row(id, true)));
    y.extend((0..200).map(|i| row(&format!("YONLY-{i:04}"), true)));
    c.add_partner("fintech-y", &y);
    yes[320..800].iter().cloned().collect()
}

/// Writes the vertical job with the three parties.
fn write_job(c: &Consortium, min_overlap: u64, overlap_only: bool) {
    fs::write(
        c.path().join("job.toml"),
        format!(
            "seed = 42\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
             [vertical]\nlabel_holder = \"bank-a\"\npartners = [\"fintech-x\", \"fintech-y\"]\n\
             min_overlap = {min_overlap}\noverlap_only = {overlap_only}\n"
        ),
    )
    .unwrap();
}

/// Runs the job with every party; the coordinator's process, finished.
fn run(c: &Consortium) -> (Process, Vec<Process>) {
    let mut coordinator = c.run_coordinator();
    let parties = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    coordinator.wait(std::time::Duration::from_secs(300));
    (coordinator, parties)
}

/// A site's `intersection.csv`, position → customer, if it wrote one.
fn aligned(c: &Consortium, site: &str) -> Option<BTreeMap<u64, String>> {
    let out = c.path().join("sites").join(site).join("out");
    let job = fs::read_dir(&out).ok()?.next()?.ok()?.path();
    let text = fs::read_to_string(job.join("intersection.csv")).ok()?;
    Some(
        text.lines()
            .skip(1)
            .map(|l| {
                let (id, pos) = l.split_once(',').unwrap();
                (pos.parse().unwrap(), id.to_string())
            })
            .collect(),
    )
}

/// Every journaled step, in order.
fn steps(c: &Consortium) -> Vec<String> {
    c.journal_records()
        .iter()
        .filter(|r| r["entry"]["kind"] == "vertical_message")
        .map(|r| r["entry"]["step"].as_str().unwrap().to_string())
        .collect()
}

/// The journal holds no customer id of any party, only sizes and digests.
fn assert_journal_has_no_ids(c: &Consortium) {
    let journal = fs::read(c.path().join("journal.log")).unwrap();
    let text = String::from_utf8_lossy(&journal);
    for marker in ["C3e8-", "XONLY-", "YONLY-"] {
        assert!(
            !text.contains(marker),
            "an id with {marker} is in the journal"
        );
    }
    let out = c.verify_journal(&c.path().join("journal.log"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bank_and_two_partners_find_exactly_the_planted_intersection_in_one_order() {
    let mut c = Consortium::vertical(1600, 20.0);
    let expected = plant(&mut c);
    write_job(&c, 100, false);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    let result = c.result();
    let v = &result["vertical"];
    assert_eq!(v["intersection"], 480);
    assert_eq!(v["label_holder"], "bank-a");
    assert_eq!(v["partners"], serde_json::json!(["fintech-x", "fintech-y"]));
    assert_eq!(v["set_sizes"]["fintech-y"], 800 + 30 + 100 + 200);
    // Refusals at a partner are dropped before anything leaves it.
    assert_eq!(v["set_sizes"]["fintech-x"], 800 - 20 + 50 + 300);
    let orders: Vec<BTreeMap<u64, String>> = c
        .sites
        .iter()
        .map(|s| aligned(&c, s).unwrap_or_else(|| panic!("{s} wrote no intersection")))
        .collect();
    let ids: BTreeSet<String> = orders[0].values().cloned().collect();
    assert_eq!(ids, expected);
    assert_eq!(
        orders[0].keys().copied().collect::<Vec<_>>(),
        (0..480).collect::<Vec<_>>()
    );
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "the parties' orders differ"
    );
    assert_journal_has_no_ids(&c);
    for site in &c.sites {
        c.assert_ledger_verifies(site);
    }
    // Each list step and the result are journaled, by digest.
    let steps = steps(&c);
    for step in [
        "hello",
        "link-0",
        "link-2",
        "compare-2",
        "verdict",
        "reveal-1",
        "result",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "{step} missing from {steps:?}"
        );
    }
}

#[test]
fn overlap_only_releases_the_size_and_nothing_else() {
    let mut c = Consortium::vertical(1600, 20.0);
    plant(&mut c);
    write_job(&c, 100, true);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    assert_eq!(c.result()["vertical"]["intersection"], 480);
    for site in &c.sites {
        assert_eq!(aligned(&c, site), None, "{site} learned membership");
    }
    let steps = steps(&c);
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("reveal") || s == "result"),
        "{steps:?}"
    );
}

#[test]
fn below_min_overlap_the_job_stops_and_releases_nothing() {
    let mut c = Consortium::vertical(1600, 20.0);
    plant(&mut c);
    write_job(&c, 481, false);
    let (coordinator, _parties) = run(&c);
    let log = coordinator.log_text();
    assert!(log.contains("below min_overlap (481)"), "{log}");
    assert!(!log.contains("480"), "the size leaked: {log}");
    assert!(!c.path().join("out/result.json").exists());
    for site in &c.sites {
        assert_eq!(aligned(&c, site), None, "{site} learned membership");
    }
    let done: Vec<_> = c
        .journal_records()
        .into_iter()
        .filter(|r| r["entry"]["kind"] == "intersection_done")
        .map(|r| r["entry"].clone())
        .collect();
    assert_eq!(done.len(), 1);
    assert!(done[0]["intersection"].is_null(), "{}", done[0]);
    assert!(!steps(&c).iter().any(|s| s.starts_with("reveal")));
    assert_journal_has_no_ids(&c);
}

#[test]
fn a_partner_that_stops_mid_intersection_aborts_it_naming_the_partner() {
    let mut c = Consortium::vertical(1600, 3.0);
    plant(&mut c);
    write_job(&c, 100, false);
    let mut coordinator = c.run_coordinator();
    let parties: Vec<Process> = c
        .sites
        .iter()
        .map(|s| c.run_participant(s, (s == "fintech-y").then_some("psi-roster")))
        .collect();
    coordinator.wait(std::time::Duration::from_secs(120));
    let log = coordinator.log_text();
    assert!(
        log.contains("fintech-y is at fault") && log.contains("link-0"),
        "{log}"
    );
    assert!(!c.path().join("out/result.json").exists());
    for (site, party) in c.sites.iter().zip(&parties) {
        assert_eq!(aligned(&c, site), None, "{site}");
        if site != "fintech-y" {
            party.expect_log("the coordinator stopped the vertical job", 30);
        }
    }
}

/// The bank's consenting customers as of the job's date, read by the
/// participant's own reader (the secure fit is under test, not RFMLT).
fn bank_features(c: &Consortium) -> Vec<fedseg_participant::rfmlt::Customer> {
    use fedseg_participant::rfmlt::{self, ColumnNames, Tables};
    let dir = c.path().join("sites/bank-a");
    let tables = Tables {
        transactions: dir.join("transactions.csv"),
        interactions: dir.join("interactions.csv"),
        customers: dir.join("customers.csv"),
        columns: ColumnNames::default(),
    };
    rfmlt::compute(&tables, time::macros::date!(2026 - 11 - 01))
        .unwrap()
        .customers
}

/// The partner's consenting rows: id → [log1p(clip sessions), clip spend].
fn partner_features(c: &Consortium) -> BTreeMap<String, [f64; 2]> {
    let text = fs::read_to_string(c.path().join("sites/fintech-x/features.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let sessions: f64 = f[1].parse().unwrap();
            let spend: f64 = f[2].parse().unwrap();
            (f[3] == "true").then(|| {
                let x = [
                    sessions.clamp(0.0, 500.0).ln_1p(),
                    spend.clamp(0.0, 100_000.0),
                ];
                (f[0].to_string(), x)
            })
        })
        .collect()
}

/// z-scores of `rows` over the training rows (population sd).
fn standardise(rows: &[Vec<f64>], train: &[bool]) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let d = rows[0].len();
    let n = train.iter().filter(|&&t| t).count() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| {
            rows.iter()
                .zip(train)
                .filter(|p| *p.1)
                .map(|(r, _)| r[j])
                .sum::<f64>()
                / n
        })
        .collect();
    let sd: Vec<f64> = (0..d)
        .map(|j| {
            let ss: f64 = rows
                .iter()
                .zip(train)
                .filter(|p| *p.1)
                .map(|(r, _)| (r[j] - mean[j]).powi(2))
                .sum();
            (ss / n).sqrt()
        })
        .collect();
    // Winsorised at the parties' documented ±3 standard deviations.
    let clip = fedseg_participant::joint::Z_CLIP;
    let z = rows
        .iter()
        .map(|r| {
            (0..d)
                .map(|j| ((r[j] - mean[j]) / sd[j]).clamp(-clip, clip))
                .collect()
        })
        .collect();
    (z, mean, sd)
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn the_joint_model_on_secret_shares_equals_the_centralized_fit_on_the_joined_data() {
    use fedseg_common::mpc::{eval, plain};
    use fedseg_common::propensity::{is_holdout, sigmoid};
    let c = Consortium::vertical(600, 20.0);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    // The centralized reference: join in the clear, standardise each
    // party's columns on the training rows, exact Newton.
    let partner = partner_features(&c);
    let joined: Vec<(String, Vec<f64>, [f64; 2], bool)> = bank_features(&c)
        .into_iter()
        .filter_map(|b| {
            let p = partner.get(&b.id)?;
            let x = [b.r, b.f.ln_1p(), b.m.ln_1p(), b.l, b.t];
            // Clipped to the default bounds, as in the horizontal model.
            let bounds = fedseg_common::features::DEFAULT_BOUNDS;
            let x = x
                .iter()
                .zip(bounds)
                .map(|(v, (lo, hi))| v.clamp(lo, hi))
                .collect();
            Some((b.id, x, *p, b.converted))
        })
        .collect();
    let result = c.result();
    let v = &result["vertical"];
    assert_eq!(v["intersection"], joined.len());
    let train: Vec<bool> = joined.iter().map(|r| !is_holdout(42, &r.0, 0.2)).collect();
    let bank_rows: Vec<Vec<f64>> = joined.iter().map(|r| r.1.clone()).collect();
    let partner_rows: Vec<Vec<f64>> = joined.iter().map(|r| r.2.to_vec()).collect();
    let (zb, mean_b, sd_b) = standardise(&bank_rows, &train);
    let (zp, mean_p, sd_p) = standardise(&partner_rows, &train);
    let design = |i: usize| -> Vec<f64> {
        std::iter::once(1.0)
            .chain(zb[i].iter().copied())
            .chain(zp[i].iter().copied())
            .collect()
    };
    let train = &train;
    let rows = |keep: bool| (0..joined.len()).filter(move |&i| train[i] == keep);
    let x: Vec<f64> = rows(true).flat_map(design).collect();
    let y: Vec<bool> = rows(true).map(|i| joined[i].3).collect();
    let beta = plain::fit(&x, &y, 8, 1.0);
    // Each party's own block, as it wrote it.
    let model = |site: &str| -> serde_json::Value {
        serde_json::from_str(&c.site_output(site, "vertical_model.json")).unwrap()
    };
    let (bank, fintech) = (model("bank-a"), model("fintech-x"));
    assert_eq!(
        bank["features"],
        serde_json::json!(["R", "log1p_F", "log1p_M", "L", "T"])
    );
    let close = |a: &[f64], b: &[f64], tol: f64, what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}: {a:?} vs {b:?}"
            );
        }
    };
    close(&floats(&bank["mean"]), &mean_b, 1e-9, "bank means");
    close(&floats(&bank["std"]), &sd_b, 1e-9, "bank sds");
    close(&floats(&fintech["mean"]), &mean_p, 1e-9, "partner means");
    close(&floats(&fintech["std"]), &sd_p, 1e-9, "partner sds");
    let secure: Vec<f64> = std::iter::once(bank["intercept"].as_f64().unwrap())
        .chain(floats(&bank["coefficients"]))
        .chain(floats(&fintech["coefficients"]))
        .collect();
    // The contract's objective, at the secure and the exact coefficients.
    let gap =
        (plain::objective(&x, &y, 8, &secure, 1.0) / plain::objective(&x, &y, 8, &beta, 1.0)) - 1.0;
    let worst = secure
        .iter()
        .zip(&beta)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("joint model: largest coefficient difference {worst:.2e}, objective gap {gap:.2e}");
    assert!(worst < 1e-4, "coefficients {secure:?} vs {beta:?}");
    assert!(gap.abs() < 1e-6, "objective gap {gap}");
    assert!(fintech.get("intercept").is_none());
    // The bank's joint scores, against the reference's.
    let scores = c.site_output("bank-a", "scores.csv");
    let by_id: BTreeMap<&str, f64> = scores
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1].parse().unwrap())
        })
        .collect();
    assert_eq!(by_id.len(), joined.len());
    let eta: Vec<f64> = (0..joined.len())
        .map(|i| design(i).iter().zip(&beta).map(|(a, b)| a * b).sum())
        .collect();
    for (i, r) in joined.iter().enumerate() {
        assert!(
            (by_id[r.0.as_str()] - sigmoid(eta[i])).abs() < 1e-3,
            "{}",
            r.0
        );
    }
    // The released contribution: the joint model against the bank's own,
    // on the same holdout, as computed centrally.
    let (he, hl): (Vec<f64>, Vec<bool>) = rows(false).map(|i| (eta[i], joined[i].3)).unzip();
    let joint = eval::evaluate(&he, &hl);
    let contribution = &v["contribution"];
    assert_eq!(contribution["holdout_count"], he.len());
    let auc = contribution["joint"]["auc"].as_f64().unwrap();
    assert!((auc - joint.auc).abs() < 0.001, "{auc} vs {}", joint.auc);
    let own_x: Vec<f64> = rows(true).flat_map(|i| design(i)[..6].to_vec()).collect();
    let own = plain::fit(&own_x, &y, 6, 1.0);
    let own_eta: Vec<f64> = rows(false)
        .map(|i| design(i)[..6].iter().zip(&own).map(|(a, b)| a * b).sum())
        .collect();
    let own_eval = eval::evaluate(&own_eta, &hl);
    let own_auc = contribution["label_holder_only"]["auc"].as_f64().unwrap();
    assert!(
        (own_auc - own_eval.auc).abs() < 1e-9,
        "{own_auc} vs {}",
        own_eval.auc
    );
    assert!(v["converged"].as_bool().unwrap(), "{v}");
    // The demo partner's columns carry signal: the joint model does better.
    assert!(
        contribution["auc_difference"].as_f64().unwrap() > 0.0,
        "{contribution}"
    );
    // Coefficients and per-customer values never reach the result.
    let text = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    assert!(!text.contains("coefficients") && !text.contains("C3e8-"));
    assert_journal_has_no_ids(&c);
    c.assert_ledger_verifies("bank-a");
    c.assert_ledger_verifies("fintech-x");
}

#[test]
fn a_coordinator_killed_mid_model_restarts_the_vertical_job_cleanly() {
    let c = Consortium::vertical(600, 20.0);
    let _parties: Vec<Process> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    // Killed in the joint model, after the intersection is journaled.
    let mut first = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", "vertical_message:200")]);
    let status = first.wait(std::time::Duration::from_secs(120));
    assert!(!status.success(), "{}", first.log_text());
    assert!(!c.path().join("out/result.json").exists());
    let mut second = c.run_coordinator();
    second.expect_success(300);
    assert!(second.log_text().contains("resuming from the journal"));
    let result = c.result();
    let v = &result["vertical"];
    let joined = bank_features(&c)
        .iter()
        .filter(|b| partner_features(&c).contains_key(&b.id))
        .count();
    assert_eq!(v["intersection"], joined);
    assert!(v["converged"].as_bool().unwrap(), "{v}");
    // Both runs of the intersection are in the journal; the second drew
    // fresh keys, so no hello repeats a sealing key.
    let hellos: Vec<String> = c
        .journal_records()
        .iter()
        .filter(|r| r["entry"]["step"] == "hello")
        .map(|r| r["entry"]["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hellos.len(), 4, "{hellos:?}");
    assert_eq!(hellos.iter().collect::<BTreeSet<_>>().len(), 4);
    assert_journal_has_no_ids(&c);
    c.assert_ledger_verifies("bank-a");
    c.assert_ledger_verifies("fintech-x");
}

#[test]
fn a_partner_whose_columns_are_noise_is_reported_as_adding_nothing_measurable() {
    let c = Consortium::vertical(600, 20.0);
    // The same customers, with values that have nothing to do with them.
    let text = fs::read_to_string(c.path().join("sites/fintech-x/features.csv")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!(
                "{},{},{:.2},{}",
                f[0],
                (noise() * 30.0) as u32,
                noise() * 500.0,
                f[3]
            )
        })
        .collect();
    c.write_features("fintech-x", &rows);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    let result = c.result();
    let contribution = &result["vertical"]["contribution"];
    let difference = contribution["auc_difference"].as_f64().unwrap();
    let se = contribution["auc_difference_standard_error"]
        .as_f64()
        .unwrap();
    assert!(se > 0.0 && difference.abs() <= 2.0 * se, "{contribution}");
    assert_eq!(contribution["measurable"], false, "{contribution}");
}

#[test]
fn demo_vertical_runs_a_whole_vertical_job_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let port = fedseg_tests::free_port();
    let out = std::process::Command::new(fedseg_tests::binary("fedseg-coordinator"))
        .args(["demo", "--vertical", "--customers", "400", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bank-a and fintech-x share"), "{stdout}");
    assert!(stdout.contains("holdout AUC"), "{stdout}");
    let result: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("out/result.json")).unwrap())
            .unwrap();
    assert!(
        result["vertical"]["contribution"]["joint"]["auc"].is_number(),
        "{result}"
    );
    let report = fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("## What the partners' data adds"),
        "{report}"
    );
    assert!(report.contains("measurable"), "{report}");
    for site in ["bank-a", "fintech-x"] {
        let job = fs::read_dir(dir.path().join("sites").join(site).join("out"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert!(job.join("vertical_model.json").exists(), "{site}");
        assert_eq!(job.join("scores.csv").exists(), site == "bank-a");
    }
}
