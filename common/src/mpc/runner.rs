//! An in-process runner: the bank and the partner side as two threads, the
//! dealer behind a lock, every message recorded per role.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

use super::dealer::{Correlation, Dealer, Request};
use super::engine::{DealerLink, Opening, Party, PeerLink};
use super::error::MpcError;
use super::fit::{FitParams, Inputs, Output, Owner, Prepared};
use super::ring;

/// A peer link over in-process channels that records what it received.
pub struct ChannelPeer {
    tx: Sender<Opening>,
    rx: Receiver<Opening>,
    record: bool,
    /// Every opening received from the peer (when recording).
    pub received: Vec<Opening>,
    /// Ring elements sent to the peer.
    pub elements_sent: u64,
}

impl ChannelPeer {
    /// A link over the two channel ends.
    pub fn new(tx: Sender<Opening>, rx: Receiver<Opening>, record: bool) -> Self {
        Self {
            tx,
            rx,
            record,
            received: Vec::new(),
            elements_sent: 0,
        }
    }
}

impl LockedDealer {
    /// Party `party`'s link to the shared dealer.
    pub fn new(dealer: Arc<Mutex<Dealer<ChaCha20Rng>>>, party: usize, record: bool) -> Self {
        Self {
            dealer,
            party,
            record,
            received: Vec::new(),
        }
    }
}

impl PeerLink for ChannelPeer {
    fn exchange(&mut self, mine: Opening) -> Result<Opening, MpcError> {
        self.send(mine)?;
        self.receive()
    }
    fn send(&mut self, msg: Opening) -> Result<(), MpcError> {
        self.elements_sent += msg.values.len() as u64;
        self.tx.send(msg).map_err(|_| MpcError::LinkClosed("peer"))
    }
    fn receive(&mut self) -> Result<Opening, MpcError> {
        let msg = self.rx.recv().map_err(|_| MpcError::LinkClosed("peer"))?;
        if self.record {
            self.received.push(msg.clone());
        }
        Ok(msg)
    }
}

/// A dealer link to the shared in-process dealer.
pub struct LockedDealer {
    dealer: Arc<Mutex<Dealer<ChaCha20Rng>>>,
    party: usize,
    record: bool,
    /// Every correlation received (when recording).
    pub received: Vec<Correlation>,
}

impl DealerLink for LockedDealer {
    fn request(&mut self, req: Request, _len: usize) -> Result<Correlation, MpcError> {
        let corr = self
            .dealer
            .lock()
            .map_err(|_| MpcError::LinkClosed("dealer"))?
            .serve(self.party, req)?
            .expand();
        if self.record {
            self.received.push(corr.clone());
        }
        Ok(corr)
    }
}

/// The plain data of a vertical fit, as each institution holds it (used
/// only to build each party's own inputs; no party sees another's part).
pub struct JointData {
    /// The bank's standardised columns, row-major n × d_b (no intercept).
    pub bank_x: Vec<f64>,
    /// The bank's column count.
    pub bank_cols: usize,
    /// The labels.
    pub labels: Vec<bool>,
    /// Each partner's standardised columns (row-major n × d_k) and count.
    pub partners: Vec<(Vec<f64>, usize)>,
    /// The intercept the fit starts from.
    pub start: f64,
}

/// Everything a run produced, and what each role saw.
pub struct RunReport {
    /// The bank's output.
    pub bank: Output,
    /// The partner side's (partner 0's) output.
    pub partner: Output,
    /// Helper partners' coefficients `(partner, column, value)`.
    pub helpers: Vec<(usize, usize, f64)>,
    /// Openings the bank received from the partner side.
    pub bank_saw: Vec<Opening>,
    /// Openings the partner side received from the bank.
    pub partner_saw: Vec<Opening>,
    /// Correlations the partner side received from the dealer.
    pub partner_dealt: Vec<Correlation>,
    /// Requests the dealer saw (shapes only).
    pub dealer_saw: Vec<Request>,
    /// Ring elements sent bank → partner, partner → bank, dealer → each.
    pub elements: [u64; 4],
    /// Columns' owners.
    pub owners: Vec<Owner>,
}

fn encode_all(v: &[f64]) -> Result<Vec<u128>, MpcError> {
    v.iter()
        .map(|&x| ring::encode(x).ok_or(MpcError::OutOfRange("input column")))
        .collect()
}

