//! The fit, as states consumed by value: [`Prepared`] → [`Preconditioned`]
//! (data masked once, Böhning's Hessian bound inverted on shares) → one
//! [`Preconditioned::step`] per Newton step → [`Trained`] → [`Trained::finish`]
//! (each party's coefficient block, the bank's joint scores).

use zeroize::Zeroize;

use super::engine::{DealerLink, Masked, Party, PeerLink};
use super::error::MpcError;
use super::ring;
use super::sigmoid;

/// Inverse iterations (Newton–Schulz) for the Hessian bound: enough for a
/// condition number up to 3e5.
pub const INVERSE_ITERATIONS: u32 = 24;

/// Inverse iterations for the exact Hessian, whose weights `p(1 − p)` fall
/// far below the bound's 1/4 for a predictive model: a condition number up
/// to about 7e7.
pub const EXACT_INVERSE_ITERATIONS: u32 = 32;

/// Largest root mean square change of the customers' linear predictor an
/// exact step may make: a longer step is shortened to it.
pub const STEP_RMS: f64 = 4.0;

/// Who owns a column of the joint design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The label holder (column 0, the intercept, is always the bank's).
    Bank,
    /// Feature partner `k` (0 is the partner side's computing party).
    Partner(usize),
}

/// The curvature a Newton step divides the gradient by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curvature {
    /// Böhning's bound `XᵀX/(4n)`, inverted once per job: cheap steps that
    /// converge linearly (tens of steps for a predictive model).
    Bound,
    /// The exact Hessian `Xᵀ diag(p(1 − p)) X / n`, computed and inverted on
    /// shares every step: one vector and one n×d matrix more opened per
    /// step, and Newton's quadratic convergence (a handful of steps). A
    /// long step is shortened to [`STEP_RMS`]; the step after an exact one
    /// whose decrement grew takes the bound instead, which never overshoots.
    Exact,
}

/// Public parameters of a fit, identical at both computing parties.
#[derive(Debug, Clone, PartialEq)]
pub struct FitParams {
    /// Owner of each column; column 0 is the intercept (not penalised).
    pub owners: Vec<Owner>,
    /// Whether each row is in the holdout (each party computes it itself).
    pub holdout: Vec<bool>,
    /// The L2 weight of the objective (design.md).
    pub l2: f64,
    /// Stop when the per-customer Newton decrement `gᵀ H⁻¹ g` is below this.
    pub tolerance: f64,
    /// Most Newton steps.
    pub max_steps: u32,
    /// Heavy-ball momentum μ in [0, 1): each step adds μ times the previous
    /// step. Böhning's bound makes the fixed-Hessian step slow where
    /// p(1 − p) is far below 1/4 (a predictive model); momentum, a local
    /// operation on shares, shortens that (0 is plain fixed-Hessian Newton).
    pub momentum: f64,
    /// Which curvature the steps use.
    pub curvature: Curvature,
}

/// One computing party's inputs: its shares of the joint design (row-major
/// n × d, rows in the intersection's order) and of the labels.
pub struct Inputs {
    /// Shares of the design, intercept column included.
    pub x: Vec<u128>,
    /// Shares of the labels (0/1 in fixed point).
    pub y: Vec<u128>,
    /// This party's share of the starting intercept (the bank may start
    /// from the logit of its training rows' conversion rate, which it
    /// knows: the fit then needs fewer steps; 0 otherwise).
    pub intercept: f64,
}

impl Drop for Inputs {
    fn drop(&mut self) {
        self.x.zeroize();
        self.y.zeroize();
    }
}

impl Inputs {
    /// A computing party's inputs from its own data alone: `own` is its
    /// columns (row-major, `n` rows in the intersection's order, `owner`'s
    /// columns of `owners` in order, without the intercept); the bank also
    /// brings the intercept and the labels. The peer's columns are this
    /// party's zero shares of them.
    pub fn own(
        owners: &[Owner],
        owner: Owner,
        n: usize,
        own: &[f64],
        labels: Option<&[bool]>,
    ) -> Result<Self, MpcError> {
        let d = owners.len();
        let mine: Vec<usize> = (0..d)
            .filter(|&j| owners[j] == owner && !(owner == Owner::Bank && j == 0))
            .collect();
        let width = mine.len();
        if own.len() != n * width || labels.is_some_and(|l| l.len() != n) {
            return Err(MpcError::Shape(format!(
                "{} values for {n} rows of {width} columns",
                own.len()
            )));
        }
        let mut x = vec![0u128; n * d];
        for i in 0..n {
            if owner == Owner::Bank {
                x[i * d] = ring::enc(1.0);
            }
            for (k, &j) in mine.iter().enumerate() {
                x[i * d + j] =
                    ring::encode(own[i * width + k]).ok_or(MpcError::OutOfRange("input column"))?;
            }
        }
        let y = match labels {
            Some(l) => l
                .iter()
                .map(|&v| ring::enc(f64::from(u8::from(v))))
                .collect(),
            None => vec![0; n],
        };
        Ok(Self {
            x,
            y,
            intercept: 0.0,
        })
    }
}

