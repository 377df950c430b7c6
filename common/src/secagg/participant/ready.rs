//! A member's rounds once key set-up is done: masking, signing the
//! survivor set, and revealing the shares that unmask a round.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::super::error::{Phase, SecAggError};
use super::super::kdf::DerivedKey;
use super::super::messages::{
    EpochRoster, EpochStart, MaskRequest, MaskedInput, RevealedShare, ShareValue, SurvivorSet,
    SurvivorSignature, UnmaskRequest, UnmaskResponse,
};
use super::super::prg::{self, Sign};
use super::super::signing::{self, Membership, SignerKeys};
use super::super::{JobParams, pairwise_sign, self_mask_key, strictly_sorted};
use super::{EpochSecrets, HeldShares};

/// Which kind of share of an owner was revealed in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disclosure {
    SelfSeed,
    MaskKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RoundState {
    Pending,
    /// Masked for `members`; `signed` is the survivor set signed, if any.
    Masked {
        members: Vec<u32>,
        signed: Option<Vec<u32>>,
    },
    Skipped,
}

/// Key set-up done: masks and unmasks the epoch's rounds, each at most once
/// and in increasing order.
pub struct ReadyEpoch {
    pub(super) params: Arc<JobParams>,
    pub(super) me: u32,
    pub(super) roster: EpochRoster,
    pub(super) secrets: EpochSecrets,
    pub(super) held: BTreeMap<u32, HeldShares>,
    pub(super) rounds: Vec<RoundState>,
    pub(super) disclosures: HashMap<(u32, u64), Disclosure>,
    /// Per round of the epoch: the pairwise mask key with each neighbour.
    pub(super) pairwise: Vec<BTreeMap<u32, DerivedKey>>,
    pub(super) membership: Arc<Membership>,
    /// Keys of the members whose signatures this member checked.
    pub(super) signers: SignerKeys,
}

impl ReadyEpoch {
    /// The epoch this state serves.
    pub fn start(&self) -> &EpochStart {
        &self.roster.start
    }

