//! Site policies and paused sites end to end: real `fedseg-participant`
//! processes over mutual TLS. A bank whose `[policy]` excludes the job's
//! kind, and one that requires differential privacy of a job without it,
//! decline in their own words, which `fedseg-coordinator run` journals; the
//! others carry the job. And a site takes one job after another on one
//! session (the real coordinator server and round engine, in process, run
//! three jobs in a row): paused, it declines; resumed, it takes the next
//! job without a restart, with the data refreshed while it was paused. And
//! a bank answers no more rounds of a job than its `max_rounds`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_coordinator::engine::HubTransport;
use fedseg_coordinator::job::run_job;
use fedseg_coordinator::journal::JournalWriter;
use fedseg_coordinator::server;
use fedseg_tests::{Consortium, Process, binary, spawn};
use serde_json::Value;

/// A secure-sum job of `rounds` rounds over 2-vectors, with a purpose.
fn sum_job(seed: u64, rounds: u32) -> String {
    format!(
        "purpose = \"quarterly deposit totals\"\nseed = {seed}\nas_of = \"2026-11-01\"\n\
         holdout_fraction = 0.2\nl2 = 1.0\n\n[cohort]\nthreshold = 2\n\n\
         [secure_sum]\nvector = \"demo\"\nlength = 2\nrounds = {rounds}\nfrac_bits = 16\n\
         lo = -1000.0\nhi = 1000.0\n"
    )
}

fn site_config(c: &Consortium, site: &str) -> PathBuf {
    c.path().join("sites").join(site).join("participant.toml")
}

/// Appends `table` (TOML text) to `site`'s participant.toml.
fn append(c: &Consortium, site: &str, table: &str) {
    let path = site_config(c, site);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(path, format!("{text}\n{table}")).unwrap();
}