/// Validated inputs, split into training and holdout rows.
pub struct Prepared {
    params: FitParams,
    intercept: u128,
    train_x: Vec<u128>,
    hold_x: Vec<u128>,
    train_y: Vec<u128>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.train_x.zeroize();
        self.hold_x.zeroize();
        self.train_y.zeroize();
    }
}

impl Prepared {
    /// Checks shapes and splits rows by the holdout flags.
    pub fn new(params: FitParams, inputs: Inputs) -> Result<Self, MpcError> {
        let (n, d) = (params.holdout.len(), params.owners.len());
        if d < 1 || params.owners[0] != Owner::Bank {
            return Err(MpcError::InvalidInput(
                "column 0 must be the bank's intercept".into(),
            ));
        }
        if inputs.x.len() != n * d || inputs.y.len() != n {
            return Err(MpcError::Shape(format!("inputs are not {n}x{d} and {n}")));
        }
        if !params.l2.is_finite() || params.l2 < 0.0 || params.max_steps == 0 {
            return Err(MpcError::InvalidInput("l2 >= 0 and max_steps >= 1".into()));
        }
        if !(0.0..1.0).contains(&params.momentum) {
            return Err(MpcError::InvalidInput("momentum in [0, 1)".into()));
        }
        let (mut train_x, mut hold_x, mut train_y) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &hold) in params.holdout.iter().enumerate() {
            let row = &inputs.x[i * d..(i + 1) * d];
            if hold {
                hold_x.extend_from_slice(row);
            } else {
                train_x.extend_from_slice(row);
                train_y.push(inputs.y[i]);
            }
        }
        if train_y.len() < 2 * d {
            return Err(MpcError::InvalidInput("too few training rows".into()));
        }
        let intercept = ring::encode(inputs.intercept).ok_or(MpcError::OutOfRange("intercept"))?;
        Ok(Self {
            params,
            intercept,
            train_x,
            hold_x,
            train_y,
        })
    }

    fn dims(&self) -> (usize, usize, usize) {
        let d = self.params.owners.len();
        (self.train_y.len(), self.hold_x.len() / d, d)
    }

    /// Masks the design once and inverts Böhning's bound
    /// `H = XᵀX / (4n) + (l2/n)·P` on shares by Newton–Schulz iteration
    /// `Z ← Z (2I − H Z)` from the public `Z0 = I / trace bound`.
    pub fn precondition<P: PeerLink, D: DealerLink>(
        self,
        party: &mut Party<P, D>,
    ) -> Result<Preconditioned, MpcError> {
        let (n, nh, d) = self.dims();
        let mx = party.mask(&self.train_x, n, d)?;
        let mh = if nh > 0 {
            Some(party.mask(&self.hold_x, nh, d)?)
        } else {
            None
        };
        let mut h = party.matmul(&mx, true, &mx, false)?;
        ring::truncate_all(party.index, &mut h, ring::FRAC);
        party.scale(&mut h, 0.25 / n as f64, 24);
        let (mz, mhb) = invert(party, h, d, self.params.l2 / n as f64, INVERSE_ITERATIONS)?;
        Ok(Preconditioned {
            params: self.params.clone(),
            n,
            d,
            mx,
            mh,
            mz,
            mhb,
            fallback: false,
            last_exact: None,
            last_bound: None,
            moves: Vec::new(),
            y: self.train_y.clone(),
            beta: std::iter::once(self.intercept)
                .chain(std::iter::repeat_n(0, d - 1))
                .collect(),
            velocity: vec![0; d],
            steps: 0,
            decrements: Vec::new(),
        })
    }
}

