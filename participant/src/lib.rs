//! The fedseg participant node, run inside each bank. The binary in
//! `main.rs` only parses arguments.
//!
//! - [`config`]: the `participant.toml` file.
//! - [`tasks`]: the local computations a round may ask for.
//! - [`node`]: the outbound session with the coordinator.
//! - [`metrics`]: a Prometheus text file of what the site sent.
//! - [`ledger`]: the egress ledger of everything that left the site.
//! - [`database`]: RFMLT computed inside a bank's PostgreSQL database.
//! - [`rfmlt`]: RFMLT features from the canonical tables.
//! - [`partner`]: a feature partner's table for vertical jobs.
//! - [`output`]: this site's local results (segments, scores).
//! - [`scoring`]: a job's final model applied to this site's customers.
//! - [`summary`]: the local summary `features` prints.

pub mod config;
pub mod database;
pub mod joint;
pub mod joint_raw;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod output;
pub mod partner;
pub mod privacy;
pub mod rfmlt;
pub mod scoring;
pub mod summary;
pub mod tasks;
