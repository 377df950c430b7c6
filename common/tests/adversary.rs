//! A malicious coordinator, played by the test against honest members'
//! state machines: what does it end up holding?
//!
//! - **Key substitution**: it hands member B a roster in which every other
//!   member's keys are its own, so that B seals its shares to it. With
//!   signed advertisements B refuses the roster (the coordinator at fault)
//!   and the adversary opens no share of B's secrets.
//! - **Equivocation**: with one colluding member it tells some members "B
//!   survived" (to collect shares of B's self mask) and others "B dropped"
//!   (to collect shares of B's round mask key). With the consistency check
//!   neither set gathers the quorum of signatures and no share is revealed.
//! - **Replay**: survivor signatures of another round are refused.
//!
//! Each test fails when its defence is switched off (the note of the change
//! that introduced them shows how).

use std::sync::Arc;

use curve25519_dalek::Scalar;
use fedseg_common::keys::KeyAlgorithm;
use fedseg_common::secagg::consortium::Consortium;
use fedseg_common::secagg::coordinator::{self, Epoch};
use fedseg_common::secagg::messages::{
    EpochRoster, EpochStart, KeyAdvertisement, ShareDelivery, SurvivorSet, ToCoordinator,
    UnmaskRequest,
};
use fedseg_common::secagg::participant::{self, AwaitingRoster, ReadyEpoch};
use fedseg_common::secagg::sealed::{SealContext, ShareChannel};
use fedseg_common::secagg::shamir::{self, Share};
use fedseg_common::secagg::signing::{self, Signature};
use fedseg_common::secagg::{Fault, JobParams, SecAggError};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use x25519_dalek::{PublicKey, StaticSecret};

const JOB: &str = "adversary";

struct Setup {
    params: Arc<JobParams>,
    consortium: Consortium,
    start: EpochStart,
    keys: coordinator::KeyCollection,
    adverts: Vec<KeyAdvertisement>,
    awaiting: Vec<AwaitingRoster>,
    rng: ChaCha20Rng,
}

/// Members 0..n advertise keys for an epoch of `rounds` rounds.
fn advertise(n: u32, t: u32, quorum: u32, rounds: u32) -> Setup {
    let params = JobParams::new(JOB, n, t, n - 1, &[9; 32])
        .and_then(|p| p.with_quorum(quorum))
        .unwrap();
    let params = Arc::new(params);
    let consortium = Consortium::generate(n, KeyAlgorithm::EcdsaP256);
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let members: Vec<u32> = (0..n).collect();
    let (start, mut keys) =
        coordinator::start_epoch(params.clone(), 0, 0, rounds, members).unwrap();
    let mut adverts = Vec::new();
    let mut awaiting = Vec::new();
    for m in 0..n {
        let membership = consortium.members[m as usize].clone();
        let (advert, state) =
            participant::start_epoch(params.clone(), m, start.clone(), membership, &mut rng)
                .unwrap();
        keys.handle(m, ToCoordinator::Keys(advert.clone())).unwrap();
        adverts.push(advert);
        awaiting.push(state);
    }
    Setup {
        params,
        consortium,
        start,
        keys,
        adverts,
        awaiting,
        rng,
    }
}

/// The adversary's stand-in for a member: X25519 secrets it knows.
struct Impostor {
    encryption: StaticSecret,
}

/// How the adversary dresses its own keys up as member `of`'s.
#[derive(Debug, Clone, Copy)]
enum Disguise {
    /// The member's certificate and its original signature over other keys.
    KeepSignature,
    /// Signed by a colluding member with its own (genuine) certificate.
    ColluderSigns,
    /// A certificate for the member's identity from a CA of its own.
    RogueCa,
    /// A certificate of the right CA for the member's identity, but as
    /// coordinator rather than participant.
    WrongRole,
}

