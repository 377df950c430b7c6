//! One computing party's arithmetic on additive shares: masked openings
//! and Beaver products. The party talks to its peer through a [`PeerLink`]
//! and to the dealer through a [`DealerLink`]; both are plain traits so the
//! networking layer (or the in-process runner) carries the messages.

use zeroize::Zeroize;

use super::dealer::{Correlation, MaskId, Operand, Request};
use super::error::MpcError;
use super::ring;

/// The step label of the end of a fit (blocks and scores revealed).
pub const STEP_FINISH: u32 = u32::MAX;

/// What a computing party sends its peer in one opening: its share of a
/// masked value `x - a` (uniformly random to the peer, since `a` is).
#[derive(Clone, PartialEq, Eq)]
pub struct Opening {
    /// Domain tag and sequence number of the opening.
    pub seq: u64,
    /// The party's share of the masked value.
    pub values: Vec<u128>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("seq", &self.seq)
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// The channel to the other computing party (sealed end to end: the relay
/// must not see openings, since the dealer knows the masks).
pub trait PeerLink {
    /// Sends `mine` and returns the peer's opening of the same sequence.
    fn exchange(&mut self, mine: Opening) -> Result<Opening, MpcError>;
    /// Sends to the peer without waiting for an answer.
    fn send(&mut self, msg: Opening) -> Result<(), MpcError>;
    /// Receives the peer's next one-way message.
    fn receive(&mut self) -> Result<Opening, MpcError>;
    /// Labels what follows as part of `step` (see [`Party::set_step`]).
    fn set_step(&mut self, _step: u32) {}
}

/// The channel to the dealer.
pub trait DealerLink {
    /// Asks for this party's share of the next correlation, of `len`
    /// elements (a link refuses another length before expanding a seed).
    fn request(&mut self, req: Request, len: usize) -> Result<Correlation, MpcError>;
    /// Tells the dealer what needs no answer (a mask it may forget),
    /// without waiting: on the network this saves a round trip.
    fn notify(&mut self, req: Request) -> Result<(), MpcError> {
        self.request(req, 0).map(|_| ())
    }
    /// Labels what follows as part of `step` (see [`Party::set_step`]).
    fn set_step(&mut self, _step: u32) {}
}

/// A value opened under a mask: the public masked value and this party's
/// share of the mask, reusable against fresh masks of the other operand.
pub struct Masked {
    /// The dealer's mask.
    pub id: MaskId,
    /// Rows and columns.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The opened `x - a` (public to both computing parties).
    pub open: Vec<u128>,
    /// This party's share of `a`.
    pub mask: Vec<u128>,
}

impl Drop for Masked {
    fn drop(&mut self) {
        self.mask.zeroize();
    }
}

impl Masked {
    fn operand(&self, transposed: bool) -> Operand {
        Operand {
            id: self.id,
            rows: self.rows,
            cols: self.cols,
            transposed,
        }
    }
}

/// A computing party: 0 (the bank) or 1 (the partner side).
pub struct Party<P: PeerLink, D: DealerLink> {
    /// 0 or 1.
    pub index: usize,
    peer: P,
    dealer: D,
    seq: u64,
    mask_seq: u64,
}

impl<P: PeerLink, D: DealerLink> Party<P, D> {
    /// Party `index` over the given links.
    pub fn new(index: usize, peer: P, dealer: D) -> Self {
        Self {
            index,
            peer,
            dealer,
            seq: 0,
            mask_seq: 0,
        }
    }

    /// Labels the messages that follow as part of `step` (the wire's
    /// `step`: 0 the set-up, k the k-th Newton step, [`STEP_FINISH`] the
    /// end), so the relay can account for them per step.
    pub fn set_step(&mut self, step: u32) {
        self.peer.set_step(step);
        self.dealer.set_step(step);
    }

    /// The links back (at the end of a run).
    pub fn into_links(self) -> (P, D) {
        (self.peer, self.dealer)
    }

    fn request(&mut self, req: Request, len: usize) -> Result<(u64, Vec<u128>), MpcError> {
        let seq = self.mask_seq;
        self.mask_seq += 1;
        let mut corr = self.dealer.request(req, len)?;
        if corr.seq != seq {
            return Err(MpcError::OutOfOrder(format!(
                "dealer answered {} for {seq}",
                corr.seq
            )));
        }
        if corr.share.len() != len {
            return Err(MpcError::Shape(format!(
                "the dealer's share of {} elements for {len}",
                corr.share.len()
            )));
        }
        Ok((seq, std::mem::take(&mut corr.share)))
    }

    /// Opens `x` (shared) to both parties. Only for values that are masked
    /// or meant to be public.
    pub fn open(&mut self, x: &[u128]) -> Result<Vec<u128>, MpcError> {
        let seq = self.seq;
        self.seq += 1;
        let theirs = self.peer.exchange(Opening {
            seq,
            values: x.to_vec(),
        })?;
        if theirs.seq != seq || theirs.values.len() != x.len() {
            return Err(MpcError::OutOfOrder(format!("opening {seq}")));
        }
        Ok(ring::add(x, &theirs.values))
    }

    /// Reveals `x` to the peer only (it learns the value, this party does not).
    pub fn reveal_to_peer(&mut self, x: &[u128]) -> Result<(), MpcError> {
        let seq = self.seq;
        self.seq += 1;
        self.peer.send(Opening {
            seq,
            values: x.to_vec(),
        })
    }

    /// Receives a value the peer reveals to this party.
    pub fn reveal_from_peer(&mut self, mine: &[u128]) -> Result<Vec<u128>, MpcError> {
        let seq = self.seq;
        self.seq += 1;
        let theirs = self.peer.receive()?;
        if theirs.seq != seq || theirs.values.len() != mine.len() {
            return Err(MpcError::OutOfOrder(format!("reveal {seq}")));
        }
        Ok(ring::add(mine, &theirs.values))
    }

