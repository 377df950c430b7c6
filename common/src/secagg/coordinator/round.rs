//! One round at the coordinator: masked inputs, the survivors' signatures
//! on their set, their unmasking shares, and the released sum.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use curve25519_dalek::Scalar;
use x25519_dalek::{PublicKey, StaticSecret};

use super::super::error::{Phase, SecAggError};
use super::super::messages::{RevealedShare, SurvivorSet, ToCoordinator, UnmaskRequest};
use super::super::prg;
use super::super::shamir::Interpolator;
use super::super::signing::{self, Signature};
use super::super::{
    JobParams, pairwise_key, pairwise_sign, self_mask_key, share_x, strictly_sorted,
};
use super::{Epoch, check_round_message, expect_phase, require_threshold};
use crate::keys::VerifyingKey;

/// Collecting masked inputs of one round.
#[derive(Debug)]
pub struct InputCollection {
    pub(super) params: Arc<JobParams>,
    pub(super) round: u64,
    pub(super) members: Vec<u32>,
    pub(super) length: usize,
    pub(super) inputs: BTreeMap<u32, Vec<u64>>,
    pub(super) signers: Arc<HashMap<u32, VerifyingKey>>,
    /// Each input's digest and its sender's signature on it.
    pub(super) signed: BTreeMap<u32, SignedInput>,
}

/// A member's signature on the digest of its masked input
/// ([`signing::input_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedInput {
    /// SHA-256 of the masked words.
    pub digest: [u8; 32],
    /// The member's signature.
    pub signature: Signature,
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
        // An input nobody can prove its sender sent is not summed: the
        // journal would credit the member with what it may not have sent.
        let key = self.signers.get(&from).ok_or(SecAggError::NotMember {
            who: from,
            phase: Phase::MaskedInput,
        })?;
        let digest = signing::input_digest(&input.words);
        key.verify(
            &signing::input_message(&self.params.job_id, self.round, &digest),
            &input.signature,
        )
        .map_err(|_| SecAggError::Malformed {
            from,
            reason: "the signature on its masked input does not verify".into(),
        })?;
        self.signed.insert(
            from,
            SignedInput {
                digest,
                signature: input.signature,
            },
        );
        self.inputs.insert(from, input.words);
        Ok(())
    }

    /// Whether every member has sent its input.
    pub fn is_complete(&self) -> bool {
        self.inputs.len() == self.members.len()
    }

    /// Ends the phase: those who sent an input are the survivors, asked to
    /// sign their set. Fails, releasing nothing, when fewer than the
    /// threshold or the quorum survived.
    pub fn close(self) -> Result<(SurvivorSet, ConfirmCollection), SecAggError> {
        require_threshold(self.inputs.len(), &self.params, Phase::MaskedInput)?;
        let quorum = self.params.quorum as usize;
        if self.inputs.len() < quorum {
            return Err(SecAggError::TooFewParticipants {
                have: self.inputs.len(),
                need: quorum,
                phase: Phase::ConfirmSurvivors,
            });
        }
        let survivors: Vec<u32> = self.inputs.keys().copied().collect();
        let dropped: Vec<u32> = self
            .members
            .iter()
            .copied()
            .filter(|m| !self.inputs.contains_key(m))
            .collect();
        let set = SurvivorSet {
            round: self.round,
            survivors: survivors.clone(),
        };
        let message = signing::survivors_message(&self.params.job_id, self.round, &survivors);
        let collection = ConfirmCollection {
            params: self.params,
            round: self.round,
            survivors,
            dropped,
            inputs: self.inputs,
            signers: self.signers,
            signed: self.signed,
            message,
            signatures: BTreeMap::new(),
        };
        Ok((set, collection))
    }
}

/// Collecting the survivors' signatures on their set.
#[derive(Debug)]
pub struct ConfirmCollection {
    params: Arc<JobParams>,
    round: u64,
    survivors: Vec<u32>,
    dropped: Vec<u32>,
    inputs: BTreeMap<u32, Vec<u64>>,
    signers: Arc<HashMap<u32, VerifyingKey>>,
    signed: BTreeMap<u32, SignedInput>,
    message: Vec<u8>,
    signatures: BTreeMap<u32, Signature>,
}

impl ConfirmCollection {
    /// The round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Members whose input is in the sum.
    pub fn survivors(&self) -> &[u32] {
        &self.survivors
    }

    /// Accepts one survivor's signature on the set, once it verifies.
    pub fn handle(&mut self, from: u32, message: ToCoordinator) -> Result<(), SecAggError> {
        expect_phase(Phase::ConfirmSurvivors, &message)?;
        let ToCoordinator::Confirm(confirm) = message else {
            unreachable!("phase checked")
        };
        check_round_message(
            Phase::ConfirmSurvivors,
            (self.round, confirm.round),
            &self.survivors,
            from,
            self.signatures.contains_key(&from),
        )?;
        let key = self.signers.get(&from).ok_or(SecAggError::NotMember {
            who: from,
            phase: Phase::ConfirmSurvivors,
        })?;
        key.verify(&self.message, &confirm.signature)
            .map_err(|_| SecAggError::Malformed {
                from,
                reason: "the signature on the survivor set does not verify".into(),
            })?;
        self.signatures.insert(from, confirm.signature);
        Ok(())
    }

    /// Whether every survivor has signed.
    pub fn is_complete(&self) -> bool {
        self.signatures.len() == self.survivors.len()
    }

    /// The signatures collected, by signer.
    pub fn signatures(&self) -> &BTreeMap<u32, Signature> {
        &self.signatures
    }

    /// Each survivor's signature on the digest of its masked input.
    pub fn signed_inputs(&self) -> &BTreeMap<u32, SignedInput> {
        &self.signed
    }

    /// Ends the phase: the unmask request carries the quorum of signatures
    /// (the first by signer; [`Self::signatures`] has them all, for the
    /// journal). Fails, releasing nothing, when fewer than the quorum signed.
    pub fn close(self) -> Result<(UnmaskRequest, UnmaskCollection), SecAggError> {
        let need = self.params.quorum as usize;
        if self.signatures.len() < need {
            return Err(SecAggError::TooFewParticipants {
                have: self.signatures.len(),
                need,
                phase: Phase::ConfirmSurvivors,
            });
        }
        let request = UnmaskRequest {
            round: self.round,
            survivors: self.survivors.clone(),
            dropped: self.dropped.clone(),
            signatures: self.signatures.into_iter().take(need).collect(),
        };
        let collection = UnmaskCollection {
            params: self.params,
            round: self.round,
            survivors: self.survivors,
            dropped: self.dropped,
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
