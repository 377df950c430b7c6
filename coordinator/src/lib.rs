//! The fedseg coordinator. The binary in `main.rs` only parses arguments;
//! the work lives in these modules.
//!
//! - [`ahp`]: AHP feature weights from pairwise judgments.
//! - [`segmentation`]: the joint segmentation job built on secure sums.
//! - [`report`]: the human-readable report of a job's result.
//! - [`propensity`]: the propensity model, fitted and evaluated on secure sums.
//! - [`playbook`]: segment names and the 4P marketing playbook.
//! - [`bench`]: the `bench secure-sum` command and its sweep.
//! - [`pki`]: the consortium CA and member certificates.
//! - [`config`]: the `coordinator.toml` and `job.toml` files.
//! - [`service`], [`server`]: the gRPC surface and its mTLS server.
//! - [`engine`]: the round engine that runs a job over the sessions.
//! - [`journal`]: appending signed records to the coordinator's journal.
//! - [`metrics`]: Prometheus metrics and the plain-HTTP `/metrics`, `/healthz`.
//! - [`audit`]: the read-only audit service for auditors.

pub mod ahp;
pub mod audit;
pub mod bench;
pub mod config;
pub mod demo;
pub mod engine;
pub mod journal;
pub mod journal_view;
pub mod metrics;
pub mod pki;
pub mod playbook;
pub mod propensity;
pub mod report;
pub mod segmentation;
pub mod server;
pub mod service;
