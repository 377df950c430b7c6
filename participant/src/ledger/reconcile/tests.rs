use std::collections::BTreeMap;

use fedseg_common::journal::Record;
use fedseg_common::keys::KeyAlgorithm;

use super::*;

const SITE: &str = "bank-a";

/// A ledger of (kind, round, digest) lines of job `j`.
fn ledger(lines: &[(&str, Option<u64>, &str)]) -> Vec<LedgerEntry> {
    lines
        .iter()
        .enumerate()
        .map(|(i, (kind, round, digest))| LedgerEntry {
            seq: i as u64,
            unix_ms: 0,
            job_id: if *kind == "hello" { "" } else { "j" }.into(),
            round: *round,
            kind: kind.to_string(),
            bytes: 1,
            sha256: digest.to_string(),
            prev: String::new(),
            rho: None,
            journal_record: None,
            accepted: None,
            input_sha256: None,
        })
        .collect()
}

fn phase(round: u64, phase: Phase, answered: Option<&str>) -> Entry {
    let (answered, silent) = match answered {
        Some(d) => (BTreeMap::from([(SITE.to_string(), d.to_string())]), vec![]),
        None => (BTreeMap::new(), vec![SITE.to_string()]),
    };
    Entry::PhaseCompleted {
        job_id: "j".into(),
        round,
        phase,
        answered,
        silent,
    }
}

fn resumed(next_round: u64) -> Entry {
    Entry::JobResumed {
        job_id: "j".into(),
        completed: 0,
        next_round,
    }
}

fn journal(entries: Vec<Entry>) -> VerifiedJournal {
    VerifiedJournal {
        coordinator: "coordinator".into(),
        algorithm: KeyAlgorithm::Ed25519,
        cosigned: Default::default(),
        submissions: 0,
        records: entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Record {
                sequence: i as u64 + 1,
                unix_ms: 0,
                hash: [0; 32],
                entry,
            })
            .collect(),
    }
}

const ADV: (&str, Option<u64>, &str) = ("advertise-keys", Some(0), "d1");
const MASKED: (&str, Option<u64>, &str) = ("masked-input", Some(0), "d2");
const HELLO: (&str, Option<u64>, &str) = ("hello", None, "h");
const ADV_AGAIN: (&str, Option<u64>, &str) = ("advertise-keys", Some(1), "d3");

#[test]
fn a_message_of_a_round_a_cancellation_cut_short_is_in_flight_not_tampering() {
    let cancelled = |released: bool| {
        let mut entries = vec![phase(0, Phase::AdvertiseKeys, Some("d1"))];
        if released {
            entries.push(Entry::AggregateReleased {
                job_id: "j".into(),
                round: 0,
                survivors: vec![SITE.into()],
                values: vec![1.0],
            });
        }
        entries.push(Entry::JobCancelled {
            job_id: "j".into(),
            by: "analyst-a".into(),
            reason: "wrong quarter".into(),
        });
        journal(entries)
    };
    let found = reconcile(SITE, &ledger(&[HELLO, ADV, MASKED]), &cancelled(false));
    assert!(found.agrees(), "{found:?}");
    assert!(found.in_flight[0].contains("cancellation by analyst-a"));
    // A round the journal shows released gets no such excuse.
    let found = reconcile(SITE, &ledger(&[HELLO, ADV, MASKED]), &cancelled(true));
    assert!(!found.agrees() && found.unaccounted.len() == 1, "{found:?}");
}

#[test]
fn a_message_sent_to_a_coordinator_that_crashed_is_told_apart_from_tampering() {
    let crashed = journal(vec![
        phase(0, Phase::AdvertiseKeys, Some("d1")),
        resumed(1),
        phase(1, Phase::AdvertiseKeys, Some("d3")),
    ]);
    let found = reconcile(
        SITE,
        &ledger(&[HELLO, ADV, MASKED, HELLO, ADV_AGAIN]),
        &crashed,
    );
    assert_eq!((found.matched, found.in_flight.len()), (2, 1), "{found:?}");
    assert!(found.agrees() && found.in_flight[0].contains("journal record 2"));

    // Without the restart in the journal, the same line is unaccounted.
    let running = journal(vec![
        phase(0, Phase::AdvertiseKeys, Some("d1")),
        phase(1, Phase::AdvertiseKeys, Some("d3")),
    ]);
    let found = reconcile(
        SITE,
        &ledger(&[HELLO, ADV, MASKED, HELLO, ADV_AGAIN]),
        &running,
    );
    assert_eq!(found.unaccounted.len(), 1, "{found:?}");
    assert!(!found.agrees());

    // Sent on a later session than the last journaled message: not to
    // the process that crashed, so no excuse.
    let found = reconcile(SITE, &ledger(&[HELLO, ADV, HELLO, MASKED]), &crashed);
    assert_eq!(found.unaccounted.len(), 1, "{found:?}");

    // A rewritten digest: the journal's contribution is missing from
    // the ledger, and the line is in no journal record.
    let tampered = ("masked-input", Some(0), "forged");
    let honest = journal(vec![
        phase(0, Phase::AdvertiseKeys, Some("d1")),
        phase(0, Phase::MaskedInput, Some("d2")),
    ]);
    let found = reconcile(SITE, &ledger(&[HELLO, ADV, tampered]), &honest);
    assert_eq!((found.mismatched.len(), found.unaccounted.len()), (1, 1));
}

