//! The fedseg coordinator. The binary in `main.rs` only parses arguments;
//! the work lives in these modules, layered so that each uses only those
//! listed before it:
//!
//! - [`config`]: the `coordinator.toml` and `job.toml` files.
//! - [`pki`]: the consortium CA and member certificates.
//! - [`journal`]: appending signed records to the coordinator's journal.
//! - [`metrics`]: Prometheus metrics and the plain-HTTP `/metrics`, `/healthz`.
//! - [`service`], [`server`]: the gRPC surface and its mTLS server.
//! - [`audit`]: the read-only audit service for auditors.
//! - [`engine`]: the round engine that runs secure sums over the sessions,
//!   knowing nothing of what they compute.
//! - [`release`]: the release client (encoding, privacy noise, retries) and
//!   the job's release plan under differential privacy.
//! - [`demo_loop`]: `demo --months`, the marketing loop on the demo.
//! - [`campaign`]: the campaign evaluation job (measured uplift).
//! - [`series`]: series of segmentation jobs and segment migration.
//! - [`ahp`]: AHP feature weights from pairwise judgments.
//! - [`playbook`]: segment names and the 4P marketing playbook.
//! - [`segmentation`]: the joint segmentation's steps on secure sums.
//! - [`propensity`]: the propensity model, fitted and evaluated on secure sums.
//! - [`result`]: `result.json` of a segmentation job.
//! - [`report`]: the human-readable report of a job's result.
//! - [`job`]: a job from start to end: its pipeline, its result written or
//!   its failure journaled.
//! - [`bench`]: the `bench secure-sum` command and its sweep.
//! - [`demo`]: a local synthetic consortium on disk.
//! - [`journal_view`]: `journal show`.

pub mod ahp;
pub mod audit;
pub mod bench;
pub mod campaign;
pub mod config;
pub mod demo;
pub mod demo_loop;
pub mod engine;
pub mod job;
pub mod jobs;
pub mod journal;
pub mod journal_view;
pub mod metrics;
pub mod pki;
pub mod playbook;
pub mod propensity;
pub mod release;
pub mod report;
pub mod result;
pub mod segmentation;
pub mod series;
pub mod server;
pub mod service;
pub mod tls_accept;
pub mod vertical;
