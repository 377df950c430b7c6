//! The joint model of vertical jobs over real processes and mutual TLS:
//! the parties' blocks, the bank's scores and the released contribution
//! against a centralized fit on the clear join, with one partner and with
//! two; a coordinator crash mid-model; a noise partner; the demo.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use fedseg_tests::{Consortium, Process, floats};

use super::vertical::{assert_journal_has_no_ids, run};

/// The bank's consenting customers as of the job's date, read by the
/// participant's own reader (the secure fit is under test, not RFMLT).
pub(crate) fn bank_features_as_of(
    c: &Consortium,
    as_of: time::Date,
) -> Vec<fedseg_participant::rfmlt::Customer> {
    use fedseg_participant::rfmlt::{self, ColumnNames, Tables};
    let dir = c.path().join("sites/bank-a");
    let tables = Tables {
        transactions: dir.join("transactions.csv"),
        interactions: dir.join("interactions.csv"),
        customers: dir.join("customers.csv"),
        columns: ColumnNames::default(),
    };
    rfmlt::compute(&tables, as_of).unwrap().customers
}

/// The bank's consenting customers as of the training jobs' date.
fn bank_features(c: &Consortium) -> Vec<fedseg_participant::rfmlt::Customer> {
    bank_features_as_of(c, time::macros::date!(2026 - 11 - 01))
}

