//! The secure sum: SecAgg+ style masking with Shamir-shared secrets, robust
//! to dropouts, run many times per job.
//!
//! Protocol (Bonawitz et al. CCS 2017; Bell et al. CCS 2020), as run here:
//!
//! 1. **Epoch set-up**, once per block of rounds ([`messages::EpochStart`]):
//!    every member advertises an X25519 encryption key and one X25519 *mask
//!    key per round* of the epoch, then Shamir-shares (threshold t) each
//!    round's mask secret key and a fresh per-round *self-mask seed* among its
//!    neighbours and itself, sealing each holder's shares to that holder.
//! 2. **Masked input**, per round: `y = x + PRG(self seed) + Σ ±PRG(pairwise)`
//!    with pairwise keys from ECDH of the round's mask keys, HKDF-bound to the
//!    job and round; the pair's smaller index adds, the larger subtracts.
//! 3. **Confirm survivors**, per round: every survivor signs (job, round,
//!    survivor set) with its certificate's key, one set per round
//!    ([`signing`]); key advertisements are signed the same way at step 1.
//! 4. **Unmask**, per round, once the quorum of survivors signed exactly the
//!    set asked about: every survivor reveals, for each neighbour in
//!    the round, a share of its self-mask seed if it survived or a share of
//!    its round mask key if it dropped, never both ([`participant`] keeps a
//!    record and refuses). The coordinator removes the survivors' self masks
//!    and the pairwise masks left uncancelled by the dropped members.
//!
//! Mask keys are per round rather than per job: reconstructing a dropped
//! member's key then exposes only that round's pairwise masks, never a past
//! round in which the same member survived and its self mask was revealed.
//! Steady-state rounds cost three round trips; key set-up is amortised over
//! the epoch.

pub mod consortium;
pub mod coordinator;
pub mod error;
pub mod graph;
pub mod kdf;
pub mod messages;
pub mod participant;
pub mod prg;
pub mod runner;
pub mod sealed;
pub mod shamir;
pub mod signing;

use curve25519_dalek::Scalar;
use x25519_dalek::SharedSecret;

pub use error::{Fault, Phase, SecAggError};
pub use graph::NeighbourGraph;

use kdf::{DerivedKey, Purpose};
use prg::Sign;

/// The public parameters of one job's secure sums, known to every party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobParams {
    /// Job identifier, bound into every derived key.
    pub job_id: String,
    /// Shares needed to reconstruct any member's secret.
    pub threshold: u32,
    /// Who masks with whom and who holds whose shares.
    pub graph: NeighbourGraph,
    /// Signatures of distinct survivors a survivor set needs before any
    /// share of its round is revealed ([`signing::min_quorum`]).
    pub quorum: u32,
}

impl JobParams {
    /// Parameters for a cohort of `participants` with the given threshold and
    /// neighbour degree; the graph is derived from the public `graph_seed`.
    pub fn new(
        job_id: impl Into<String>,
        participants: u32,
        threshold: u32,
        degree: u32,
        graph_seed: &[u8; 32],
    ) -> Result<Self, SecAggError> {
        let graph = NeighbourGraph::new(participants, degree, graph_seed)?;
        let holders = graph.min_holders();
        if threshold == 0 || threshold as usize > holders {
            return Err(SecAggError::InvalidParams(format!(
                "threshold {threshold} must be within 1..={holders} (neighbours + 1)"
            )));
        }
        Ok(Self {
            job_id: job_id.into(),
            threshold,
            quorum: signing::min_quorum(participants, 0),
            graph,
        })
    }

    /// The same parameters with survivor sets confirmed by `quorum`
    /// signatures: more than half the cohort (so that two sets of one round
    /// cannot both be confirmed by honest members who sign once), at most
    /// the cohort.
    pub fn with_quorum(mut self, quorum: u32) -> Result<Self, SecAggError> {
        let n = self.participants();
        if quorum < signing::min_quorum(n, 0) || quorum > n {
            return Err(SecAggError::InvalidParams(format!(
                "quorum {quorum} must be within {}..={n} (more than half the cohort)",
                signing::min_quorum(n, 0)
            )));
        }
        self.quorum = quorum;
        Ok(self)
    }

    /// Cohort size.
    pub fn participants(&self) -> u32 {
        self.graph.len() as u32
    }

    pub(crate) fn t(&self) -> usize {
        self.threshold as usize
    }
}

/// The Shamir x-coordinate of a member: its index plus one.
pub(crate) fn share_x(member: u32) -> u32 {
    member + 1
}

/// The key of `owner`'s self mask in `round`, from its seed.
pub(crate) fn self_mask_key(job_id: &str, round: u64, owner: u32, seed: &Scalar) -> DerivedKey {
    kdf::derive(
        Purpose::SelfMask,
        seed.as_bytes(),
        job_id,
        &kdf::self_mask_context(round, owner),
    )
}

/// The key of the pairwise mask between `a` and `b` in `round`.
pub(crate) fn pairwise_key(
    job_id: &str,
    round: u64,
    a: u32,
    b: u32,
    shared: &SharedSecret,
) -> DerivedKey {
    kdf::derive(
        Purpose::PairwiseMask,
        shared.as_bytes(),
        job_id,
        &kdf::pairwise_context(round, a, b),
    )
}

/// The sign with which `me` applies its pairwise mask with `other`.
pub(crate) fn pairwise_sign(me: u32, other: u32) -> Sign {
    if me < other { Sign::Plus } else { Sign::Minus }
}

/// Whether a sorted slice is strictly increasing (sorted and free of
/// duplicates), as every member list on the wire must be.
pub(crate) fn strictly_sorted(list: &[u32]) -> bool {
    list.windows(2).all(|w| w[0] < w[1])
}
