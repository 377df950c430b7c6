//! The coordinator's part of the joint model: it deals the correlated
//! randomness (`mpc::dealer`: masks and their products, from shape-only
//! requests) and relays the sealed openings between the two computing
//! parties (the label holder and its first partner), and between them and
//! further partners (their column shares in, their coefficient shares out),
//! none of which it can read. It learns the column counts, the request shapes, the
//! message sizes, and at the end the label holder's report: the holdout
//! quality of the joint model against the bank's own, released in
//! `result.json`. A party that leaves, fails, or makes no progress for a
//! phase timeout stops the job.

use std::collections::BTreeSet;

use fedseg_common::mpc::dealer::{Dealer, Request};
use fedseg_common::mpc::wire;
use fedseg_common::proto::{self, vertical_down, vertical_up};
use fedseg_common::psi::Step;
use fedseg_common::result::{CalibrationBin, Contribution, ModelQuality};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use tokio::time::Instant as Deadline;
use tracing::info;

use super::batch::Batches;
use super::{Received, VerticalError, out_of_turn, receive};
use crate::engine::Engine;

/// What the joint model released.
#[derive(Debug, Clone)]
pub struct ModelReport {
    /// Newton steps.
    pub steps: u32,
    /// Whether the decrement fell below the tolerance.
    pub converged: bool,
    /// The joint model against the label holder's own.
    pub contribution: Option<Contribution>,
    /// Sealed bytes relayed between the parties.
    pub relayed_bytes: u64,
    /// Bytes of correlated randomness dealt.
    pub dealt_bytes: u64,
}

/// The computing parties: the label holder (0) and its first partner (1).
/// Further partners (2, 3, ...) are helpers: they secret-share their
/// columns between the two and receive their coefficients' shares back.
const COMPUTING: u32 = 2;

/// Runs the joint model among every party of the engine's cohort.
pub async fn fit(engine: &mut Engine<'_>) -> Result<ModelReport, VerticalError> {
    let mut batches = Batches::default();
    let result = relay(engine, &mut batches).await;
    batches.close(engine, result)
}

/// Starts the joint model's exchange at every party: the start, every
/// party's hello, the roster of all keys and column counts.
pub(super) async fn start_all(
    engine: &mut Engine<'_>,
    batches: &mut Batches,
) -> Result<proto::MpcRoster, VerticalError> {
    let parties = engine.cohort().len() as u32;
    for p in 0..parties {
        engine
            .send_vertical(p, vertical_down::Body::MpcStart(proto::MpcStart {}))
            .await;
    }
    let roster = hellos(engine, parties, batches).await?;
    info!(columns = ?roster.columns, "joint model: every party ready");
    for p in 0..parties {
        engine
            .send_vertical(p, vertical_down::Body::MpcRoster(roster.clone()))
            .await;
    }
    Ok(roster)
}

/// The joint model from start to the label holder's report.
async fn relay(
    engine: &mut Engine<'_>,
    batches: &mut Batches,
) -> Result<ModelReport, VerticalError> {
    let parties = engine.cohort().len() as u32;
    start_all(engine, batches).await?;
    let mut dealer = Dealer::new(ChaCha20Rng::from_rng(&mut fedseg_common::psi::os_rng()));
    // Each helper's coefficient shares still to relay, from each computing
    // party: the job ends only once every helper got both.
    let mut owed: BTreeSet<(u32, u32)> = (COMPUTING..parties)
        .flat_map(|h| (0..COMPUTING).map(move |c| (c, h)))
        .collect();
    let mut report: Option<ModelReport> = None;
    let (mut relayed, mut dealt) = (0u64, 0u64);
    loop {
        if owed.is_empty()
            && let Some(mut report) = report.take()
        {
            report.relayed_bytes = relayed;
            report.dealt_bytes = dealt;
            return Ok(report);
        }
        let received = next(engine, batches).await?;
        let from = received.from;
        match received.body {
            vertical_up::Body::MpcOpening(chunk) => {
                if chunk.from != from || !may_open(from, chunk.to, parties) {
                    return Err(out_of_turn(from, &vertical_up::Body::MpcOpening(chunk)));
                }
                if chunk.index + 1 == chunk.total {
                    owed.remove(&(from, chunk.to));
                }
                relayed += chunk.sealed.len() as u64;
                let to = chunk.to;
                engine
                    .send_vertical(to, vertical_down::Body::MpcOpening(chunk))
                    .await;
            }
            vertical_up::Body::MpcRequest(request) if from < COMPUTING => {
                let request = wire::request_from_wire(request)
                    .map_err(|e| VerticalError::ModelFault(format!("party {from}: {e}")))?;
                let answered = !matches!(request, Request::Forget { .. });
                let correlation = dealer
                    .serve(from as usize, request)
                    .map_err(|e| VerticalError::ModelFault(format!("party {from}: {e}")))?;
                // A forgotten mask has no answer: the party does not wait.
                let chunks = if answered {
                    wire::correlation_chunks(&correlation)
                } else {
                    Vec::new()
                };
                for chunk in chunks {
                    dealt += (chunk.values.len() + chunk.seed.len()) as u64;
                    engine
                        .send_vertical(from, vertical_down::Body::MpcCorrelation(chunk))
                        .await;
                }
            }
            vertical_up::Body::Report(r) if from == 0 && report.is_none() => {
                info!(
                    steps = r.steps,
                    converged = r.converged,
                    "joint model: the label holder's report"
                );
                report = Some(ModelReport {
                    steps: r.steps,
                    converged: r.converged,
                    contribution: contribution(&r),
                    relayed_bytes: 0,
                    dealt_bytes: 0,
                });
            }
            other => return Err(out_of_turn(from, &other)),
        }
    }
}

