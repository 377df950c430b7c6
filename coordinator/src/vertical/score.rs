//! The coordinator's part of a joint scoring job (`[vertical] score_with`):
//! after the fresh intersection it collects every party's sealing key,
//! relays each partner's masked, sealed part of the linear predictors to
//! the label holder (it can read none), and takes the label holder's count
//! of customers scored. Each message is journaled as in training.

use fedseg_common::proto::{vertical_down, vertical_up};
use tracing::info;

use super::batch::Batches;
use super::model::{next, start_all};
use super::{VerticalError, out_of_turn};
use crate::engine::Engine;

/// Runs the scoring; the count the label holder scored.
pub async fn score(engine: &mut Engine<'_>) -> Result<u64, VerticalError> {
    let mut batches = Batches::default();
    let result = relay(engine, &mut batches).await;
    batches.close(engine, result)
}

async fn relay(engine: &mut Engine<'_>, batches: &mut Batches) -> Result<u64, VerticalError> {
    start_all(engine, batches).await?;
    loop {
        let received = next(engine, batches).await?;
        let from = received.from;
        match received.body {
            vertical_up::Body::MpcOpening(chunk)
                if from >= 1 && chunk.from == from && chunk.to == 0 =>
            {
                engine
                    .send_vertical(0, vertical_down::Body::MpcOpening(chunk))
                    .await;
            }
            vertical_up::Body::Report(report) if from == 0 => {
                info!(
                    scored = report.scored,
                    "joint scoring: the label holder scored"
                );
                return Ok(report.scored);
            }
            other => return Err(out_of_turn(from, &other)),
        }
    }
}
