//! The dealer of correlated randomness (the coordinator's role).
//!
//! The dealer draws masks and hands each computing party an additive share
//! of them and of their products (Beaver triples, matrix triples). It never
//! receives a value of the data: a request names only shapes and which
//! earlier masks to multiply. A mask drawn once may be multiplied with many
//! fresh masks: this is how the data matrix is masked once per job while
//! each step brings a fresh vector mask (SecureML's matrix triple reuse).

use std::collections::{HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use zeroize::Zeroize;

use super::error::MpcError;
use super::ring;

/// Identifies a mask: the sequence number of the request that drew it.
pub type MaskId = u64;

/// The shape of a mask used as a matrix operand, possibly transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    /// The mask.
    pub id: MaskId,
    /// Rows and columns of the mask as stored.
    pub rows: usize,
    /// Columns of the mask as stored.
    pub cols: usize,
    /// Use the transpose.
    pub transposed: bool,
}

impl Operand {
    /// Rows and columns as used.
    pub fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
}

/// What a party asks the dealer for: shapes only, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A fresh uniformly random mask of `len` elements.
    Mask {
        /// Elements.
        len: usize,
    },
    /// The matrix product of two earlier masks.
    MatProduct {
        /// Left operand.
        left: Operand,
        /// Right operand.
        right: Operand,
    },
    /// The dealer may forget a mask no longer used (answered with nothing).
    Forget {
        /// The mask.
        id: MaskId,
    },
    /// The element-wise product of two earlier masks of equal length.
    Hadamard {
        /// Left mask.
        left: MaskId,
        /// Right mask.
        right: MaskId,
    },
    /// Each row of a `rows×cols` mask times the matching element of a
    /// vector mask of `rows` elements (`diag(c)·A`: weighting a masked
    /// design's rows by a fresh per-step vector, as the exact Hessian does).
    RowScale {
        /// The vector mask.
        vector: MaskId,
        /// The matrix mask (not transposed).
        matrix: Operand,
    },
}

/// One party's share of what the dealer drew for a request, as the engine
/// uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct Correlation {
    /// Sequence number of the request.
    pub seq: u64,
    /// The share (a uniformly random vector for party 1's view alone).
    pub share: Vec<u128>,
}

impl std::fmt::Debug for Correlation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlation")
            .field("seq", &self.seq)
            .field("len", &self.share.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Correlation {
    fn drop(&mut self) {
        self.share.zeroize();
    }
}

/// Bytes of a share seed.
pub const SEED_LEN: usize = 32;

/// How a party's share travels from the dealer: in full, or as a seed the
/// party expands itself ([`expand`]). Every mask is two seeds (one per
/// party; the dealer adds both expansions), every product a seed for party
/// 0 and the difference in full for party 1: the dealer's traffic is the
/// products' length once, not the masks' and products' twice.
#[derive(Clone, PartialEq, Eq)]
pub enum Dealt {
    /// The share's elements.
    Values(Vec<u128>),
    /// A seed of [`expand`] and the share's length.
    Seed([u8; SEED_LEN], usize),
}

/// What the dealer hands a party for one request.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Sequence number of the request.
    pub seq: u64,
    /// The share, in full or as a seed.
    pub dealt: Dealt,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, len) = match &self.dealt {
            Dealt::Values(v) => ("values", v.len()),
            Dealt::Seed(_, len) => ("seed", *len),
        };
        f.debug_struct("Delivery")
            .field("seq", &self.seq)
            .field(kind, &len)
            .finish_non_exhaustive()
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        match &mut self.dealt {
            Dealt::Values(v) => v.zeroize(),
            Dealt::Seed(seed, _) => seed.zeroize(),
        }
    }
}

impl Delivery {
    /// The share as the engine uses it.
    pub fn expand(mut self) -> Correlation {
        let share = match &mut self.dealt {
            Dealt::Values(v) => std::mem::take(v),
            Dealt::Seed(seed, len) => expand(seed, *len),
        };
        Correlation {
            seq: self.seq,
            share,
        }
    }

    /// Elements of the share it expands to.
    pub fn len(&self) -> usize {
        match &self.dealt {
            Dealt::Values(v) => v.len(),
            Dealt::Seed(_, len) => *len,
        }
    }

    /// Whether the share is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ring elements it costs on the wire (a seed counts as two).
    pub fn elements(&self) -> u64 {
        match &self.dealt {
            Dealt::Values(v) => v.len() as u64,
            Dealt::Seed(..) => (SEED_LEN / 16) as u64,
        }
    }
}

/// `len` pseudorandom ring elements from a share seed (ChaCha20).
pub fn expand(seed: &[u8; SEED_LEN], len: usize) -> Vec<u128> {
    let mut rng = rand::rngs::ChaCha20Rng::from_seed(*seed);
    ring::random_vec(&mut rng, len)
}

/// The dealer: answers both parties' requests, which must come in the same
/// order; the second party's share of a request waits in its queue.
pub struct Dealer<R: Rng> {
    rng: R,
    masks: HashMap<MaskId, Vec<u128>>,
    queued: [VecDeque<(Request, Delivery)>; 2],
    next: [u64; 2],
    /// Every request served, in order (what the dealer saw).
    pub seen: Vec<Request>,
    /// Ring elements sent to each party.
    pub elements_sent: [u64; 2],
}

