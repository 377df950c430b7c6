//! Protocol-level tests of the secure sum, through the in-process runner and
//! the role state machines directly.
//!
//! Invariants checked:
//! - every released sum equals the wrapping sum of exactly the survivors'
//!   inputs, over consecutive rounds and key epochs, whatever drops out;
//! - when at most n − t members drop in total, every round is released;
//! - a round with too few survivors or share holders releases nothing;
//! - a lone masked vector looks uniform;
//! - late, duplicate, out-of-phase and other-round messages are refused with
//!   typed errors, and no member's self mask and mask key are both revealed.

use std::sync::Arc;

use fedseg_common::keys::KeyAlgorithm;
use fedseg_common::secagg::consortium::Consortium;
use fedseg_common::secagg::coordinator::{self, Epoch};
use fedseg_common::secagg::messages::{MaskRequest, ToCoordinator, UnmaskRequest};
use fedseg_common::secagg::participant::{self, ReadyEpoch};
use fedseg_common::secagg::runner::{self, Dropout};
use fedseg_common::secagg::{Fault, JobParams, NeighbourGraph, Phase, SecAggError};
use proptest::prelude::*;
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};

/// Runs `params` with a fresh in-memory consortium of its size.
fn run(
    params: &JobParams,
    (epoch_rounds, rounds, length): (u32, u64, usize),
    input: &mut dyn FnMut(u64, u32) -> Vec<u64>,
    dropouts: &[Dropout],
    rng: &mut ChaCha20Rng,
) -> runner::Simulation {
    let consortium = Consortium::generate(params.participants(), KeyAlgorithm::EcdsaP256);
    let cohort = runner::Cohort {
        params,
        members: &consortium.members,
    };
    runner::run(cohort, epoch_rounds, rounds, length, input, dropouts, rng)
}

fn input_of(seed: u64, length: usize) -> impl FnMut(u64, u32) -> Vec<u64> {
    move |round, member| {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (round << 20) ^ member as u64);
        (0..length).map(|_| rng.random::<u64>()).collect()
    }
}

fn plain_sum(
    inputs: &mut dyn FnMut(u64, u32) -> Vec<u64>,
    round: u64,
    members: &[u32],
    length: usize,
) -> Vec<u64> {
    let mut sum = vec![0u64; length];
    for &m in members {
        for (s, x) in sum.iter_mut().zip(inputs(round, m)) {
            *s = s.wrapping_add(x);
        }
    }
    sum
}

/// Checks every released round against the plain sum of its survivors and
/// that no survivor had dropped before that round's masked input. Returns
/// how many rounds were released.
fn check_released(sim: &runner::Simulation, seed: u64, length: usize) -> usize {
    let mut reference = input_of(seed, length);
    let mut released = 0;
    for report in &sim.rounds {
        let Ok(sum) = &report.outcome else { continue };
        released += 1;
        for d in &sim.dropped {
            let before_input = d.round < report.round
                || (d.round == report.round && d.phase <= Phase::MaskedInput);
            assert!(
                !(before_input && report.survivors.contains(&d.who)),
                "round {}: {:?} but counted as survivor",
                report.round,
                d
            );
        }
        assert_eq!(
            sum,
            &plain_sum(&mut reference, report.round, &report.survivors, length),
            "round {}",
            report.round
        );
    }
    released
}

#[test]
fn ten_rounds_with_dropouts_at_every_phase_are_exact() {
    // 18 members, 8 of them dropping: the last rounds keep 10, the
    // quorum of signatures on their survivor set.
    let n = 18;
    let params = JobParams::new("ten-rounds", n, 4, n - 1, &[1; 32]).unwrap();
    assert_eq!(params.quorum, 10);
    let at = |phase, round, who| Dropout { phase, round, who };
    let dropouts = [
        at(Phase::AdvertiseKeys, 0, 3),
        at(Phase::ShareKeys, 0, 7),
        at(Phase::MaskedInput, 1, 0),
        at(Phase::Unmask, 2, 11),
        // The second key epoch starts at round 4.
        at(Phase::AdvertiseKeys, 4, 5),
        at(Phase::ShareKeys, 4, 9),
        at(Phase::MaskedInput, 6, 1),
        at(Phase::Unmask, 9, 2),
    ];
    let length = 257;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let sim = run(
        &params,
        (4, 10, length),
        &mut input_of(5, length),
        &dropouts,
        &mut rng,
    );
    let outcomes: Vec<_> = sim
        .rounds
        .iter()
        .map(|r| r.outcome.as_ref().err())
        .collect();
    assert_eq!(check_released(&sim, 5, length), 10, "{outcomes:?}");
    assert_eq!(sim.dropped.len(), dropouts.len());
    // Dropped during round 2's unmask phase: its input is still in round 2.
    assert!(sim.rounds[2].survivors.contains(&11));
    assert!(!sim.rounds[3].survivors.contains(&11));
    assert_eq!(
        sim.rounds[9].survivors,
        vec![2, 4, 6, 8, 10, 12, 13, 14, 15, 16, 17]
    );
}

