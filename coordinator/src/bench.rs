//! Benchmarks of the secure sum: the whole protocol in one process and one
//! thread through the in-process runner, timed per role, with raw ChaCha20
//! keystream for the same number of bytes as the baseline.

use std::time::{Duration, Instant};

pub mod cosign;

use fedseg_common::job::CohortSettings;
use fedseg_common::keys::KeyAlgorithm;
use fedseg_common::secagg::consortium::Consortium;
use fedseg_common::secagg::kdf::{self, Purpose};
use fedseg_common::secagg::prg;
use fedseg_common::secagg::runner::{self, Dropout};
use fedseg_common::secagg::{JobParams, NeighbourGraph, Phase};
use rand::rngs::ChaCha20Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// One benchmark configuration.
#[derive(Debug, Clone, Copy)]
pub struct SecureSumConfig {
    /// Cohort size n.
    pub participants: u32,
    /// Vector length d in u64 words.
    pub length: usize,
    /// Neighbours per member (n − 1 or more: complete graph).
    pub neighbours: u32,
    /// Shamir threshold t.
    pub threshold: u32,
    /// Fraction of members that drop before sending their round-0 input.
    pub dropout: f64,
    /// Rounds run on one key set-up.
    pub rounds: u32,
}

/// The measured figures; field names are the command-line contract's.
#[derive(Debug, Clone, Serialize)]
pub struct SecureSumReport {
    /// Cohort size n.
    pub participants: u32,
    /// Vector length d.
    pub length: usize,
    /// Neighbours per member as built (n − 1 for a complete graph).
    pub neighbours: u32,
    /// Shamir threshold t.
    pub threshold: u32,
    /// Signatures each survivor set carries: the job default for this
    /// cohort, degree and threshold, (n + c)/2 + 1.
    pub quorum: u32,
    /// Dropout fraction.
    pub dropout: f64,
    /// Rounds run.
    pub rounds: u32,
    /// Rounds that released a sum.
    pub released: u32,
    /// Wall time of the whole run.
    pub wall_s: f64,
    /// Sum over members of their compute time (key set-up, mask, unmask).
    pub participant_s_total: f64,
    /// The slowest member's compute time.
    pub participant_s_max: f64,
    /// Sum over members of their masking time alone.
    pub participant_mask_s_total: f64,
    /// Coordinator compute time.
    pub coordinator_s: f64,
    /// Coordinator time for unmasking alone (reconstruction, mask removal).
    pub coordinator_unmask_s: f64,
    /// Raw ChaCha20 keystream time for the bytes the members' masks took.
    pub keystream_s: f64,
    /// participant_mask_s_total / keystream_s.
    pub mask_over_keystream: f64,
    /// What co-signing (signed keys, inputs and survivor sets) adds, per
    /// member and round ([`cosign`]).
    pub cosign: cosign::CosignCost,
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Time to produce `bytes` of raw ChaCha20 keystream, in 1 MiB pieces.
pub fn keystream_time(bytes: u64) -> Duration {
    let key = kdf::derive(Purpose::SelfMask, b"bench", "bench", b"");
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let piece = left.min(buf.len() as u64) as usize;
        prg::write_keystream(&key, &mut buf[..piece]);
        std::hint::black_box(&buf);
        left -= piece as u64;
    }
    start.elapsed()
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A setting is out of range (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// The protocol refused the parameters or failed a round.
    #[error(transparent)]
    Protocol(#[from] fedseg_common::secagg::SecAggError),
    /// A certificate of the in-memory consortium did not parse.
    #[error(transparent)]
    Certificate(#[from] fedseg_common::certs::CertError),
}

/// Runs one configuration.
pub fn secure_sum(config: &SecureSumConfig) -> Result<SecureSumReport, BenchError> {
    let n = config.participants;
    if !(0.0..1.0).contains(&config.dropout) {
        return Err(BenchError::Invalid("--dropout must be in [0, 1)".into()));
    }
    if config.rounds < 1 {
        return Err(BenchError::Invalid("--rounds must be at least 1".into()));
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eca99);
    let graph_seed: [u8; 32] = rng.random();
    // The quorum a job with this cohort, degree and threshold gets by default.
    let settings = CohortSettings {
        threshold: Some(config.threshold),
        neighbours: Some(config.neighbours),
        ..CohortSettings::default()
    };
    let quorum = settings
        .protocol(n)
        .map_err(|(key, why)| BenchError::Invalid(format!("{key}: {why}")))?
        .quorum;
    let params = JobParams::new("bench", n, config.threshold, config.neighbours, &graph_seed)?
        .with_quorum(quorum)?;
    let mut order: Vec<u32> = (0..n).collect();
    order.shuffle(&mut rng);
    let dropped = (config.dropout * n as f64).round() as usize;
    let dropouts: Vec<Dropout> = order[..dropped]
        .iter()
        .map(|&who| Dropout {
            phase: Phase::MaskedInput,
            round: 0,
            who,
        })
        .collect();
    let length = config.length;
    let mut input = |round: u64, member: u32| -> Vec<u64> {
        (0..length as u64)
            .map(|i| i ^ round ^ ((member as u64) << 32))
            .collect()
    };
    // Certificates are issued before the clock starts: a bank has its own.
    let consortium = Consortium::generate(n, KeyAlgorithm::EcdsaP256);
    let cohort = runner::Cohort {
        params: &params,
        members: &consortium.members,
    };
    let start = Instant::now();
    let sim = runner::run(
        cohort,
        config.rounds,
        config.rounds as u64,
        length,
        &mut input,
        &dropouts,
        &mut rng,
    );
    let wall = start.elapsed();
    if let Some(failed) = sim.rounds.iter().find_map(|r| r.outcome.as_ref().err()) {
        return Err(BenchError::Invalid(format!(
            "a round released nothing: {failed}"
        )));
    }
    let t = &sim.timings;
    let mask_total: Duration = t.participant_mask.iter().sum();
    let keystream = keystream_time(t.mask_words * 8);
    let cosign = cosign::cost(
        n,
        params.graph.neighbours(0).len() as u32,
        n - dropped as u32,
        params.quorum,
        length,
    )?;
    Ok(SecureSumReport {
        participants: n,
        length,
        neighbours: params.graph.neighbours(0).len() as u32,
        threshold: config.threshold,
        quorum: params.quorum,
        dropout: config.dropout,
        rounds: config.rounds,
        released: sim.rounds.iter().filter(|r| r.outcome.is_ok()).count() as u32,
        wall_s: seconds(wall),
        participant_s_total: seconds(t.participant.iter().sum()),
        participant_s_max: seconds(t.participant.iter().max().copied().unwrap_or_default()),
        participant_mask_s_total: seconds(mask_total),
        coordinator_s: seconds(t.coordinator),
        coordinator_unmask_s: seconds(t.coordinator_unmask),
        keystream_s: seconds(keystream),
        mask_over_keystream: seconds(mask_total) / seconds(keystream).max(1e-12),
        cosign,
    })
}

/// The sweep's configurations: n ∈ {10, 100, 1000}, d ∈ {10^3, 10^5},
/// dropouts 0 and 10%, sparse and complete graphs (complete at n = 1000 only
/// for d = 10^3: 10^6 pairwise streams of 10^5 words per round is exactly
/// the cost SecAgg+ exists to avoid).
pub fn sweep_configs() -> Vec<(&'static str, SecureSumConfig)> {
    let mut configs = Vec::new();
    for n in [10u32, 100, 1000] {
        for length in [1_000usize, 100_000] {
            for dropout in [0.0, 0.1] {
                for graph in ["sparse", "complete"] {
                    if graph == "complete" && n == 1000 && length == 100_000 {
                        continue;
                    }
                    let neighbours = match graph {
                        "complete" => n - 1,
                        _ if n > 32 => NeighbourGraph::default_degree(n),
                        _ => 4,
                    };
                    let threshold = neighbours / 2 + 1;
                    configs.push((
                        graph,
                        SecureSumConfig {
                            participants: n,
                            length,
                            neighbours,
                            threshold,
                            dropout,
                            rounds: 1,
                        },
                    ));
                }
            }
        }
    }
    configs
}

/// Markdown table header of the sweep.
pub const SWEEP_HEADER: &str = "| graph | n | d | k | t | drop | wall s | mask s / participant | mask ÷ keystream | participant s max | coordinator s | unmask s |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One markdown table row of the sweep.
pub fn sweep_row(graph: &str, r: &SecureSumReport) -> String {
    format!(
        "| {graph} | {} | {} | {} | {} | {:.0}% | {:.3} | {:.5} | {:.2} | {:.4} | {:.4} | {:.4} |",
        r.participants,
        r.length,
        r.neighbours,
        r.threshold,
        r.dropout * 100.0,
        r.wall_s,
        r.participant_mask_s_total / r.participants as f64,
        r.mask_over_keystream,
        r.participant_s_max,
        r.coordinator_s,
        r.coordinator_unmask_s,
    )
}
