//! The engine against members that leave, decline, answer late, twice or
//! with an old answer, or refuse blaming the coordinator: every released
//! sum is exact over exactly its survivors.

use super::*;

#[tokio::test]
async fn honest_members_get_every_sum_released() {
    let f = Fixture::new(3, 3);
    let report = f.run(&mut f.journal("journal.log"), &[]).await.unwrap();
    let rounds = check_sums(&report);
    assert_eq!(rounds, vec![(ids(&MEMBERS), vec![]); 3]);
    assert!(report.rejected_messages.is_empty());
}

#[tokio::test]
async fn a_member_that_leaves_at_any_phase_is_left_out_from_then_on() {
    let all = ids(&MEMBERS);
    let rest = ids(&MEMBERS[..3]);
    // (phase, round 0 survivors and dropped, later rounds' survivors and
    // dropped): leaving at the masked input makes it a dropped member of
    // that round; leaving at the unmasking leaves its input in the sum,
    // which the others' shares unmask.
    let cases = [
        (Phase::Offer, (&rest, vec![]), &rest),
        (Phase::AdvertiseKeys, (&rest, vec![]), &rest),
        (Phase::ShareKeys, (&rest, vec![]), &rest),
        (Phase::MaskedInput, (&rest, ids(&["bank-d"])), &rest),
        (Phase::Unmask, (&all, vec![]), &rest),
    ];
    for (phase, first, later) in cases {
        let f = Fixture::new(3, 3);
        let faults = [("bank-d", Fault::Leave(phase, 0))];
        let report = f
            .run(&mut f.journal("journal.log"), &faults)
            .await
            .unwrap_or_else(|e| panic!("{phase:?}: {e}"));
        let rounds = check_sums(&report);
        assert_eq!(rounds[0], (first.0.clone(), first.1), "{phase:?}");
        for r in &rounds[1..] {
            assert_eq!(&r.0, later, "{phase:?}");
        }
    }
}

#[tokio::test]
async fn a_member_that_leaves_below_the_threshold_aborts_the_round_and_nothing_is_released() {
    let f = Fixture::new(2, 4);
    let faults = [("bank-b", Fault::Leave(Phase::MaskedInput, 0))];
    let mut journal = f.journal("journal.log");
    let report = f.run(&mut journal, &faults).await.unwrap();
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.outcome == "aborted" && r.sum.is_none())
    );
    assert!(
        !journal
            .records()
            .iter()
            .any(|r| matches!(r.entry, Entry::AggregateReleased { .. }))
    );
}

#[tokio::test]
async fn a_refusal_that_blames_the_coordinator_is_journaled() {
    let f = Fixture::new(2, 3);
    let faults = [(
        "bank-b",
        Fault::BlameCoordinator(Phase::ConfirmSurvivors, 0),
    )];
    let mut journal = f.journal("journal.log");
    let report = f.run(&mut journal, &faults).await.unwrap();
    let reported: Vec<_> = journal
        .records()
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::FaultReported {
                participant,
                fault,
                round,
                ..
            } => Some((participant.clone(), fault.clone(), *round)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![("bank-b".into(), "coordinator".into(), 0)]);
    // Its input is in round 0 (it survived the masked input); the other
    // three signed the survivor set, the quorum for four members.
    let rounds = check_sums(&report);
    assert_eq!(rounds[0].0, ids(&MEMBERS));
    let confirmed = journal.records().iter().find_map(|r| match &r.entry {
        Entry::SurvivorsConfirmed { signatures, .. } => Some(signatures.len()),
        _ => None,
    });
    assert_eq!(confirmed, Some(3));
}

