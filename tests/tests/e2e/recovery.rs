//! Crash recovery: the coordinator is SIGKILLed at several points of a
//! multi-round job (fault injection right after a given journal record is on
//! disk) and started again. It resumes from its journal and finishes with the
//! result an uninterrupted run gives: released rounds are kept as journaled,
//! a round in flight runs again under a new number, and the journal, crash
//! included, still verifies.

use std::time::Duration;

use fedseg_tests::Consortium;
use serde_json::Value;

const ROUNDS: u32 = 4;

fn vector_of(site: usize) -> Vec<f64> {
    let i = site as f64 + 1.0;
    vec![i * 2.5, -i, 1000.0 * i, 3.0]
}

/// What an uninterrupted run releases every round: the sum of all five.
fn full_sum() -> Vec<f64> {
    (0..5).fold(vec![0.0; 4], |acc, i| {
        acc.iter().zip(vector_of(i)).map(|(a, v)| a + v).collect()
    })
}

fn crash_and_resume(crash_after: &str) -> Vec<Value> {
    let c = Consortium::new(5, 10.0, 2);
    c.write_job(ROUNDS, 4, None);
    for (i, site) in c.sites.iter().enumerate() {
        c.write_vector(site, &vector_of(i));
    }
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let mut first = c.run_coordinator_with(&[("FEDSEG_FAULT_CRASH_AFTER", crash_after)]);
    let status = first.wait(Duration::from_secs(60));
    assert!(
        !status.success(),
        "the coordinator was meant to be killed: {}",
        first.log_text()
    );
    assert!(
        first
            .log_text()
            .contains("fault injection: killing the coordinator")
    );
    assert!(!c.path().join("out/result.json").exists());

    let mut second = c.run_coordinator();
    second.expect_success(90);
    assert!(second.log_text().contains("resuming from the journal"));

    let result = c.result();
    let rounds = result["rounds"].as_array().unwrap().clone();
    assert_eq!(rounds.len(), ROUNDS as usize, "{result}");
    let expected = serde_json::to_value(full_sum()).unwrap();
    for round in &rounds {
        assert_eq!(round["outcome"], "released", "{round}");
        assert_eq!(round["sum"], expected, "{round}");
        assert_eq!(round["survivors"].as_array().unwrap().len(), 5);
    }
    let numbers: Vec<u64> = rounds
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    let verified = c.verify_journal(&c.path().join("journal.log"));
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    rounds
}

#[test]
fn killed_during_key_set_up() {
    // After the first phase of the first key set-up is journaled.
    let rounds = crash_and_resume("phase_completed:1");
    // Nothing was released before the crash; the restarted job's rounds
    // come after the one whose set-up was in flight.
    assert!(rounds[0]["round"].as_u64().unwrap() >= 1);
}

#[test]
fn killed_between_the_phases_of_a_round() {
    // After round 0's masked inputs are journaled, before its unmasking.
    let rounds = crash_and_resume("phase_completed:3");
    // Round 0 released nothing and runs again under a new number.
    assert!(rounds[0]["round"].as_u64().unwrap() >= 1);
}

#[test]
fn killed_right_after_a_release() {
    let rounds = crash_and_resume("aggregate_released:2");
    // Rounds 0 and 1 are kept exactly as journaled; the rest come after.
    let numbers: Vec<u64> = rounds
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert_eq!(&numbers[..2], &[0, 1]);
    assert!(numbers[2] >= 2);
}

#[test]
fn a_segmentation_job_killed_mid_newton_resumes_to_the_same_result() {
    let c = Consortium::with_customers(3, 900, 10.0, 4);
    c.write_segmentation_job(
        5,
        "k_min = 3\nk_max = 3\nrestarts = 2\nmin_segment_size = 5\n",
    );
    let participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    c.run_coordinator().expect_success(120);
    let reference = c.result();
    // Crash right after the second Newton round is released: the journal
    // then holds every earlier step, and the participants' sessions (with
    // their key material) are gone.
    let rounds = reference["rounds"].as_array().unwrap();
    let newton = rounds
        .iter()
        .position(|r| r["purpose"] == "newton step 2")
        .expect("the job took Newton steps");
    std::fs::remove_file(c.path().join("journal.log")).unwrap();
    std::fs::remove_dir_all(c.path().join("out")).unwrap();
    let mut first = c.run_coordinator_with(&[(
        "FEDSEG_FAULT_CRASH_AFTER",
        &format!("aggregate_released:{}", newton + 1),
    )]);
    assert!(!first.wait(Duration::from_secs(120)).success());
    let mut second = c.run_coordinator();
    second.expect_success(120);
    assert!(second.log_text().contains("resuming from the journal"));
    let resumed = c.result();
    for block in ["census", "standardization", "segmentation", "propensity"] {
        assert_eq!(resumed[block], reference[block], "{block}");
    }
    drop(participants);
}

#[test]
fn serve_with_a_job_runs_it_once_and_keeps_serving() {
    let c = Consortium::with_customers(3, 300, 10.0, 16);
    c.write_segmentation_job(
        5,
        "k_min = 2\nk_max = 2\nrestarts = 1\nmin_segment_size = 5\n",
    );
    let serve =
        |log: &str| fedseg_tests::spawn(c.coordinator_with_job("serve"), c.path().join(log));
    let mut first = serve("serve-1.log");
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    first.expect_log("job finished", 120);
    assert!(c.path().join("out/report.html").exists());
    // Still serving after the job: a restart finds the job done, writes
    // its outputs again from the journal (appending nothing) and serves.
    first.terminate();
    first.wait(Duration::from_secs(20));
    let journal = std::fs::read(c.path().join("journal.log")).unwrap();
    std::fs::remove_dir_all(c.path().join("out")).unwrap();
    let second = serve("serve-2.log");
    second.expect_log("retracing", 30);
    second.expect_log("coordinator listening", 30);
    let start = std::time::Instant::now();
    while !c.path().join("out/result.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no result.json");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.path().join("out/report.html").exists());
    assert_eq!(
        std::fs::read(c.path().join("journal.log")).unwrap(),
        journal
    );
}
