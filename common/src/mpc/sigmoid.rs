//! The logistic function on shares, without comparisons.
//!
//! `σ(η) = a / (a + b)` with `a = e^(η/2)` and `b = e^(-η/2)`, each computed
//! as `(1 ± η/2^(K+1))^(2^K)` by `K` secure squarings (CrypTen's limit
//! approximation of exp). The two limits err in opposite directions, so the
//! ratio is `σ(η + O(η³ / 2^(2K)))`: the quadratic terms of the two errors
//! cancel. The reciprocal of `a + b ∈ [2, 2 cosh(L/2)]` is Newton–Raphson
//! `y ← y (2 − s y)` from the public start `1 / (2 cosh(L/2) + 1)`, which
//! converges for every `s` in range.
//!
//! Accuracy (checked in the tests): |error| below 1e-6 for `|η| ≤ 16`, and
//! the result stays a probability up to `|η| ≤ L = 24`, the range the
//! protocol guarantees (`a + b ≤ 2 cosh 12 ≈ 1.6e5`: raw products stay
//! below 2^99, so each truncation fails with probability below 2^-28).
//! Beyond it the reciprocal's start is no longer below `2 / s` and the
//! result is wrong (a secure clip needs a comparison protocol, not built
//! yet; the parties clip their z-scores so a sensible model stays inside).
//! Cost per call: `2K + 2·NR + 3` openings of length n (67 with the
//! defaults; 23 Newton–Raphson iterations from the start for L = 24).

use super::engine::{DealerLink, Party, PeerLink};
use super::error::MpcError;
use super::ring;

/// Squarings of the exp limit.
pub const SQUARINGS: u32 = 10;
/// Largest |η| for which the secure sigmoid is defined.
pub const RANGE: f64 = 24.0;

/// Newton–Raphson iterations needed from the public start for `s` down
/// to 2: the relative error `1 − s·y` squares each time.
fn newton_iterations() -> u32 {
    let start = start();
    let e0 = 1.0 - 2.0 * start;
    let needed = (1e-13f64).ln() / e0.ln();
    needed.log2().ceil() as u32 + 1
}

fn start() -> f64 {
    1.0 / (2.0 * (RANGE / 2.0).cosh() + 1.0)
}

/// Shares of `σ(η)` for shares of `η` (fixed point).
pub fn sigmoid<P: PeerLink, D: DealerLink>(
    party: &mut Party<P, D>,
    eta: &[u128],
) -> Result<Vec<u128>, MpcError> {
    let n = eta.len();
    let one = ring::enc(1.0);
    // u = η / 2^(K+1), exact up to the truncation ulp
    let mut ab = Vec::with_capacity(2 * n);
    for &e in eta {
        ab.push(ring::truncate_share(party.index, e, SQUARINGS + 1));
    }
    let minus: Vec<u128> = ab.iter().map(|u| u.wrapping_neg()).collect();
    ab.extend(minus);
    party.add_public(&mut ab, one);
    for _ in 0..SQUARINGS {
        let m = party.mask(&ab, 2 * n, 1)?;
        ab = party.mul(&m, &m)?;
        party.forget(m)?;
    }
    let (a, b) = ab.split_at(n);
    let s = ring::add(a, b);
    // first Newton step from the public start y0: y1 = y0 (2 − s y0)
    let y0 = start();
    let mut y = s.clone();
    party.scale(&mut y, -y0 * y0, 16);
    party.add_public(&mut y, ring::enc(2.0 * y0));
    let ms = party.mask(&s, n, 1)?;
    for _ in 1..newton_iterations() {
        let my = party.mask(&y, n, 1)?;
        let t = party.mul(&ms, &my)?;
        let mut w: Vec<u128> = t.iter().map(|v| v.wrapping_neg()).collect();
        party.add_public(&mut w, ring::enc(2.0));
        let mw = party.mask(&w, n, 1)?;
        y = party.mul(&my, &mw)?;
        party.forget(my)?;
        party.forget(mw)?;
    }
    party.forget(ms)?;
    let ma = party.mask(a, n, 1)?;
    let my = party.mask(&y, n, 1)?;
    let p = party.mul(&ma, &my)?;
    party.forget(ma)?;
    party.forget(my)?;
    Ok(p)
}

/// Openings of length n per call (for the traffic accounting).
pub fn openings_per_call() -> u32 {
    SQUARINGS * 2 + 2 * (newton_iterations() - 1) + 3
}
