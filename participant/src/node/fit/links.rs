//! The worker's links: what arrived from the peer, the helpers and the
//! dealer, filed as the fit asks for it, and the two links the fit program
//! talks through (sealed openings to the peer, requests to the dealer).

use super::*;

/// What arrived for the worker, sorted as it is asked for.
pub(super) struct Inbox {
    pub(super) rx: Receiver<Inbound>,
    /// Sealed links by party: the peer and any helper partners.
    pub(super) links: BTreeMap<u32, SealedLink>,
    /// Openings received, by sender.
    pub(super) openings: BTreeMap<u32, VecDeque<Opening>>,
    pub(super) opening_chunks: BTreeMap<u32, Chunks>,
    pub(super) correlations: BTreeMap<u64, Delivery>,
    pub(super) correlation_chunks: Chunks,
    /// The step label of what this party sends now (`Party::set_step`).
    pub(super) step: u32,
}

impl Inbox {
    /// Waits for one message and files it.
    pub(super) fn pump(&mut self) -> Result<(), MpcError> {
        let message = self.rx.recv_timeout(WAIT).map_err(|e| match e {
            RecvTimeoutError::Timeout => MpcError::LinkClosed("no message in time"),
            RecvTimeoutError::Disconnected => MpcError::LinkClosed("the job was stopped"),
        })?;
        match message {
            Inbound::Opening(chunk) => {
                let values = self.link(chunk.from)?.open(&chunk)?;
                let chunks = self.opening_chunks.entry(chunk.from).or_default();
                if let Some(values) = chunks.add(chunk.seq, chunk.index, chunk.total, values)? {
                    self.openings
                        .entry(chunk.from)
                        .or_default()
                        .push_back(Opening {
                            seq: chunk.seq,
                            values,
                        });
                }
            }
            Inbound::Correlation(chunk) => {
                if let Some(corr) = self.correlation_chunks.add_correlation(chunk)? {
                    self.correlations.insert(corr.seq, corr);
                }
            }
        }
        Ok(())
    }

    /// The sealed link with party `p`.
    pub(super) fn link(&self, p: u32) -> Result<&SealedLink, MpcError> {
        self.links
            .get(&p)
            .ok_or_else(|| MpcError::OutOfOrder(format!("an opening from party {p}")))
    }

    /// `opening` to party `p`, sealed in chunks labelled with the step.
    pub(super) fn sealed(
        &self,
        p: u32,
        opening: &Opening,
    ) -> Result<Vec<proto::MpcOpening>, MpcError> {
        let mut chunks = self.link(p)?.seal(opening);
        for chunk in &mut chunks {
            chunk.step = self.step;
        }
        Ok(chunks)
    }

    /// The next opening from party `p`, waiting for it.
    pub(super) fn next_from(&mut self, p: u32) -> Result<Opening, MpcError> {
        loop {
            if let Some(opening) = self.openings.get_mut(&p).and_then(VecDeque::pop_front) {
                return Ok(opening);
            }
            self.pump()?;
        }
    }
}

pub(super) struct NetPeer<'a> {
    pub(super) inbox: Rc<RefCell<Inbox>>,
    pub(super) peer: u32,
    pub(super) send: &'a dyn Fn(vertical_up::Body) -> Result<(), MpcError>,
}

impl PeerLink for NetPeer<'_> {
    fn exchange(&mut self, mine: Opening) -> Result<Opening, MpcError> {
        self.send(mine)?;
        self.receive()
    }

    fn send(&mut self, msg: Opening) -> Result<(), MpcError> {
        let inbox = self.inbox.borrow();
        let chunks = inbox.sealed(self.peer, &msg)?;
        drop(inbox);
        for chunk in chunks {
            (self.send)(vertical_up::Body::MpcOpening(chunk))?;
        }
        Ok(())
    }

    fn receive(&mut self) -> Result<Opening, MpcError> {
        self.inbox.borrow_mut().next_from(self.peer)
    }

    fn set_step(&mut self, step: u32) {
        self.inbox.borrow_mut().step = step;
    }
}

pub(super) struct NetDealer<'a> {
    pub(super) inbox: Rc<RefCell<Inbox>>,
    pub(super) send: &'a dyn Fn(vertical_up::Body) -> Result<(), MpcError>,
    pub(super) next: u64,
}

impl DealerLink for NetDealer<'_> {
    fn request(&mut self, req: Request, len: usize) -> Result<Correlation, MpcError> {
        self.notify(req)?;
        let seq = self.next - 1;
        let mut inbox = self.inbox.borrow_mut();
        loop {
            if let Some(delivery) = inbox.correlations.remove(&seq) {
                // checked before a seed is expanded: the dealer cannot make
                // this party allocate more than it asked for
                if delivery.len() != len {
                    return Err(MpcError::Shape(format!(
                        "the dealer's share of {} elements for {len}",
                        delivery.len()
                    )));
                }
                return Ok(delivery.expand());
            }
            inbox.pump()?;
        }
    }

    /// Sends the request; the dealer answers every kind but `Forget`.
    fn notify(&mut self, req: Request) -> Result<(), MpcError> {
        let mut request = wire::request_to_wire(req);
        request.step = self.inbox.borrow().step;
        (self.send)(vertical_up::Body::MpcRequest(request))?;
        self.next += 1;
        Ok(())
    }
}
