//! Private set intersection for vertical joint modelling: a bank (the label
//! holder) and one or more feature partners find the customers they all
//! share, each learning which of its own customers are in the intersection
//! and their position in one common order, and nothing about anyone else.
//!
//! ECDH-PSI over ristretto255 in a hub: every message goes through the
//! coordinator (participants only connect out), sealed end to end between
//! parties. Party 0 is the label holder; partners are 1..n in job order;
//! the ring successor of `i` is `i + 1 mod n`.
//!
//! # Keys
//!
//! Per job, each party draws from the OS generator three secret scalars
//! (`r` masks its own list on the way round, `a` is its linking key, `b` its
//! comparison key) and an X25519 sealing key; never the certificate keys.
//! All are wiped on drop. `H` hashes an id to the group under a tag bound to
//! the consortium and job ([`group::HashTag::for_job`]); with `A = Π a_j`
//! and `B = Π b_j`, `F(x) = A·H(x)` is the *linked* value and
//! `G(x) = B·F(x)` the *compared* one.
//!
//! # Messages (`→` means "via the coordinator, sealed to")
//!
//! 1. `hello`: each party → coordinator, in the clear: its sealing key and
//!    set size. The coordinator answers every party with the [`Roster`].
//! 2. `link-0 … link-(n-1)`: each party shuffles its ids and sends
//!    `r·H(x)` → its successor; at `link-k` each party blinds the list it
//!    received with `a`, keeping the order, and passes it on. After `n - 1`
//!    hops the list is back at its owner, who applies `a/r` and holds
//!    `F(x)` for each of its own ids, in its own (secret) order.
//! 3. `compare-0 … compare-(n-1)`: each owner sends `b·F` of its list,
//!    **sorted by value** (a sorted list says nothing but the set) → its
//!    successor; each hop blinds with `b` and sorts again. The party that
//!    completes a list (the owner's predecessor) sends it → the label
//!    holder at `compare-(n-1)`.
//! 4. `verdict`: the label holder intersects the `n` lists of `G` values,
//!    and tells the coordinator, in the clear, the size, or only that it
//!    is below `min_overlap`. The coordinator forwards it to every partner.
//!    With `overlap_only`, or below the minimum, the run ends here.
//! 5. `reveal-0 … reveal-(n-2)`: the label holder sends the intersection's
//!    `G` values blinded with `1/b` → party 1, which applies its `1/b` → party
//!    2, and so on; the last party holds `F` of the intersection.
//! 6. `result`: the last party sends the sorted `F` values of the
//!    intersection → every other party. Each party finds its own `F(x)`
//!    among them: membership, and the position in the common order.
//!
//! # What each role learns (honest-but-curious, no collusion)
//!
//! - **Coordinator**: every set size, the intersection size (or only that it
//!   is below the minimum), and message lengths and timing. Every list it
//!   relays is sealed; it never sees a point.
//! - **A partner**: every set size and the intersection size; with
//!   membership, which of its own customers are in the intersection and
//!   their positions. The lists it relays are blinded by a mask it does
//!   not hold (`r` of the owner, or a `b` not yet applied), so none of them
//!   can be matched to anything it holds.
//! - **The label holder**: the same, and because it receives the `n`
//!   complete `G` lists separately, with three or more parties it also
//!   learns the *sizes* of every sub-collection's intersection (say
//!   partners 1 and 2 share 700 customers): sizes only, never which
//!   customers, since no party can link a `G` value to an id. With one
//!   partner this is nothing beyond the intersection size. Removing it
//!   needs a multi-party PSI beyond ECDH (OPPRF based, for instance).
//! - In overlap-only mode and below `min_overlap` no party learns any
//!   membership: the comparison runs on `G` values nobody can link, and the
//!   reveal that makes them linkable is never run.
//!
//! Out of scope: a malicious party (it could send a list of chosen points or
//! replace its set); collusion of the coordinator with a party beyond what
//! that party sees; collusion of parties, which can jointly remove their
//! masks from the lists they relayed.
//!
//! # Faults
//!
//! Every received list is checked for its chunk count and byte length (the
//! coordinator checks it too, before relaying), opened, and every point
//! decoded; a list that must be sorted is checked to be strictly
//! increasing. Each error names the step and the party at fault
//! ([`PsiError::culprit`]); a silent party is found by the coordinator as
//! the sender of the earliest message it still awaits.

