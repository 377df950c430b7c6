//! Resuming from the journal: a job cut after any record kind releases what
//! the journal says, then the rest; a changed configuration is refused.

use super::*;

fn kind(entry: &Entry) -> String {
    serde_json::to_value(entry).unwrap()["kind"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Copies the first `records` records of journal `from` (after its opening
/// record) into a new journal `to`: the journal of a coordinator that
/// stopped right after writing them.
fn cut(f: &Fixture, from: &[Record], records: usize, to: &str) -> JournalWriter {
    let mut journal = f.journal(to);
    for record in &from[1..=records] {
        journal.append(record.entry.clone()).unwrap();
    }
    journal
}

/// Checks a job resumed from the first `n` records of `whole` (which the
/// run `first` wrote) against it: rounds the journal holds are handed back
/// as they were, the others run again, every member honest, under numbers
/// past every round the journal mentions.
fn check_resumed(first: &JobReport, whole: &[Record], n: usize, resumed: &JobReport, what: &str) {
    let held = &whole[1..=n];
    let journaled = |round: u64| {
        held.iter().any(|r| {
            matches!(&r.entry, Entry::AggregateReleased { round: x, .. }
                | Entry::RoundAborted { round: x, .. } if *x == round)
        })
    };
    assert_eq!(resumed.rounds.len(), first.rounds.len(), "{what}");
    for (i, r) in resumed.rounds.iter().enumerate() {
        let before = &first.rounds[i];
        if journaled(before.round) {
            // Handed back as the journal has it, nobody asked again.
            assert_eq!(
                (r.round, r.outcome, &r.sum, &r.reason),
                (before.round, before.outcome, &before.sum, &before.reason),
                "{what}, round {i}"
            );
        } else {
            assert_eq!(r.outcome, "released", "{what}, round {i}");
            assert_eq!(r.survivors, ids(&MEMBERS), "{what}, round {i}");
            assert_eq!(r.sum.as_deref(), Some(&expected(&MEMBERS, r.round)[..]));
            let mentioned = held.iter().any(|x| {
                matches!(&x.entry, Entry::RoundOpened { round, .. }
                    | Entry::PhaseCompleted { round, .. } if *round >= r.round)
            });
            assert!(!mentioned, "{what}: round {} reused", r.round);
        }
    }
}

#[tokio::test]
async fn a_job_resumed_from_its_journal_cut_after_any_record_releases_what_the_journal_says_then_the_rest()
 {
    // Threshold 3 of 4: bank-d declines, and bank-b leaving at round 1's
    // masked input aborts round 1 and round 2, so the journal holds a
    // privacy budget, a refusal, releases and aborts.
    let f = Fixture::new(3, 3);
    let mut whole = f.journal("whole.log");
    let faults = [
        ("bank-d", Fault::Decline),
        ("bank-b", Fault::Leave(Phase::MaskedInput, 1)),
    ];
    let budget = PrivacyBudget {
        epsilon: 1.0,
        delta: 1e-6,
        rho: 0.01,
        clip: [1.0; 5],
        planned_releases: 3,
    };
    let first = f
        .run_with_budget(&mut whole, &faults, Some(budget))
        .await
        .unwrap();
    let outcomes: Vec<&str> = first.rounds.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["released", "aborted", "aborted"]);
    assert_eq!(
        first.rounds[0].survivors,
        ids(&["bank-a", "bank-b", "bank-c"])
    );
    let mut kinds = HashSet::new();
    let mut resumed_journal = None;
    for n in 1..whole.records().len() {
        let last = kind(&whole.records()[n].entry);
        let what = format!("cut after {last} (record {n})");
        let mut journal = cut(&f, &whole.records(), n, &format!("cut-{n}.log"));
        // Every member is back and honest.
        let resumed = f.run(&mut journal, &[]).await;
        if last == "job_finished" {
            assert!(
                matches!(resumed, Err(EngineError::AlreadyFinished(_))),
                "{what}"
            );
        } else {
            let resumed = resumed.unwrap_or_else(|e| panic!("{what}: {e}"));
            check_resumed(&first, &whole.records(), n, &resumed, &what);
            if last == "aggregate_released" {
                resumed_journal = Some((journal, n));
            }
        }
        kinds.insert(last);
    }
    // A resumed job's journal, cut right after it says so, resumes again
    // from what the first part holds.
    let (twice, n) = resumed_journal.expect("a cut after a release");
    let at = twice
        .records()
        .iter()
        .position(|r| matches!(r.entry, Entry::JobResumed { .. }))
        .expect("journaled");
    let mut journal = cut(&f, &twice.records(), at, "twice.log");
    let resumed = f.run(&mut journal, &[]).await.unwrap();
    check_resumed(
        &first,
        &whole.records(),
        n,
        &resumed,
        "cut after job_resumed",
    );
    kinds.insert(kind(&twice.records()[at].entry));
    for expected in [
        "job_submitted",
        "privacy_budget",
        "cohort_fixed",
        "participant_declined",
        "phase_completed",
        "key_setup_done",
        "round_opened",
        "aggregate_released",
        "round_aborted",
        "job_resumed",
        "job_finished",
    ] {
        assert!(kinds.contains(expected), "no cut after {expected}");
    }
}

#[tokio::test]
async fn a_journal_holding_the_job_with_another_configuration_is_refused() {
    let f = Fixture::new(1, 3);
    let mut journal = f.journal("journal.log");
    journal
        .append(Entry::JobSubmitted {
            job_id: f.job.id.clone(),
            config_hash: "another".into(),
            config: String::new(),
        })
        .unwrap();
    let outcome = f.run(&mut journal, &[]).await;
    assert!(matches!(outcome, Err(EngineError::ConfigChanged(_))));
}

#[tokio::test]
async fn a_finished_job_is_retraced_from_its_journal_asking_nobody_and_appending_nothing() {
    // bank-b leaves at round 1's masked input: round 1 is released over the
    // other three (the survivors' quorum of four members) with bank-b
    // dropped. Then a job that bank-d declined.
    retraced_as_run(&[("bank-b", Fault::Leave(Phase::MaskedInput, 1))], |r| {
        r.rounds.iter().any(|r| !r.dropped.is_empty())
    })
    .await;
    retraced_as_run(&[("bank-d", Fault::Decline)], |r| !r.declined.is_empty()).await;
}

/// Runs a job with `faults` (whose report `shows` them), then retraces it
/// from its journal: the same rounds, members and refusals, nothing
/// appended; a retrace left unfinished appends nothing either.
async fn retraced_as_run(faults: &[(&str, Fault)], shows: impl Fn(&JobReport) -> bool) {
    let f = Fixture::new(3, 2);
    let mut journal = f.journal("journal.log");
    let first = f.run(&mut journal, faults).await.unwrap();
    assert!(shows(&first), "{first:?}");
    let records = journal.records().len();
    let again = f.retrace(&mut journal).await.unwrap();
    let seen = |report: &JobReport| -> Vec<_> {
        report
            .rounds
            .iter()
            .map(|r| {
                let who = (r.survivors.clone(), r.dropped.clone());
                (r.round, r.outcome, r.epoch, who, r.sum.clone())
            })
            .collect()
    };
    assert_eq!(seen(&again), seen(&first));
    assert_eq!(
        (
            &again.cohort,
            &again.took_part,
            &again.declined,
            &again.dropped_out
        ),
        (
            &first.cohort,
            &first.took_part,
            &first.declined,
            &first.dropped_out
        )
    );
    assert_eq!(journal.records().len(), records);

    // A job whose steps leave journaled rounds unused is not retraced, and
    // still nothing is appended.
    let resume = super::super::Resume::read(&journal.records(), &f.job)
        .unwrap()
        .unwrap();
    let nobody = InProcess::new(&[], &[]);
    let engine = Engine::retrace(nobody, settings(), &f.job, &mut journal, resume).unwrap();
    let outcome = engine.finish(true, "", String::new()).await;
    assert!(
        matches!(outcome, Err(EngineError::NotRetraced { .. })),
        "{outcome:?}"
    );
    assert_eq!(journal.records().len(), records);
}