#[test]
fn a_batch_record_accounts_for_exactly_its_lines_in_order() {
    let d = |b: u8| hex::encode([b; 32]);
    let (d1, d2, d3) = (d(1), d(2), d(3));
    let lines = [
        ("mpc-opening", None, d1.as_str()),
        ("mpc-request", None, &d2),
        ("mpc-opening", None, &d3),
    ];
    let batch = |messages: u64, digests: &[&str]| {
        let mut digest = BatchDigest::default();
        digests.iter().for_each(|x| assert!(digest.add(x)));
        Entry::VerticalBatch {
            job_id: "j".into(),
            step: "mpc-step-1".into(),
            from: SITE.into(),
            messages,
            bytes: 3,
            sha256: digest.finish(),
        }
    };
    let whole = journal(vec![batch(2, &[&d1, &d2]), batch(1, &[&d3])]);
    let found = reconcile(SITE, &ledger(&lines), &whole);
    assert_eq!(found.matched, 2, "{found:?}");
    assert!(found.agrees(), "{found:?}");
    // A line the journal's batches do not cover is unaccounted.
    let found = reconcile(SITE, &ledger(&lines), &journal(vec![batch(2, &[&d1, &d2])]));
    assert_eq!(found.unaccounted.len(), 1, "{found:?}");
    // A rewritten line (or another order) matches no batch.
    let forged = [lines[0], ("mpc-request", None, &d3), lines[2]];
    let found = reconcile(SITE, &ledger(&forged), &whole);
    assert_eq!(found.mismatched.len(), 1, "{found:?}");
    assert!(!found.agrees());
}

#[test]
fn a_message_the_journal_says_came_late_is_reported_not_failed() {
    let late = journal(vec![
        phase(0, Phase::AdvertiseKeys, Some("d1")),
        phase(0, Phase::MaskedInput, None),
    ]);
    let found = reconcile(SITE, &ledger(&[HELLO, ADV, MASKED]), &late);
    assert_eq!(
        (found.matched, found.not_received.len()),
        (1, 1),
        "{found:?}"
    );
    assert!(found.agrees());
}

#[test]
fn a_release_after_this_site_dropped_out_unsigned_is_reported_not_failed() {
    let entries = |silent: bool| {
        let mut entries = vec![
            Entry::CohortFixed {
                job_id: "j".into(),
                cohort: vec![SITE.into(), "b".into(), "c".into(), "d".into()],
                threshold: 3,
                neighbours: 3,
                quorum: 3,
                signed_inputs: true,
            },
            phase(0, Phase::AdvertiseKeys, Some("d1")),
            phase(0, Phase::MaskedInput, Some("d2")),
        ];
        if silent {
            entries.push(phase(0, Phase::ConfirmSurvivors, None));
        }
        entries.push(Entry::AggregateReleased {
            job_id: "j".into(),
            round: 0,
            survivors: vec![SITE.into(), "b".into(), "c".into(), "d".into()],
            values: vec![1.0],
        });
        journal(entries)
    };
    let lines = [HELLO, ADV, MASKED, ("confirm-survivors", Some(0), "d4")];
    let found = reconcile(SITE, &ledger(&lines), &entries(true));
    assert_eq!(
        (found.unsigned.len(), found.unconfirmed.len()),
        (0, 1),
        "{found:?}"
    );
    assert!(found.agrees(), "{found:?}");
    // Not listed silent: the coordinator released it unsigned, which
    // nothing excuses.
    let found = reconcile(SITE, &ledger(&lines[..3]), &entries(false));
    assert_eq!(found.unsigned.len(), 1, "{found:?}");
    assert!(!found.agrees());
}
