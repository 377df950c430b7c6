//! Nothing lost at a job's end: a coordinator killed right after its
//! journal records the job's end, rerun with the same command, writes the
//! result and reports from the journal (asking nobody, appending nothing),
//! the same as an uninterrupted run's; and an `--out` that cannot be
//! written is refused before anything runs.

use std::fs;
use std::time::Duration;

use fedseg_tests::Consortium;

#[test]
fn a_rerun_of_a_finished_job_writes_its_result_again_from_the_journal() {
    let c = Consortium::with_customers(3, 300, 10.0, 16);
    c.write_segmentation_job(
        5,
        "k_min = 2\nk_max = 2\nrestarts = 1\nmin_segment_size = 5\n",
    );
    let participants = c.run_job();
    let reference = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    let durations = |c: &Consortium| -> Vec<f64> {
        let text = fs::read_to_string(c.path().join("out/rounds.json")).unwrap();
        let rounds: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rounds = rounds.as_array().or(rounds["rounds"].as_array()).unwrap();
        rounds
            .iter()
            .map(|r| r["duration_s"].as_f64().unwrap())
            .collect()
    };
    let live = durations(&c);

    // The same job again, killed right after its job_finished record is on
    // disk: nothing was written under out/.
    fs::remove_file(c.path().join("journal.log")).unwrap();
    fs::remove_dir_all(c.path().join("out")).unwrap();
    let mut killed = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", "job_finished:1")]);
    assert!(!killed.wait(Duration::from_secs(120)).success());
    assert!(!c.path().join("out/result.json").exists());
    drop(participants);

    // Rerun with no participant at all: the outputs come from the journal.
    let journal = fs::read(c.path().join("journal.log")).unwrap();
    let mut rerun = c.run_coordinator();
    rerun.expect_success(60);
    assert!(
        rerun.log_text().contains("retracing"),
        "{}",
        rerun.log_text()
    );
    let rewritten = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    assert_eq!(rewritten, reference);
    for file in ["rounds.json", "report.md", "report.html"] {
        assert!(c.path().join("out").join(file).exists(), "{file}");
    }
    // The rebuilt rounds keep their durations, from the journal's clock:
    // none is zero, and the job's total is the live run's order of
    // magnitude (the journal's clock also counts the coordinator's work
    // between rounds, which a loaded machine stretches).
    let rebuilt = durations(&c);
    assert_eq!(rebuilt.len(), live.len());
    assert!(rebuilt.iter().all(|&d| d > 0.0), "{rebuilt:?}");
    let (a, b): (f64, f64) = (live.iter().sum(), rebuilt.iter().sum());
    assert!(
        b > 0.5 * a && b < 3.0 * a + 0.01 * live.len() as f64,
        "live {a:.3} s, rebuilt {b:.3} s: {live:?} {rebuilt:?}"
    );
    assert_eq!(fs::read(c.path().join("journal.log")).unwrap(), journal);
}

#[test]
fn an_out_that_cannot_be_written_is_refused_before_the_first_round() {
    let c = Consortium::new(3, 10.0, 4);
    c.write_job(2, 4, None);
    fs::write(c.path().join("out"), "a file, not a directory").unwrap();
    let mut coordinator = c.run_coordinator();
    // Refused at once, though nobody connects (the cohort would wait 60 s).
    let status = coordinator.wait(Duration::from_secs(15));
    assert!(!status.success());
    let log = coordinator.log_text();
    assert!(log.contains("--out out must be a directory"), "{log}");
    assert!(!c.path().join("journal.log").exists(), "{log}");
}

#[test]
fn banks_that_missed_the_end_get_their_results_on_their_next_session() {
    let c = Consortium::with_customers(3, 300, 10.0, 16);
    c.write_segmentation_job(
        5,
        "k_min = 2\nk_max = 2\nrestarts = 1\nmin_segment_size = 5\n",
    );
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    // Killed right after the end is journaled: no bank was told.
    let mut killed = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", "job_finished:1")]);
    assert!(!killed.wait(Duration::from_secs(120)).success());
    let kept = |site: &str, job: &str| {
        c.path()
            .join("sites")
            .join(site)
            .join("out")
            .join(job)
            .join("result.json")
    };

    // `serve` with the job retraces it, writes out/ and tells each bank
    // its end on the bank's next session.
    let _serve = fedseg_tests::spawn(c.coordinator_with_job("serve"), c.path().join("serve.log"));
    let start = std::time::Instant::now();
    while !c.path().join("out/result.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no result.json");
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    let job = c.result()["job_id"].as_str().unwrap().to_string();
    for site in &c.sites {
        while !kept(site, &job).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{site} never caught up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(fs::read_to_string(kept(site, &job)).unwrap(), result);
        let scores = c.path().join("sites").join(site).join("out").join(&job);
        assert!(scores.join("scores.csv").exists(), "{site}");
        let out = c.verify_ledger(site, &c.path().join("journal.log"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && text.contains("1 job ends attested"),
            "{text}"
        );
    }
}
