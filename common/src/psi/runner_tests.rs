//! Runs with faults on the wire, and what the coordinator holds after a run.

use std::cell::RefCell;

use std::collections::VecDeque;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::*;
use crate::psi::group::{HashTag, Point, hash_to_group};
use crate::psi::messages::Verdict;
use crate::psi::{coordinator, party};

thread_local! {
    /// Every list any party sealed in this thread, in the clear.
    static SEALED: RefCell<Vec<(Step, Point)>> = const { RefCell::new(Vec::new()) };
    /// A party, step and index whose point is replaced before sealing.
    static CORRUPT: RefCell<Option<(u32, Step, usize, Point)>> = const { RefCell::new(None) };
}

/// Planted as the "bad" point: repeat the previous entry instead.
const DUPLICATE: Point = [0xff; 32];

/// Test hook in `Core::seal`: logs the clear list and applies a planned
/// corruption, as a misbehaving party would.
pub(crate) fn on_seal(me: u32, step: Step, points: &[Point]) -> Vec<Point> {
    SEALED.with(|s| s.borrow_mut().extend(points.iter().map(|p| (step, *p))));
    let mut points = points.to_vec();
    if let Some((party, at, index, bad)) = CORRUPT.with(|c| *c.borrow())
        && party == me
        && at == step
    {
        points[index] = if bad == DUPLICATE {
            points[index - 1]
        } else {
            bad
        };
    }
    points
}

#[test]
fn a_point_that_does_not_decode_is_named_with_its_sender() {
    // p itself (non-canonical), a negative s, and the identity.
    let bads = [
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ];
    for (bad, (party, step)) in bads.iter().zip([
        (1, Step::Link(0)),
        (2, Step::Link(1)),
        (0, Step::Compare(0)),
    ]) {
        let bad: Point = hex::decode(bad).unwrap().try_into().unwrap();
        CORRUPT.with(|c| *c.borrow_mut() = Some((party, step, 5, bad)));
        let run = go(3, &[]);
        CORRUPT.with(|c| *c.borrow_mut() = None);
        let abort = run.abort.unwrap();
        assert_eq!(
            abort,
            PsiError::BadPoint {
                step,
                from: party,
                index: 5
            }
        );
        assert_eq!(abort.culprit(), Some(party));
        assert!(run.outcomes.iter().all(Result::is_err));
    }
}

#[test]
fn an_unsorted_complete_list_is_refused_by_the_label_holder() {
    // Party 1 completes owner 0's list at compare-1 and repeats a value.
    CORRUPT.with(|c| *c.borrow_mut() = Some((1, Step::Compare(1), 1, DUPLICATE)));
    let run = go(2, &[]);
    CORRUPT.with(|c| *c.borrow_mut() = None);
    assert_eq!(
        run.abort,
        Some(PsiError::Unsorted {
            step: Step::Compare(1),
            from: 1
        })
    );
}

fn sets(n: usize, each: usize, shared: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|p| {
            (0..each)
                .map(|i| {
                    if i < shared {
                        format!("shared-{i}")
                    } else {
                        format!("own-{p}-{i}")
                    }
                })
                .collect()
        })
        .collect()
}

fn params(n: u32, min_overlap: u64, overlap_only: bool) -> PsiParams {
    PsiParams::new("test-consortium", "job-1", n, min_overlap, overlap_only).unwrap()
}

fn go(n: u32, mishaps: &[Mishap]) -> Run {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    run(
        &params(n, 1, false),
        &sets(n as usize, 40, 10),
        mishaps,
        1,
        &mut rng,
    )
}

#[test]
fn the_os_generator_serves_a_run() {
    let run = run(
        &params(2, 1, false),
        &sets(2, 5, 2),
        &[],
        1,
        &mut crate::psi::os_rng(),
    );
    assert!(matches!(
        run.outcomes[1],
        Ok(Outcome::Aligned {
            intersection: 2,
            ..
        })
    ));
}

#[test]
fn honest_runs_align_the_shared_customers() {
    for n in [2, 3, 4] {
        let run = go(n, &[]);
        assert_eq!(run.abort, None);
        for outcome in &run.outcomes {
            let Ok(Outcome::Aligned { intersection, rows }) = outcome else {
                panic!("{outcome:?}");
            };
            assert_eq!(*intersection, 10);
            assert!(rows.iter().all(|r| r.index < 10));
        }
        assert_eq!(run.outcomes[0], run.outcomes[1]);
    }
}

#[test]
fn a_silent_party_is_named() {
    for (party, step) in [
        (1, Step::Hello),
        (2, Step::Link(1)),
        (1, Step::Compare(0)),
        (2, Step::Compare(2)),
        (1, Step::Reveal(1)),
        (2, Step::Result),
    ] {
        let run = go(3, &[Mishap::Silent { party, step }]);
        assert_eq!(run.abort, Some(PsiError::Dropped { party, step }), "{step}");
        assert!(run.outcomes.iter().all(Result::is_err));
    }
}

