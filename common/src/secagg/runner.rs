//! An in-process runner: drives n members and a coordinator through any
//! number of secure-sum rounds in one thread, with dropouts injected at any
//! phase. Tests use it to check the protocol; the `bench secure-sum` command
//! uses it to time each role.
//!
//! The coordinator here behaves as the networked one does: it invites every
//! member it still hears from, re-runs key set-up when an epoch is used up
//! or a set-up fails, and stops including a member in rounds once it missed
//! a phase.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::JobParams;
use super::coordinator::{self, Epoch};
use super::error::{Phase, SecAggError};
use super::messages::{MaskRequest, ToCoordinator};
use super::participant::{self, ReadyEpoch};

/// A member that goes silent for good at the first `phase` that begins at or
/// after `round` (for the key phases, the first key set-up whose epoch
/// starts at or after `round`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropout {
    /// Phase at which the member stops answering.
    pub phase: Phase,
    /// Round (or first round of the epoch) of that phase.
    pub round: u64,
    /// The member.
    pub who: u32,
}

/// What happened in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    /// Round number.
    pub round: u64,
    /// Members whose inputs the released sum covers (empty if aborted early).
    pub survivors: Vec<u32>,
    /// The released sum, or why the round released nothing.
    pub outcome: Result<Vec<u64>, SecAggError>,
}

impl RoundReport {
    /// A round that released nothing, for `error`.
    fn aborted(round: u64, error: SecAggError) -> Self {
        Self {
            round,
            survivors: Vec::new(),
            outcome: Err(error),
        }
    }
}

/// Time spent in each role, summed over the whole run.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Per member: everything it computed (key set-up, masking, unmasking).
    pub participant: Vec<Duration>,
    /// Per member: masking alone.
    pub participant_mask: Vec<Duration>,
    /// Coordinator: everything it computed.
    pub coordinator: Duration,
    /// Coordinator: unmasking alone (reconstruction and mask removal).
    pub coordinator_unmask: Duration,
    /// Mask words the members expanded (self and pairwise), for comparing
    /// with raw keystream generation.
    pub mask_words: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    /// One report per round, in order.
    pub rounds: Vec<RoundReport>,
    /// Where the time went.
    pub timings: Timings,
    /// When each planned dropout actually took effect.
    pub dropped: Vec<Dropout>,
}

/// Applies the planned dropouts due at `phase` of `round`.
struct DropoutSchedule<'a> {
    planned: &'a [Dropout],
    happened: Vec<Dropout>,
}

impl DropoutSchedule<'_> {
    fn apply(&mut self, alive: &mut BTreeSet<u32>, phase: Phase, round: u64) {
        for d in self
            .planned
            .iter()
            .filter(|d| d.phase == phase && d.round <= round)
        {
            if alive.remove(&d.who) {
                self.happened.push(Dropout {
                    phase,
                    round,
                    who: d.who,
                });
            }
        }
    }
}

/// Runs `rounds` rounds of vectors of `length` words. `input(round, member)`
/// gives a member's encoded input; `epoch_rounds` is how many rounds one key
/// set-up covers.
pub fn run<R: CryptoRng + ?Sized>(
    params: &JobParams,
    epoch_rounds: u32,
    rounds: u64,
    length: usize,
    input: &mut dyn FnMut(u64, u32) -> Vec<u64>,
    dropouts: &[Dropout],
    rng: &mut R,
) -> Simulation {
    let params = Arc::new(params.clone());
    let n = params.participants();
    let mut timings = Timings {
        participant: vec![Duration::ZERO; n as usize],
        participant_mask: vec![Duration::ZERO; n as usize],
        ..Timings::default()
    };
    let mut alive: BTreeSet<u32> = (0..n).collect();
    // Members the coordinator has seen miss a phase of the current epoch.
    let mut silent: BTreeSet<u32> = BTreeSet::new();
    let mut ready: BTreeMap<u32, ReadyEpoch> = BTreeMap::new();
    let mut epoch: Option<Epoch> = None;
    let mut epoch_number = 0;
    let mut reports = Vec::with_capacity(rounds as usize);

    let mut schedule = DropoutSchedule {
        planned: dropouts,
        happened: Vec::new(),
    };
    let timed = |slot: &mut Duration, f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        *slot += start.elapsed();
    };

    for round in 0..rounds {
        if epoch.as_ref().is_none_or(|e| !e.start().covers(round)) {
            let remaining = (rounds - round).min(epoch_rounds as u64) as u32;
            let setup = set_up_epoch(
                &params,
                epoch_number,
                round,
                remaining,
                &mut alive,
                &mut ready,
                &mut timings,
                &mut schedule,
                rng,
            );
            epoch_number += 1;
            silent.clear();
            match setup {
                Ok(new_epoch) => epoch = Some(new_epoch),
                Err(error) => {
                    epoch = None;
                    reports.push(RoundReport {
                        round,
                        survivors: Vec::new(),
                        outcome: Err(error),
                    });
                    continue;
                }
            }
        }
        let state = epoch.as_mut().expect("epoch set up above");
        let members: Vec<u32> = state
            .members()
            .iter()
            .copied()
            .filter(|m| !silent.contains(m))
            .collect();
        let mut coordinator_time = Duration::ZERO;
        let start = Instant::now();
        let opened = state.open_round(round, members.clone(), length);
        coordinator_time += start.elapsed();
        let (request, mut inputs) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                timings.coordinator += coordinator_time;
                reports.push(RoundReport::aborted(round, error));
                continue;
            }
        };
        schedule.apply(&mut alive, Phase::MaskedInput, round);
        for &m in &members {
            let Some(member) = ready.get_mut(&m).filter(|_| alive.contains(&m)) else {
                continue;
            };
            let x = input(round, m);
            let masked = mask_timed(member, &request, &x, &mut timings, m);
            timings.mask_words += (1 + peers_in(&params, m, &members)) as u64 * length as u64;
            if let Ok(masked) = masked {
                timed(&mut coordinator_time, &mut || {
                    inputs
                        .handle(m, ToCoordinator::Masked(masked.clone()))
                        .expect("honest input")
                });
            }
        }
        let start = Instant::now();
        let closed = inputs.close();
        coordinator_time += start.elapsed();
        let (unmask_request, mut unmask) = match closed {
            Ok(closed) => closed,
            Err(error) => {
                silent.extend(members.iter().copied().filter(|m| !alive.contains(m)));
                timings.coordinator += coordinator_time;
                reports.push(RoundReport::aborted(round, error));
                continue;
            }
        };
        silent.extend(unmask_request.dropped.iter().copied());
        schedule.apply(&mut alive, Phase::Unmask, round);
        for &s in &unmask_request.survivors {
            let Some(member) = ready.get_mut(&s).filter(|_| alive.contains(&s)) else {
                silent.insert(s);
                continue;
            };
            let mut answer = None;
            timed(&mut timings.participant[s as usize], &mut || {
                answer = Some(member.unmask(&unmask_request))
            });
            let answer = answer.expect("set above").expect("honest unmask request");
            timed(&mut coordinator_time, &mut || {
                unmask
                    .handle(s, ToCoordinator::Unmask(answer.clone()))
                    .expect("honest response")
            });
        }
        let survivors = unmask.survivors().to_vec();
        let start = Instant::now();
        let outcome = unmask.finish(state);
        let unmask_time = start.elapsed();
        timings.coordinator_unmask += unmask_time;
        timings.coordinator += coordinator_time + unmask_time;
        reports.push(RoundReport {
            round,
            survivors,
            outcome,
        });
    }
    Simulation {
        rounds: reports,
        timings,
        dropped: schedule.happened,
    }
}