impl<R: Rng> std::fmt::Debug for Dealer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dealer")
            .field("requests", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl<R: Rng> Dealer<R> {
    /// A dealer drawing from `rng` (a CSPRNG).
    pub fn new(rng: R) -> Self {
        Self {
            rng,
            masks: HashMap::new(),
            queued: [VecDeque::new(), VecDeque::new()],
            next: [0, 0],
            seen: Vec::new(),
            elements_sent: [0, 0],
        }
    }

    /// Serves `party`'s next request.
    pub fn serve(&mut self, party: usize, req: Request) -> Result<Delivery, MpcError> {
        let seq = self.next[party];
        self.next[party] += 1;
        let out = if let Some((queued_req, delivery)) = self.queued[party].pop_front() {
            if queued_req != req || delivery.seq != seq {
                return Err(MpcError::OutOfOrder(format!(
                    "party {party} request {seq} does not match its peer's"
                )));
            }
            delivery
        } else {
            let (s0, s1) = self.draw(seq, req)?;
            self.seen.push(req);
            let (mine, other) = if party == 0 { (s0, s1) } else { (s1, s0) };
            self.queued[1 - party].push_back((req, Delivery { seq, dealt: other }));
            Delivery { seq, dealt: mine }
        };
        self.elements_sent[party] += out.elements();
        Ok(out)
    }

    fn seed(&mut self) -> [u8; SEED_LEN] {
        let mut seed = [0u8; SEED_LEN];
        self.rng.fill_bytes(&mut seed);
        seed
    }

    fn mask(&self, id: MaskId) -> Result<&Vec<u128>, MpcError> {
        self.masks
            .get(&id)
            .ok_or_else(|| MpcError::OutOfOrder(format!("unknown mask {id}")))
    }

    /// Both parties' shares of what `req` asks for: a fresh mask is two
    /// seeds (kept as the sum of their expansions), a product a seed for
    /// party 0 and the rest in full for party 1.
    fn draw(&mut self, seq: u64, req: Request) -> Result<(Dealt, Dealt), MpcError> {
        let value = match req {
            Request::Mask { len } => {
                let (s0, s1) = (self.seed(), self.seed());
                let (mut e0, mut e1) = (expand(&s0, len), expand(&s1, len));
                let mask = ring::add(&e0, &e1);
                e0.zeroize();
                e1.zeroize();
                self.masks.insert(seq, mask);
                return Ok((Dealt::Seed(s0, len), Dealt::Seed(s1, len)));
            }
            Request::Forget { id } => {
                if let Some(mut m) = self.masks.remove(&id) {
                    m.zeroize();
                }
                return Ok((Dealt::Values(Vec::new()), Dealt::Values(Vec::new())));
            }
            Request::MatProduct { left, right } => {
                let (m, k) = left.shape();
                let (k2, n) = right.shape();
                if k != k2 {
                    return Err(MpcError::Shape(format!("{m}x{k} times {k2}x{n}")));
                }
                let a = oriented(self.mask(left.id)?, left);
                let b = oriented(self.mask(right.id)?, right);
                ring::matmul(&a, &b, m, k, n)
            }
            Request::Hadamard { left, right } => {
                let (a, b) = (self.mask(left)?, self.mask(right)?);
                if a.len() != b.len() {
                    return Err(MpcError::Shape(format!("{} vs {}", a.len(), b.len())));
                }
                a.iter().zip(b).map(|(x, y)| x.wrapping_mul(*y)).collect()
            }
            Request::RowScale { vector, matrix } => {
                let (c, a) = (self.mask(vector)?, self.mask(matrix.id)?);
                row_scaled(c, a, matrix)?
            }
        };
        let s0 = self.seed();
        let mut value = value;
        let mut e0 = expand(&s0, value.len());
        let rest = ring::sub(&value, &e0);
        e0.zeroize();
        let len = value.len();
        value.zeroize();
        Ok((Dealt::Seed(s0, len), Dealt::Values(rest)))
    }
}

/// `diag(c)·A` for a vector `c` of `A`'s row count.
pub(crate) fn row_scaled(c: &[u128], a: &[u128], matrix: Operand) -> Result<Vec<u128>, MpcError> {
    let (rows, cols) = (matrix.rows, matrix.cols);
    if matrix.transposed || c.len() != rows || a.len() != rows * cols || cols == 0 {
        return Err(MpcError::Shape(format!(
            "a vector of {} scaling the rows of {rows}x{cols}",
            c.len()
        )));
    }
    Ok(a.chunks_exact(cols)
        .zip(c)
        .flat_map(|(row, &ci)| row.iter().map(move |v| v.wrapping_mul(ci)))
        .collect())
}

/// A mask's elements in the orientation an operand asks for.
pub(crate) fn oriented(v: &[u128], op: Operand) -> Vec<u128> {
    if op.transposed {
        ring::transpose(v, op.rows, op.cols)
    } else {
        v.to_vec()
    }
}

impl<R: Rng> Drop for Dealer<R> {
    fn drop(&mut self) {
        for m in self.masks.values_mut() {
            m.zeroize();
        }
    }
}