#[test]
fn a_cut_message_is_stopped_by_the_coordinator() {
    let run = go(
        3,
        &[Mishap::Truncate {
            party: 2,
            step: Step::Compare(1),
        }],
    );
    let abort = run.abort.unwrap();
    assert!(
        matches!(abort, PsiError::WrongLength { from: 2, .. }),
        "{abort}"
    );
    assert_eq!(abort.fault(), crate::secagg::Fault::Peer);
    assert_eq!(abort.culprit(), Some(2));
}

#[test]
fn a_tampered_message_is_stopped_by_its_recipient() {
    let run = go(
        2,
        &[Mishap::FlipBit {
            party: 1,
            step: Step::Link(0),
        }],
    );
    assert_eq!(
        run.abort,
        Some(PsiError::SealBroken {
            step: Step::Link(0),
            from: 1
        })
    );
}

#[test]
fn the_coordinator_holds_sizes_and_sealed_bytes_only() {
    SEALED.with(|s| s.borrow_mut().clear());
    let n = 3;
    let sets = sets(n, 60, 20);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let p = params(n as u32, 1, false);
    let run = run(&p, &sets, &[], 1, &mut rng);
    assert_eq!(run.abort, None);
    // Its whole view: sizes, the verdict, byte counts.
    assert_eq!(run.view.set_sizes, vec![60, 60, 60]);
    assert_eq!(run.view.verdict, Some(Verdict::Intersection(20)));
    // Every value a party put on the wire (masked ids, partial and full
    // blindings, the intersection), and every id's hash.
    let tag: HashTag = p.tag();
    let mut secret_values: Vec<Point> = SEALED.with(|s| s.borrow().iter().map(|v| v.1).collect());
    assert!(secret_values.len() > 9 * 60);
    secret_values.extend(
        sets.iter()
            .flatten()
            .map(|id| hash_to_group(&tag, id.as_bytes()).compress().to_bytes()),
    );
    secret_values.sort_unstable();
    for env in &run.relayed {
        for chunk in &env.chunks {
            for window in chunk.windows(32) {
                assert!(
                    secret_values
                        .binary_search(&window.try_into().unwrap())
                        .is_err(),
                    "a {} list carries a point in the clear",
                    env.step
                );
            }
            // No id in the clear either.
            for id in sets.iter().flatten() {
                assert!(!chunk.windows(id.len()).any(|w| w == id.as_bytes()));
            }
        }
    }
}

#[test]
fn no_ring_list_carries_a_linkable_value() {
    // F(x) of the intersection is what every party can link to its own
    // ids; it must appear on the wire only in the reveal's last hop and the
    // result, never in a list of the two ring passes, where a relaying
    // party would match it against its own F(x).
    for n in [2, 3] {
        SEALED.with(|s| s.borrow_mut().clear());
        let run = go(n, &[]);
        assert_eq!(run.abort, None);
        let sealed = SEALED.with(|s| s.borrow().clone());
        let linked: std::collections::HashSet<Point> = sealed
            .iter()
            .filter(|(step, _)| *step == Step::Result)
            .map(|v| v.1)
            .collect();
        assert_eq!(linked.len(), 10);
        for (step, point) in &sealed {
            if matches!(step, Step::Link(_) | Step::Compare(_)) {
                assert!(!linked.contains(point), "a {step} list carries F(x)");
            }
        }
    }
}

#[test]
fn complete_lists_may_reach_the_label_holder_before_its_own_ring_ends() {
    // Deliver the three parties' messages so that partners' compare-2
    // lists overtake the label holder's compare-1: hold back everything
    // addressed to party 0 at compare-1 until the partners are done.
    let n = 3;
    let p = Arc::new(params(n, 1, false));
    let sets = sets(n as usize, 30, 12);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut gathering = coordinator::Gathering::new(p.clone());
    let mut parties = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let (hello, joining) = party::start(p.clone(), i as u32, set, 1, &mut rng).unwrap();
        gathering.hello(i as u32, hello).unwrap();
        parties.push(Some(Party::Joining(joining)));
    }
    let (roster, mut relay) = gathering.close().unwrap();
    let mut queue = VecDeque::new();
    for slot in parties.iter_mut() {
        let (state, out) = slot.take().unwrap().on_roster(roster.clone()).unwrap();
        *slot = Some(state);
        queue.extend(out);
    }
    let mut held = Vec::new();
    let mut verdict = None;
    while let Some(env) = queue.pop_front().or_else(|| held.pop()) {
        if env.to == 0 && env.step == Step::Compare(1) && !queue.is_empty() {
            held.push(env);
            continue;
        }
        let env = relay.route(env.from, env).unwrap();
        let to = env.to as usize;
        let (state, reply) = parties[to].take().unwrap().on_envelope(env).unwrap();
        parties[to] = Some(state);
        queue.extend(reply.envelopes);
        if let Some(v) = reply.verdict {
            relay.verdict(0, v).unwrap();
            verdict = Some(v);
            for slot in parties.iter_mut().skip(1) {
                *slot = Some(slot.take().unwrap().on_verdict(v).unwrap());
            }
        }
    }
    assert!(relay.finished());
    assert_eq!(verdict, Some(Verdict::Intersection(12)));
    let outcomes: Vec<_> = parties
        .iter()
        .map(|p| p.as_ref().unwrap().outcome().cloned())
        .collect();
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Some(Outcome::Aligned {
            intersection: 12,
            ..
        })
    )));
}