/// Adds the ridge `l2/n` to the penalised diagonal of a shared curvature
/// `h` (d×d) and inverts it on shares by Newton–Schulz iteration
/// `Z ← Z (2I − H Z)` from the public `Z0 = (2/τ)I − H/τ²` (one step from
/// `I/τ`), τ a public bound on the trace: standardised columns and the
/// intercept have mean square 1 and the weights are at most 1/4. Each
/// iteration squares the error `I − HZ`, so `iterations` covers a condition
/// number up to about `2^(iterations − 6)`. Returns the inverse and the
/// curvature itself, both masked.
fn invert<P: PeerLink, D: DealerLink>(
    party: &mut Party<P, D>,
    mut h: Vec<u128>,
    d: usize,
    ridge: f64,
    iterations: u32,
) -> Result<(Masked, Masked), MpcError> {
    if party.index == 0 {
        for j in 1..d {
            h[j * d + j] = h[j * d + j].wrapping_add(ring::enc(ridge));
        }
    }
    let tau = 1.05 * (d as f64 / 4.0 + ridge * d as f64);
    let mut z = h.clone();
    party.scale(&mut z, -1.0 / (tau * tau), 16);
    if party.index == 0 {
        for j in 0..d {
            z[j * d + j] = z[j * d + j].wrapping_add(ring::enc(2.0 / tau));
        }
    }
    let mhh = party.mask(&h, d, d)?;
    for _ in 1..iterations {
        let mz = party.mask(&z, d, d)?;
        let mut t = party.matmul(&mhh, false, &mz, false)?;
        ring::truncate_all(party.index, &mut t, ring::FRAC);
        let mut w: Vec<u128> = t.iter().map(|v| v.wrapping_neg()).collect();
        if party.index == 0 {
            for j in 0..d {
                w[j * d + j] = w[j * d + j].wrapping_add(ring::enc(2.0));
            }
        }
        let mw = party.mask(&w, d, d)?;
        z = party.matmul(&mz, false, &mw, false)?;
        ring::truncate_all(party.index, &mut z, ring::FRAC);
        party.forget(mz)?;
        party.forget(mw)?;
    }
    let mz = party.mask(&z, d, d)?;
    z.zeroize();
    h.zeroize();
    Ok((mz, mhh))
}

/// The masked design and inverse bound, and the current coefficient shares.
pub struct Preconditioned {
    params: FitParams,
    n: usize,
    d: usize,
    mx: Masked,
    mh: Option<Masked>,
    mz: Masked,
    /// Böhning's bound itself, masked: `ΔᵀH_bΔ` is a quarter of the mean
    /// squared change of the linear predictor a step `Δ` makes.
    mhb: Masked,
    /// Whether the next step takes the bound: the last exact step's
    /// decrement grew (public to both parties).
    fallback: bool,
    /// The last decrement of each kind of step: a bound step's decrement is
    /// never larger than an exact one's for the same gradient, so each is
    /// compared with its own kind.
    last_exact: Option<f64>,
    last_bound: Option<f64>,
    /// The root mean square change of the linear predictor each step's
    /// full length would make (opened with the decrement).
    moves: Vec<f64>,
    y: Vec<u128>,
    beta: Vec<u128>,
    /// Shares of the last step taken (for momentum).
    velocity: Vec<u128>,
    steps: u32,
    decrements: Vec<f64>,
}

impl Drop for Preconditioned {
    fn drop(&mut self) {
        self.y.zeroize();
        self.beta.zeroize();
        self.velocity.zeroize();
    }
}

/// What a step leads to.
pub enum Step {
    /// Not converged yet.
    Continue(Preconditioned),
    /// Converged, or out of steps.
    Done(Trained),
}

