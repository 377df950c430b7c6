//! The coordinator's side of the protocol, as states consumed by value:
//! [`start_epoch`] → [`KeyCollection`] → [`ShareCollection`] → [`Epoch`];
//! each round then goes [`Epoch::open_round`] → [`InputCollection`] →
//! [`UnmaskCollection`] → the released sum. Every state takes any member
//! message through one `handle` and rejects the wrong phase, round or sender
//! with a typed error; closing a phase consumes it, so a late message can
//! only reach the next state, which refuses it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use curve25519_dalek::Scalar;
use x25519_dalek::{PublicKey, StaticSecret};

use super::error::{Phase, SecAggError};
use super::messages::{
    EpochRoster, EpochStart, KeyAdvertisement, MaskRequest, PublicKeyBytes, RevealedShare,
    SealedShares, ShareDelivery, ToCoordinator, UnmaskRequest,
};
use super::prg;
use super::shamir::Interpolator;
use super::{JobParams, pairwise_key, pairwise_sign, self_mask_key, share_x, strictly_sorted};

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
        },
    ))
}

/// Collecting key advertisements.
#[derive(Debug)]
pub struct KeyCollection {
    params: Arc<JobParams>,
    start: EpochStart,
    keys: BTreeMap<u32, KeyAdvertisement>,
}

impl KeyCollection {
    /// Accepts one member's advertisement.
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
        self.keys.insert(from, keys);
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
        let state = Epoch {
            params: self.params,
            start: self.roster.start,
            members,
            mask_keys,
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
            },
        ))
    }
}

/// Collecting masked inputs of one round.
#[derive(Debug)]
pub struct InputCollection {
    params: Arc<JobParams>,
    round: u64,
    members: Vec<u32>,
    length: usize,
    inputs: BTreeMap<u32, Vec<u64>>,
}

impl InputCollection {
    /// The round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Accepts one member's masked input.
    pub fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
        expect_phase(Phase::MaskedInput, &message)?;
        let ToCoordinator::Masked(input) = message else {
            unreachable!("phase checked")
        };
        check_round_message(
            Phase::MaskedInput,
            (self.round, input.round),
            &self.members,
            from,
            self.inputs.contains_key(&from),
        )?;
        if input.words.len() != self.length {
            return Err(SecAggError::LengthMismatch {
                expected: self.length,
                got: input.words.len(),
            });
        }
        self.inputs.insert(from, input.words);
        Ok(())
    }

    /// Whether every member has sent its input.
    pub fn is_complete(&self) -> bool {
        self.inputs.len() == self.members.len()
    }

    /// Ends the phase: those who sent an input are the survivors. Fails,
    /// releasing nothing, when fewer than the threshold survived.
    pub fn close(self) -> Result<(UnmaskRequest, UnmaskCollection), SecAggError> {
        require_threshold(self.inputs.len(), &self.params, Phase::MaskedInput)?;
        let survivors: Vec<u32> = self.inputs.keys().copied().collect();
        let dropped: Vec<u32> = self
            .members
            .iter()
            .copied()
            .filter(|m| !self.inputs.contains_key(m))
            .collect();
        let request = UnmaskRequest {
            round: self.round,
            survivors: survivors.clone(),
            dropped: dropped.clone(),
        };
        let collection = UnmaskCollection {
            params: self.params,
            round: self.round,
            survivors,
            dropped,
            inputs: self.inputs,
            self_shares: BTreeMap::new(),
            key_shares: BTreeMap::new(),
            responders: BTreeSet::new(),
        };
        Ok((request, collection))
    }
}

/// Collecting the shares that unmask one round.
#[derive(Debug)]
pub struct UnmaskCollection {
    params: Arc<JobParams>,
    round: u64,
    survivors: Vec<u32>,
    dropped: Vec<u32>,
    inputs: BTreeMap<u32, Vec<u64>>,
    self_shares: BTreeMap<u32, Vec<(u32, Scalar)>>,
    key_shares: BTreeMap<u32, Vec<(u32, Scalar)>>,
    responders: BTreeSet<u32>,
}

impl UnmaskCollection {
    /// The round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Members whose input is in the sum.
    pub fn survivors(&self) -> &[u32] {
        &self.survivors
    }

    /// Members whose input is not.
    pub fn dropped(&self) -> &[u32] {
        &self.dropped
    }

