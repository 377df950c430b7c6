//! What a vertical job's driver needs from the engine: the session events
//! of its parties (messages with their wire digests, departures), sending
//! to one party, and the journal. The engine still forms the cohort (in
//! party order: the label holder, then the partners) and offers the job;
//! it knows nothing of what the vertical messages mean.

use fedseg_common::journal::Entry;
use fedseg_common::proto::{self, coordinator_message, vertical_down};
use tokio::time::Instant as Deadline;

use super::events::ToEngine;
use super::{Engine, EngineError};

/// A party's event in a vertical job.
#[derive(Debug)]
pub enum VerticalEvent {
    /// A message, with the SHA-256 (hex) and size of its wire encoding.
    Message {
        /// Party index.
        from: u32,
        /// The message.
        message: proto::VerticalUp,
        /// SHA-256 (hex) of the encoded message.
        sha256: String,
        /// Encoded size.
        bytes: u64,
    },
    /// The party left, failed its task, or reconnected without its state.
    Gone(u32),
}

impl Engine<'_> {
    /// The next vertical event, or `None` at `deadline`. A member that
    /// reconnects has lost its per-job keys: it counts as gone.
    pub async fn next_vertical(
        &mut self,
        deadline: Deadline,
    ) -> Result<Option<VerticalEvent>, EngineError> {
        loop {
            let Some((from, event)) = self.next_event(deadline).await? else {
                return Ok(None);
            };
            match event {
                ToEngine::Vertical(message, sha256, bytes) => {
                    return Ok(Some(VerticalEvent::Message {
                        from,
                        message,
                        sha256,
                        bytes,
                    }));
                }
                ToEngine::Gone => return Ok(Some(VerticalEvent::Gone(from))),
                ToEngine::Answered if !self.accepted.contains(&from) => {
                    return Ok(Some(VerticalEvent::Gone(from)));
                }
                // A repeated offer's answer (a reconnect also counts below).
                ToEngine::Answered => {}
                ToEngine::Protocol(..) => {
                    let id = self.cohort[from as usize].clone();
                    self.reject("out_of_phase", &id);
                }
            }
        }
    }

    /// Sends `body` to party `member`; false when it has no session.
    pub async fn send_vertical(&self, member: u32, body: vertical_down::Body) -> bool {
        self.send(
            member,
            coordinator_message::Body::Vertical(proto::VerticalDown { body: Some(body) }),
        )
        .await
    }

    /// Appends a vertical job's record to the journal.
    pub fn journal(&mut self, entry: Entry) -> Result<(), EngineError> {
        Ok(self.journal.append(entry)?)
    }

    /// The coordinator's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.transport.metrics()
    }

    /// The phase timeout: how long a vertical step may make no progress.
    pub fn phase_timeout(&self) -> std::time::Duration {
        self.settings.phase_timeout()
    }
}