/// Builds the two computing parties' input shares: the bank holds its
/// columns and labels, partner 0 its columns, helper partners split theirs
/// between both with their own randomness.
fn build_inputs(data: &JointData, seed: u64) -> Result<(Inputs, Inputs, Vec<Owner>), MpcError> {
    let n = data.labels.len();
    let mut owners = vec![Owner::Bank; 1 + data.bank_cols];
    for (k, (_, dk)) in data.partners.iter().enumerate() {
        owners.extend(std::iter::repeat_n(Owner::Partner(k), *dk));
    }
    let d = owners.len();
    let (mut x0, mut x1) = (vec![0u128; n * d], vec![0u128; n * d]);
    let bank = encode_all(&data.bank_x)?;
    let mut helper_rng = ChaCha20Rng::seed_from_u64(seed ^ 0x4845_4c50);
    for i in 0..n {
        x0[i * d] = ring::enc(1.0);
        for j in 0..data.bank_cols {
            x0[i * d + 1 + j] = bank[i * data.bank_cols + j];
        }
    }
    let mut col = 1 + data.bank_cols;
    for (k, (xk, dk)) in data.partners.iter().enumerate() {
        if xk.len() != n * dk {
            return Err(MpcError::Shape(format!("partner {k} columns")));
        }
        let enc = encode_all(xk)?;
        for i in 0..n {
            for j in 0..*dk {
                let v = enc[i * dk + j];
                if k == 0 {
                    x1[i * d + col + j] = v;
                } else {
                    let r = ring::random(&mut helper_rng);
                    x0[i * d + col + j] = r;
                    x1[i * d + col + j] = v.wrapping_sub(r);
                }
            }
        }
        col += dk;
    }
    let y0 = data
        .labels
        .iter()
        .map(|&l| ring::enc(if l { 1.0 } else { 0.0 }))
        .collect();
    let y1 = vec![0u128; n];
    let inputs = |x, y, intercept| Inputs { x, y, intercept };
    Ok((inputs(x0, y0, data.start), inputs(x1, y1, 0.0), owners))
}

/// Runs a whole fit among the bank, the partner side and the dealer.
/// `record` keeps every message (tests); benchmarks turn it off.
pub fn run_fit(
    data: &JointData,
    mut params: FitParams,
    seed: u64,
    record: bool,
) -> Result<RunReport, MpcError> {
    let (in0, in1, owners) = build_inputs(data, seed)?;
    params.owners = owners.clone();
    let dealer = Arc::new(Mutex::new(Dealer::new(ChaCha20Rng::seed_from_u64(seed))));
    let (tx01, rx01) = channel();
    let (tx10, rx10) = channel();
    let link = |party, tx, rx| {
        Party::new(
            party,
            ChannelPeer::new(tx, rx, record),
            LockedDealer::new(dealer.clone(), party, record),
        )
    };
    let (p0, p1) = (link(0, tx01, rx10), link(1, tx10, rx01));
    let run = |mut party: Party<ChannelPeer, LockedDealer>, inputs, params| {
        let out = Prepared::new(params, inputs)
            .and_then(|p| p.precondition(&mut party))
            .and_then(|p| p.run(&mut party))
            .and_then(|t| t.finish(&mut party));
        (out, party.into_links())
    };
    let params1 = params.clone();
    let handle = std::thread::spawn(move || run(p1, in1, params1));
    let (out0, (peer0, _dl0)) = run(p0, in0, params);
    let (out1, (peer1, dl1)) = handle.join().map_err(|_| MpcError::LinkClosed("thread"))?;
    let (bank, partner) = (out0?, out1?);
    let mut helpers = Vec::new();
    for (k, j, s0) in &bank.helper_shares {
        if let Some((_, _, s1)) = partner.helper_shares.iter().find(|(_, c, _)| c == j) {
            helpers.push((*k, *j, ring::decode(s0.wrapping_add(*s1))));
        }
    }
    let dealer = dealer.lock().map_err(|_| MpcError::LinkClosed("dealer"))?;
    Ok(RunReport {
        elements: [
            peer0.elements_sent,
            peer1.elements_sent,
            dealer.elements_sent[0],
            dealer.elements_sent[1],
        ],
        dealer_saw: dealer.seen.clone(),
        bank,
        partner,
        helpers,
        bank_saw: peer0.received,
        partner_saw: peer1.received,
        partner_dealt: dl1.received,
        owners,
    })
}
