//! Errors of the secure-sum protocol, each saying who is at fault.

use thiserror::Error;

use super::shamir::ShamirError;
use crate::fixed_point::EncodingError;

/// Who caused a protocol error: used by the journal and metrics to tell a
/// misbehaving or unlucky peer from our own bug or a bad configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another party sent something out of protocol (wrong phase, round,
    /// member set, malformed bytes).
    Peer,
    /// Not enough parties took part to continue safely.
    Cohort,
    /// The protocol was called with invalid parameters.
    Usage,
    /// The coordinator relayed something no honest coordinator would: a
    /// key advertisement its member did not sign, a survivor set without
    /// enough signatures, or two survivor sets for one round.
    Coordinator,
}

/// A phase of the protocol. Its name (`advertise-keys`, `share-keys`,
/// `masked-input`, `confirm-survivors`, `unmask`) is the one errors, logs,
/// the journal and the ledger use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Members advertise their epoch's public keys.
    AdvertiseKeys,
    /// Members distribute sealed shares of their epoch secrets.
    ShareKeys,
    /// Members send masked inputs for one round.
    MaskedInput,
    /// Survivors sign the round's survivor set.
    ConfirmSurvivors,
    /// Survivors reveal the shares needed to unmask one round.
    Unmask,
}

impl Phase {
    /// Every phase, in protocol order.
    pub const ALL: [Phase; 5] = [
        Phase::AdvertiseKeys,
        Phase::ShareKeys,
        Phase::MaskedInput,
        Phase::ConfirmSurvivors,
        Phase::Unmask,
    ];

    /// The phase's name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::AdvertiseKeys => "advertise-keys",
            Phase::ShareKeys => "share-keys",
            Phase::MaskedInput => "masked-input",
            Phase::ConfirmSurvivors => "confirm-survivors",
            Phase::Unmask => "unmask",
        }
    }

    /// The phase of a name.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in the secure-sum protocol. Messages never
