//! Participants whose process stops answering while its connection stays
//! open (SIGSTOP: a frozen process or machine): the job waits for it once,
//! not once per round, and the keep-alive closes its session.

use std::time::{Duration, Instant};

use fedseg_tests::Consortium;

#[test]
fn a_hung_participant_costs_the_job_one_phase_deadline_not_one_per_round() {
    const TIMEOUT_S: f64 = 3.0;
    const ROUNDS: usize = 30;
    let c = Consortium::new(5, TIMEOUT_S, 16);
    // A keep-alive long enough that the hung session stays open throughout.
    c.set_rounds("keepalive_s = 600.0\n");
    c.write_job(ROUNDS as u32, 4, None);
    let mut coordinator = c.run_coordinator();
    let participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    // bank-e freezes once a round is released: mid key epoch, with rounds
    // of this epoch and a whole next one (16 rounds each) still to run.
    coordinator.expect_log("round released", 120);
    participants[4].signal("STOP");
    let stopped = Instant::now();
    coordinator.expect_success(300);
    let elapsed = stopped.elapsed().as_secs_f64();
    participants[4].signal("CONT");
    let result = c.result();
    let rounds = result["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), ROUNDS);
    assert!(
        rounds.iter().all(|r| r["outcome"] == "released"),
        "{result}"
    );
    // It went silent in one round (in each phase of that round that asked
    // it: a share holder is asked again to unmask); no later round or key
    // set-up asked it.
    let silent: Vec<_> = c
        .journal_records()
        .into_iter()
        .map(|r| r["entry"].clone())
        .filter(|e| {
            e["kind"] == "phase_completed"
                && e["silent"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|id| id == "bank-e"))
        })
        .collect();
    let rounds_silent: std::collections::BTreeSet<u64> =
        silent.iter().filter_map(|e| e["round"].as_u64()).collect();
    assert_eq!(rounds_silent.len(), 1, "{silent:?}");
    let without: Vec<_> = rounds
        .iter()
        .filter(|r| {
            !r["survivors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "bank-e")
        })
        .collect();
    assert!(without.len() >= ROUNDS / 2, "{result}");
    // About one deadline plus the normal job time (well under a second a
    // round here), not one deadline for each of the rounds it missed.
    assert!(
        elapsed < 3.0 * TIMEOUT_S + 0.2 * without.len() as f64,
        "the job took {elapsed:.1} s after bank-e hung, over {} rounds without it",
        without.len()
    );
    eprintln!(
        "job finished {elapsed:.1} s after bank-e hung ({} rounds without it, deadline {TIMEOUT_S} s)",
        without.len()
    );
}

#[test]
fn the_keep_alive_closes_the_session_of_a_participant_that_stopped_answering() {
    const KEEPALIVE_S: f64 = 2.0;
    let c = Consortium::new(2, 5.0, 4);
    c.set_rounds(&format!("keepalive_s = {KEEPALIVE_S:?}\n"));
    let serve = c.serve();
    let participant = c.run_participant("bank-a", None);
    participant.expect_log("session open", 30);
    serve.expect_log("participant connected", 30);
    participant.signal("STOP");
    let stopped = Instant::now();
    // A ping unanswered for one keep-alive interval, sent at most one
    // interval after the last traffic, closes the connection.
    let closed = serve.wait_for_log(
        "participant disconnected",
        Duration::from_secs_f64(4.0 * KEEPALIVE_S),
    );
    let elapsed = stopped.elapsed().as_secs_f64();
    participant.signal("CONT");
    assert!(
        closed,
        "the session of a stopped participant was still open after {elapsed:.1} s:\n{}",
        serve.log_text()
    );
    assert!(
        elapsed <= 2.0 * KEEPALIVE_S + 1.0,
        "closed after {elapsed:.1} s"
    );
    eprintln!(
        "session closed {elapsed:.1} s after the participant stopped (keep-alive {KEEPALIVE_S} s)"
    );
}
