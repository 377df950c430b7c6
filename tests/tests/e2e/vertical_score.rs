//! Joint scoring on newer data (`[vertical] score_with`): a bank and two
//! partners train a joint model, then the partners' data changes, the
//! bank's reference date moves on, and the bank's analyst asks for a
//! scoring job (`fedseg-participant score --joint`, through the job
//! service): a fresh intersection writes the bank's `scores.csv`. Every score must equal the
//! sigmoid of the joint model (each party's saved block) applied centrally
//! to the new data of the new three-way join; the partners write nothing
//! per customer.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use fedseg_common::propensity::sigmoid;
use fedseg_tests::{Consortium, binary, floats};

use super::vertical::run;
use super::vertical_model::{add_second_partner, bank_features_as_of, partner_features};

/// `site`'s output directory of job `job`.
fn out(c: &Consortium, site: &str, job: &str) -> std::path::PathBuf {
    c.path().join("sites").join(site).join("out").join(job)
}

/// Newer partner data: a tenth of the customers gone, every value moved.
fn age_partner(c: &Consortium, site: &str) {
    let text = fs::read_to_string(c.path().join("sites").join(site).join("features.csv")).unwrap();
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| i % 10 != 3)
        .map(|(_, l)| {
            let f: Vec<&str> = l.split(',').collect();
            let sessions: u32 = f[1].parse().unwrap();
            let spend: f64 = f[2].parse().unwrap();
            format!("{},{},{:.2},{}", f[0], sessions + 1, spend * 1.1, f[3])
        })
        .collect();
    c.write_features(site, &rows);
}

/// A party's part of the linear predictor under its saved block.
fn part(block: &serde_json::Value, x: &[f64]) -> f64 {
    let (mean, sd, coef) = (
        floats(&block["mean"]),
        floats(&block["std"]),
        floats(&block["coefficients"]),
    );
    let clip = fedseg_participant::joint::Z_CLIP;
    (0..coef.len()).fold(block["intercept"].as_f64().unwrap_or(0.0), |eta, j| {
        eta + coef[j] * ((x[j] - mean[j]) / sd[j]).clamp(-clip, clip)
    })
}

#[test]
fn joint_scoring_on_newer_data_equals_the_saved_joint_model_applied_centrally() {
    let mut c = Consortium::vertical(600, 20.0);
    add_second_partner(&mut c);
    let (mut training, _parties) = run(&c);
    training.expect_success(1);
    let trained = c.result()["job_id"].as_str().unwrap().to_string();
    for site in ["fintech-x", "fintech-y"] {
        age_partner(&c, site);
    }
    // The bank's analyst asks for the scoring job from the bank's side,
    // through the long-running coordinator's job service.
    let mut serve = c.serve();
    let asked = Command::new(binary("fedseg-participant"))
        .current_dir(c.path())
        .args([
            "score",
            "--config",
            "sites/bank-a/participant.toml",
            "--joint",
        ])
        .args([
            trained.as_str(),
            "--analyst",
            "analyst.toml",
            "--as-of",
            "2026-11-20",
        ])
        .args(["--wait-s", "300"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&asked.stdout).into_owned();
    assert!(
        asked.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    serve.terminate();
    serve.wait(std::time::Duration::from_secs(30));
    let job_id = said
        .strip_prefix("job ")
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("{said}"));
    let text = fs::read_to_string(c.path().join("results").join(&job_id).join("result.json"));
    let result: serde_json::Value = serde_json::from_str(&text.unwrap()).unwrap();
    assert_ne!(job_id, trained);
    let v = &result["vertical"];
    assert_eq!(v["score_with"], trained.as_str());
    assert_eq!(result["as_of"], "2026-11-20");
    assert!(v["contribution"].is_null(), "{v}");

    // The centralized reference: the new three-way join in the clear, each
    // party's saved block applied to its own new columns.
    let block = |site: &str| -> serde_json::Value {
        let text = fs::read_to_string(out(&c, site, &trained).join("vertical_model.json"));
        serde_json::from_str(&text.unwrap()).unwrap()
    };
    let blocks = [block("bank-a"), block("fintech-x"), block("fintech-y")];
    let (x, y) = (
        partner_features(&c, "fintech-x"),
        partner_features(&c, "fintech-y"),
    );
    let bounds = fedseg_common::features::DEFAULT_BOUNDS;
    let expected: BTreeMap<String, f64> =
        bank_features_as_of(&c, time::macros::date!(2026 - 11 - 20))
            .into_iter()
            .filter_map(|b| {
                let (px, py) = (x.get(&b.id)?, y.get(&b.id)?);
                let bank: Vec<f64> = [b.r, b.f.ln_1p(), b.m.ln_1p(), b.l, b.t]
                    .iter()
                    .zip(bounds)
                    .map(|(v, (lo, hi))| v.clamp(lo, hi))
                    .collect();
                let eta = part(&blocks[0], &bank) + part(&blocks[1], px) + part(&blocks[2], py);
                Some((b.id, sigmoid(eta)))
            })
            .collect();
    assert_eq!(v["intersection"], expected.len());
    assert_eq!(v["scored"], expected.len());
    assert!(
        said.contains(&format!("scored {} shared customers", expected.len())),
        "{said}"
    );
    let scores = fs::read_to_string(out(&c, "bank-a", &job_id).join("scores.csv")).unwrap();
    let got: BTreeMap<String, f64> = scores
        .lines()
        .skip(1)
        .map(|l| {
            let (id, score) = l.split_once(',').unwrap();
            (id.to_string(), score.parse().unwrap())
        })
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, want) in &expected {
        assert!((got[id] - want).abs() < 2e-6, "{id}: {} vs {want}", got[id]);
    }
    // The partners learned nothing per customer: no scores, no model.
    for site in ["fintech-x", "fintech-y"] {
        for entry in fs::read_dir(out(&c, site, &job_id)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                ["intersection.csv", "result.json"].contains(&name.as_str()),
                "{site} wrote {name}"
            );
        }
        c.assert_ledger_verifies(site);
    }
    c.assert_ledger_verifies("bank-a");

    // A scoring job without one of the training's partners would leave its
    // part out of every score: each party that holds a block refuses it.
    let job = c.path().join("job.toml");
    let text = fs::read_to_string(&job)
        .unwrap()
        .replace(
            "[vertical]\n",
            &format!("[vertical]\nscore_with = \"{trained}\"\n"),
        )
        .replace("\"fintech-x\", \"fintech-y\"]", "\"fintech-x\"]");
    fs::write(&job, text).unwrap();
    let mut partial = c.run_coordinator();
    let status = partial.wait(std::time::Duration::from_secs(120));
    assert!(!status.success(), "{}", partial.log_text());
    partial.expect_log("was fitted by bank-a, fintech-x, fintech-y", 1);
    let scored = fs::read_dir(c.path().join("sites/bank-a/out"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("scores.csv").exists())
        .count();
    assert_eq!(
        scored, 2,
        "only the training and the first scoring job scored"
    );
}
