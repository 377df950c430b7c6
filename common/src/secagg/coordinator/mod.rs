//! The coordinator's side of the protocol, as states consumed by value:
//! [`start_epoch`] → [`KeyCollection`] → [`ShareCollection`] → [`Epoch`];
//! each round then goes [`Epoch::open_round`] → [`InputCollection`] →
//! [`ConfirmCollection`] → [`UnmaskCollection`] → the released sum. Every state takes any member
//! message through one `handle` and rejects the wrong phase, round or sender
//! with a typed error; closing a phase consumes it, so a late message can
//! only reach the next state, which refuses it.

mod round;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::error::{Phase, SecAggError};
use super::messages::{
    EpochRoster, EpochStart, KeyAdvertisement, MaskRequest, PublicKeyBytes, SealedShares,
    ShareDelivery, ToCoordinator,
};
use super::signing;
use super::{JobParams, strictly_sorted};
use crate::certs;
use crate::keys::VerifyingKey;

pub use round::{ConfirmCollection, InputCollection, SignedInput, UnmaskCollection};

fn expect_phase(expected: Phase, message: &ToCoordinator) -> Result<(), SecAggError> {
    if message.phase() != expected {
        return Err(SecAggError::OutOfPhase {
            expected,
            got: message.phase(),
        });
    }
    Ok(())
}

fn require_threshold(have: usize, params: &JobParams, phase: Phase) -> Result<(), SecAggError> {
    if have < params.t() {
        return Err(SecAggError::TooFewParticipants {
            have,
            need: params.t(),
            phase,
        });
    }
    Ok(())
}

/// Checks a round's message at `phase`: for the round collected
/// (`(expected, got)`), from one of `members` (sorted), and the first from
/// its sender (`repeated` says whether one came already).
fn check_round_message(
    phase: Phase,
    (expected, got): (u64, u64),
    members: &[u32],
    from: u32,
    repeated: bool,
) -> Result<(), SecAggError> {
    if got != expected {
        return Err(SecAggError::WrongRound { expected, got });
    }
    if members.binary_search(&from).is_err() {
        return Err(SecAggError::NotMember { who: from, phase });
    }
    if repeated {
        return Err(SecAggError::Duplicate { from, phase });
    }
    Ok(())
}

/// Opens key set-up for `rounds` rounds from `first_round`, inviting
/// `members` (sorted).
pub fn start_epoch(
    params: Arc<JobParams>,
    epoch: u32,
    first_round: u64,
    rounds: u32,
    members: Vec<u32>,
) -> Result<(EpochStart, KeyCollection), SecAggError> {
    if rounds == 0
        || !strictly_sorted(&members)
        || members.last().is_some_and(|&m| m >= params.participants())
    {
        return Err(SecAggError::InvalidParams(
            "an epoch needs rounds and a sorted list of cohort members".into(),
        ));
    }
    require_threshold(members.len(), &params, Phase::AdvertiseKeys)?;
    let start = EpochStart {
        epoch,
        first_round,
        rounds,
        members,
    };
    Ok((
        start.clone(),
        KeyCollection {
            params,
            start,
            keys: BTreeMap::new(),
            signers: HashMap::new(),
        },
    ))
}

/// Collecting key advertisements.
#[derive(Debug)]
pub struct KeyCollection {
    params: Arc<JobParams>,
    start: EpochStart,
    keys: BTreeMap<u32, KeyAdvertisement>,
    signers: HashMap<u32, VerifyingKey>,
}

impl KeyCollection {
    /// Accepts one member's advertisement, signed with the key of the
    /// certificate it carries. (Whether that certificate is the member's is
    /// every other member's to check: they do not rely on this one.)
    pub fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
        expect_phase(Phase::AdvertiseKeys, &message)?;
        let ToCoordinator::Keys(keys) = message else {
            unreachable!("phase checked")
        };
        if keys.epoch != self.start.epoch {
            return Err(SecAggError::WrongEpoch {
                expected: self.start.epoch,
                got: keys.epoch,
            });
        }
        if self.start.members.binary_search(&from).is_err() {
            return Err(SecAggError::NotMember {
                who: from,
                phase: Phase::AdvertiseKeys,
            });
        }
        if keys.mask_keys.len() != self.start.rounds as usize {
            return Err(SecAggError::Malformed {
                from,
                reason: "one mask key per round expected".into(),
            });
        }
        if self.keys.contains_key(&from) {
            return Err(SecAggError::Duplicate {
                from,
                phase: Phase::AdvertiseKeys,
            });
        }
        let malformed = |reason: String| SecAggError::Malformed { from, reason };
        let key = certs::key_unchecked(&keys.certificate).map_err(|e| malformed(e.to_string()))?;
        let message = signing::advertisement_message(&self.params.job_id, from, &keys);
        key.verify(&message, &keys.signature)
            .map_err(|_| malformed("the advertisement's signature does not verify".into()))?;
        self.keys.insert(from, keys);
        self.signers.insert(from, key);
        Ok(())
    }

    /// Whether every invited member has answered.
    pub fn is_complete(&self) -> bool {
        self.keys.len() == self.start.members.len()
    }

    /// Ends the phase: the roster goes to every member that advertised.
    pub fn close(self) -> Result<(EpochRoster, ShareCollection), SecAggError> {
        require_threshold(self.keys.len(), &self.params, Phase::AdvertiseKeys)?;
        let roster = EpochRoster {
            start: self.start,
            keys: self.keys.into_iter().collect(),
        };
        Ok((
            roster.clone(),
            ShareCollection {
                params: self.params,
                roster,
                bundles: BTreeMap::new(),
                signers: self.signers,
            },
        ))
    }
}