fn peers_in(params: &JobParams, me: u32, members: &[u32]) -> usize {
    params
        .graph
        .neighbours(me)
        .iter()
        .filter(|p| members.binary_search(p).is_ok())
        .count()
}

fn mask_timed(
    member: &mut ReadyEpoch,
    request: &MaskRequest,
    x: &[u64],
    timings: &mut Timings,
    m: u32,
) -> Result<super::messages::MaskedInput, SecAggError> {
    let start = Instant::now();
    let masked = member.mask(request, x);
    let elapsed = start.elapsed();
    timings.participant[m as usize] += elapsed;
    timings.participant_mask[m as usize] += elapsed;
    masked
}

#[allow(clippy::too_many_arguments)]
fn set_up_epoch<R: CryptoRng + ?Sized>(
    params: &Arc<JobParams>,
    epoch_number: u32,
    first_round: u64,
    rounds: u32,
    alive: &mut BTreeSet<u32>,
    ready: &mut BTreeMap<u32, ReadyEpoch>,
    timings: &mut Timings,
    schedule: &mut DropoutSchedule<'_>,
    rng: &mut R,
) -> Result<Epoch, SecAggError> {
    ready.clear();
    let invited: Vec<u32> = alive.iter().copied().collect();
    let start_time = Instant::now();
    let (start, mut keys) = coordinator::start_epoch(
        params.clone(),
        epoch_number,
        first_round,
        rounds,
        invited.clone(),
    )?;
    timings.coordinator += start_time.elapsed();
    schedule.apply(alive, Phase::AdvertiseKeys, first_round);
    let mut awaiting = BTreeMap::new();
    for &m in invited.iter().filter(|m| alive.contains(m)) {
        let t0 = Instant::now();
        let (advert, state) = participant::start_epoch(params.clone(), m, start.clone(), rng)?;
        timings.participant[m as usize] += t0.elapsed();
        let t0 = Instant::now();
        keys.handle(m, ToCoordinator::Keys(advert))?;
        timings.coordinator += t0.elapsed();
        awaiting.insert(m, state);
    }
    let t0 = Instant::now();
    let (roster, mut shares) = keys.close()?;
    timings.coordinator += t0.elapsed();
    schedule.apply(alive, Phase::ShareKeys, first_round);
    let mut sharing = BTreeMap::new();
    for (m, state) in awaiting {
        if !alive.contains(&m) {
            continue;
        }
        let t0 = Instant::now();
        let answered = state.receive_roster(roster.clone(), rng);
        timings.participant[m as usize] += t0.elapsed();
        // A member with too few holders in the roster cannot share safely.
        let Ok((bundle, state)) = answered else {
            continue;
        };
        let t0 = Instant::now();
        shares.handle(m, ToCoordinator::Shares(bundle))?;
        timings.coordinator += t0.elapsed();
        sharing.insert(m, state);
    }
    let t0 = Instant::now();
    let (deliveries, epoch) = shares.close()?;
    timings.coordinator += t0.elapsed();
    for (m, delivery) in deliveries {
        let state = sharing
            .remove(&m)
            .expect("only members that shared get deliveries");
        let t0 = Instant::now();
        let ready_state = state.receive_shares(delivery)?;
        timings.participant[m as usize] += t0.elapsed();
        ready.insert(m, ready_state);
    }
    Ok(epoch)
}
