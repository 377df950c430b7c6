//! Vertical joint modelling (issue 16, part 2): one L2 logistic regression
//! over columns held by different institutions, fitted on secret shares.
//!
//! # Setting and threat model
//!
//! After the private set intersection the bank (label holder) and the
//! feature partners hold different standardised columns of the same n
//! customers in the same order. Parties are honest-but-curious and no two
//! collude (bank, partners, coordinator). Nobody may learn another party's
//! feature values, the labels, or any per-customer linear predictor,
//! probability or residual during training. Released: two scalars per step
//! (the Newton decrement and the step's root mean square change of the
//! linear predictor), each party's own coefficient block to that party
//! (the bank also the intercept), and at the end the joint scores of its
//! customers to the bank only (the intended output of joint scoring), from
//! which the bank computes the holdout AUC, log-loss and top-decile lift.
//!
//! # Protocol
//!
//! Two-party additive secret sharing over Z_2^128 ([`ring`]: 32 fractional
//! bits, SecureML local truncation) between the **bank** (party 0) and the
//! **partner side** (party 1: the first partner). Further partners split
//! their columns into two random shares, one to each computing party, and
//! receive both parties' shares of their coefficients at the end. The
//! **coordinator is the dealer** ([`dealer`]): it draws the masks and their
//! products (Beaver and matrix triples) from shape-only requests and never
//! receives a data-dependent value. Openings between the two computing
//! parties travel through the coordinator's relay but must be sealed end to
//! end (X25519 + ChaCha20-Poly1305 as in `secagg::sealed`): the dealer knows
//! the masks, so it must never see an opening.
//!
//! The fit ([`fit`]) is Newton's method with the exact Hessian
//! `H = Xᵀ diag(p(1−p)) X / n + (l2/n)·P`, computed on shares every step
//! from the design masked **once** (`E = X − A` opened a single time;
//! matrix-triple reuse with fresh per-step masks: `diag(w)·X` needs only
//! `w` opened, [`engine::Party::row_scale`], and `Xᵀ(diag(w)·X)` one
//! opening of that n×d value) and inverted on shares by Newton–Schulz.
//! Each step: `η = Xβ`, `p = σ(η)` by the secure sigmoid of [`sigmoid`]
//! (exp by squaring in the symmetric form `a/(a+b)`, reciprocal by
//! Newton–Raphson; error < 1e-6 for |η| ≤ 16),
//! `g = Xᵀ(p − y)/n + (l2/n)·Pβ`, `β ← β − H⁻¹g`, until the opened decrement
//! `gᵀH⁻¹g` is below the tolerance (7 steps on the tests' and the demo's
//! data). Two guards keep Newton's steps safe far from the optimum, where
//! small weights make them long: an exact step is shortened to move the
//! linear predictor by at most [`fit::STEP_RMS`] in root mean square
//! (`ΔᵀH_bΔ`, opened beside the decrement, is a quarter of the squared
//! move), and a step after an exact step whose decrement grew (compared
//! with the last exact one) divides by Böhning's bound
//! `XᵀX/(4n) + (l2/n)·P` instead (inverted once per job; it never
//! overshoots); only an exact step's decrement ends the fit.
//! [`fit::Curvature::Bound`] uses the bound throughout, with
//! heavy-ball momentum (tens of steps). Per exact step and training
//! customer, each computing party sends its peer about 81 ring elements
//! (1.3 kB: sigmoid 67, residual 1, the weights 2, the weighted design d).
//! The dealer sends every mask as one 32-byte seed per party and every
//! product as a seed to party 0 and the rest in full to party 1
//! ([`dealer::Dealt`]): about 78 elements (1.25 kB) per training customer
//! and step in all, against 320 when every share travelled in full.
//! `mpc::bench` measures both directions. Forgetting a mask is a
//! notification the dealer does not answer, so no party waits for it.
//!
//! What each role sees: the peer's shares of masked values (`x − a` with `a`
//! fresh and uniform: uniformly random), the dealer's shares (uniformly
//! random), the two scalars per step, its own outputs. The dealer sees only
//! request shapes (which tell it whether a step was exact or a fallback to
//! the bound: a function of the decrements, which are released anyway).
//! The in-process [`runner`] records all of it for the tests.
//!
//! On the network (`participant::node::fit`, `coordinator::vertical`),
//! openings travel sealed end to end ([`wire::SealedLink`]) through the
//! coordinator, which serves dealer requests from [`wire`]'s shape-only
//! encoding.
//!
//! Helper partners (every partner after the first) take part over the
//! network as in the runner: each seals a uniformly random share of its
//! columns to the bank and the difference to the first partner, and gets
//! both shares of its coefficients back (`participant::node::helper`).
//!
//! Not yet here: a secure comparison to clip |η| beyond 16.

#[cfg(test)]
mod bench;
pub mod dealer;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fit;
pub mod plain;
pub mod ring;
pub mod runner;
pub mod score;
pub mod sigmoid;
#[cfg(test)]
mod tests;
pub mod wire;

pub use error::{Fault, MpcError};

/// The security assumption of a vertical job, in the words the journal
/// records at its submission.
pub const THREAT_MODEL: &str = "honest-but-curious parties, no two colluding \
(label holder, partners, coordinator); the coordinator deals correlated randomness \
from shapes only and relays sealed messages, and sees no value; each party learns its \
own coefficient block, the label holder also the joint scores of the intersection; \
released: set sizes, the intersection size, two scalars per Newton step (its decrement and \
its root mean square change of the linear predictor), the holdout quality of the joint and the label holder's own model";

/// Who deals the correlated randomness of the joint model.
pub const DEALER: &str = "coordinator";