/// `fedseg-participant ARGS --config <site's participant.toml>`, checked.
fn participant(c: &Consortium, site: &str, args: &[&str]) -> String {
    let out = Command::new(binary("fedseg-participant"))
        .args(args)
        .arg("--config")
        .arg(site_config(c, site))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The journal's declines as (participant, job, reason).
fn declines(c: &Consortium) -> Vec<(String, String, String)> {
    c.declines()
        .iter()
        .map(|d| {
            let e = &d["entry"];
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_string();
            (text("participant"), text("job_id"), text("reason"))
        })
        .collect()
}

fn ledger(c: &Consortium, site: &str) -> Vec<Value> {
    fs::read_to_string(c.path().join("sites").join(site).join("ledger.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn banks_whose_policy_excludes_the_kind_or_requires_dp_decline_in_their_own_words() {
    let c = Consortium::new(3, 10.0, 4);
    for (i, site) in c.sites.iter().enumerate() {
        c.write_vector(site, &[i as f64 + 1.0, 10.0]);
    }
    // bank-a: a policy that admits the job; bank-b: none; bank-c: no
    // secure-sum jobs, then (for the second job) differential privacy
    // required.
    append(
        &c,
        "bank-a",
        "[policy]\nkinds = [\"secure-sum\"]\nmin_cohort = 3\nmax_rounds = 2\n",
    );
    let plain = fs::read_to_string(site_config(&c, "bank-c")).unwrap();
    let refusals = [
        (
            "[policy]\nkinds = [\"segmentation\", \"propensity\"]\n",
            "this site does not take part in secure-sum jobs (it admits segmentation, propensity)",
        ),
        (
            "[policy]\nrequire_dp = true\n",
            "the job asks for no differential privacy; this site requires a [privacy] budget",
        ),
    ];
    let mut participants = Vec::new();
    for (n, (policy, words)) in refusals.iter().enumerate() {
        fs::write(site_config(&c, "bank-c"), format!("{plain}\n{policy}")).unwrap();
        fs::write(c.path().join("job.toml"), sum_job(7 + n as u64, 2)).unwrap();
        let job_id = Job::load(&c.path().join("job.toml")).unwrap().id;
        drop(participants);
        participants = c.run_job();
        let declined = declines(&c);
        let of_job: Vec<_> = declined.iter().filter(|(_, j, _)| *j == job_id).collect();
        assert!(!of_job.is_empty(), "{declined:?}");
        for (site, _, reason) in of_job {
            assert_eq!((site.as_str(), reason.as_str()), ("bank-c", *words));
        }
        // The sum covers the two banks that accepted.
        let result = c.result();
        for round in result["rounds"].as_array().unwrap() {
            assert_eq!(
                round["survivors"],
                serde_json::json!(["bank-a", "bank-b"]),
                "{result:#}"
            );
            assert_eq!(round["sum"][0].as_f64().unwrap(), 3.0);
        }
    }
    // Nothing but the session's hellos and its answers left bank-c.
    assert!(ledger(&c, "bank-c").iter().all(|l| {
        ["hello", "job-answer", "job-finished"].contains(&l["kind"].as_str().unwrap())
    }));
    // Who asked for each job and why, in the ledger of a bank that took
    // it: the operator (no analyst signed it), its purpose.
    let accepted: Vec<Value> = ledger(&c, "bank-a")
        .into_iter()
        .filter_map(|l| l.get("accepted").cloned())
        .collect();
    let origin = serde_json::json!({"purpose": "quarterly deposit totals"});
    assert_eq!(accepted, [origin.clone(), origin]);
    let log = participants[0].log_text();
    assert!(
        log.contains("analyst=\"(operator)\"") && log.contains("quarterly deposit totals"),
        "{log}"
    );
    drop(participants);
    let shown = participant(&c, "bank-a", &["ledger", "show"]);
    assert!(shown.contains("analyst (operator):"), "{shown}");
    assert!(
        shown.contains("purpose: quarterly deposit totals"),
        "{shown}"
    );
    c.assert_ledger_verifies("bank-a");
}

/// Starts `site`'s node with `args` after `run`.
fn run_site(c: &Consortium, site: &str, args: &[&str]) -> Process {
    let mut command = Command::new(binary("fedseg-participant"));
    command
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(site_config(c, site));
    spawn(command, c.path().join(format!("{site}.log")))
}

#[test]
fn a_site_takes_job_after_job_on_one_session_and_declines_while_paused() {
    let c = Consortium::new(3, 10.0, 4);
    for (i, site) in c.sites.iter().enumerate() {
        c.write_vector(site, &[i as f64 + 1.0, 1.0]);
    }
    let config = CoordinatorConfig::load(&c.path().join("coordinator.toml")).unwrap();
    let jobs: Vec<Job> = (1..=3)
        .map(|n| {
            let path = c.path().join(format!("job-{n}.toml"));
            fs::write(&path, sum_job(n, 2)).unwrap();
            Job::load(&path).unwrap()
        })
        .collect();
    // bank-c starts paused.
    let sites: Vec<Process> = c
        .sites
        .iter()
        .map(|s| run_site(&c, s, if s == "bank-c" { &["--pause"] } else { &[] }))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reports = runtime.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut running = server::start(&config, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let mut journal = JournalWriter::for_coordinator(&config).unwrap();
        let mut reports = Vec::new();
        for (n, job) in jobs.iter().enumerate() {
            // Between jobs, bank-c's data team refreshes its data and
            // resumes it, then pauses it.
            match n {
                1 => {
                    c.write_vector("bank-c", &[10.0, 1.0]);
                    participant(&c, "bank-c", &["resume"])
                }
                2 => participant(&c, "bank-c", &["pause"]),
                _ => String::new(),
            };
            let sessions = HubTransport::new(running.hub.clone(), &mut running.events);
            let (report, _) = run_job(sessions, &config, job, &mut journal).await.unwrap();
            reports.push(report);
        }
        running.hub.close_all();
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
        reports
    });
    let took_part: Vec<Vec<String>> = reports.iter().map(|r| r.took_part.clone()).collect();
    let pair = vec!["bank-a".to_string(), "bank-b".to_string()];
    assert_eq!(took_part, [pair.clone(), c.sites.clone(), pair]);
    for (report, want) in reports.iter().zip([3.0, 13.0, 3.0]) {
        for round in &report.rounds {
            assert_eq!(round.sum.as_ref().unwrap()[0], want, "{}", report.job_id);
        }
    }
    // Paused, bank-c declined jobs 1 and 3 in its words, journaled.
    let declined = declines(&c);
    assert!(!declined.is_empty());
    for (site, job, reason) in &declined {
        assert_eq!(
            (site.as_str(), reason.as_str()),
            ("bank-c", "paused by the site")
        );
        assert!(job == &jobs[0].id || job == &jobs[2].id, "{job}");
    }
    // One session each for all three jobs: no node reconnected.
    for site in &sites {
        let log = site.log_text();
        assert_eq!(log.matches("session open").count(), 1, "{log}");
    }
    drop(sites);
    // Three jobs in one journal; each bank's ledger matches it.
    let verified = c.verify_journal(&c.path().join("journal.log"));
    assert!(verified.status.success(), "{verified:?}");
    for site in &c.sites {
        c.assert_ledger_verifies(site);
    }
    let shown = participant(&c, "bank-a", &["ledger", "show"]);
    for job in &jobs {
        assert!(shown.contains(&format!("    {}: ", job.id)), "{shown}");
    }
}

#[test]
fn a_bank_answers_no_more_rounds_of_a_job_than_its_policy_allows() {
    let c = Consortium::with_customers(3, 600, 10.0, 4);
    c.write_segmentation_job(
        3,
        "k_min = 2\nk_max = 2\nrestarts = 1\nmax_iterations = 3\nmin_segment_size = 5\n",
    );
    append(
        &c,
        "bank-c",
        "[policy]\nrequire_purpose = false\nmax_rounds = 2\n",
    );
    let participants = c.run_job();
    // bank-c sent two masked inputs, then refused the third request in
    // its words; the others carried the job to its end.
    let inputs = ledger(&c, "bank-c")
        .iter()
        .filter(|l| l["kind"] == "masked-input")
        .count();
    assert_eq!(inputs, 2);
    let log = participants[2].log_text();
    assert!(
        log.contains("this site answers at most 2 secure-sum rounds per job and has answered 2"),
        "{log}"
    );
    let result = c.result();
    let rounds = result["rounds"].as_array().unwrap();
    assert!(rounds.len() > 2, "{result:#}");
    let last = rounds.last().unwrap();
    assert_eq!(
        last["survivors"],
        serde_json::json!(["bank-a", "bank-b"]),
        "{result:#}"
    );
    assert!(result["segmentation"]["centroids"].is_array());
}