/// carry key material or share values.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SecAggError {
    /// Parameters do not describe a valid protocol instance.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A message arrived for a phase other than the current one.
    #[error("message for phase {got} arrived during phase {expected}")]
    OutOfPhase {
        /// The phase the receiver is in.
        expected: Phase,
        /// The phase the message belongs to.
        got: Phase,
    },
    /// A message names another round than the one in progress.
    #[error("message for round {got} arrived during round {expected}")]
    WrongRound {
        /// The round in progress.
        expected: u64,
        /// The round the message names.
        got: u64,
    },
    /// A message names another epoch than the one in progress.
    #[error("message for epoch {got} arrived during epoch {expected}")]
    WrongEpoch {
        /// The epoch in progress.
        expected: u32,
        /// The epoch the message names.
        got: u32,
    },
    /// The round is outside the current epoch, or was already used.
    #[error("round {round} cannot be masked: {reason}")]
    RoundUnavailable {
        /// The round asked for.
        round: u64,
        /// Why not.
        reason: &'static str,
    },
    /// The same party sent the same kind of message twice in one phase.
    #[error("participant {from} already answered in phase {phase}")]
    Duplicate {
        /// Sender.
        from: u32,
        /// Phase.
        phase: Phase,
    },
    /// A party that is not a member of this phase sent a message or was named.
    #[error("participant {who} is not a member of phase {phase}")]
    NotMember {
        /// The party.
        who: u32,
        /// Phase.
        phase: Phase,
    },
    /// A message is structurally wrong.
    #[error("malformed message from participant {from}: {reason}")]
    Malformed {
        /// Sender.
        from: u32,
        /// What is wrong.
        reason: String,
    },
    /// Sealed shares could not be opened (wrong key, tampered, misaddressed).
    #[error("sealed shares from participant {sender} to {holder} do not open")]
    SealBroken {
        /// Claimed sender.
        sender: u32,
        /// Holder.
        holder: u32,
    },
    /// A peer's public key is a low-order point.
    #[error("participant {0} advertised a non-contributory key")]
    NonContributoryKey(u32),
    /// Answering would reveal both kinds of share of one member for one round.
    #[error(
        "refused: revealing this share of participant {owner} in round {round} would unmask it"
    )]
    DisclosureRefused {
        /// The member whose share was asked for.
        owner: u32,
        /// Round.
        round: u64,
    },
    /// A key advertisement in the roster is not its member's own.
    #[error("the roster's keys for participant {member} are not its own: {reason}")]
    Forged {
        /// The member the keys are said to be of.
        member: u32,
        /// What does not check out.
        reason: String,
    },
    /// Asked to sign a second, different survivor set for a round.
    #[error("asked to sign a second survivor set for round {round}")]
    Equivocation {
        /// Round.
        round: u64,
    },
    /// A survivor set relayed with a signature that does not verify.
    #[error(
        "the signature of participant {signer} on the survivor set of round {round} does not verify"
    )]
    BadSurvivorSignature {
        /// Round.
        round: u64,
        /// Who is said to have signed.
        signer: u32,
    },
    /// Too few survivors signed the set an unmask request is about.
    #[error(
        "the survivor set of round {round} carries {have} valid signatures of survivors, {need} needed"
    )]
    Unconfirmed {
        /// Round.
        round: u64,
        /// Valid signatures of distinct survivors.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// The coordinator's survivor and dropped sets are inconsistent.
    #[error("unmask request is inconsistent: {0}")]
    InconsistentUnmask(&'static str),
    /// A neighbour is in the round but this participant holds no shares of it.
    #[error("no shares held for participant {0}")]
    MissingShares(u32),
    /// Too few parties remain to continue.
    #[error("only {have} participants remain in phase {phase}, {need} needed")]
    TooFewParticipants {
        /// Parties left.
        have: usize,
        /// Threshold.
        need: usize,
        /// Phase.
        phase: Phase,
    },
    /// Too few shares arrived to reconstruct a member's secret.
    #[error("only {have} shares of participant {owner}'s secret arrived, {need} needed")]
    NotEnoughShares {
        /// Owner of the secret.
        owner: u32,
        /// Shares received.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// A vector has the wrong length.
    #[error("vector has {got} words, the round expects {expected}")]
    LengthMismatch {
        /// Length of the round.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// Shamir sharing failed.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
    /// A local input could not be encoded.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

impl SecAggError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            SecAggError::InvalidParams(_) | SecAggError::Encoding(_) | SecAggError::Shamir(_) => {
                Fault::Usage
            }
            SecAggError::TooFewParticipants { .. } | SecAggError::NotEnoughShares { .. } => {
                Fault::Cohort
            }
            SecAggError::OutOfPhase { .. }
            | SecAggError::WrongRound { .. }
            | SecAggError::WrongEpoch { .. }
            | SecAggError::RoundUnavailable { .. }
            | SecAggError::Duplicate { .. }
            | SecAggError::NotMember { .. }
            | SecAggError::Malformed { .. }
            | SecAggError::SealBroken { .. }
            | SecAggError::NonContributoryKey(_)
            | SecAggError::DisclosureRefused { .. }
            | SecAggError::InconsistentUnmask(_)
            | SecAggError::MissingShares(_)
            | SecAggError::LengthMismatch { .. } => Fault::Peer,
            SecAggError::Forged { .. }
            | SecAggError::Equivocation { .. }
            | SecAggError::BadSurvivorSignature { .. }
            | SecAggError::Unconfirmed { .. } => Fault::Coordinator,
        }
    }

    /// A short stable name for metrics and journal records.
    pub fn code(&self) -> &'static str {
        match self {
            SecAggError::InvalidParams(_) => "invalid_params",
            SecAggError::OutOfPhase { .. } => "out_of_phase",
            SecAggError::WrongRound { .. } => "wrong_round",
            SecAggError::WrongEpoch { .. } => "wrong_epoch",
            SecAggError::RoundUnavailable { .. } => "round_unavailable",
            SecAggError::Duplicate { .. } => "duplicate",
            SecAggError::NotMember { .. } => "not_member",
            SecAggError::Malformed { .. } => "malformed",
            SecAggError::SealBroken { .. } => "seal_broken",
            SecAggError::NonContributoryKey(_) => "non_contributory_key",
            SecAggError::DisclosureRefused { .. } => "disclosure_refused",
            SecAggError::InconsistentUnmask(_) => "inconsistent_unmask",
            SecAggError::Forged { .. } => "forged_advertisement",
            SecAggError::Equivocation { .. } => "equivocation",
            SecAggError::BadSurvivorSignature { .. } => "bad_survivor_signature",
            SecAggError::Unconfirmed { .. } => "unconfirmed_survivors",
            SecAggError::MissingShares(_) => "missing_shares",
            SecAggError::TooFewParticipants { .. } => "too_few_participants",
            SecAggError::NotEnoughShares { .. } => "not_enough_shares",
            SecAggError::LengthMismatch { .. } => "length_mismatch",
            SecAggError::Shamir(_) => "shamir",
            SecAggError::Encoding(_) => "encoding",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_the_serialised_ones() {
        for phase in Phase::ALL {
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.name()));
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), phase);
            assert_eq!(Phase::from_name(phase.name()), Some(phase));
        }
        assert_eq!(Phase::from_name("unmasked"), None);
    }
}
