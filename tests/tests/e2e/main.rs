//! The end-to-end tests, one binary with a module per area: the real
//! `fedseg-coordinator` and `fedseg-participant` binaries as separate
//! processes over mutual TLS on loopback (helpers in `fedseg_tests`, the
//! library of this crate; pooled references in [`pooled`]).

mod admission;
mod audit;
mod bench_cli;
mod campaign;
mod demo;
mod deploy;
mod equivocation;
mod golden;
mod hung;
mod independent_client;
mod jobs;
mod journal_end;
mod killed;
mod malicious;
mod metrics;
mod misbehaviour;
mod playing_coordinator;
mod policy;
mod pooled;
mod postgres;
mod privacy;
mod propensity;
mod real_data;
mod recovery;
mod rerun;
mod rounds;
mod segmentation;
mod series;
mod sessions;
mod vertical;
mod vertical_model;
mod vertical_score;
