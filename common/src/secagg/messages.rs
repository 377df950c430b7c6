//! Protocol messages as plain types. The sender of a message is never a
//! field: the transport authenticates it (mTLS identity, or the in-process
//! runner's bookkeeping) and passes it alongside.

use curve25519_dalek::Scalar;
use zeroize::Zeroize;

use super::error::Phase;
use super::signing::Signature;

/// A 32-byte X25519 public key.
pub type PublicKeyBytes = [u8; 32];

/// Coordinator → members: start key set-up for a block of rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochStart {
    /// Epoch number within the job.
    pub epoch: u32,
    /// First round of the epoch.
    pub first_round: u64,
    /// Rounds covered.
    pub rounds: u32,
    /// Members invited to the set-up, sorted.
    pub members: Vec<u32>,
}

impl EpochStart {
    /// Whether `round` belongs to this epoch.
    pub fn covers(&self, round: u64) -> bool {
        round >= self.first_round && round - self.first_round < self.rounds as u64
    }
}

/// Member → coordinator: the public keys of one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAdvertisement {
    /// Epoch.
    pub epoch: u32,
    /// Key that shares for this member are sealed to.
    pub encryption_key: PublicKeyBytes,
    /// One mask key per round of the epoch.
    pub mask_keys: Vec<PublicKeyBytes>,
    /// The member's consortium certificate, DER.
    pub certificate: Vec<u8>,
    /// Its signature over the keys ([`super::signing::advertisement_message`]).
    pub signature: Signature,
}

/// Coordinator → members: every advertised key of the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRoster {
    /// The set-up this roster answers.
    pub start: EpochStart,
    /// Advertisements by member, sorted by member.
    pub keys: Vec<(u32, KeyAdvertisement)>,
}

impl EpochRoster {
    /// The advertisement of `member`, if it advertised.
    pub fn keys_of(&self, member: u32) -> Option<&KeyAdvertisement> {
        self.keys
            .binary_search_by_key(&member, |(m, _)| *m)
            .ok()
            .map(|i| &self.keys[i].1)
    }
}

/// Shares of one sender's epoch secrets sealed to one holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedShares {
    /// Member that made the shares.
    pub sender: u32,
    /// Member they are sealed to.
    pub holder: u32,
    /// ChaCha20-Poly1305 ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// Member → coordinator: sealed shares for each of its holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareBundle {
    /// Epoch.
    pub epoch: u32,
    /// One entry per holder other than the sender.
    pub shares: Vec<SealedShares>,
}

/// Coordinator → member: the sealed shares addressed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareDelivery {
    /// Epoch.
    pub epoch: u32,
    /// Shares from every member that completed the share phase.
    pub shares: Vec<SealedShares>,
}

/// Coordinator → members: mask and send the local vector of one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskRequest {
    /// Round.
    pub round: u64,
    /// Members whose masks cancel in this round, sorted.
    pub members: Vec<u32>,
    /// Vector length in words.
    pub length: usize,
}

/// Member → coordinator: its masked vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedInput {
    /// Round.
    pub round: u64,
    /// Input plus self mask plus pairwise masks, modulo 2^64.
    pub words: Vec<u64>,
    /// The member's signature on the words' digest for this round and job
    /// ([`super::signing::input_message`]).
    pub signature: Signature,
}

/// Coordinator → survivors: the members whose masked input arrived, for
/// each survivor to sign before anyone reveals a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurvivorSet {
    /// Round.
    pub round: u64,
    /// Members whose masked input arrived, sorted.
    pub survivors: Vec<u32>,
}

/// Survivor → coordinator: its signature on the round's survivor set
/// ([`super::signing::survivors_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurvivorSignature {
    /// Round.
    pub round: u64,
    /// The signature.
    pub signature: Signature,
}

/// Coordinator → survivors: who sent a masked input and who did not, with
/// the survivors' signatures on that set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskRequest {
    /// Round.
    pub round: u64,
    /// Members whose masked input arrived, sorted.
    pub survivors: Vec<u32>,
    /// Members whose masked input did not arrive, sorted.
    pub dropped: Vec<u32>,
    /// Signatures on the survivor set, by signer, sorted by signer.
    pub signatures: Vec<(u32, Signature)>,
}

/// A share value; never printed.
#[derive(Clone, Copy, PartialEq, Eq, Zeroize)]
pub struct ShareValue(pub Scalar);

impl std::fmt::Debug for ShareValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareValue(..)")
    }
}

/// One revealed share: whose secret it is a share of, and its value. The
/// share's x-coordinate is the sender's, known from the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevealedShare {
    /// Owner of the secret.
    pub owner: u32,
    /// The sender's share of it.
    pub value: ShareValue,
}

/// Survivor → coordinator: the shares that unmask one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskResponse {
    /// Round.
    pub round: u64,
    /// Shares of survivors' self-mask seeds for this round.
    pub self_mask_shares: Vec<RevealedShare>,
    /// Shares of dropped members' mask keys for this round.
    pub mask_key_shares: Vec<RevealedShare>,
}

/// Any message a member sends the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToCoordinator {
    /// Epoch keys.
    Keys(KeyAdvertisement),
    /// Sealed shares.
    Shares(ShareBundle),
    /// A masked input.
    Masked(MaskedInput),
    /// A signature on the survivor set.
    Confirm(SurvivorSignature),
    /// Unmasking shares.
    Unmask(UnmaskResponse),
}

impl ToCoordinator {
    /// The phase this message belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            ToCoordinator::Keys(_) => Phase::AdvertiseKeys,
            ToCoordinator::Shares(_) => Phase::ShareKeys,
            ToCoordinator::Masked(_) => Phase::MaskedInput,
            ToCoordinator::Confirm(_) => Phase::ConfirmSurvivors,
            ToCoordinator::Unmask(_) => Phase::Unmask,
        }
    }
}
