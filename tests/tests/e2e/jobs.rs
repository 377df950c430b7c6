//! The job service of a long-running `serve`: an analyst submits signed
//! jobs, they run one at a time in order while the banks stay connected,
//! a cancelled job releases nothing after its cancellation, results are
//! fetched over the service, a killed coordinator resumes the running job
//! and then runs the queued one, and certificates of other roles cannot
//! submit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fedseg_tests::{Consortium, Process, binary, pki};

/// Writes `<id>.toml`, the `analyst.toml` of a certificate `id` (of any
/// role) issued by the consortium's CA.
fn analyst_config(c: &Consortium, id: &str, role: &str) -> PathBuf {
    let pki_dir = c.path().join("pki");
    if !pki_dir.join(format!("{id}.crt")).exists() {
        pki(&pki_dir, &["issue", "--id", id, "--role", role]);
    }
    let path = c.path().join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            "id = \"{id}\"\ncoordinator = \"https://127.0.0.1:{}\"\n\
             coordinator_id = \"coordinator\"\n\n[tls]\nca = \"pki/ca.crt\"\n\
             cert = \"pki/{id}.crt\"\nkey = \"pki/{id}.key\"\n",
            c.port
        ),
    )
    .unwrap();
    path
}

/// `fedseg-coordinator job ARGS --config CONFIG`.
fn job(config: &Path, args: &[&str]) -> Output {
    Command::new(binary("fedseg-coordinator"))
        .arg("job")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `<id>.toml`: a secure-sum job of `rounds` rounds with a purpose.
fn write_sum_job(c: &Consortium, id: &str, rounds: u32) -> PathBuf {
    let path = c.path().join(format!("{id}.job.toml"));
    std::fs::write(
        &path,
        format!(
            "job_id = \"{id}\"\npurpose = \"Quarterly totals, run {id}\"\n\
             seed = 7\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
             [secure_sum]\nvector = \"demo\"\nlength = 4\nrounds = {rounds}\n\
             frac_bits = 16\nlo = -1000000.0\nhi = 1000000.0\n"
        ),
    )
    .unwrap();
    path
}

fn submit(analyst: &Path, job_file: &Path) -> String {
    let out = job(analyst, &["submit", "--job", job_file.to_str().unwrap()]);
    assert!(out.status.success(), "submit: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `job show ID` as key → value.
fn show(analyst: &Path, id: &str) -> std::collections::BTreeMap<String, String> {
    let out = job(analyst, &["show", id]);
    assert!(out.status.success(), "show: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until job `id` is in `state`, showing it when it never is.
fn await_state(analyst: &Path, id: &str, state: &str, secs: u64) {
    let start = Instant::now();
    loop {
        let shown = show(analyst, id);
        if shown.get("state").map(String::as_str) == Some(state) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "job {id} never became {state}: {shown:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Released rounds of job `id` so far.
/// Waits up to two minutes until job `id` released `rounds` rounds.
fn await_released(analyst: &Path, id: &str, rounds: u64, never: &str) {
    let start = Instant::now();
    while released(analyst, id) < rounds {
        assert!(start.elapsed() < Duration::from_secs(120), "{never}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn released(analyst: &Path, id: &str) -> u64 {
    show(analyst, id)
        .get("rounds")
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// A consortium of three banks with an analyst listed, the coordinator
/// serving and every bank connected.
fn serving() -> (Consortium, Process, Vec<Process>, PathBuf) {
    serving_with(|_| {})
}

/// [`serving`], with `prepare` run on the consortium before anything starts.
fn serving_with(prepare: impl FnOnce(&Consortium)) -> (Consortium, Process, Vec<Process>, PathBuf) {
    let c = Consortium::new(3, 5.0, 16);
    prepare(&c);
    let analyst = analyst_config(&c, "analyst-a", "analyst");
    let config = c.path().join("coordinator.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "analysts = [\"analyst\"]",
        "analysts = [\"analyst\", \"analyst-a\"]",
    );
    std::fs::write(&config, text).unwrap();
    let serve = c.serve();
    let banks = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    (c, serve, banks, analyst)
}

/// Sequence numbers of the journal records of `kind` for `job`.
fn records_of(c: &Consortium, kind: &str, job: &str) -> Vec<u64> {
    c.journal_records()
        .iter()
        .filter(|r| r["entry"]["kind"] == kind && r["entry"]["job_id"] == job)
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect()
}

#[test]
fn three_jobs_run_in_order_one_is_cancelled_and_results_are_fetched() {
    let mut metrics_port = 0;
    let (c, _serve, _banks, analyst) = serving_with(|c| metrics_port = c.enable_metrics());
    let first = submit(&analyst, &write_sum_job(&c, "sum-1", 3));
    let second = submit(&analyst, &write_sum_job(&c, "sum-2", 400));
    let third = submit(&analyst, &write_sum_job(&c, "sum-3", 2));
    assert_eq!((first.as_str(), second.as_str()), ("sum-1", "sum-2"));
    let listed = text(&job(&analyst, &["list"]));
    for id in ["sum-1", "sum-2", "sum-3"] {
        assert!(listed.contains(id), "{listed}");
    }

    await_state(&analyst, &first, "finished", 120);
    await_released(&analyst, &second, 2, "sum-2 never ran");
    let cancel = job(&analyst, &["cancel", &second, "--reason", "wrong quarter"]);
    assert!(cancel.status.success(), "cancel: {}", text(&cancel));
    assert!(
        text(&cancel).contains("state: cancelled"),
        "{}",
        text(&cancel)
    );
    await_state(&analyst, &third, "finished", 120);

    // In order: each job started after the one before it ended.
    let started = |id: &str| records_of(&c, "job_submitted", id)[0];
    let ended = |id: &str| records_of(&c, "job_finished", id)[0];
    assert!(ended("sum-1") < started("sum-2") && ended("sum-2") < started("sum-3"));
    // Nothing of the cancelled job was released after its cancellation.
    let cancelled_at = records_of(&c, "job_cancelled", "sum-2")[0];
    let releases = records_of(&c, "aggregate_released", "sum-2");
    assert!(!releases.is_empty() && releases.len() < 400);
    assert!(
        releases.iter().all(|&r| r < cancelled_at),
        "{releases:?} after {cancelled_at}"
    );
    assert_eq!(records_of(&c, "aggregate_released", "sum-3").len(), 2);

    // The analyst fetches a finished job's result; a cancelled one has none.
    let out = c.path().join("fetched");
    let fetched = job(
        &analyst,
        &["result", &first, "--out", out.to_str().unwrap()],
    );
    assert!(fetched.status.success(), "{}", text(&fetched));
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["job_id"], "sum-1");
    assert_eq!(result["rounds"].as_array().unwrap().len(), 3);
    let refused = job(
        &analyst,
        &["result", &second, "--out", out.to_str().unwrap()],
    );
    assert!(!refused.status.success() && text(&refused).contains("cancelled"));

    // History: every job with its analyst; the journal verifies, with the
    // three analyst signatures checked.
    let all = text(&job(&analyst, &["list", "--all"]));
    assert_eq!(all.matches("analyst-a").count(), 3, "{all}");
    let verified = c.verify_journal(&c.path().join("journal.log"));
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{said}");
    assert!(said.contains("3 jobs queued by analysts"), "{said}");
    // The queue's outcomes and durations are in /metrics.
    let (_, scraped) = fedseg_tests::http_get(metrics_port, "/metrics");
    for line in [
        "fedseg_jobs_total{outcome=\"finished\"} 2",
        "fedseg_jobs_total{outcome=\"cancelled\"} 1",
        "fedseg_jobs_queued 0",
        "fedseg_job_duration_seconds_count 3",
    ] {
        assert!(scraped.contains(line), "{line} missing in\n{scraped}");
    }
    // Each bank stayed connected and took all three jobs on one session.
    for site in &c.sites {
        c.assert_ledger_verifies(site);
    }
}

#[test]
fn only_listed_analysts_submit_and_a_job_must_state_its_purpose() {
    let (c, _serve, _banks, analyst) = serving();
    let job_file = write_sum_job(&c, "sum-x", 1);
    let bank = analyst_config(&c, "bank-a", "participant");
    let auditor = analyst_config(&c, "auditor", "auditor");
    let unlisted = analyst_config(&c, "analyst-z", "analyst");
    for (who, config) in [
        ("bank", &bank),
        ("auditor", &auditor),
        ("unlisted", &unlisted),
    ] {
        let out = job(config, &["submit", "--job", job_file.to_str().unwrap()]);
        assert!(!out.status.success(), "{who} submitted");
        let said = text(&out);
        assert!(
            said.contains("may not call this service") || said.contains("is not admitted"),
            "{who}: {said}"
        );
    }
    let vague = c.path().join("vague.toml");
    let body = std::fs::read_to_string(&job_file).unwrap();
    std::fs::write(
        &vague,
        body.replace("purpose = \"Quarterly totals, run sum-x\"\n", ""),
    )
    .unwrap();
    let out = job(&analyst, &["submit", "--job", vague.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("purpose"),
        "{}",
        text(&out)
    );
    assert!(records_of(&c, "job_queued", "sum-x").is_empty());
    assert_eq!(submit(&analyst, &job_file), "sum-x");
    let again = job(&analyst, &["submit", "--job", job_file.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("exists"));
}

#[test]
fn a_killed_coordinator_resumes_the_running_job_then_runs_the_queued_one() {
    let (c, mut serve, _banks, analyst) = serving();
    let long = submit(&analyst, &write_sum_job(&c, "long", 60));
    let next = submit(&analyst, &write_sum_job(&c, "next", 2));
    await_released(&analyst, &long, 5, "long never ran");
    serve.kill();
    assert_eq!(show_state_from_journal(&c, &next), "queued");
    let _serve = c.serve();
    await_state(&analyst, &long, "finished", 180);
    await_state(&analyst, &next, "finished", 120);
    assert_eq!(records_of(&c, "job_resumed", "long").len(), 1);
    assert_eq!(records_of(&c, "aggregate_released", "long").len(), 60);
    assert!(records_of(&c, "job_finished", "long")[0] < records_of(&c, "job_submitted", "next")[0]);
    let verified = c.verify_journal(&c.path().join("journal.log"));
    assert!(verified.status.success(), "{}", text(&verified));
}

#[test]
fn a_coordinator_stopped_politely_mid_job_resumes_it_when_restarted() {
    let (c, serve, _banks, analyst) = serving();
    let job = submit(&analyst, &write_sum_job(&c, "polite", 40));
    await_released(&analyst, &job, 3, "the job never ran");
    // SIGTERM (a container's stop): the server exits cleanly, the job is
    // left unfinished in the journal, and the next serve picks it up.
    serve.terminate();
    let mut serve = serve;
    let status = serve.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}: {}", serve.log_text());
    assert!(records_of(&c, "job_finished", "polite").is_empty());
    let _serve = c.serve();
    await_state(&analyst, &job, "finished", 180);
    assert_eq!(records_of(&c, "job_resumed", "polite").len(), 1);
    assert_eq!(records_of(&c, "aggregate_released", "polite").len(), 40);
    let verified = c.verify_journal(&c.path().join("journal.log"));
    assert!(verified.status.success(), "{}", text(&verified));
}

/// `next` has a `job_queued` record and nothing else yet.
fn show_state_from_journal(c: &Consortium, id: &str) -> &'static str {
    if records_of(c, "job_submitted", id).is_empty() && !records_of(c, "job_queued", id).is_empty()
    {
        "queued"
    } else {
        "started"
    }
}

#[test]
fn a_bank_whose_policy_excludes_the_analyst_declines_and_the_reason_is_journaled() {
    let policy = |c: &Consortium, site: &str, table: &str| {
        let path = c.path().join("sites").join(site).join("participant.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n{table}")).unwrap();
    };
    let (c, _serve, _banks, analyst) = serving_with(|c| {
        policy(
            c,
            "bank-a",
            "[policy]\nanalysts = [\"analyst-a\"]\nkinds = [\"secure-sum\"]\n",
        );
        policy(c, "bank-c", "[policy]\nanalysts = [\"analyst-b\"]\n");
    });
    let id = submit(&analyst, &write_sum_job(&c, "sum-p", 2));
    await_state(&analyst, &id, "finished", 120);
    let shown = show(&analyst, &id);
    assert_eq!(
        shown.get("declined bank-c").map(String::as_str),
        Some("this site does not take jobs from analyst analyst-a (it admits analyst-b)"),
        "{shown:?}"
    );
    assert!(!shown.contains_key("declined bank-a"), "{shown:?}");
    let declined: Vec<_> = c
        .declines()
        .iter()
        .map(|d| d["entry"]["participant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(declined, ["bank-c"], "one offer, one decline");
    // bank-a's ledger groups what it sent under the analyst who asked.
    let ledger = Command::new(binary("fedseg-participant"))
        .args(["ledger", "show", "--config"])
        .arg(c.path().join("sites/bank-a/participant.toml"))
        .output()
        .unwrap();
    let said = text(&ledger);
    assert!(
        ledger.status.success() && said.contains("analyst-a"),
        "{said}"
    );
}