#[tokio::test]
async fn a_late_masked_input_is_refused_and_its_member_counted_as_dropped() {
    let f = Fixture::new(3, 3);
    let faults = [("bank-c", Fault::Late(Phase::MaskedInput, 0))];
    let report = f.run(&mut f.journal("journal.log"), &faults).await.unwrap();
    let rounds = check_sums(&report);
    let rest = ids(&["bank-a", "bank-b", "bank-d"]);
    assert_eq!(rounds[0], (rest.clone(), ids(&["bank-c"])));
    // It arrived during the unmasking, which takes no masked input.
    assert_eq!(report.rejected_messages.get("out_of_phase"), Some(&1));
    // Silent past a deadline, it is not asked again in its key epoch
    // (rounds 0 and 1); heard from since, it is back at the next key
    // set-up, with new keys.
    assert_eq!(rounds[1], (rest, vec![]));
    assert_eq!(rounds[2], (ids(&MEMBERS), vec![]));
}

#[tokio::test]
async fn a_connected_member_that_hangs_is_not_waited_for_again() {
    let f = Fixture::new(4, 3);
    let faults = [("bank-d", Fault::Hang(Phase::MaskedInput, 0))];
    let mut journal = f.journal("journal.log");
    let report = f.run(&mut journal, &faults).await.unwrap();
    let rounds = check_sums(&report);
    let rest = ids(&["bank-a", "bank-b", "bank-c"]);
    assert_eq!(rounds[0], (rest.clone(), ids(&["bank-d"])));
    // Never asked again: not in round 1 of its epoch, and not invited to
    // the key set-up of rounds 2 and 3, where it would cost a deadline.
    for r in &rounds[1..] {
        assert_eq!(*r, (rest.clone(), vec![]));
    }
    let silent: Vec<(u64, String)> = journal
        .records()
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::PhaseCompleted {
                round,
                phase,
                silent,
                ..
            } if !silent.is_empty() => Some((*round, phase.name().to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(silent, vec![(0, "masked-input".to_string())]);
}

#[tokio::test]
async fn replayed_messages_are_refused_and_change_no_sum() {
    let cases = [
        (Fault::Duplicate(Phase::MaskedInput, 0), "duplicate"),
        (Fault::Duplicate(Phase::Unmask, 1), "duplicate"),
        (Fault::Duplicate(Phase::AdvertiseKeys, 2), "duplicate"),
        (Fault::ReplayPrevious(Phase::MaskedInput, 1), "wrong_round"),
        (Fault::ReplayPrevious(Phase::Unmask, 1), "wrong_round"),
    ];
    for (fault, code) in cases {
        let f = Fixture::new(3, 3);
        let report = f
            .run(&mut f.journal("journal.log"), &[("bank-a", fault)])
            .await
            .unwrap();
        let rounds = check_sums(&report);
        assert_eq!(rounds, vec![(ids(&MEMBERS), vec![]); 3], "{fault:?}");
        assert_eq!(
            report.rejected_messages,
            BTreeMap::from([(code, 1)]),
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn keys_advertised_with_another_identitys_certificate_are_refused_and_journaled() {
    let f = Fixture::new(2, 3);
    let faults = [("bank-b", Fault::ForeignCertificate(0))];
    let mut journal = f.journal("journal.log");
    let report = f.run(&mut journal, &faults).await.unwrap();
    let reported: Vec<_> = journal
        .records()
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::FaultReported {
                participant,
                fault,
                reason,
                ..
            } => Some((participant.clone(), fault.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    // The coordinator names the sender, before any honest member sees a
    // roster with a certificate that is not its member's (which they would
    // refuse, blaming the coordinator, and the epoch would fail).
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].0, "bank-b");
    assert_eq!(reported[0].1, "participant");
    assert!(reported[0].2.contains("bank-z"), "{reported:?}");
    assert_eq!(
        report.rejected_messages.get("foreign_certificate"),
        Some(&1)
    );
    // The epoch goes on without it; every sum is exact over the rest.
    let rounds = check_sums(&report);
    let rest = ids(&["bank-a", "bank-c", "bank-d"]);
    assert!(rounds.iter().all(|(survivors, _)| *survivors == rest));
}