#[test]
fn too_few_survivors_release_nothing() {
    let n = 5;
    let params = JobParams::new("abort", n, 4, n - 1, &[2; 32]).unwrap();
    let dropouts: Vec<Dropout> = [0, 1]
        .iter()
        .map(|&who| Dropout {
            phase: Phase::MaskedInput,
            round: 1,
            who,
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sim = run(&params, (3, 3, 8), &mut input_of(1, 8), &dropouts, &mut rng);
    assert!(sim.rounds[0].outcome.is_ok());
    assert!(matches!(
        sim.rounds[1].outcome,
        Err(SecAggError::TooFewParticipants {
            have: 3,
            need: 4,
            ..
        })
    ));
    assert!(sim.rounds[2].outcome.is_err());
}

#[test]
fn survivors_that_vanish_before_unmasking_abort_the_round() {
    // 3 of 5 survive the input phase (t = 3), then two of them vanish.
    let n = 5;
    let params = JobParams::new("unmask-abort", n, 3, n - 1, &[3; 32]).unwrap();
    let at = |phase, who| Dropout {
        phase,
        round: 0,
        who,
    };
    let dropouts = [
        at(Phase::MaskedInput, 0),
        at(Phase::MaskedInput, 1),
        at(Phase::Unmask, 2),
        at(Phase::Unmask, 3),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let sim = run(&params, (1, 1, 4), &mut input_of(2, 4), &dropouts, &mut rng);
    assert!(matches!(
        sim.rounds[0].outcome,
        Err(SecAggError::NotEnoughShares { need: 3, .. })
    ));
}

/// Turns random picks into a dropout plan with at most `limit_per_phase`
/// members dropping at any one phase, each member at most once.
fn dropout_plan(
    n: u32,
    limit_per_phase: usize,
    rounds: u64,
    picks: &[(u8, u64, u32)],
) -> Vec<Dropout> {
    let phases = Phase::ALL;
    let mut plan: Vec<Dropout> = Vec::new();
    for &(phase, round, who) in picks {
        let d = Dropout {
            phase: phases[phase as usize % phases.len()],
            round: round % rounds,
            who: who % n,
        };
        let same_phase = plan
            .iter()
            .filter(|p| p.phase == d.phase && p.round == d.round)
            .count();
        if same_phase < limit_per_phase && !plan.iter().any(|p| p.who == d.who) {
            plan.push(d);
        }
    }
    plan
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Complete graphs: random cohorts, thresholds, lengths, inputs and up
    /// to n − max(t, quorum) dropouts at each phase; released sums are
    /// exact, and with at most that many dropouts in all, every round is
    /// released.
    #[test]
    fn secure_sum_equals_plain_sum_complete_graph(
        n in 2u32..=40,
        t_frac in 0.0f64..=1.0,
        length in 1usize..48,
        rounds in 1u64..5,
        epoch_rounds in 1u32..4,
        seed: u64,
        picks in proptest::collection::vec((0u8..5, 0u64..8, 0u32..64), 0..24),
    ) {
        let t = 1 + ((n - 1) as f64 * t_frac) as u32;
        let params = JobParams::new("prop-complete", n, t, n - 1, &[4; 32]).unwrap();
        let tolerated = (n - t.max(params.quorum)) as usize;
        let dropouts = dropout_plan(n, tolerated, rounds, &picks);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sim = run(&params, (epoch_rounds, rounds, length), &mut input_of(seed, length), &dropouts, &mut rng);
        let released = check_released(&sim, seed, length);
        if dropouts.len() <= tolerated {
            prop_assert_eq!(released as u64, rounds, "{:?}", sim.rounds);
        }
    }

    /// Sparse SecAgg+ graphs: released sums are exact under dropouts, and
    /// without dropouts every round is released.
    #[test]
    fn secure_sum_equals_plain_sum_sparse_graph(
        n in 33u32..=60,
        degree in 4u32..=12,
        length in 1usize..32,
        seed: u64,
        picks in proptest::collection::vec((0u8..5, 0u64..3, 0u32..64), 0..6),
    ) {
        let graph_seed: [u8; 32] = ChaCha20Rng::seed_from_u64(seed).random();
        let t = degree / 2 + 1;
        let params = JobParams::new("prop-sparse", n, t, degree, &graph_seed).unwrap();
        prop_assert!(!params.graph.is_complete());
        let dropouts = dropout_plan(n, 2, 3, &picks);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sim = run(&params, (2, 3, length), &mut input_of(seed, length), &dropouts, &mut rng);
        let released = check_released(&sim, seed, length);
        if dropouts.is_empty() {
            prop_assert_eq!(released, 3);
        }
    }
}

/// Sets up one epoch for all `n` members directly through the role APIs.
fn set_up(n: u32, t: u32, rounds: u32) -> (Arc<JobParams>, Epoch, Vec<ReadyEpoch>) {
    let degree = NeighbourGraph::default_degree(n);
    let params = Arc::new(JobParams::new("direct", n, t, degree, &[5; 32]).unwrap());
    let consortium = Consortium::generate(n, KeyAlgorithm::Ed25519);
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let members: Vec<u32> = (0..n).collect();
    let (start, mut keys) =
        coordinator::start_epoch(params.clone(), 0, 0, rounds, members.clone()).unwrap();
    let mut awaiting = Vec::new();
    for &m in &members {
        let membership = consortium.members[m as usize].clone();
        let (advert, state) =
            participant::start_epoch(params.clone(), m, start.clone(), membership, &mut rng)
                .unwrap();
        keys.handle(m, ToCoordinator::Keys(advert)).unwrap();
        awaiting.push(state);
    }
    let (roster, mut shares) = keys.close().unwrap();
    let mut sharing = Vec::new();
    for (m, state) in members.iter().zip(awaiting) {
        let (bundle, state) = state.receive_roster(roster.clone(), &mut rng).unwrap();
        shares.handle(*m, ToCoordinator::Shares(bundle)).unwrap();
        sharing.push(state);
    }
    let (deliveries, epoch) = shares.close().unwrap();
    let ready = deliveries
        .into_iter()
        .zip(sharing)
        .map(|((_, delivery), state)| state.receive_shares(delivery).unwrap())
        .collect();
    (params, epoch, ready)
}

#[test]
fn a_lone_masked_vector_looks_uniform() {
    let (_, mut epoch, mut ready) = set_up(3, 2, 1);
    let length = 1 << 16;
    let (request, _) = epoch.open_round(0, vec![0, 1, 2], length).unwrap();
    let masked = ready[0].mask(&request, &vec![0u64; length]).unwrap();
    // Chi-square of the top byte over 256 bins (255 degrees of freedom):
    // 380 lies beyond the 0.99999 quantile.
    let mut bins = [0u64; 256];
    for w in &masked.words {
        bins[(w >> 56) as usize] += 1;
    }
    let expected = length as f64 / 256.0;
    let chi2: f64 = bins
        .iter()
        .map(|&b| (b as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 380.0, "chi-square {chi2}");
    // Every bit position is set about half the time (within 5 sigma).
    for bit in 0..64 {
        let ones = masked.words.iter().filter(|w| (*w >> bit) & 1 == 1).count() as f64;
        let sigma = (length as f64 / 4.0).sqrt();
        assert!(
            (ones - length as f64 / 2.0).abs() < 5.0 * sigma,
            "bit {bit}: {ones}"
        );
    }
}

#[test]
fn late_masked_input_from_a_dropped_member_cannot_be_unmasked() {
    let (_, mut epoch, mut ready) = set_up(4, 3, 2);
    let (request, mut inputs) = epoch.open_round(0, vec![0, 1, 2, 3], 4).unwrap();
    for m in 0..3u32 {
        let masked = ready[m as usize].mask(&request, &[1, 2, 3, 4]).unwrap();
        inputs.handle(m, ToCoordinator::Masked(masked)).unwrap();
    }
    let late = ready[3].mask(&request, &[9, 9, 9, 9]).unwrap();
    let (set, mut confirm) = inputs.close().unwrap();
    assert_eq!(set.survivors, vec![0, 1, 2]);
    for m in 0..3u32 {
        let signature = ready[m as usize].confirm(&set).unwrap();
        confirm
            .handle(m, ToCoordinator::Confirm(signature))
            .unwrap();
    }
    let (unmask_request, mut unmask) = confirm.close().unwrap();
    assert_eq!(unmask_request.dropped, vec![3]);
    // The input phase is over: the late input is refused.
    assert_eq!(
        unmask.handle(3, ToCoordinator::Masked(late)),
        Err(SecAggError::OutOfPhase {
            expected: Phase::Unmask,
            got: Phase::MaskedInput
        })
    );
    for m in 0..3u32 {
        let response = ready[m as usize].unmask(&unmask_request).unwrap();
        assert!(response.mask_key_shares.iter().any(|s| s.owner == 3));
        assert!(response.self_mask_shares.iter().all(|s| s.owner != 3));
        unmask.handle(m, ToCoordinator::Unmask(response)).unwrap();
    }
    assert_eq!(unmask.finish(&epoch).unwrap(), vec![3, 6, 9, 12]);
    // A coordinator that now claims 3 survived gets no share of its self
    // mask: no survivor signs a second set for the round.
    let turned = UnmaskRequest {
        round: 0,
        survivors: vec![0, 1, 2, 3],
        dropped: vec![],
        signatures: unmask_request.signatures.clone(),
    };
    for member in ready.iter_mut().take(3) {
        assert_eq!(
            member.unmask(&turned),
            Err(SecAggError::Equivocation { round: 0 })
        );
    }
    // A retry of the original request is answered again, identically.
    let first = ready[0].unmask(&unmask_request).unwrap();
    assert_eq!(first, ready[0].unmask(&unmask_request).unwrap());
}

#[test]
fn out_of_phase_and_other_round_messages_are_refused() {
    let (params, mut epoch, mut ready) = set_up(4, 3, 3);
    let (request, mut inputs) = epoch.open_round(1, vec![0, 1, 2, 3], 2).unwrap();
    // Rounds open only forward.
    assert!(matches!(
        epoch.open_round(0, vec![0, 1, 2, 3], 2),
        Err(SecAggError::RoundUnavailable { round: 0, .. })
    ));
    // Unmasking before masking.
    let premature = UnmaskRequest {
        round: 1,
        survivors: vec![0, 1, 2, 3],
        dropped: vec![],
        signatures: vec![],
    };
    assert_eq!(
        ready[0].unmask(&premature),
        Err(SecAggError::OutOfPhase {
            expected: Phase::MaskedInput,
            got: Phase::Unmask
        })
    );
    let masked = ready[0].mask(&request, &[1, 1]).unwrap();
    // The same round is never masked twice (that would leak x − x').
    assert!(matches!(
        ready[0].mask(&request, &[2, 2]),
        Err(SecAggError::RoundUnavailable { round: 1, .. })
    ));
    // A round outside the epoch, as for a member that missed its key set-up.
    let beyond = MaskRequest {
        round: 3,
        ..request.clone()
    };
    assert!(matches!(
        ready[1].mask(&beyond, &[1, 1]),
        Err(SecAggError::RoundUnavailable { round: 3, .. })
    ));
    // A skipped round is never used afterwards.
    let skipped = MaskRequest {
        round: 0,
        ..request.clone()
    };
    assert!(matches!(
        ready[0].mask(&skipped, &[1, 1]),
        Err(SecAggError::RoundUnavailable { round: 0, .. })
    ));
    // Another round's input, a duplicate, a wrong length.
    let mut other_round = masked.clone();
    other_round.round = 2;
    assert_eq!(
        inputs.handle(0, ToCoordinator::Masked(other_round)),
        Err(SecAggError::WrongRound {
            expected: 1,
            got: 2
        })
    );
    inputs
        .handle(0, ToCoordinator::Masked(masked.clone()))
        .unwrap();
    let duplicate = inputs.handle(0, ToCoordinator::Masked(masked.clone()));
    assert_eq!(
        duplicate,
        Err(SecAggError::Duplicate {
            from: 0,
            phase: Phase::MaskedInput
        })
    );
    assert_eq!(duplicate.unwrap_err().fault(), Fault::Peer);
    let mut short = masked.clone();
    short.words.pop();
    assert_eq!(
        inputs.handle(1, ToCoordinator::Masked(short)),
        Err(SecAggError::LengthMismatch {
            expected: 2,
            got: 1
        })
    );
    // A masked input during another epoch's key set-up.
    let (_, mut fresh_keys) =
        coordinator::start_epoch(params.clone(), 1, 3, 1, vec![0, 1, 2, 3]).unwrap();
    assert_eq!(
        fresh_keys.handle(0, ToCoordinator::Masked(masked)),
        Err(SecAggError::OutOfPhase {
            expected: Phase::AdvertiseKeys,
            got: Phase::MaskedInput
        })
    );
}

#[test]
fn unmask_requests_must_partition_the_round() {
    let (_, mut epoch, mut ready) = set_up(4, 2, 1);
    let (request, _) = epoch.open_round(0, vec![0, 1, 2, 3], 1).unwrap();
    ready[0].mask(&request, &[5]).unwrap();
    let cases = [
        (vec![0, 1, 2], vec![2, 3]),
        (vec![0, 1], vec![3]),
        (vec![1, 2, 3], vec![0]),
    ];
    for (survivors, dropped) in cases {
        let request = UnmaskRequest {
            round: 0,
            survivors,
            dropped,
            signatures: vec![],
        };
        assert!(matches!(
            ready[0].unmask(&request),
            Err(SecAggError::InconsistentUnmask(_))
        ));
    }
}

/// Distributed DP: each member adds discrete Gaussian noise to its encoded
/// vector before masking. The released sum is exactly the survivors' plain
/// sum plus exactly the noise they added, and nothing else.
#[test]
fn with_noise_the_sum_is_the_plain_sum_plus_exactly_the_added_noise() {
    use std::collections::HashMap;

    use fedseg_common::dp;
    use fedseg_common::fixed_point::{ClipRange, FixedPointEncoder};

    let n = 8;
    let params = JobParams::new("dp", n, 5, n - 1, &[3; 32]).unwrap();
    let length = 16;
    let encoder = FixedPointEncoder::new(16, vec![ClipRange::new(-1e6, 1e6)]).unwrap();
    let values = |round: u64, member: u32| -> Vec<f64> {
        (0..length)
            .map(|i| (member as f64 + 1.0) * 10.5 - i as f64 + round as f64)
            .collect()
    };
    let mut noise_rng = ChaCha20Rng::seed_from_u64(11);
    let mut recorded: HashMap<(u64, u32), Vec<i64>> = HashMap::new();
    let mut input = |round: u64, member: u32| -> Vec<u64> {
        let mut words = encoder.encode(&values(round, member)).unwrap().words;
        // σ = 2^8 steps of 2^-16: noise around 0.004 in real units.
        let noise = dp::add_noise(&mut words, &mut noise_rng, 1 << 16, 1).unwrap();
        recorded.insert((round, member), noise);
        words
    };
    let dropouts = [
        Dropout {
            phase: Phase::MaskedInput,
            round: 1,
            who: 2,
        },
        Dropout {
            phase: Phase::Unmask,
            round: 2,
            who: 5,
        },
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let sim = run(&params, (4, 4, length), &mut input, &dropouts, &mut rng);
    let mut released = 0;
    for report in &sim.rounds {
        let Ok(sum) = &report.outcome else { continue };
        released += 1;
        let mut expected = vec![0u64; length];
        let mut plain = vec![0.0; length];
        let mut noise_total = vec![0i64; length];
        for &m in &report.survivors {
            let encoded = encoder.encode(&values(report.round, m)).unwrap().words;
            let noise = &recorded[&(report.round, m)];
            for i in 0..length {
                expected[i] = expected[i]
                    .wrapping_add(encoded[i])
                    .wrapping_add(noise[i] as u64);
                plain[i] += values(report.round, m)[i];
                noise_total[i] += noise[i];
            }
        }
        assert_eq!(sum, &expected, "round {}", report.round);
        // Decoded: the plain sum plus the total noise, to the encoding's step.
        let decoded = encoder.decode(sum);
        for i in 0..length {
            let noise = noise_total[i] as f64 * encoder.resolution();
            assert!((decoded[i] - plain[i] - noise).abs() < 1e-9);
        }
        // Noise was really added: the release is not the plain sum.
        assert_ne!(noise_total, vec![0; length]);
    }
    assert_eq!(released, 4);
}
