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
use super::signing::Membership;

/// The cohort a run plays: the job's parameters and, by index, what each
/// member brings (its credential and trust).
#[derive(Clone, Copy)]
pub struct Cohort<'a> {
    /// The job's parameters.
    pub params: &'a JobParams,
    /// Each member's credential and trust, by index.
    pub members: &'a [Arc<Membership>],
}

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
    cohort: Cohort<'_>,
    epoch_rounds: u32,
    rounds: u64,
    length: usize,
    input: &mut dyn FnMut(u64, u32) -> Vec<u64>,
    dropouts: &[Dropout],
    rng: &mut R,
) -> Simulation {
    let params = Arc::new(cohort.params.clone());
    let n = params.participants();
    let mut roles = Roles {
        timings: Timings {
            participant: vec![Duration::ZERO; n as usize],
            participant_mask: vec![Duration::ZERO; n as usize],
            ..Timings::default()
        },
        alive: (0..n).collect(),
        silent: BTreeSet::new(),
        ready: BTreeMap::new(),
    };
    let mut epoch: Option<Epoch> = None;
    let mut epoch_number = 0;
    let mut reports = Vec::with_capacity(rounds as usize);

    let mut schedule = DropoutSchedule {
        planned: dropouts,
        happened: Vec::new(),
    };

    for round in 0..rounds {
        if epoch.as_ref().is_none_or(|e| !e.start().covers(round)) {
            let remaining = (rounds - round).min(epoch_rounds as u64) as u32;
            let setup = set_up_epoch(
                (&params, cohort.members),
                epoch_number,
                round,
                remaining,
                &mut roles.alive,
                &mut roles.ready,
                &mut roles.timings,
                &mut schedule,
                rng,
            );
            epoch_number += 1;
            roles.silent.clear();
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
            .filter(|m| !roles.silent.contains(m))
            .collect();
        let mut coordinator_time = Duration::ZERO;
        let start = Instant::now();
        let opened = state.open_round(round, members.clone(), length);
        coordinator_time += start.elapsed();
        let (request, mut inputs) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                roles.timings.coordinator += coordinator_time;
                reports.push(RoundReport::aborted(round, error));
                continue;
            }
        };
        schedule.apply(&mut roles.alive, Phase::MaskedInput, round);
        roles.mask(
            &params,
            &members,
            &request,
            &mut inputs,
            &mut coordinator_time,
            &mut |m| input(round, m),
        );
        let start = Instant::now();
        let closed = inputs.close();
        coordinator_time += start.elapsed();
        let (survivor_set, mut confirm) = match closed {
            Ok(closed) => closed,
            Err(error) => {
                roles
                    .silent
                    .extend(members.iter().copied().filter(|m| !roles.alive.contains(m)));
                roles.timings.coordinator += coordinator_time;
                reports.push(RoundReport::aborted(round, error));
                continue;
            }
        };
        roles.silent.extend(
            members
                .iter()
                .copied()
                .filter(|m| survivor_set.survivors.binary_search(m).is_err()),
        );
        schedule.apply(&mut roles.alive, Phase::ConfirmSurvivors, round);
        roles.survivors_answer(
            &survivor_set.survivors,
            &mut coordinator_time,
            &mut |member| {
                ToCoordinator::Confirm(member.confirm(&survivor_set).expect("honest survivor set"))
            },
            &mut |from, message| confirm.handle(from, message),
        );
        let start = Instant::now();
        let closed = confirm.close();
        coordinator_time += start.elapsed();
        let (unmask_request, mut unmask) = match closed {
            Ok(closed) => closed,
            Err(error) => {
                roles.timings.coordinator += coordinator_time;
                reports.push(RoundReport::aborted(round, error));
                continue;
            }
        };
        schedule.apply(&mut roles.alive, Phase::Unmask, round);
        roles.survivors_answer(
            &unmask_request.survivors,
            &mut coordinator_time,
            &mut |member| {
                ToCoordinator::Unmask(member.unmask(&unmask_request).expect("honest request"))
            },
            &mut |from, message| unmask.handle(from, message),
        );
        let survivors = unmask.survivors().to_vec();
        let start = Instant::now();
        let outcome = unmask.finish(state);
        let unmask_time = start.elapsed();
        roles.timings.coordinator_unmask += unmask_time;
        roles.timings.coordinator += coordinator_time + unmask_time;
        reports.push(RoundReport {
            round,
            survivors,
            outcome,
        });
    }
    Simulation {
        rounds: reports,
        timings: roles.timings,
        dropped: schedule.happened,
    }
}

/// The members as the runner plays them: their ready epochs, who is alive,
/// who the coordinator saw fall silent this epoch, and the time each role
/// spent.
struct Roles {
    ready: BTreeMap<u32, ReadyEpoch>,
    alive: BTreeSet<u32>,
    silent: BTreeSet<u32>,
    timings: Timings,
}

impl Roles {
    /// Every live member masks its input for `request`.
    fn mask(
        &mut self,
        params: &JobParams,
        members: &[u32],
        request: &MaskRequest,
        inputs: &mut coordinator::InputCollection,
        coordinator_time: &mut Duration,
        input: &mut dyn FnMut(u32) -> Vec<u64>,
    ) {
        for &m in members {
            let Some(member) = self.ready.get_mut(&m).filter(|_| self.alive.contains(&m)) else {
                continue;
            };
            let x = input(m);
            let length = x.len() as u64;
            let masked = mask_timed(member, request, &x, &mut self.timings, m);
            self.timings.mask_words += (1 + peers_in(params, m, members)) as u64 * length;
            if let Ok(masked) = masked {
                let start = Instant::now();
                inputs
                    .handle(m, ToCoordinator::Masked(masked))
                    .expect("honest input");
                *coordinator_time += start.elapsed();
            }
        }
    }

    /// Every live survivor answers with `answer`; the coordinator's
    /// collecting state takes each answer with `take`. Both are timed to
    /// their role.
    fn survivors_answer(
        &mut self,
        survivors: &[u32],
        coordinator_time: &mut Duration,
        answer: &mut dyn FnMut(&mut ReadyEpoch) -> ToCoordinator,
        take: &mut dyn FnMut(u32, ToCoordinator) -> Result<(), SecAggError>,
    ) {
        for &s in survivors {
            let Some(member) = self.ready.get_mut(&s).filter(|_| self.alive.contains(&s)) else {
                self.silent.insert(s);
                continue;
            };
            let start = Instant::now();
            let message = answer(member);
            self.timings.participant[s as usize] += start.elapsed();
            let start = Instant::now();
            take(s, message).expect("an honest survivor's answer");
            *coordinator_time += start.elapsed();
        }
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
    (params, memberships): (&Arc<JobParams>, &[Arc<Membership>]),
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
        let membership = memberships[m as usize].clone();
        let (advert, state) =
            participant::start_epoch(params.clone(), m, start.clone(), membership, rng)?;
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