    /// Members whose shares this member holds (its neighbours that completed
    /// the share phase, and itself).
    pub fn held_owners(&self) -> impl Iterator<Item = u32> + '_ {
        self.held.keys().copied()
    }

    fn round_index(&self, round: u64) -> Result<usize, SecAggError> {
        if !self.roster.start.covers(round) {
            return Err(SecAggError::RoundUnavailable {
                round,
                reason: "outside the current key epoch",
            });
        }
        Ok((round - self.roster.start.first_round) as usize)
    }

    /// Masks this member's encoded `input` for the round `request` opens.
    /// Each round can be masked once; rounds skipped over are never used.
    pub fn mask(
        &mut self,
        request: &MaskRequest,
        input: &[u64],
    ) -> Result<MaskedInput, SecAggError> {
        let r = self.round_index(request.round)?;
        if self.rounds[r] != RoundState::Pending {
            return Err(SecAggError::RoundUnavailable {
                round: request.round,
                reason: "already used",
            });
        }
        if input.len() != request.length {
            return Err(SecAggError::LengthMismatch {
                expected: request.length,
                got: input.len(),
            });
        }
        let members = &request.members;
        if !strictly_sorted(members) {
            return Err(SecAggError::Malformed {
                from: u32::MAX,
                reason: "member list is not sorted".into(),
            });
        }
        if members.binary_search(&self.me).is_err() {
            return Err(SecAggError::NotMember {
                who: self.me,
                phase: Phase::MaskedInput,
            });
        }
        if members.len() < self.params.t() {
            return Err(SecAggError::TooFewParticipants {
                have: members.len(),
                need: self.params.t(),
                phase: Phase::MaskedInput,
            });
        }
        let mut peers = Vec::new();
        for &member in members {
            if self.roster.keys_of(member).is_none() {
                return Err(SecAggError::NotMember {
                    who: member,
                    phase: Phase::MaskedInput,
                });
            }
            if member != self.me && self.params.graph.are_neighbours(self.me, member) {
                let key = self.pairwise[r]
                    .get(&member)
                    .ok_or(SecAggError::MissingShares(member))?;
                peers.push((member, key));
            }
        }
        let job = &self.params.job_id;
        let mut words = input.to_vec();
        prg::apply_mask(
            &mut words,
            &self_mask_key(job, request.round, self.me, &self.secrets.self_seeds[r]),
            Sign::Plus,
        );
        for (peer, key) in peers {
            prg::apply_mask(&mut words, key, pairwise_sign(self.me, peer));
        }
        for earlier in &mut self.rounds[..r] {
            if *earlier == RoundState::Pending {
                *earlier = RoundState::Skipped;
            }
        }
        self.rounds[r] = RoundState::Masked {
            members: members.clone(),
            signed: None,
        };
        let digest = signing::input_digest(&words);
        let signature =
            self.membership
                .credential
                .sign(&signing::input_message(job, request.round, &digest));
        Ok(MaskedInput {
            round: request.round,
            words,
            signature,
        })
    }

    /// Reveals the shares that unmask a round this member masked: for each
    /// owner it holds shares of, the self-mask share if the owner survived,
    /// the mask-key share if it dropped. A repeated request (a retry) gets
    /// the same answer; one that would reveal the other kind of share of any
    /// owner for the same round is refused, so no owner is ever unmasked.
    pub fn unmask(&mut self, request: &UnmaskRequest) -> Result<UnmaskResponse, SecAggError> {
        let r = self.round_index(request.round)?;
        let (members, signed) = match &self.rounds[r] {
            RoundState::Masked { members, signed } => (members.clone(), signed.clone()),
            RoundState::Pending | RoundState::Skipped => {
                return Err(SecAggError::OutOfPhase {
                    expected: Phase::MaskedInput,
                    got: Phase::Unmask,
                });
            }
        };
        let (survivors, dropped) = (&request.survivors, &request.dropped);
        if !strictly_sorted(survivors) || !strictly_sorted(dropped) {
            return Err(SecAggError::InconsistentUnmask(
                "member lists are not sorted",
            ));
        }
        let mut union: Vec<u32> = survivors.iter().chain(dropped).copied().collect();
        union.sort_unstable();
        if union != members {
            return Err(SecAggError::InconsistentUnmask(
                "survivors and dropped do not partition the round's members",
            ));
        }
        if survivors.binary_search(&self.me).is_err() {
            return Err(SecAggError::InconsistentUnmask(
                "this member is not listed as a survivor",
            ));
        }
        if survivors.len() < self.params.t() {
            return Err(SecAggError::TooFewParticipants {
                have: survivors.len(),
                need: self.params.t(),
                phase: Phase::Unmask,
            });
        }
        match signed {
            None => {
                return Err(SecAggError::OutOfPhase {
                    expected: Phase::ConfirmSurvivors,
                    got: Phase::Unmask,
                });
            }
            Some(signed) if signed != *survivors => {
                return Err(SecAggError::Equivocation {
                    round: request.round,
                });
            }
            Some(_) => {}
        }
        self.check_confirmation(request)?;
        let mut response = UnmaskResponse {
            round: request.round,
            self_mask_shares: Vec::new(),
            mask_key_shares: Vec::new(),
        };
        let mut granted = Vec::new();
        for (&owner, shares) in &self.held {
            let kind = if survivors.binary_search(&owner).is_ok() {
                Disclosure::SelfSeed
            } else if dropped.binary_search(&owner).is_ok() {
                Disclosure::MaskKey
            } else {
                continue;
            };
            if self
                .disclosures
                .get(&(owner, request.round))
                .is_some_and(|&earlier| earlier != kind)
            {
                return Err(SecAggError::DisclosureRefused {
                    owner,
                    round: request.round,
                });
            }
            granted.push((owner, kind));
            match kind {
                Disclosure::SelfSeed => response.self_mask_shares.push(RevealedShare {
                    owner,
                    value: ShareValue(shares.self_seed[r]),
                }),
                Disclosure::MaskKey => response.mask_key_shares.push(RevealedShare {
                    owner,
                    value: ShareValue(shares.mask_key[r]),
                }),
            }
        }
        for (owner, kind) in granted {
            self.disclosures.insert((owner, request.round), kind);
        }
        Ok(response)
    }

    /// Signs the survivor set of a round this member masked, if it lists
    /// this member among the round's members and is the first set asked
    /// about for the round (the same set again gets the same answer): an
    /// honest member signs one survivor set per round.
    pub fn confirm(&mut self, set: &SurvivorSet) -> Result<SurvivorSignature, SecAggError> {
        let r = self.round_index(set.round)?;
        let quorum = self.params.quorum as usize;
        let me = self.me;
        let RoundState::Masked { members, signed } = &mut self.rounds[r] else {
            return Err(SecAggError::OutOfPhase {
                expected: Phase::MaskedInput,
                got: Phase::ConfirmSurvivors,
            });
        };
        let survivors = &set.survivors;
        if !strictly_sorted(survivors)
            || survivors.binary_search(&me).is_err()
            || survivors.iter().any(|s| members.binary_search(s).is_err())
        {
            return Err(SecAggError::InconsistentUnmask(
                "the survivor set is not a sorted subset of the round's members with this member",
            ));
        }
        if survivors.len() < quorum {
            return Err(SecAggError::TooFewParticipants {
                have: survivors.len(),
                need: quorum,
                phase: Phase::ConfirmSurvivors,
            });
        }
        match signed {
            Some(earlier) if earlier != survivors => {
                return Err(SecAggError::Equivocation { round: set.round });
            }
            _ => *signed = Some(survivors.clone()),
        }
        let message = signing::survivors_message(&self.params.job_id, set.round, survivors);
        Ok(SurvivorSignature {
            round: set.round,
            signature: self.membership.credential.sign(&message),
        })
    }

    /// The consistency check: at least the quorum of distinct survivors
    /// signed exactly the request's survivor set, and every signature the
    /// request carries verifies with its signer's certificate.
    fn check_confirmation(&mut self, request: &UnmaskRequest) -> Result<(), SecAggError> {
        let message =
            signing::survivors_message(&self.params.job_id, request.round, &request.survivors);
        let signers: Vec<u32> = request.signatures.iter().map(|(s, _)| *s).collect();
        if !strictly_sorted(&signers) {
            return Err(SecAggError::InconsistentUnmask(
                "signatures are not sorted by distinct signer",
            ));
        }
        let need = self.params.quorum as usize;
        let mut valid = 0;
        for (signer, signature) in &request.signatures {
            if valid == need {
                break;
            }
            if request.survivors.binary_search(signer).is_err() {
                continue;
            }
            let trust = &self.membership.trust;
            let key = self.signers.key(trust, &self.roster, *signer)?;
            key.verify(&message, signature)
                .map_err(|_| SecAggError::BadSurvivorSignature {
                    round: request.round,
                    signer: *signer,
                })?;
            valid += 1;
        }
        if valid < need {
            return Err(SecAggError::Unconfirmed {
                round: request.round,
                have: valid,
                need,
            });
        }
        Ok(())
    }

    /// Whether the epoch's last round has been used, so no round is left.
    pub fn is_exhausted(&self) -> bool {
        self.rounds.last() != Some(&RoundState::Pending)
    }
}