fn forge(
    setup: &Setup,
    of: u32,
    disguise: Disguise,
    rng: &mut ChaCha20Rng,
) -> (KeyAdvertisement, Impostor) {
    let encryption = StaticSecret::from(rng.random::<[u8; 32]>());
    let genuine = &setup.adverts[of as usize];
    let mut fake = KeyAdvertisement {
        encryption_key: PublicKey::from(&encryption).to_bytes(),
        ..genuine.clone()
    };
    let message = signing::advertisement_message(JOB, of, &fake);
    let resign = |membership: &signing::Membership, fake: &mut KeyAdvertisement| {
        fake.certificate = membership.credential.certificate().to_vec();
        fake.signature = membership.credential.sign(&message);
    };
    match disguise {
        Disguise::KeepSignature => {}
        Disguise::ColluderSigns => {
            let colluder = setup.params.participants() - 1;
            resign(&setup.consortium.members[colluder as usize], &mut fake);
        }
        Disguise::RogueCa => {
            let rogue = Consortium::generate(1, KeyAlgorithm::EcdsaP256);
            let id = setup.consortium.cohort[of as usize].clone();
            resign(&rogue.issue(&id, "participant"), &mut fake);
        }
        Disguise::WrongRole => {
            let id = setup.consortium.cohort[of as usize].clone();
            resign(&setup.consortium.issue(&id, "coordinator"), &mut fake);
        }
    }
    (fake, Impostor { encryption })
}