impl Preconditioned {
    /// One Newton step: `η = Xβ`, `r = σ(η) − y`,
    /// `g = Xᵀr / n + (l2/n)·Pβ`, `Δ = Z g` with `Z` the inverse curvature,
    /// `β ← β − Δ`; two public scalars per step are opened: the decrement
    /// `gᵀ Z g` and `ΔᵀH_bΔ` (the step's mean squared change of the linear
    /// predictor, a quarter of it), which caps an exact step's length.
    pub fn step<P: PeerLink, D: DealerLink>(
        mut self,
        party: &mut Party<P, D>,
    ) -> Result<Step, MpcError> {
        let (n, d) = (self.n, self.d);
        party.set_step(self.steps + 1);
        let exact = self.params.curvature == Curvature::Exact && !self.fallback;
        let mb = party.mask(&self.beta, d, 1)?;
        let mut eta = party.matmul(&self.mx, false, &mb, false)?;
        ring::truncate_all(party.index, &mut eta, ring::FRAC);
        let p = sigmoid::sigmoid(party, &eta)?;
        eta.zeroize();
        let r = ring::sub(&p, &self.y);
        let mr = party.mask(&r, n, 1)?;
        let mut g = party.matmul(&self.mx, true, &mr, false)?;
        ring::truncate_all(party.index, &mut g, ring::FRAC);
        party.scale(&mut g, 1.0 / n as f64, 24);
        let mut pen = self.beta.clone();
        pen[0] = 0;
        party.scale(&mut pen, self.params.l2 / n as f64, 24);
        g = ring::add(&g, &pen);
        let hessian = if exact {
            Some(self.hessian_inverse(party, &p)?)
        } else {
            None
        };
        let mz = hessian.as_ref().unwrap_or(&self.mz);
        let mg = party.mask(&g, d, 1)?;
        let mut delta = party.matmul(mz, false, &mg, false)?;
        ring::truncate_all(party.index, &mut delta, ring::FRAC);
        let md = party.mask(&delta, d, 1)?;
        let sum = |v: Vec<u128>| v.into_iter().fold(0u128, |acc, x| acc.wrapping_add(x));
        let dec_raw = sum(party.hadamard(&mg, &md)?);
        // ΔᵀH_bΔ: how far the step moves the linear predictor
        let mut hd = party.matmul(&self.mhb, false, &md, false)?;
        ring::truncate_all(party.index, &mut hd, ring::FRAC);
        let mhd = party.mask(&hd, d, 1)?;
        let moved_raw = sum(party.hadamard(&md, &mhd)?);
        let opened = party.open(&[dec_raw, moved_raw])?;
        for m in [mb, mr, mg, md, mhd].into_iter().chain(hessian) {
            party.forget(m)?;
        }
        let decode2 = |v: u128| (v as i128) as f64 / (ring::SCALE * ring::SCALE);
        let decrement = decode2(opened[0]);
        let moved = 2.0 * decode2(opened[1]).max(0.0).sqrt();
        self.moves.push(moved);
        // Trust region: an exact step far from the optimum (small weights)
        // can be huge; it is shortened to move the linear predictor by at
        // most STEP_RMS in root mean square, so it cannot leave the
        // sigmoid's range in one go. The bound's steps never need it.
        if exact && moved > STEP_RMS {
            party.scale(&mut delta, STEP_RMS / moved, 16);
        }
        let last = if exact {
            self.last_exact.replace(decrement)
        } else {
            self.last_bound.replace(decrement)
        };
        let grew = last.is_some_and(|last| decrement > last);
        self.fallback = exact && grew;
        // v ← μ·v − Δ, β ← β + v (heavy ball; μ = 0 is β ← β − Δ), for
        // the bound's steps only: Newton's own step is the right length.
        // The momentum restarts (v ← 0) when the public decrement grew, as
        // in O'Donoghue and Candès's adaptive restart: both parties see it.
        let momentum = if self.params.curvature == Curvature::Bound && !grew {
            self.params.momentum
        } else {
            0.0
        };
        party.scale(&mut self.velocity, momentum, 8);
        self.velocity = ring::sub(&self.velocity, &delta);
        self.beta = ring::add(&self.beta, &self.velocity);
        self.steps += 1;
        self.decrements.push(decrement);
        // With the exact Hessian only an exact step's decrement ends the
        // fit (a fallback step's is smaller for the same gradient).
        let converged = decrement.abs() < self.params.tolerance
            && (exact || self.params.curvature == Curvature::Bound);
        let done = converged || self.steps >= self.params.max_steps;
        Ok(if done {
            Step::Done(Trained {
                converged,
                state: self,
            })
        } else {
            Step::Continue(self)
        })
    }

    /// The inverse of the exact Hessian `Xᵀ diag(w) X / n + (l2/n)·P` at
    /// `p`, with `w = p − p²`: `diag(w)·X` costs one opening of `w` (the
    /// design's mask is reused, [`Party::row_scale`]), and the product with
    /// `Xᵀ` one opening of that n×d value under a fresh mask.
    fn hessian_inverse<P: PeerLink, D: DealerLink>(
        &self,
        party: &mut Party<P, D>,
        p: &[u128],
    ) -> Result<Masked, MpcError> {
        let (n, d) = (self.n, self.d);
        let mp = party.mask(p, n, 1)?;
        let mut w = party.mul(&mp, &mp)?;
        party.forget(mp)?;
        w = ring::sub(p, &w);
        let mw = party.mask(&w, n, 1)?;
        w.zeroize();
        let mut u = party.row_scale(&mw, &self.mx)?;
        party.forget(mw)?;
        ring::truncate_all(party.index, &mut u, ring::FRAC);
        let mu = party.mask(&u, n, d)?;
        u.zeroize();
        let mut h = party.matmul(&self.mx, true, &mu, false)?;
        party.forget(mu)?;
        ring::truncate_all(party.index, &mut h, ring::FRAC);
        party.scale(&mut h, 1.0 / n as f64, 24);
        let (mz, mh) = invert(
            party,
            h,
            d,
            self.params.l2 / n as f64,
            EXACT_INVERSE_ITERATIONS,
        )?;
        party.forget(mh)?;
        Ok(mz)
    }

