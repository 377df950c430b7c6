//! Differential privacy end to end: three banks over mutual TLS run a job
//! with a `[privacy]` budget. The coordinator journals the ρ of every
//! release, each bank's ledger holds the ρ it computed itself, and a bank
//! whose own policy is stricter than the job's budget declines it.

use std::fs;

use fedseg_common::dp;
use fedseg_tests::{Consortium, binary};
use serde_json::Value;

const BUDGET: &str = "[privacy]\nepsilon = 4.0\ndelta = 1e-6\n";

fn write_job(c: &Consortium) {
    fs::write(
        c.path().join("job.toml"),
        format!(
            "seed = 5\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
             [segmentation]\nk_min = 3\nk_max = 3\nrestarts = 1\nmin_segment_size = 20\n\
             max_iterations = 4\n\n\
             [propensity]\nmax_iterations = 3\nscore_bins = 20\n\n{BUDGET}"
        ),
    )
    .unwrap();
}

fn ledger(c: &Consortium, site: &str) -> Vec<Value> {
    fs::read_to_string(c.path().join("sites").join(site).join("ledger.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Gives `site` a privacy policy in its participant.toml.
fn set_policy(c: &Consortium, site: &str, policy: &str) {
    let path = c.path().join("sites").join(site).join("participant.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&format!("\n[privacy]\n{policy}"));
    fs::write(path, text).unwrap();
}

#[test]
fn a_private_job_spends_within_its_budget_and_every_bank_can_check_it() {
    let c = Consortium::with_customers(3, 3000, 20.0, 32);
    write_job(&c);
    // A bank whose policy admits the job takes part.
    set_policy(&c, &c.sites[1], "max_epsilon_per_job = 4.0\n");
    drop(c.run_job());
    let result = c.result();
    let privacy = &result["privacy"];
    assert_eq!(privacy["dp"], true, "{privacy}");
    let epsilon = privacy["epsilon"].as_f64().unwrap();
    let rho = privacy["rho"].as_f64().unwrap();
    assert!(epsilon > 0.5 && epsilon <= 4.0, "{privacy}");
    assert!((dp::epsilon_for(rho, 1e-6) - epsilon).abs() < 1e-9);
    // Row counts have no per-customer bound: withheld. Counts carry noise.
    assert!(result["census"]["transactions"].is_null());
    let customers = result["census"]["customers"].as_f64().unwrap();
    assert!(customers.fract() != 0.0 && (customers - 2850.0).abs() < 400.0);

    // The journal: the budget and clip bounds at submission, then one
    // privacy record per released round, adding up.
    let records = c.journal_records();
    let budget_record = records
        .iter()
        .map(|r| &r["entry"])
        .find(|e| e["kind"] == "privacy_budget")
        .expect("the budget is journaled");
    assert_eq!(budget_record["epsilon"], 4.0);
    assert_eq!(budget_record["clip"][4], 50.0);
    // Census, activity, statistics, 4 Lloyd steps, profiles, 3 + 1 Newton
    // steps, evaluation, campaign.
    assert_eq!(budget_record["planned_releases"], 14);
    let spent: Vec<&Value> = records
        .iter()
        .map(|r| &r["entry"])
        .filter(|e| e["kind"] == "privacy_spent")
        .collect();
    let rounds = result["secure_sum_rounds"].as_u64().unwrap() as usize;
    assert_eq!(spent.len(), rounds);
    let total: f64 = spent.iter().map(|e| e["rho"].as_f64().unwrap()).sum();
    assert!((total - rho).abs() < 1e-12 * rho.max(1.0));
    assert_eq!(spent.last().unwrap()["total_rho"].as_f64().unwrap(), rho);
    for e in &spent {
        assert_eq!(e["contributors"], 3);
    }

    // Each bank's ledger: the ρ of each masked input, as the bank computed
    // it assuming only the threshold's noise, so never below what the
    // coordinator journaled and never above the declared budget.
    let budget = dp::rho_for(4.0, 1e-6);
    for site in &c.sites {
        let lines = ledger(&c, site);
        let inputs: Vec<&Value> = lines
            .iter()
            .filter(|l| l["kind"] == "masked-input")
            .collect();
        assert_eq!(inputs.len(), rounds, "{site}");
        let own: f64 = inputs.iter().map(|l| l["rho"].as_f64().unwrap()).sum();
        assert!(own >= rho && own <= budget * (1.0 + 1e-9), "{site}: {own}");
    }
    // The bank's own view: `ledger show` totals what it spent on the job.
    let shown = std::process::Command::new(binary("fedseg-participant"))
        .args(["ledger", "show", "--config"])
        .arg(
            c.path()
                .join("sites")
                .join(&c.sites[0])
                .join("participant.toml"),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("privacy spent on"))
        .unwrap_or_else(|| panic!("{text}"));
    let shown_epsilon: f64 = line.rsplit("epsilon = ").next().unwrap()[..5]
        .trim()
        .parse()
        .unwrap();
    assert!(
        shown_epsilon >= epsilon - 1e-3 && shown_epsilon <= 4.0 + 1e-3,
        "{line}"
    );
    // The model and evaluation still came out.
    let auc = result["propensity"]["evaluation"]["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
}

#[test]
fn a_bank_with_a_stricter_policy_declines_and_the_others_carry_the_job() {
    let c = Consortium::with_customers(3, 1500, 20.0, 32);
    write_job(&c);
    set_policy(&c, &c.sites[0], "max_epsilon_per_job = 1.0\n");
    let participants = c.run_job();
    let log = participants[0].log_text();
    assert!(log.contains("exceeds this site's policy"), "{log}");
    // The refusal is journaled in the bank's words; its ledger holds no
    // contribution (only the job's end record it was told, received).
    let declined: Vec<Value> = c
        .journal_records()
        .into_iter()
        .filter(|r| r["entry"]["kind"] == "participant_declined")
        .collect();
    // (A bank that connects while the job starts can be offered it twice,
    // and declines each time.)
    assert!(!declined.is_empty());
    for d in &declined {
        assert_eq!(d["entry"]["participant"], c.sites[0].as_str());
        assert!(d["entry"]["reason"].as_str().unwrap().contains("ε = 4"));
    }
    assert!(
        ledger(&c, &c.sites[0])
            .iter()
            .all(|l| ["hello", "job-answer", "job-finished"].contains(&l["kind"].as_str().unwrap()))
    );
    let result = c.result();
    assert_eq!(result["privacy"]["dp"], true);
    for round in result["rounds"].as_array().unwrap() {
        assert_eq!(round["survivors"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn a_job_too_few_banks_accept_fails_with_their_reasons() {
    let c = Consortium::with_customers(3, 600, 20.0, 32);
    write_job(&c);
    for site in &c.sites[..2] {
        set_policy(&c, site, "max_epsilon_per_job = 1.0\n");
    }
    let mut coordinator = c.run_coordinator();
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let status = coordinator.wait(std::time::Duration::from_secs(120));
    assert!(!status.success());
    let log = coordinator.log_text();
    assert!(
        log.contains("only 1 cohort members accepted the job")
            && log.contains("exceeds this site's policy"),
        "{log}"
    );
}

#[test]
fn a_private_job_resumed_after_a_crash_accounts_every_release_once() {
    let c = Consortium::with_customers(3, 1500, 10.0, 4);
    write_job(&c);
    let participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    // Killed right after the fifth release is journaled and before its
    // privacy record: the resumed coordinator must account for it.
    let mut first = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", "aggregate_released:5")]);
    assert!(!first.wait(std::time::Duration::from_secs(120)).success());
    let mut second = c.run_coordinator();
    second.expect_success(120);
    assert!(second.log_text().contains("resuming from the journal"));
    let result = c.result();
    let rho = result["privacy"]["rho"].as_f64().unwrap();
    let records = c.journal_records();
    let released: Vec<u64> = records
        .iter()
        .filter(|r| r["entry"]["kind"] == "aggregate_released")
        .map(|r| r["entry"]["round"].as_u64().unwrap())
        .collect();
    let mut accounted: Vec<u64> = records
        .iter()
        .filter(|r| r["entry"]["kind"] == "privacy_spent")
        .map(|r| r["entry"]["round"].as_u64().unwrap())
        .collect();
    accounted.sort_unstable();
    assert_eq!(accounted, released, "one privacy record per release");
    let total: f64 = records
        .iter()
        .filter(|r| r["entry"]["kind"] == "privacy_spent")
        .map(|r| r["entry"]["rho"].as_f64().unwrap())
        .sum();
    assert!((total - rho).abs() < 1e-12, "{total} vs {rho}");
    assert!(result["privacy"]["epsilon"].as_f64().unwrap() <= 4.0);
    drop(participants);
}
