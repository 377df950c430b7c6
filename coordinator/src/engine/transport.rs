//! What the engine needs from the participants' sessions, and nothing
//! more: who is connected, sending one message, the next session event
//! before a deadline, and the counters the engine reports. [`HubTransport`]
//! is the real one, over the gRPC sessions of a [`Hub`]; the engine's unit
//! tests use in-process participants instead.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fedseg_common::proto::CoordinatorMessage;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant as Deadline, timeout_at};

use crate::metrics::Metrics;
use crate::service::{Event, Hub, Traffic};

/// A boxed future a transport returns (the trait is used as `dyn`).
pub type Pending<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

/// What the next session event was.
#[derive(Debug)]
pub enum Received {
    /// A participant connected, sent something, or left.
    Event(Event),
    /// The deadline passed first.
    Deadline,
    /// The sessions' service stopped; no event will come again.
    Stopped,
}

/// The participants' sessions, as the round engine sees them.
pub trait Transport: Send {
    /// Identities with an open session.
    fn connected(&self) -> HashSet<String>;

    /// Sends `message` to `id`; false when it has no open session.
    fn send<'s>(&'s self, id: &'s str, message: CoordinatorMessage) -> Pending<'s, bool>;

    /// The next session event, or [`Received::Deadline`] at `deadline`.
    fn next<'s>(&'s mut self, deadline: Deadline) -> Pending<'s, Received>;

    /// Session traffic so far.
    fn traffic(&self) -> Traffic;

    /// The coordinator's metrics.
    fn metrics(&self) -> &Metrics;

    /// The TLS client certificate (DER) `id`'s session was opened with, when
    /// the transport knows it.
    fn session_certificate(&self, id: &str) -> Option<Vec<u8>> {
        let _ = id;
        None
    }

    /// Keeps `message` for `members`, to be sent on each one's next
    /// session (a job's end, for a member that was not connected when it
    /// was sent). Nothing by default.
    fn keep_for_reconnects(&self, members: &[String], message: CoordinatorMessage) {
        let _ = (members, message);
    }
}

/// The participants' gRPC sessions: a [`Hub`] and its event queue.
pub struct HubTransport<'a> {
    hub: Arc<Hub>,
    events: &'a mut UnboundedReceiver<Event>,
}

impl<'a> HubTransport<'a> {
    /// The sessions of `hub`, whose events arrive on `events`.
    pub fn new(hub: Arc<Hub>, events: &'a mut UnboundedReceiver<Event>) -> Self {
        Self { hub, events }
    }
}

impl Transport for HubTransport<'_> {
    fn connected(&self) -> HashSet<String> {
        self.hub.connected()
    }

    fn send<'s>(&'s self, id: &'s str, message: CoordinatorMessage) -> Pending<'s, bool> {
        Box::pin(self.hub.send(id, message))
    }

    fn next<'s>(&'s mut self, deadline: Deadline) -> Pending<'s, Received> {
        Box::pin(async move {
            match timeout_at(deadline, self.events.recv()).await {
                Err(_) => Received::Deadline,
                Ok(None) => Received::Stopped,
                Ok(Some(event)) => Received::Event(event),
            }
        })
    }

    fn traffic(&self) -> Traffic {
        self.hub.traffic()
    }

    fn metrics(&self) -> &Metrics {
        &self.hub.metrics
    }

    fn keep_for_reconnects(&self, members: &[String], message: CoordinatorMessage) {
        self.hub.keep_for_reconnects(members, message);
    }

    fn session_certificate(&self, id: &str) -> Option<Vec<u8>> {
        self.hub.session_certificate(id)
    }
}
