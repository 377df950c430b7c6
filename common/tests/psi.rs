//! The set intersection run in process among a label holder and one or two
//! partners, checked against the plain intersection.
//!
//! Invariants:
//! - every party's rows are exactly its ids in the plain intersection;
//! - position `p` holds the same customer at every party;
//! - overlap-only releases the size and no rows; below `min_overlap` every
//!   party gets the stop and the coordinator learns no size.

use std::collections::BTreeSet;
use std::time::Instant;

use fedseg_common::psi::runner::{self, Run};
use fedseg_common::psi::{Outcome, PsiParams, Verdict};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

fn params(n: u32, min_overlap: u64, overlap_only: bool) -> PsiParams {
    PsiParams::new("prop-consortium", "job-7", n, min_overlap, overlap_only).unwrap()
}

fn run(params: &PsiParams, sets: &[Vec<String>], seed: u64) -> Run {
    runner::run(params, sets, &[], 1, &mut ChaCha20Rng::seed_from_u64(seed))
}

/// Sets of one label holder and `partners` partners: `shared` ids every
/// party holds, pairwise overlaps that are not in the full intersection,
/// and private ids, each party's list shuffled.
fn planted() -> impl Strategy<Value = Vec<Vec<String>>> {
    (1usize..=2, 0usize..12, 0usize..6, 0usize..10, any::<u64>()).prop_map(
        |(partners, shared, pairwise, private, seed)| {
            let n = partners + 1;
            (0..n)
                .map(|p| {
                    let mut ids: Vec<String> = (0..shared).map(|i| format!("all-{i}")).collect();
                    // Ids shared with the next party only (not by everyone
                    // when there are three parties).
                    for q in [p, (p + n - 1) % n] {
                        ids.extend((0..pairwise).map(|i| format!("pair-{q}-{i}")));
                    }
                    ids.extend((0..private + p).map(|i| format!("own-{p}-{i}")));
                    ids.sort();
                    ids.dedup();
                    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ p as u64);
                    rand::seq::SliceRandom::shuffle(ids.as_mut_slice(), &mut rng);
                    ids
                })
                .collect()
        },
    )
}

fn plain_intersection(sets: &[Vec<String>]) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = sets[0].iter().cloned().collect();
    for set in &sets[1..] {
        let other: BTreeSet<String> = set.iter().cloned().collect();
        all = all.intersection(&other).cloned().collect();
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn parties_learn_exactly_the_intersection_in_one_order(sets in planted(), seed in any::<u64>()) {
        let n = sets.len() as u32;
        let expected = plain_intersection(&sets);
        let run = run(&params(n, 0, false), &sets, seed);
        prop_assert_eq!(run.abort, None);
        prop_assert_eq!(run.view.verdict, Some(Verdict::Intersection(expected.len() as u64)));
        let mut orders = Vec::new();
        for (p, outcome) in run.outcomes.iter().enumerate() {
            let Ok(Outcome::Aligned { intersection, rows }) = outcome else {
                return Err(TestCaseError::fail(format!("{outcome:?}")));
            };
            prop_assert_eq!(*intersection, expected.len() as u64);
            let ids: Vec<&String> = rows.iter().map(|r| &sets[p][r.index]).collect();
            let positions: Vec<u64> = rows.iter().map(|r| r.position).collect();
            prop_assert_eq!(positions, (0..expected.len() as u64).collect::<Vec<_>>());
            prop_assert_eq!(ids.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>(), expected.clone());
            orders.push(ids);
        }
        for order in &orders[1..] {
            prop_assert_eq!(order, &orders[0]);
        }
    }
}

fn sets_with(n: usize, shared: usize, own: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|p| {
            (0..shared)
                .map(|i| format!("all-{i}"))
                .chain((0..own).map(|i| format!("own-{p}-{i}")))
                .collect()
        })
        .collect()
}

#[test]
fn overlap_only_releases_the_size_and_no_membership() {
    for n in [2, 3] {
        let sets = sets_with(n, 17, 30);
        let run = run(&params(n as u32, 5, true), &sets, 3);
        assert_eq!(run.view.verdict, Some(Verdict::Intersection(17)));
        for outcome in &run.outcomes {
            assert_eq!(outcome, &Ok(Outcome::OverlapOnly { intersection: 17 }));
        }
        // No reveal or result was ever relayed.
        assert!(run.relayed.iter().all(|e| !matches!(
            e.step,
            fedseg_common::psi::Step::Reveal(_) | fedseg_common::psi::Step::Result
        )));
    }
}

#[test]
fn below_min_overlap_nothing_but_the_stop() {
    for overlap_only in [false, true] {
        let sets = sets_with(3, 9, 20);
        let run = run(&params(3, 10, overlap_only), &sets, 4);
        assert_eq!(run.abort, None);
        // The coordinator learns the stop, not the size.
        assert_eq!(run.view.verdict, Some(Verdict::BelowMinOverlap));
        for outcome in &run.outcomes {
            assert_eq!(outcome, &Ok(Outcome::Stopped { min_overlap: 10 }));
        }
        assert!(run.relayed.iter().all(|e| !matches!(
            e.step,
            fedseg_common::psi::Step::Reveal(_) | fedseg_common::psi::Step::Result
        )));
    }
    // At the minimum, the run releases.
    let run = run(&params(2, 9, false), &sets_with(2, 9, 20), 5);
    assert!(matches!(
        run.outcomes[1],
        Ok(Outcome::Aligned {
            intersection: 9,
            ..
        })
    ));
}

/// End-to-end timing of one run, bank and one partner, 50% overlap:
/// `PSI_SCALE=100000,1000000 cargo test --release -p fedseg-common --test psi
/// -- --ignored --nocapture scale_table`.
#[test]
#[ignore = "timing table; run in release"]
fn scale_table() {
    let scales: Vec<usize> = std::env::var("PSI_SCALE")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "| ids per party | overlap | wall s | ids/s (both parties) | sealed bytes per id | party 0 cpu s | party 1 cpu s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &m in &scales {
        let shared = m / 2;
        let sets = sets_with(2, shared, m - shared);
        let t0 = Instant::now();
        let run = runner::run(
            &params(2, 1, false),
            &sets,
            &[],
            threads,
            &mut ChaCha20Rng::seed_from_u64(1),
        );
        let wall = t0.elapsed().as_secs_f64();
        assert!(
            matches!(run.outcomes[0], Ok(Outcome::Aligned { intersection, .. }) if intersection == shared as u64)
        );
        let bytes: u64 = run.view.relayed_bytes.values().sum();
        println!(
            "| {m} | {shared} | {wall:.1} | {:.0} | {:.1} | {:.1} | {:.1} |",
            (2 * m) as f64 / wall,
            bytes as f64 / (2 * m) as f64,
            run.party_time[0].as_secs_f64(),
            run.party_time[1].as_secs_f64(),
        );
    }
}