    /// Accepts one survivor's shares.
    pub fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
        expect_phase(Phase::Unmask, &message)?;
        let ToCoordinator::Unmask(response) = message else {
            unreachable!("phase checked")
        };
        check_round_message(
            Phase::Unmask,
            (self.round, response.round),
            &self.survivors,
            from,
            self.responders.contains(&from),
        )?;
        let graph = &self.params.graph;
        let holds = |owner: u32| owner == from || graph.are_neighbours(from, owner);
        let check = |shares: &[RevealedShare], allowed: &[u32]| -> Result<(), SecAggError> {
            let owners: Vec<u32> = shares.iter().map(|s| s.owner).collect();
            if !strictly_sorted(&owners)
                || owners
                    .iter()
                    .any(|&o| !holds(o) || allowed.binary_search(&o).is_err())
            {
                return Err(SecAggError::Malformed {
                    from,
                    reason: "shares for owners the sender does not hold or of the wrong kind"
                        .into(),
                });
            }
            Ok(())
        };
        check(&response.self_mask_shares, &self.survivors)?;
        check(&response.mask_key_shares, &self.dropped)?;
        let x = share_x(from);
        for share in response.self_mask_shares {
            self.self_shares
                .entry(share.owner)
                .or_default()
                .push((x, share.value.0));
        }
        for share in response.mask_key_shares {
            self.key_shares
                .entry(share.owner)
                .or_default()
                .push((x, share.value.0));
        }
        self.responders.insert(from);
        Ok(())
    }

    /// Whether every survivor has answered.
    pub fn is_complete(&self) -> bool {
        self.responders.len() == self.survivors.len()
    }

    fn dropped_with_surviving_neighbours(&self) -> impl Iterator<Item = u32> + '_ {
        let graph = &self.params.graph;
        self.dropped.iter().copied().filter(|&j| {
            graph
                .neighbours(j)
                .iter()
                .any(|i| self.survivors.binary_search(i).is_ok())
        })
    }

    /// Whether enough shares arrived to unmask the round already.
    pub fn can_finish(&self) -> bool {
        let t = self.params.t();
        let enough = |shares: &BTreeMap<u32, Vec<(u32, Scalar)>>, owner: u32| {
            shares.get(&owner).is_some_and(|s| s.len() >= t)
        };
        self.survivors.iter().all(|&i| enough(&self.self_shares, i))
            && self
                .dropped_with_surviving_neighbours()
                .all(|j| enough(&self.key_shares, j))
    }

    /// Unmasks the round: the sum of the survivors' inputs. Fails, releasing
    /// nothing, when any needed secret has fewer than t shares.
    pub fn finish(self, epoch: &Epoch) -> Result<Vec<u64>, SecAggError> {
        let job = &self.params.job_id;
        let round = self.round;
        let r = (round - epoch.start.first_round) as usize;
        let mut reconstructor = Reconstructor::new(self.params.t());
        let self_seeds: Vec<(u32, Scalar)> = self
            .survivors
            .iter()
            .map(|&i| Ok((i, reconstructor.secret(i, self.self_shares.get(&i))?)))
            .collect::<Result<_, SecAggError>>()?;
        let mask_keys: Vec<(u32, Scalar)> = self
            .dropped_with_surviving_neighbours()
            .map(|j| Ok((j, reconstructor.secret(j, self.key_shares.get(&j))?)))
            .collect::<Result<_, SecAggError>>()?;

        let length = self.inputs.values().next().map_or(0, Vec::len);
        let mut sum = vec![0u64; length];
        for words in self.inputs.values() {
            sum.iter_mut()
                .zip(words)
                .for_each(|(s, w)| *s = s.wrapping_add(*w));
        }
        for (i, seed) in &self_seeds {
            prg::apply_mask(
                &mut sum,
                &self_mask_key(job, round, *i, seed),
                prg::Sign::Minus,
            );
        }
        for (j, key) in &mask_keys {
            let secret = StaticSecret::from(key.to_bytes());
            for &i in self.params.graph.neighbours(*j) {
                if self.survivors.binary_search(&i).is_err() {
                    continue;
                }
                let shared = secret.diffie_hellman(&PublicKey::from(epoch.mask_keys[&i][r]));
                let key = pairwise_key(job, round, i, *j, &shared);
                // Survivor i applied the mask with its own sign; take it back.
                prg::apply_mask(&mut sum, &key, pairwise_sign(i, *j).flip());
            }
        }
        Ok(sum)
    }
}

/// Reconstructs secrets with Lagrange coefficients cached per holder set:
/// in complete graphs every secret has the same first t holders.
struct Reconstructor {
    threshold: usize,
    cache: HashMap<Vec<u32>, Interpolator>,
}

impl Reconstructor {
    fn new(threshold: usize) -> Self {
        Self {
            threshold,
            cache: HashMap::new(),
        }
    }

    fn secret(
        &mut self,
        owner: u32,
        shares: Option<&Vec<(u32, Scalar)>>,
    ) -> Result<Scalar, SecAggError> {
        let mut shares = shares.cloned().unwrap_or_default();
        if shares.len() < self.threshold {
            return Err(SecAggError::NotEnoughShares {
                owner,
                have: shares.len(),
                need: self.threshold,
            });
        }
        shares.sort_unstable_by_key(|(x, _)| *x);
        shares.truncate(self.threshold);
        let xs: Vec<u32> = shares.iter().map(|(x, _)| *x).collect();
        let interpolator = match self.cache.get(&xs) {
            Some(found) => found,
            None => {
                let built = Interpolator::new(&xs)?;
                self.cache.entry(xs).or_insert(built)
            }
        };
        Ok(interpolator.interpolate(shares.iter().map(|(_, y)| y)))
    }
}