/// A partner's consenting rows: id → [log1p(clip sessions), clip spend].
pub(crate) fn partner_features(c: &Consortium, site: &str) -> BTreeMap<String, [f64; 2]> {
    let path = c.path().join("sites").join(site).join("features.csv");
    let text = fs::read_to_string(path).unwrap();
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

/// The released calibration of the joint model (the bank's aggregate bins)
/// matches the centralized model's `central` bins (a customer within the
/// secure fit's error of a bin edge may fall on the other side), and the
/// HTML report shows it with the overlap, both models and the verdict.
fn assert_calibration_reported(
    c: &Consortium,
    contribution: &serde_json::Value,
    central: &[fedseg_common::result::CalibrationBin],
) {
    let bins = contribution["joint_calibration"].as_array().unwrap();
    assert_eq!(bins.len(), central.len());
    let count = |b: &serde_json::Value| b["count"].as_f64().unwrap();
    assert_eq!(
        bins.iter().map(count).sum::<f64>(),
        contribution["holdout_count"].as_f64().unwrap()
    );
    for (b, want) in bins.iter().zip(central) {
        assert!((count(b) - want.count).abs() <= 2.0, "{b} vs {want:?}");
        if want.count >= 20.0 {
            let predicted = b["mean_predicted"].as_f64().unwrap();
            assert!(
                (predicted - want.mean_predicted).abs() < 0.01,
                "{b} vs {want:?}"
            );
        }
    }
    let html = fs::read_to_string(c.path().join("out/report.html")).unwrap();
    for needle in [
        "<h2>The intersection</h2>",
        "What the partners' data adds",
        "data-key=\"verdict\"",
        "Calibration (joint model)",
        "<svg",
        "no two colluding",
    ] {
        assert!(html.contains(needle), "{needle} missing from report.html");
    }
    assert!(!html.contains("C3e8-"), "a customer id in report.html");
}

/// A seeded stream of uniform numbers in [0, 1) (a linear congruential
/// generator: test data, not cryptography).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
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

#[test]
fn the_joint_model_on_secret_shares_equals_the_centralized_fit_on_the_joined_data() {
    let c = Consortium::vertical(600, 20.0);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    assert_centralized(&c, &["fintech-x"]);
    assert_threat_model_and_batches(&c, &["bank-a", "fintech-x"]);
}

/// The journal states the job's threat model at its submission (and
/// `journal show` prints it), and holds the joint model's openings and
/// dealer requests as one batch per party and step, never one by one.
fn assert_threat_model_and_batches(c: &Consortium, computing: &[&str]) {
    let records = c.journal_records();
    let kind = |r: &serde_json::Value| r["entry"]["kind"].as_str().unwrap().to_string();
    let at = |k: &str| records.iter().position(|r| kind(r) == k).unwrap();
    assert_eq!(at("vertical_threat_model"), at("job_submitted") + 1);
    let threat = &records[at("vertical_threat_model")]["entry"];
    assert!(
        threat["assumption"]
            .as_str()
            .unwrap()
            .contains("honest-but-curious parties, no two colluding"),
        "{threat}"
    );
    assert_eq!(threat["dealer"], "coordinator");
    let show = std::process::Command::new(fedseg_tests::binary("fedseg-coordinator"))
        .args(["journal", "show", "--journal"])
        .arg(c.path().join("journal.log"))
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("threat model: honest-but-curious"), "{show}");
    assert!(
        !records.iter().any(|r| kind(r) == "vertical_message"
            && r["entry"]["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("mpc-opening") || s == "mpc-request")),
        "an MPC message journaled on its own"
    );
    let steps = c.result()["vertical"]["steps"].as_u64().unwrap();
    let batches: Vec<(String, String)> = records
        .iter()
        .filter(|r| kind(r) == "vertical_batch")
        .map(|r| {
            let e = &r["entry"];
            (
                e["from"].as_str().unwrap().into(),
                e["step"].as_str().unwrap().into(),
            )
        })
        .collect();
    for party in computing {
        let mut want = vec!["mpc-setup".to_string()];
        want.extend((1..=steps).map(|k| format!("mpc-step-{k}")));
        want.push("mpc-finish".into());
        let got: Vec<&String> = batches
            .iter()
            .filter(|b| b.0 == *party)
            .map(|b| &b.1)
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "{party}");
    }
}

/// Adds partner `fintech-y` holding about 85% of fintech-x's customers and
/// 100 of its own; its sessions carry the bank's label (with noise), its
/// spend is noise.
pub(crate) fn add_second_partner(c: &mut Consortium) {
    let labels: BTreeMap<String, bool> =
        fs::read_to_string(c.path().join("sites/bank-a/customers.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[2] == "1" || f[2] == "true")
            })
            .collect();
    let mut noise = uniform(0x9e37_79b9_7f4a_7c15_u64);
    let mut rows = Vec::new();
    for id in partner_features(c, "fintech-x").keys() {
        if noise() < 0.15 {
            continue;
        }
        let converted = labels.get(id).copied().unwrap_or(false);
        let sessions = (noise() * 8.0 + if converted { 5.0 } else { 1.0 }) as u32;
        rows.push(format!("{id},{sessions},{:.2},true", noise() * 1000.0));
    }
    rows.extend((0..100).map(|i| format!("YONLY-{i:04},{},{:.2},true", i % 9, noise() * 900.0)));
    c.add_partner("fintech-y", &rows);
    let job = c.path().join("job.toml");
    let text = fs::read_to_string(&job)
        .unwrap()
        .replace("\"fintech-x\"]", "\"fintech-x\", \"fintech-y\"]");
    fs::write(&job, text).unwrap();
}

#[test]
fn a_bank_and_two_partners_fit_the_joint_model_of_the_centralized_three_way_join() {
    let mut c = Consortium::vertical(700, 20.0);
    add_second_partner(&mut c);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    assert_eq!(
        c.result()["vertical"]["partners"],
        serde_json::json!(["fintech-x", "fintech-y"])
    );
    assert_centralized(&c, &["fintech-x", "fintech-y"]);
    // The second partner received its block and nothing per customer:
    // besides its own intersection file, only the job's public result.
    let out = fs::read_dir(c.path().join("sites/fintech-y/out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for entry in fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["intersection.csv", "vertical_model.json", "result.json"].contains(&name.as_str()),
            "fintech-y wrote {name}"
        );
    }
    c.assert_ledger_verifies("fintech-y");
}

/// The parties' blocks, the bank's scores and the released contribution
/// equal a centralized L2 logistic regression on the clear join of the
/// bank and `partners` (each party's columns standardised on the training
/// rows), solved by exact Newton in the test.
fn assert_centralized(c: &Consortium, partners: &[&str]) {
    use fedseg_common::mpc::{eval, plain};
    use fedseg_common::propensity::{is_holdout, sigmoid};
    let tables: Vec<_> = partners.iter().map(|p| partner_features(c, p)).collect();
    let joined: Vec<(String, Vec<f64>, Vec<f64>, bool)> = bank_features(c)
        .into_iter()
        .filter_map(|b| {
            let p: Vec<f64> = tables
                .iter()
                .map(|t| t.get(&b.id).map(|v| v.to_vec()))
                .collect::<Option<Vec<_>>>()?
                .concat();
            let x = [b.r, b.f.ln_1p(), b.m.ln_1p(), b.l, b.t];
            // Clipped to the default bounds, as in the horizontal model.
            let bounds = fedseg_common::features::DEFAULT_BOUNDS;
            let x = x
                .iter()
                .zip(bounds)
                .map(|(v, (lo, hi))| v.clamp(lo, hi))
                .collect();
            Some((b.id, x, p, b.converted))
        })
        .collect();
    let result = c.result();
    let v = &result["vertical"];
    assert_eq!(v["intersection"], joined.len());
    let train: Vec<bool> = joined.iter().map(|r| !is_holdout(42, &r.0, 0.2)).collect();
    let bank_rows: Vec<Vec<f64>> = joined.iter().map(|r| r.1.clone()).collect();
    let partner_rows: Vec<Vec<f64>> = joined.iter().map(|r| r.2.clone()).collect();
    // Per-column standardisation: the partners' columns side by side are
    // standardised exactly as each partner does its own.
    let (zb, mean_b, sd_b) = standardise(&bank_rows, &train);
    let (zp, mean_p, sd_p) = standardise(&partner_rows, &train);
    let d = 6 + 2 * partners.len();
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
    let beta = plain::fit(&x, &y, d, 1.0);
    // Each party's own block, as it wrote it.
    let model = |site: &str| -> serde_json::Value {
        serde_json::from_str(&c.site_output(site, "vertical_model.json")).unwrap()
    };
    let bank = model("bank-a");
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
    let mut secure: Vec<f64> = std::iter::once(bank["intercept"].as_f64().unwrap())
        .chain(floats(&bank["coefficients"]))
        .collect();
    for (k, site) in partners.iter().enumerate() {
        let block = model(site);
        close(
            &floats(&block["mean"]),
            &mean_p[2 * k..2 * k + 2],
            1e-9,
            site,
        );
        close(&floats(&block["std"]), &sd_p[2 * k..2 * k + 2], 1e-9, site);
        assert!(block.get("intercept").is_none(), "{site}");
        secure.extend(floats(&block["coefficients"]));
    }
    // The contract's objective, at the secure and the exact coefficients.
    let gap =
        (plain::objective(&x, &y, d, &secure, 1.0) / plain::objective(&x, &y, d, &beta, 1.0)) - 1.0;
    let worst = secure
        .iter()
        .zip(&beta)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("joint model: largest coefficient difference {worst:.2e}, objective gap {gap:.2e}");
    assert!(worst < 1e-4, "coefficients {secure:?} vs {beta:?}");
    assert!(gap.abs() < 1e-6, "objective gap {gap}");
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
    assert_calibration_reported(c, contribution, &eval::calibration(&he, &hl));
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
    // The partners' columns carry signal: the joint model does better.
    assert!(
        contribution["auc_difference"].as_f64().unwrap() > 0.0,
        "{contribution}"
    );
    // Coefficients and per-customer values never reach the result.
    let text = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    assert!(!text.contains("coefficients") && !text.contains("C3e8-"));
    assert_journal_has_no_ids(c);
    c.assert_ledger_verifies("bank-a");
    c.assert_ledger_verifies("fintech-x");
}

#[test]
fn a_coordinator_killed_mid_model_restarts_the_vertical_job_cleanly() {
    let c = Consortium::vertical(600, 20.0);
    let _parties: Vec<Process> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    // Killed in the joint model, after the intersection is journaled.
    let mut first = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", "vertical_batch:6")]);
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
        .filter(|b| partner_features(&c, "fintech-x").contains_key(&b.id))
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
    let mut noise = uniform(0x2545_f491_4f6c_dd1d_u64);
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