pub mod coordinator;
pub mod error;
pub mod group;
pub mod messages;
pub mod outcome;
pub mod party;
pub mod runner;
pub mod seal;
pub mod wire;

pub use error::PsiError;
pub use messages::{Envelope, Hello, Roster, Step, Verdict};
pub use outcome::{AlignedRow, Outcome};

use group::HashTag;

/// The operating system's generator, which production runs draw every
/// per-job key from (tests pass a seeded generator instead).
pub fn os_rng() -> rand::rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand::rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// The label holder's party index.
pub const LABEL_HOLDER: u32 = 0;

/// Largest set a party may bring.
pub const MAX_SET: u64 = 1 << 32;

/// Most parties in one run.
pub const MAX_PARTIES: u32 = 64;

/// The public parameters of one intersection, known to every party and the
/// coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiParams {
    /// Consortium name, bound into the hash-to-group tag and every key.
    pub consortium: String,
    /// Job id, bound likewise.
    pub job_id: String,
    /// Parties: the label holder and its partners.
    pub parties: u32,
    /// Smallest intersection that is released.
    pub min_overlap: u64,
    /// Release the intersection size only, no membership.
    pub overlap_only: bool,
}

impl PsiParams {
    /// Checked parameters.
    pub fn new(
        consortium: impl Into<String>,
        job_id: impl Into<String>,
        parties: u32,
        min_overlap: u64,
        overlap_only: bool,
    ) -> Result<Self, PsiError> {
        if !(2..=MAX_PARTIES).contains(&parties) {
            return Err(PsiError::InvalidParams(format!(
                "{parties} parties; a run needs 2 to {MAX_PARTIES}"
            )));
        }
        Ok(Self {
            consortium: consortium.into(),
            job_id: job_id.into(),
            parties,
            min_overlap,
            overlap_only,
        })
    }

    /// The hash-to-group tag of the job.
    pub fn tag(&self) -> HashTag {
        HashTag::for_job(&self.consortium, &self.job_id)
    }

    /// The ring successor of `party`.
    pub fn succ(&self, party: u32) -> u32 {
        (party + 1) % self.parties
    }

    /// The ring predecessor of `party`.
    pub fn pred(&self, party: u32) -> u32 {
        (party + self.parties - 1) % self.parties
    }

    /// Whose list `sender` sends at ring `k` of either pass.
    pub fn owner(&self, sender: u32, k: u32) -> u32 {
        (sender + self.parties - k % self.parties) % self.parties
    }

    /// Every list message of the two ring passes: step, sender, recipient
    /// and points, as the coordinator expects them.
    pub fn ring_plan(&self, sizes: &[u64]) -> Vec<(Step, u32, u32, u64)> {
        let n = self.parties;
        let mut plan = Vec::with_capacity(3 * (n * n) as usize);
        for k in 0..n {
            for j in 0..n {
                plan.push((
                    Step::Link(k),
                    j,
                    self.succ(j),
                    sizes[self.owner(j, k) as usize],
                ));
            }
        }
        for k in 0..n {
            for j in 0..n {
                let to = if k + 1 < n {
                    self.succ(j)
                } else {
                    LABEL_HOLDER
                };
                if j != to {
                    plan.push((Step::Compare(k), j, to, sizes[self.owner(j, k) as usize]));
                }
            }
        }
        plan
    }

    /// Every list message after a verdict releasing `size` customers.
    pub fn reveal_plan(&self, size: u64) -> Vec<(Step, u32, u32, u64)> {
        let last = self.parties - 1;
        let chain = (0..last).map(|k| (Step::Reveal(k), k, k + 1, size));
        let result = (0..last).map(|j| (Step::Result, last, j, size));
        chain.chain(result).collect()
    }
}