/// Whether `from` may send an opening to `to`: the two computing parties
/// to each other and to helpers (their coefficient shares), a helper to
/// either computing party (its column shares).
fn may_open(from: u32, to: u32, parties: u32) -> bool {
    if from == to || from >= parties || to >= parties {
        return false;
    }
    from < COMPUTING || to < COMPUTING
}

/// Every party's hello: its sealing key and column count, as the roster.
async fn hellos(
    engine: &mut Engine<'_>,
    parties: u32,
    batches: &mut Batches,
) -> Result<proto::MpcRoster, VerticalError> {
    let mut keys = vec![Vec::new(); parties as usize];
    let mut columns = vec![0u32; parties as usize];
    while keys.iter().any(Vec::is_empty) {
        let received = next(engine, batches).await?;
        let from = received.from as usize;
        match received.body {
            vertical_up::Body::MpcHello(hello) if keys[from].is_empty() => {
                if hello.seal_key.len() != 32 || hello.columns > 512 {
                    return Err(VerticalError::ModelFault(format!(
                        "party {from} said hello with a malformed key or {} columns",
                        hello.columns
                    )));
                }
                keys[from] = hello.seal_key;
                columns[from] = hello.columns;
            }
            other => return Err(out_of_turn(received.from, &other)),
        }
    }
    Ok(proto::MpcRoster {
        seal_keys: keys,
        columns,
    })
}

/// The next message, or a stall naming the computing parties.
pub(super) async fn next(
    engine: &mut Engine<'_>,
    batches: &mut Batches,
) -> Result<Received, VerticalError> {
    let deadline = Deadline::now() + engine.phase_timeout();
    // Psi's step names a departure; the model has no steps of its own.
    receive(engine, deadline, Step::Result, Some(batches))
        .await?
        .ok_or_else(|| {
            VerticalError::ModelFault(
                "no computing party made progress within the phase timeout".into(),
            )
        })
}

fn contribution(report: &proto::VerticalReport) -> Option<Contribution> {
    let quality = |q: &Option<proto::ModelQualityReport>| {
        q.as_ref().map(|q| ModelQuality {
            auc: q.auc,
            log_loss: q.log_loss,
            top_decile_lift: q.top_decile_lift,
            auc_standard_error: q.auc_standard_error,
        })
    };
    let (joint, own) = (quality(&report.joint)?, quality(&report.label_holder_only)?);
    let difference = joint.auc - own.auc;
    let se = joint.auc_standard_error.hypot(own.auc_standard_error);
    let joint_calibration = report
        .joint_calibration
        .iter()
        .map(|b| CalibrationBin {
            lo: b.lo,
            hi: b.hi,
            count: b.count,
            mean_predicted: b.mean_predicted,
            observed_rate: b.observed_rate,
        })
        .collect();
    Some(Contribution {
        joint_calibration,
        holdout_count: report.holdout_count,
        auc_difference: difference,
        auc_difference_standard_error: se,
        measurable: difference.abs() > 2.0 * se,
        joint,
        label_holder_only: own,
    })
}