/// Key substitution against `victim`: every other member's keys in the
/// victim's roster are the adversary's. Returns the shares of the victim's
/// round-0 self-mask seed the adversary could open, and the victim's answer.
fn substitute_keys(disguise: Disguise) -> (Vec<Share>, Result<(), SecAggError>) {
    let (n, victim) = (4, 1);
    let mut setup = advertise(n, 3, 3, 1);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut keys = Vec::new();
    let mut impostors = Vec::new();
    for m in 0..n {
        if m == victim {
            keys.push((m, setup.adverts[m as usize].clone()));
        } else {
            let (fake, impostor) = forge(&setup, m, disguise, &mut rng);
            keys.push((m, fake));
            impostors.push((m, impostor));
        }
    }
    let roster = EpochRoster {
        start: setup.start.clone(),
        keys,
    };
    let state = setup.awaiting.remove(victim as usize);
    let bundle = match state.receive_roster(roster, &mut setup.rng) {
        Ok((bundle, _)) => bundle,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let victim_key = PublicKey::from(setup.adverts[victim as usize].encryption_key);
    let mut opened = Vec::new();
    for sealed in &bundle.shares {
        let (_, impostor) = impostors.iter().find(|(m, _)| *m == sealed.holder).unwrap();
        let channel = ShareChannel::new(&impostor.encryption, &victim_key, victim).unwrap();
        let ctx = SealContext {
            job_id: JOB,
            epoch: 0,
            sender: victim,
            holder: sealed.holder,
        };
        if let Ok(plain) = channel.open(&ctx, &sealed.ciphertext) {
            // Round 0: mask-key share, then self-seed share.
            let y = Scalar::from_canonical_bytes(plain[32..64].try_into().unwrap()).unwrap();
            opened.push(Share {
                x: sealed.holder + 1,
                y,
            });
        }
    }
    (opened, Ok(()))
}

#[test]
fn a_substituted_key_is_refused_and_no_share_of_the_victim_opens() {
    for disguise in [
        Disguise::KeepSignature,
        Disguise::ColluderSigns,
        Disguise::RogueCa,
        Disguise::WrongRole,
    ] {
        let (opened, answer) = substitute_keys(disguise);
        assert!(
            opened.is_empty(),
            "{disguise:?}: the adversary opened {} shares of the victim's self-mask seed \
             (t = 3), enough to rebuild it: {}",
            opened.len(),
            shamir::reconstruct(&opened, 3).is_ok()
        );
        let error = answer.expect_err("the victim must refuse a roster with forged keys");
        assert!(
            matches!(error, SecAggError::Forged { .. }),
            "{disguise:?}: {error}"
        );
        assert_eq!(error.fault(), Fault::Coordinator, "{disguise:?}");
    }
}

/// The honest rest of key set-up: every member gets the genuine roster.
fn honest_epoch(setup: Setup) -> (Consortium, Epoch, Vec<ReadyEpoch>) {
    let Setup {
        consortium,
        keys,
        awaiting,
        mut rng,
        ..
    } = setup;
    let (roster, mut shares) = keys.close().unwrap();
    let mut sharing = Vec::new();
    for (m, state) in awaiting.into_iter().enumerate() {
        let (bundle, state) = state.receive_roster(roster.clone(), &mut rng).unwrap();
        shares
            .handle(m as u32, ToCoordinator::Shares(bundle))
            .unwrap();
        sharing.push(state);
    }
    let (deliveries, epoch) = shares.close().unwrap();
    let ready = deliveries
        .into_iter()
        .zip(sharing)
        .map(|((_, delivery), state): ((u32, ShareDelivery), _)| {
            state.receive_shares(delivery).unwrap()
        })
        .collect();
    (consortium, epoch, ready)
}

/// Every member signs the set its group is told; the adversary relays the
/// signatures it collected for that set, plus its colluder's.
fn signatures_on(
    ready: &mut [ReadyEpoch],
    group: &[u32],
    set: &SurvivorSet,
    colluder: &signing::Membership,
    colluder_index: u32,
) -> Vec<(u32, Signature)> {
    let mut signatures: Vec<(u32, Signature)> = group
        .iter()
        .map(|&m| (m, ready[m as usize].confirm(set).unwrap().signature))
        .collect();
    let message = signing::survivors_message(JOB, set.round, &set.survivors);
    signatures.push((colluder_index, colluder.credential.sign(&message)));
    signatures.sort_unstable_by_key(|(m, _)| *m);
    signatures
}

#[test]
fn equivocation_on_the_survivor_set_reveals_nothing() {
    // n = 5, t = 3, one colluder (member 4): the quorum (n + c)/2 + 1 = 4.
    let (n, t, colluder) = (5u32, 3usize, 4u32);
    let setup = advertise(n, t as u32, signing::min_quorum(n, 1), 2);
    let (consortium, mut epoch, mut ready) = honest_epoch(setup);
    let everyone: Vec<u32> = (0..n).collect();
    let (request, mut inputs) = epoch.open_round(0, everyone.clone(), 2).unwrap();
    for m in 0..n {
        let masked = ready[m as usize].mask(&request, &[m as u64, 7]).unwrap();
        inputs.handle(m, ToCoordinator::Masked(masked)).unwrap();
    }
    // Target B = 1. Group X (B and 0) hears "B survived"; group Y (2 and 3)
    // hears "B dropped". Each group signs what it hears; the colluder signs
    // both.
    let colluding = &consortium.members[colluder as usize];
    let survived = SurvivorSet {
        round: 0,
        survivors: everyone.clone(),
    };
    let dropped = SurvivorSet {
        round: 0,
        survivors: vec![0, 2, 3, 4],
    };
    let to_x = UnmaskRequest {
        round: 0,
        survivors: survived.survivors.clone(),
        dropped: vec![],
        signatures: signatures_on(&mut ready, &[0, 1], &survived, colluding, colluder),
    };
    let to_y = UnmaskRequest {
        round: 0,
        survivors: dropped.survivors.clone(),
        dropped: vec![1],
        signatures: signatures_on(&mut ready, &[2, 3], &dropped, colluding, colluder),
    };
    // What the adversary collects of B's secrets: the colluder's own share
    // of each kind, and whatever honest members reveal.
    let (mut self_shares, mut key_shares) = (1, 1);
    let mut refusals = Vec::new();
    for (group, request) in [(&[0u32, 1][..], &to_x), (&[2, 3][..], &to_y)] {
        for &m in group {
            match ready[m as usize].unmask(request) {
                Ok(response) => {
                    let of_b = |shares: &[fedseg_common::secagg::messages::RevealedShare]| {
                        shares.iter().filter(|s| s.owner == 1).count()
                    };
                    self_shares += of_b(&response.self_mask_shares);
                    key_shares += of_b(&response.mask_key_shares);
                }
                Err(e) => refusals.push(e),
            }
        }
    }
    assert!(
        self_shares < t || key_shares < t,
        "the adversary holds {self_shares} shares of B's self mask and {key_shares} of its \
         mask key (t = {t}): B's input is unmasked"
    );
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    for e in &refusals {
        assert!(
            matches!(
                e,
                SecAggError::Unconfirmed {
                    have: 3,
                    need: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.fault(), Fault::Coordinator);
    }
    // The honest coordinator's next round still releases the exact sum.
    let (request, mut inputs) = epoch.open_round(1, everyone.clone(), 2).unwrap();
    for m in 0..n {
        let masked = ready[m as usize].mask(&request, &[m as u64, 1]).unwrap();
        inputs.handle(m, ToCoordinator::Masked(masked)).unwrap();
    }
    let (set, mut confirm) = inputs.close().unwrap();
    for m in 0..n {
        let signature = ready[m as usize].confirm(&set).unwrap();
        confirm
            .handle(m, ToCoordinator::Confirm(signature))
            .unwrap();
    }
    let (unmask_request, mut unmask) = confirm.close().unwrap();
    // Round 0's signatures do not confirm round 1's set.
    let replayed = UnmaskRequest {
        signatures: to_x.signatures.clone(),
        ..unmask_request.clone()
    };
    assert!(matches!(
        ready[0].unmask(&replayed),
        Err(SecAggError::BadSurvivorSignature { round: 1, .. })
    ));
    for m in 0..n {
        let response = ready[m as usize].unmask(&unmask_request).unwrap();
        unmask.handle(m, ToCoordinator::Unmask(response)).unwrap();
    }
    assert_eq!(unmask.finish(&epoch).unwrap(), vec![10, 5]);
}

#[test]
fn a_member_signs_one_survivor_set_per_round() {
    let setup = advertise(4, 3, 3, 1);
    let (_, mut epoch, mut ready) = honest_epoch(setup);
    let (request, _) = epoch.open_round(0, vec![0, 1, 2, 3], 1).unwrap();
    ready[0].mask(&request, &[1]).unwrap();
    let first = SurvivorSet {
        round: 0,
        survivors: vec![0, 1, 2, 3],
    };
    let again = ready[0].confirm(&first).unwrap();
    assert!(ready[0].confirm(&first).is_ok(), "a retry is answered");
    let other = SurvivorSet {
        round: 0,
        survivors: vec![0, 1, 2],
    };
    let refused = ready[0].confirm(&other).unwrap_err();
    assert_eq!(refused, SecAggError::Equivocation { round: 0 });
    assert_eq!(refused.fault(), Fault::Coordinator);
    assert_eq!(again.round, 0);
}

#[test]
fn an_input_its_sender_did_not_sign_is_not_summed() {
    let setup = advertise(4, 3, 3, 1);
    let (_, mut epoch, mut ready) = honest_epoch(setup);
    let everyone = vec![0, 1, 2, 3];
    let (request, mut inputs) = epoch.open_round(0, everyone, 2).unwrap();
    let masked: Vec<_> = (0..4u64)
        .map(|m| ready[m as usize].mask(&request, &[m, 1]).unwrap())
        .collect();
    // Member 1's words altered on the way, and member 0's signed input
    // passed off as member 1's: neither is accepted from member 1.
    let mut altered = masked[1].clone();
    altered.words[0] ^= 1;
    for forged in [altered, masked[0].clone()] {
        let refused = inputs.handle(1, ToCoordinator::Masked(forged)).unwrap_err();
        assert!(
            matches!(refused, SecAggError::Malformed { from: 1, .. }),
            "{refused}"
        );
    }
    for (m, input) in masked.iter().enumerate() {
        inputs
            .handle(m as u32, ToCoordinator::Masked(input.clone()))
            .unwrap();
    }
    // What the coordinator journals: each survivor's digest and signature.
    let (_, confirm) = inputs.close().unwrap();
    let signed = confirm.signed_inputs();
    assert_eq!(signed.len(), 4);
    for (m, input) in masked.iter().enumerate() {
        assert_eq!(
            signed[&(m as u32)].digest,
            signing::input_digest(&input.words)
        );
        assert_eq!(signed[&(m as u32)].signature, input.signature);
    }
}