/// Relaying sealed shares.
#[derive(Debug)]
pub struct ShareCollection {
    params: Arc<JobParams>,
    roster: EpochRoster,
    bundles: BTreeMap<u32, Vec<SealedShares>>,
    signers: HashMap<u32, VerifyingKey>,
}

impl ShareCollection {
    /// Members the roster went to.
    pub fn members(&self) -> impl Iterator<Item = u32> + '_ {
        self.roster.keys.iter().map(|(m, _)| *m)
    }

    /// Accepts one member's sealed shares: exactly one per holder of its
    /// secrets in the roster, other than itself.
    pub fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
        expect_phase(Phase::ShareKeys, &message)?;
        let ToCoordinator::Shares(bundle) = message else {
            unreachable!("phase checked")
        };
        let epoch = self.roster.start.epoch;
        if bundle.epoch != epoch {
            return Err(SecAggError::WrongEpoch {
                expected: epoch,
                got: bundle.epoch,
            });
        }
        if self.roster.keys_of(from).is_none() {
            return Err(SecAggError::NotMember {
                who: from,
                phase: Phase::ShareKeys,
            });
        }
        if self.bundles.contains_key(&from) {
            return Err(SecAggError::Duplicate {
                from,
                phase: Phase::ShareKeys,
            });
        }
        let expected: Vec<u32> = self
            .params
            .graph
            .neighbours(from)
            .iter()
            .copied()
            .filter(|h| self.roster.keys_of(*h).is_some())
            .collect();
        let mut got: Vec<u32> = bundle.shares.iter().map(|s| s.holder).collect();
        got.sort_unstable();
        if got != expected || bundle.shares.iter().any(|s| s.sender != from) {
            return Err(SecAggError::Malformed {
                from,
                reason: "shares must go to each neighbour in the roster exactly once".into(),
            });
        }
        self.bundles.insert(from, bundle.shares);
        Ok(())
    }

    /// Whether every roster member has sent its shares.
    pub fn is_complete(&self) -> bool {
        self.bundles.len() == self.roster.keys.len()
    }

    /// Ends the phase: each member that sent shares receives those sealed to
    /// it by the others that did; they form the epoch's membership.
    pub fn close(self) -> Result<(Vec<(u32, ShareDelivery)>, Epoch), SecAggError> {
        require_threshold(self.bundles.len(), &self.params, Phase::ShareKeys)?;
        let epoch = self.roster.start.epoch;
        let mut deliveries: BTreeMap<u32, Vec<SealedShares>> =
            self.bundles.keys().map(|&m| (m, Vec::new())).collect();
        for shares in self.bundles.into_values() {
            for sealed in shares {
                if let Some(inbox) = deliveries.get_mut(&sealed.holder) {
                    inbox.push(sealed);
                }
            }
        }
        let members: Vec<u32> = deliveries.keys().copied().collect();
        let mask_keys = members
            .iter()
            .map(|m| {
                (
                    *m,
                    self.roster
                        .keys_of(*m)
                        .expect("member advertised")
                        .mask_keys
                        .clone(),
                )
            })
            .collect();
        let deliveries = deliveries
            .into_iter()
            .map(|(m, shares)| (m, ShareDelivery { epoch, shares }))
            .collect();
        let mut signers = self.signers;
        signers.retain(|m, _| members.binary_search(m).is_ok());
        let state = Epoch {
            params: self.params,
            start: self.roster.start,
            members,
            mask_keys,
            signers: Arc::new(signers),
            next_round: 0,
        };
        Ok((deliveries, state))
    }
}

/// An epoch whose key set-up is complete.
#[derive(Debug)]
pub struct Epoch {
    params: Arc<JobParams>,
    start: EpochStart,
    members: Vec<u32>,
    mask_keys: HashMap<u32, Vec<PublicKeyBytes>>,
    /// Keys that sign the members' survivor-set signatures.
    signers: Arc<HashMap<u32, VerifyingKey>>,
    next_round: u64,
}

impl Epoch {
    /// The set-up this epoch came from.
    pub fn start(&self) -> &EpochStart {
        &self.start
    }

    /// Members that completed key set-up, sorted.
    pub fn members(&self) -> &[u32] {
        &self.members
    }

    /// The next round this epoch can open, if any is left.
    pub fn next_round(&self) -> Option<u64> {
        let next = self.next_round.max(self.start.first_round);
        self.start.covers(next).then_some(next)
    }

    /// Opens `round` for `members` (sorted, a subset of the epoch's members)
    /// with vectors of `length` words. Rounds open in increasing order.
    pub fn open_round(
        &mut self,
        round: u64,
        members: Vec<u32>,
        length: usize,
    ) -> Result<(MaskRequest, InputCollection), SecAggError> {
        if !self.start.covers(round) || round < self.next_round {
            return Err(SecAggError::RoundUnavailable {
                round,
                reason: "outside the epoch or already opened",
            });
        }
        if !strictly_sorted(&members)
            || members
                .iter()
                .any(|m| self.members.binary_search(m).is_err())
        {
            return Err(SecAggError::InvalidParams(
                "round members must be sorted epoch members".into(),
            ));
        }
        require_threshold(members.len(), &self.params, Phase::MaskedInput)?;
        self.next_round = round + 1;
        let request = MaskRequest {
            round,
            members: members.clone(),
            length,
        };
        Ok((
            request,
            InputCollection {
                params: self.params.clone(),
                round,
                members,
                length,
                inputs: BTreeMap::new(),
                signers: self.signers.clone(),
                signed: BTreeMap::new(),
            },
        ))
    }
}
