//! How a vertical job's messages reach the journal. The joint model sends
//! hundreds of openings and dealer requests per Newton step; journaling
//! each (a signed record of ~400 bytes) made the journal grow by megabytes
//! per job. Each party's openings and requests of one step (the label its
//! messages carry) are journaled as one [`Entry::VerticalBatch`] instead:
//! count, bytes and the SHA-256 over their digests, which the party's
//! ledger check recomputes from its own lines. Every other message is
//! journaled on its own, after the sender's open batch, so the journal's
//! order per party stays the order the party sent.

use std::collections::BTreeMap;

use fedseg_common::journal::{BatchDigest, Entry};
use fedseg_common::mpc::wire::step_purpose;
use fedseg_common::proto::vertical_up;

use super::{Received, VerticalError};
use crate::engine::Engine;

/// A party's batch being gathered.
#[derive(Debug)]
struct Batch {
    step: u32,
    bytes: u64,
    digest: BatchDigest,
}

/// The open batch of each party.
#[derive(Debug, Default)]
pub(super) struct Batches {
    open: BTreeMap<u32, Batch>,
}

/// The step label of a message that is batched, if it is.
fn batched(body: &vertical_up::Body) -> Option<u32> {
    match body {
        vertical_up::Body::MpcOpening(o) => Some(o.step),
        vertical_up::Body::MpcRequest(r) => Some(r.step),
        _ => None,
    }
}

impl Batches {
    /// Journals a party's message: into its batch, or on its own after
    /// that batch.
    pub(super) fn record(
        &mut self,
        engine: &mut Engine<'_>,
        message: &Received,
    ) -> Result<(), VerticalError> {
        let from = message.from;
        let Some(step) = batched(&message.body) else {
            self.flush(engine, from)?;
            return super::journal_message(engine, message);
        };
        if self.open.get(&from).is_some_and(|b| b.step != step) {
            self.flush(engine, from)?;
        }
        let batch = self.open.entry(from).or_insert_with(|| Batch {
            step,
            bytes: 0,
            digest: BatchDigest::default(),
        });
        if !batch.digest.add(&message.sha256) {
            return Err(VerticalError::ModelFault(format!(
                "a message of party {from} with digest {:?}",
                message.sha256
            )));
        }
        batch.bytes += message.bytes;
        Ok(())
    }

    /// Journals party `from`'s open batch, if any.
    fn flush(&mut self, engine: &mut Engine<'_>, from: u32) -> Result<(), VerticalError> {
        let Some(batch) = self.open.remove(&from) else {
            return Ok(());
        };
        engine.journal(Entry::VerticalBatch {
            job_id: engine.job().id.clone(),
            step: step_purpose(batch.step),
            from: engine.cohort()[from as usize].clone(),
            messages: batch.digest.messages(),
            bytes: batch.bytes,
            sha256: batch.digest.finish(),
        })?;
        Ok(())
    }

    /// Journals every open batch once the phase that gathered them ended
    /// with `result`, even if it failed (the parties' ledgers hold those
    /// messages); `result`'s error comes first.
    pub(super) fn close<T>(
        mut self,
        engine: &mut Engine<'_>,
        result: Result<T, VerticalError>,
    ) -> Result<T, VerticalError> {
        let parties: Vec<u32> = self.open.keys().copied().collect();
        let mut flushed = Ok(());
        for from in parties {
            flushed = flushed.and_then(|()| self.flush(engine, from));
        }
        let value = result?;
        flushed?;
        Ok(value)
    }
}
