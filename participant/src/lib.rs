//! The fedseg participant node, run inside each bank. The binary in
//! `main.rs` only parses arguments.
//!
//! - [`config`]: the `participant.toml` file.
//! - [`campaign`]: a campaign's contact list and its measured outcomes.
//! - [`tasks`]: the local computations a round may ask for.
//! - [`node`]: the outbound session with the coordinator.
//! - [`metrics`]: a Prometheus text file of what the site sent.
//! - [`ledger`]: the egress ledger of everything that left the site.
//! - [`database`]: RFMLT computed inside a bank's PostgreSQL database.
//! - [`rfmlt`]: RFMLT features from the canonical tables.
//! - [`partner`]: a feature partner's table for vertical jobs.
//! - [`outcomes`]: a campaign's outcomes table (file or database).
//! - [`output`]: this site's local results (segments, scores).
//! - [`series`]: segment migration since a series' previous job.
//! - [`scoring`]: a job's final model applied to this site's customers.
//! - [`summary`]: the local summary `features` prints.
//! - [`policy`]: which job offers this site takes (`[policy]`).
//! - [`pause`]: a site paused between jobs.

pub mod campaign;
pub mod config;
pub mod database;
pub mod joint;
pub mod joint_raw;
pub mod joint_submit;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod outcomes;
pub mod output;
pub mod partner;
pub mod pause;
pub mod policy;
pub mod privacy;
pub mod rfmlt;
pub mod scoring;
pub mod series;
pub mod summary;
pub mod tasks;
