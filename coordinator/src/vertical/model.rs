//! The coordinator's part of the joint model: it deals the correlated
//! randomness (`mpc::dealer`: masks and their products, from shape-only
//! requests) and relays the two computing parties' sealed openings, which
//! it cannot read. It learns the column counts, the request shapes, the
//! message sizes, and at the end the label holder's report: the holdout
//! quality of the joint model against the bank's own, released in
//! `result.json`. A party that leaves, fails, or makes no progress for a
//! phase timeout stops the job.

use fedseg_common::mpc::dealer::Dealer;
use fedseg_common::mpc::wire;
use fedseg_common::proto::{self, vertical_down, vertical_up};
use fedseg_common::psi::Step;
use fedseg_common::result::{Contribution, ModelQuality};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use tokio::time::Instant as Deadline;
use tracing::info;

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
}

/// The label holder (0) and its first partner (1).
const PARTIES: [u32; 2] = [0, 1];

/// Runs the joint model between parties 0 and 1 of the engine's cohort.
pub async fn fit(engine: &mut Engine<'_>) -> Result<ModelReport, VerticalError> {
    for p in PARTIES {
        engine
            .send_vertical(p, vertical_down::Body::MpcStart(proto::MpcStart {}))
            .await;
    }
    let mut keys = [Vec::new(), Vec::new()];
    let mut columns = [0u32; 2];
    while keys.iter().any(Vec::is_empty) {
        let received = next(engine).await?;
        match received.body {
            vertical_up::Body::MpcHello(hello)
                if received.from <= 1 && keys[received.from as usize].is_empty() =>
            {
                if hello.seal_key.len() != 32 || hello.columns > 512 {
                    return Err(VerticalError::ModelFault(format!(
                        "party {} said hello with a malformed key or {} columns",
                        received.from, hello.columns
                    )));
                }
                keys[received.from as usize] = hello.seal_key;
                columns[received.from as usize] = hello.columns;
            }
            other => return Err(out_of_turn(received.from, &other)),
        }
    }
    info!(?columns, "joint model: both computing parties ready");
    let roster = proto::MpcRoster {
        seal_keys: keys.to_vec(),
        columns: columns.to_vec(),
    };
    for p in PARTIES {
        engine
            .send_vertical(p, vertical_down::Body::MpcRoster(roster.clone()))
            .await;
    }
    let mut dealer = Dealer::new(ChaCha20Rng::from_rng(&mut fedseg_common::psi::os_rng()));
    loop {
        let received = next(engine).await?;
        let from = received.from;
        match received.body {
            vertical_up::Body::MpcOpening(chunk) if from <= 1 => {
                if chunk.from != from || chunk.to != 1 - from {
                    return Err(out_of_turn(from, &vertical_up::Body::MpcOpening(chunk)));
                }
                engine
                    .send_vertical(1 - from, vertical_down::Body::MpcOpening(chunk))
                    .await;
            }
            vertical_up::Body::MpcRequest(request) if from <= 1 => {
                let request = wire::request_from_wire(request)
                    .map_err(|e| VerticalError::ModelFault(format!("party {from}: {e}")))?;
                let correlation = dealer
                    .serve(from as usize, request)
                    .map_err(|e| VerticalError::ModelFault(format!("party {from}: {e}")))?;
                for chunk in wire::correlation_chunks(&correlation) {
                    engine
                        .send_vertical(from, vertical_down::Body::MpcCorrelation(chunk))
                        .await;
                }
            }
            vertical_up::Body::Report(report) if from == 0 => {
                info!(
                    steps = report.steps,
                    converged = report.converged,
                    "joint model: the label holder's report"
                );
                return Ok(ModelReport {
                    steps: report.steps,
                    converged: report.converged,
                    contribution: contribution(&report),
                });
            }
            other => return Err(out_of_turn(from, &other)),
        }
    }
}

/// The next message, or a stall naming the computing parties.
async fn next(engine: &mut Engine<'_>) -> Result<Received, VerticalError> {
    let deadline = Deadline::now() + engine.phase_timeout();
    // Psi's step names a departure; the model has no steps of its own.
    receive(engine, deadline, Step::Result)
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
    Some(Contribution {
        holdout_count: report.holdout_count,
        auc_difference: difference,
        auc_difference_standard_error: se,
        measurable: difference.abs() > 2.0 * se,
        joint,
        label_holder_only: own,
    })
}
