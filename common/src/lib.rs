//! What the fedseg coordinator and participants share.
//!
//! - [`proto`]: the generated gRPC wire contract (`proto/fedseg/v1`).
//! - [`fixed_point`]: clipping and fixed-point encoding of real vectors into
//!   wrapping `u64` words, the domain every secure sum works in.
//! - [`secagg`]: the secure-sum protocol itself (SecAgg+ style), as plain
//!   types and state machines with no networking, plus an in-process runner.
//! - [`mpc`]: vertical joint modelling: a logistic regression fitted on
//!   two-party secret shares with the coordinator as dealer, as plain types
//!   with no networking, plus an in-process runner.
//! - [`dp`]: exact discrete Gaussian noise and the zCDP accountant.
//! - [`privacy`]: per-customer bounds of every computation and the noise
//!   that makes a release ρ-zCDP.
//! - [`features`]: the transformed RFMLT vector and the clustering space.
//! - [`propensity`]: the holdout rule, design rows and the logistic loss.
//! - [`result`]: `result.json`, typed once for the coordinator and the participants.
//! - [`job`]: `job.toml`, typed once for the coordinator and the participants.
//! - [`computation`]: each round's computation: its vector layout, bounds
//!   and typed decode, one module per kind.
//! - [`keys`]: the PKI's key algorithms (ECDSA P-256, Ed25519) and the
//!   journal's signatures.
//! - [`psi`]: private set intersection for vertical joint modelling
//!   (ECDH over ristretto255 in a hub, sealed end to end), as plain types
//!   and state machines with no networking, plus an in-process runner.

/// The wire protocol version coordinator and participants speak: 2 since
/// the joint model's dealer sends seeds, leaves `Forget` unanswered and
/// deals row-scaled products (a version-1 node would wait forever).
pub const PROTOCOL_VERSION: u32 = 2;

pub mod analyst;
pub mod campaign;
pub mod certs;
pub mod computation;
pub mod config;
pub mod dp;
pub mod features;
pub mod fixed_point;
pub mod identity;
pub mod job;
pub mod journal;
pub mod keys;
pub mod mpc;
pub mod mtls;
pub mod privacy;
pub mod process;
pub mod propensity;
pub mod proto;
pub mod psi;
pub mod result;
pub mod secagg;
pub mod series;
pub mod submission;
pub mod wire;
