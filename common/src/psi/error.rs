//! Errors of the set-intersection protocol, each saying who is at fault and,
//! where one party is to blame, which one. Messages never carry ids, points
//! or key material.

use thiserror::Error;

use super::messages::Step;
use crate::secagg::Fault;

/// Everything that can go wrong in the set-intersection protocol.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsiError {
    /// Parameters or local inputs do not describe a valid protocol instance.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The local id list holds the same id twice (at this 0-based index).
    #[error("customer id at index {index} appears twice in the local set")]
    DuplicateId {
        /// Index of the second occurrence in the caller's list.
        index: usize,
    },
    /// A message arrived that this party or the coordinator did not expect
    /// now: wrong step, wrong sender, wrong recipient, or a repeat.
    #[error("unexpected {step} message from party {from} to party {to}")]
    Unexpected {
        /// Step the message claims.
        step: Step,
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
    },
    /// A message has the wrong number of chunks or bytes for the list it
    /// must carry.
    #[error("{step} message from party {from} has the wrong length: {reason}")]
    WrongLength {
        /// Step.
        step: Step,
        /// Sender.
        from: u32,
        /// What does not fit.
        reason: String,
    },
    /// A sealed list did not open (tampered, misaddressed or wrong key).
    #[error("sealed {step} list from party {from} does not open")]
    SealBroken {
        /// Step.
        step: Step,
        /// Sender.
        from: u32,
    },
    /// A 32-byte value is not the canonical encoding of a non-identity
    /// ristretto255 point.
    #[error("{step} list from party {from}: entry {index} is not a valid point")]
    BadPoint {
        /// Step.
        step: Step,
        /// Sender.
        from: u32,
        /// Position in the list.
        index: usize,
    },
    /// A list that must be strictly increasing is not (unsorted or repeated
    /// values).
    #[error("{step} list from party {from} is not strictly increasing")]
    Unsorted {
        /// Step.
        step: Step,
        /// Sender.
        from: u32,
    },
    /// A peer's sealing key is a low-order point.
    #[error("party {0} advertised a non-contributory sealing key")]
    NonContributoryKey(u32),
    /// The coordinator's roster or verdict contradicts what this party knows.
    #[error("the coordinator's {what} is inconsistent: {reason}")]
    BadRelay {
        /// Roster or verdict.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The released intersection disagrees with the announced size or with
    /// this party's own set.
    #[error("result from party {from} is inconsistent: {reason}")]
    Inconsistent {
        /// Party that sent the list the check failed on.
        from: u32,
        /// What is wrong.
        reason: String,
    },
    /// A party stopped answering: its message for this step never came.
    #[error("party {party} dropped out before sending its {step} message")]
    Dropped {
        /// The silent party.
        party: u32,
        /// The step it did not complete.
        step: Step,
    },
}

impl PsiError {
    /// Who is at fault, in the vocabulary the journal and metrics already
    /// use for the secure sum.
    pub fn fault(&self) -> Fault {
        match self {
            PsiError::InvalidParams(_) | PsiError::DuplicateId { .. } => Fault::Usage,
            PsiError::Dropped { .. } => Fault::Cohort,
            PsiError::Unexpected { .. }
            | PsiError::WrongLength { .. }
            | PsiError::SealBroken { .. }
            | PsiError::BadPoint { .. }
            | PsiError::Unsorted { .. }
            | PsiError::NonContributoryKey(_)
            | PsiError::BadRelay { .. }
            | PsiError::Inconsistent { .. } => Fault::Peer,
        }
    }

    /// The party to blame, when one is (`None` for the coordinator or this
    /// party's own usage).
    pub fn culprit(&self) -> Option<u32> {
        match self {
            PsiError::Unexpected { from, .. }
            | PsiError::WrongLength { from, .. }
            | PsiError::SealBroken { from, .. }
            | PsiError::BadPoint { from, .. }
            | PsiError::Unsorted { from, .. }
            | PsiError::Inconsistent { from, .. } => Some(*from),
            PsiError::NonContributoryKey(party) | PsiError::Dropped { party, .. } => Some(*party),
            PsiError::InvalidParams(_)
            | PsiError::DuplicateId { .. }
            | PsiError::BadRelay { .. } => None,
        }
    }

    /// A short stable name for metrics and journal records.
    pub fn code(&self) -> &'static str {
        match self {
            PsiError::InvalidParams(_) => "invalid_params",
            PsiError::DuplicateId { .. } => "duplicate_id",
            PsiError::Unexpected { .. } => "unexpected",
            PsiError::WrongLength { .. } => "wrong_length",
            PsiError::SealBroken { .. } => "seal_broken",
            PsiError::BadPoint { .. } => "bad_point",
            PsiError::Unsorted { .. } => "unsorted",
            PsiError::NonContributoryKey(_) => "non_contributory_key",
            PsiError::BadRelay { .. } => "bad_relay",
            PsiError::Inconsistent { .. } => "inconsistent",
            PsiError::Dropped { .. } => "dropped",
        }
    }
}
