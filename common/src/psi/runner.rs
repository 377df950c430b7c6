//! An in-process runner: drives the label holder, its partners and the
//! coordinator through one run in one thread, relaying every message the
//! way the networked coordinator does, with faults injected on the wire.
//! Tests use it to check the protocol; benchmarks use it to time a run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::coordinator::{CoordinatorView, Gathering};
use super::error::PsiError;
use super::messages::{Envelope, Step};
use super::outcome::Outcome;
use super::party::{self, Party};
use super::{LABEL_HOLDER, PsiParams};

/// A fault injected on one party's message of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mishap {
    /// The party never sends it (and nothing after).
    Silent {
        /// Party.
        party: u32,
        /// Step.
        step: Step,
    },
    /// The last byte of its first chunk is cut off.
    Truncate {
        /// Party.
        party: u32,
        /// Step.
        step: Step,
    },
    /// One bit of its first chunk is flipped.
    FlipBit {
        /// Party.
        party: u32,
        /// Step.
        step: Step,
    },
}

impl Mishap {
    fn applies(&self, env: &Envelope) -> bool {
        let (Mishap::Silent { party, step }
        | Mishap::Truncate { party, step }
        | Mishap::FlipBit { party, step }) = *self;
        party == env.from && step == env.step
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Run {
    /// Each party's outcome; every party gets the abort error if the run
    /// aborted, whatever it had computed.
    pub outcomes: Vec<Result<Outcome, PsiError>>,
    /// Why the run aborted, if it did.
    pub abort: Option<PsiError>,
    /// What the coordinator learned.
    pub view: CoordinatorView,
    /// Every envelope the coordinator relayed, as it relayed it.
    pub relayed: Vec<Envelope>,
    /// Compute time of each party.
    pub party_time: Vec<Duration>,
}

/// Runs one intersection among `sets.len()` parties (party 0 the label
/// holder) with the given faults.
pub fn run<I: AsRef<[u8]> + Sync, R: CryptoRng + ?Sized>(
    params: &PsiParams,
    sets: &[Vec<I>],
    mishaps: &[Mishap],
    threads: usize,
    rng: &mut R,
) -> Run {
    let params = Arc::new(params.clone());
    let n = params.parties as usize;
    assert_eq!(sets.len(), n, "one set per party");
    let mut time = vec![Duration::ZERO; n];
    let mut parties: Vec<Option<Party>> = Vec::with_capacity(n);
    let mut gathering = Gathering::new(params.clone());
    let mut run = Run {
        outcomes: Vec::new(),
        abort: None,
        view: CoordinatorView::default(),
        relayed: Vec::new(),
        party_time: Vec::new(),
    };
    for (p, set) in sets.iter().enumerate() {
        let t0 = Instant::now();
        let (hello, joining) =
            party::start(params.clone(), p as u32, set, threads, rng).expect("valid local inputs");
        time[p] += t0.elapsed();
        parties.push(Some(Party::Joining(joining)));
        let silent = Mishap::Silent {
            party: p as u32,
            step: Step::Hello,
        };
        if !mishaps.contains(&silent) {
            gathering.hello(p as u32, hello).expect("one hello each");
        }
    }
    let (roster, mut relay) = match gathering.close() {
        Ok(closed) => closed,
        Err(e) => return finish(run, parties, Some(e), time),
    };
    let mut queue = VecDeque::new();
    for (p, slot) in parties.iter_mut().enumerate() {
        let t0 = Instant::now();
        let state = slot.take().expect("joining");
        let (state, out) = state.on_roster(roster.clone()).expect("honest roster");
        time[p] += t0.elapsed();
        *slot = Some(state);
        queue.extend(out);
    }
    let mut silenced = vec![false; n];
    let abort = loop {
        let Some(mut env) = queue.pop_front() else {
            break relay.stalled();
        };
        let from = env.from;
        if silenced[from as usize] {
            continue;
        }
        if let Some(mishap) = mishaps.iter().find(|m| m.applies(&env)) {
            match mishap {
                Mishap::Silent { .. } => {
                    silenced[from as usize] = true;
                    continue;
                }
                Mishap::Truncate { .. } => {
                    env.chunks[0].pop();
                }
                Mishap::FlipBit { .. } => env.chunks[0][0] ^= 1,
            }
        }
        let env = match relay.route(from, env) {
            Ok(env) => env,
            Err(e) => break Some(e),
        };
        run.relayed.push(env.clone());
        let to = env.to as usize;
        let t0 = Instant::now();
        let state = parties[to].take().expect("a state");
        let handled = state.on_envelope(env);
        time[to] += t0.elapsed();
        let (state, reply) = match handled {
            Ok(handled) => handled,
            // The party reports its error; the coordinator aborts the run.
            Err(e) => break Some(e),
        };
        parties[to] = Some(state);
        queue.extend(reply.envelopes);
        if let Some(verdict) = reply.verdict {
            if let Err(e) = relay.verdict(LABEL_HOLDER, verdict) {
                break Some(e);
            }
            for (p, slot) in parties.iter_mut().enumerate().skip(1) {
                let t0 = Instant::now();
                let state = slot.take().expect("a state");
                match state.on_verdict(verdict) {
                    Ok(state) => *slot = Some(state),
                    Err(e) => return finish(run, Vec::new(), Some(e), time),
                }
                time[p] += t0.elapsed();
            }
        }
    };
    run.view = relay.view().clone();
    finish(run, parties, abort, time)
}

fn finish(
    mut run: Run,
    parties: Vec<Option<Party>>,
    abort: Option<PsiError>,
    time: Vec<Duration>,
) -> Run {
    let n = time.len();
    run.outcomes = (0..n)
        .map(
            |p| match (&abort, parties.get(p).and_then(Option::as_ref)) {
                (Some(e), _) => Err(e.clone()),
                (None, Some(state)) => Ok(state.outcome().cloned().expect("finished")),
                (None, None) => unreachable!("a state for every party"),
            },
        )
        .collect();
    run.abort = abort;
    run.party_time = time;
    run
}

#[cfg(test)]
#[path = "runner_tests.rs"]
pub(crate) mod tests;