    /// Masks a shared `rows×cols` value with a fresh dealer mask and opens it.
    pub fn mask(&mut self, x: &[u128], rows: usize, cols: usize) -> Result<Masked, MpcError> {
        if x.len() != rows * cols {
            return Err(MpcError::Shape(format!("{} is not {rows}x{cols}", x.len())));
        }
        let (id, mask) = self.request(Request::Mask { len: x.len() }, x.len())?;
        let open = self.open(&ring::sub(x, &mask))?;
        Ok(Masked {
            id,
            rows,
            cols,
            open,
            mask,
        })
    }

    /// Ends a mask's use: the dealer may drop it.
    pub fn forget(&mut self, m: Masked) -> Result<(), MpcError> {
        self.mask_seq += 1;
        self.dealer.notify(Request::Forget { id: m.id })
    }

    /// Shares of `X·Y` (operands optionally transposed), not truncated:
    /// `EF + E·B + A·F + AB` with `EF` added by party 0 only.
    pub fn matmul(
        &mut self,
        x: &Masked,
        tx: bool,
        y: &Masked,
        ty: bool,
    ) -> Result<Vec<u128>, MpcError> {
        let (lx, ly) = (x.operand(tx), y.operand(ty));
        let ((m, k), (k2, n)) = (lx.shape(), ly.shape());
        if k != k2 {
            return Err(MpcError::Shape(format!("{m}x{k} times {k2}x{n}")));
        }
        let (_, c) = self.request(
            Request::MatProduct {
                left: lx,
                right: ly,
            },
            m * n,
        )?;
        let e = super::dealer::oriented(&x.open, lx);
        let a = super::dealer::oriented(&x.mask, lx);
        let f = super::dealer::oriented(&y.open, ly);
        let b = super::dealer::oriented(&y.mask, ly);
        let mut out = ring::add(
            &ring::matmul(&e, &b, m, k, n),
            &ring::matmul(&a, &f, m, k, n),
        );
        out = ring::add(&out, &c);
        if self.index == 0 {
            out = ring::add(&out, &ring::matmul(&e, &f, m, k, n));
        }
        Ok(out)
    }

    /// Shares of the element-wise product `x ∘ y`, not truncated.
    pub fn hadamard(&mut self, x: &Masked, y: &Masked) -> Result<Vec<u128>, MpcError> {
        if x.open.len() != y.open.len() {
            return Err(MpcError::Shape(format!(
                "{} vs {}",
                x.open.len(),
                y.open.len()
            )));
        }
        let (_, c) = self.request(
            Request::Hadamard {
                left: x.id,
                right: y.id,
            },
            x.open.len(),
        )?;
        let first = self.index == 0;
        Ok((0..c.len())
            .map(|i| {
                let (e, a, f, b) = (x.open[i], x.mask[i], y.open[i], y.mask[i]);
                let mut v = e
                    .wrapping_mul(b)
                    .wrapping_add(a.wrapping_mul(f))
                    .wrapping_add(c[i]);
                if first {
                    v = v.wrapping_add(e.wrapping_mul(f));
                }
                v
            })
            .collect())
    }

    /// Shares of `diag(v)·X` (each row of the `n×d` value `x` times the
    /// matching element of the `n`-vector `v`), not truncated: as
    /// [`Self::hadamard`] with `v` broadcast along the rows, for the price
    /// of opening `v` alone.
    pub fn row_scale(&mut self, v: &Masked, x: &Masked) -> Result<Vec<u128>, MpcError> {
        let (n, d) = (x.rows, x.cols);
        let (_, c) = self.request(
            Request::RowScale {
                vector: v.id,
                matrix: x.operand(false),
            },
            n * d,
        )?;
        if v.open.len() != n || x.open.len() != n * d {
            return Err(MpcError::Shape(format!(
                "a vector of {} scaling the rows of {n}x{d}",
                v.open.len()
            )));
        }
        let first = self.index == 0;
        let mut out = c;
        let rows = out
            .chunks_exact_mut(d)
            .zip(x.open.chunks_exact(d).zip(x.mask.chunks_exact(d)));
        for ((row, (e_row, a_row)), (&f, &ci)) in rows.zip(v.open.iter().zip(&v.mask)) {
            for ((o, &e), &a) in row.iter_mut().zip(e_row).zip(a_row) {
                let mut t = f.wrapping_mul(a).wrapping_add(ci.wrapping_mul(e));
                if first {
                    t = t.wrapping_add(f.wrapping_mul(e));
                }
                *o = o.wrapping_add(t);
            }
        }
        Ok(out)
    }

    /// `x ∘ y` truncated back to the fixed-point scale.
    pub fn mul(&mut self, x: &Masked, y: &Masked) -> Result<Vec<u128>, MpcError> {
        let mut out = self.hadamard(x, y)?;
        ring::truncate_all(self.index, &mut out, ring::FRAC);
        Ok(out)
    }

    /// Adds a public constant to a shared vector (party 0 adds it).
    pub fn add_public(&self, x: &mut [u128], c: u128) {
        if self.index == 0 {
            for v in x {
                *v = v.wrapping_add(c);
            }
        }
    }

    /// Multiplies a shared vector by a public real and truncates, with
    /// `extra` more fractional bits on the constant for precision.
    pub fn scale(&self, x: &mut [u128], c: f64, extra: u32) {
        let k = ((c * (ring::SCALE * (1u64 << extra) as f64)).round() as i128) as u128;
        for v in x.iter_mut() {
            *v = ring::truncate_share(self.index, v.wrapping_mul(k), ring::FRAC + extra);
        }
    }
}