    /// Steps until done.
    pub fn run<P: PeerLink, D: DealerLink>(
        self,
        party: &mut Party<P, D>,
    ) -> Result<Trained, MpcError> {
        let mut state = self;
        loop {
            match state.step(party)? {
                Step::Continue(s) => state = s,
                Step::Done(t) => return Ok(t),
            }
        }
    }
}

/// Coefficient shares after the last step.
pub struct Trained {
    state: Preconditioned,
    converged: bool,
}

/// What a computing party keeps at the end.
pub struct Output {
    /// `(column, coefficient)` of the columns this party owns (the bank's
    /// include the intercept, column 0).
    pub coefficients: Vec<(usize, f64)>,
    /// The bank only: joint linear predictor of every row, in input order.
    pub scores: Option<Vec<f64>>,
    /// Shares of the coefficients of helper partners (k ≥ 1), to send them.
    pub helper_shares: Vec<(usize, usize, u128)>,
    /// Newton steps taken.
    pub steps: u32,
    /// Whether the decrement fell below the tolerance.
    pub converged: bool,
    /// The opened decrement of each step.
    pub decrements: Vec<f64>,
    /// The root mean square change of the linear predictor of each step at
    /// full length (opened with the decrement).
    pub moves: Vec<f64>,
}

impl Trained {
    /// Reveals each block to its owner and the joint scores to the bank.
    pub fn finish<P: PeerLink, D: DealerLink>(
        self,
        party: &mut Party<P, D>,
    ) -> Result<Output, MpcError> {
        let s = &self.state;
        party.set_step(super::engine::STEP_FINISH);
        let me = if party.index == 0 {
            Owner::Bank
        } else {
            Owner::Partner(0)
        };
        let peer = if party.index == 0 {
            Owner::Partner(0)
        } else {
            Owner::Bank
        };
        let cols =
            |o: Owner| -> Vec<usize> { (0..s.d).filter(|&j| s.params.owners[j] == o).collect() };
        let pick = |idx: &[usize]| -> Vec<u128> { idx.iter().map(|&j| s.beta[j]).collect() };
        let (mine, theirs) = (cols(me), cols(peer));
        // bank first reveals the partner block, then receives its own
        let coefficients = if party.index == 0 {
            party.reveal_to_peer(&pick(&theirs))?;
            party.reveal_from_peer(&pick(&mine))?
        } else {
            let v = party.reveal_from_peer(&pick(&mine))?;
            party.reveal_to_peer(&pick(&theirs))?;
            v
        };
        let coefficients = mine
            .iter()
            .copied()
            .zip(coefficients.into_iter().map(ring::decode))
            .collect();
        let mb = party.mask(&s.beta, s.d, 1)?;
        let mut eta = party.matmul(&s.mx, false, &mb, false)?;
        if let Some(mh) = &s.mh {
            eta.extend(party.matmul(mh, false, &mb, false)?);
        }
        ring::truncate_all(party.index, &mut eta, ring::FRAC);
        let scores = if party.index == 0 {
            let joint = party.reveal_from_peer(&eta)?;
            Some(reorder(&s.params.holdout, &joint))
        } else {
            party.reveal_to_peer(&eta)?;
            None
        };
        eta.zeroize();
        let helper_shares = (0..s.d)
            .filter_map(|j| match s.params.owners[j] {
                Owner::Partner(k) if k >= 1 => Some((k, j, s.beta[j])),
                _ => None,
            })
            .collect();
        Ok(Output {
            coefficients,
            scores,
            helper_shares,
            steps: s.steps,
            converged: self.converged,
            decrements: s.decrements.clone(),
            moves: s.moves.clone(),
        })
    }
}

/// Training rows then holdout rows, back to input order, decoded.
fn reorder(holdout: &[bool], joint: &[u128]) -> Vec<f64> {
    let n_train = holdout.iter().filter(|&&h| !h).count();
    let (mut t, mut h) = (0, n_train);
    holdout
        .iter()
        .map(|&is_hold| {
            let v = if is_hold {
                h += 1;
                joint[h - 1]
            } else {
                t += 1;
                joint[t - 1]
            };
            ring::decode(v)
        })
        .collect()
}
