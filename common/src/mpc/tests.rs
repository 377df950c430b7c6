//! Acceptance tests: the secure fit equals the pooled fit; what each role
//! saw is uniformly random; the building blocks' error bounds.

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use rand::rngs::ChaCha20Rng;
use rand::{Rng, RngExt, SeedableRng};

use super::dealer::Dealer;
use super::engine::{Opening, Party};
use super::eval::evaluate;
use super::fit::{Curvature, FitParams, Owner};
use super::runner::{ChannelPeer, JointData, LockedDealer, RunReport, run_fit};
use super::{fit, plain, ring, sigmoid};
use crate::propensity::is_holdout;

type TestParty = Party<ChannelPeer, LockedDealer>;

/// Runs `f` as both computing parties on `(shares0, shares1)`; returns the
/// opened result.
pub(super) fn two_party<F>(x: (Vec<u128>, Vec<u128>), f: F) -> Vec<u128>
where
    F: Fn(&mut TestParty, Vec<u128>) -> Vec<u128> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let dealer = Arc::new(Mutex::new(Dealer::new(ChaCha20Rng::seed_from_u64(9))));
    let (tx01, rx01) = channel();
    let (tx10, rx10) = channel();
    let mk = |i, tx, rx| {
        Party::new(
            i,
            ChannelPeer::new(tx, rx, false),
            LockedDealer::new(dealer.clone(), i, false),
        )
    };
    let (mut p0, mut p1) = (mk(0, tx01, rx10), mk(1, tx10, rx01));
    let f1 = f.clone();
    let h = std::thread::spawn(move || f1(&mut p1, x.1));
    let r0 = f(&mut p0, x.0);
    ring::add(&r0, &h.join().unwrap())
}

fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Standardises columns of a row-major n × d matrix over training rows.
fn standardise(x: &mut [f64], d: usize, hold: &[bool]) {
    for j in 0..d {
        let train: Vec<f64> = (0..hold.len())
            .filter(|&i| !hold[i])
            .map(|i| x[i * d + j])
            .collect();
        let mean = train.iter().sum::<f64>() / train.len() as f64;
        let var = train.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / train.len() as f64;
        for i in 0..hold.len() {
            x[i * d + j] = (x[i * d + j] - mean) / var.sqrt();
        }
    }
}

pub(super) struct Case {
    pub data: JointData,
    pub holdout: Vec<bool>,
}

/// Bank 5 columns, partners' columns as given; a genuine signal in the
/// partners' columns; correlated bank and partner columns.
pub(super) fn case(n: usize, partner_cols: &[usize], seed: u64) -> Case {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let holdout: Vec<bool> = (0..n)
        .map(|i| is_holdout(seed, &format!("c{i}"), 0.2))
        .collect();
    let bank_w = [0.8, -0.5, 0.3, 0.0, 0.2];
    let mut bank_x = vec![0.0; n * 5];
    let mut partners: Vec<(Vec<f64>, usize)> = partner_cols
        .iter()
        .map(|&d| (vec![0.0; n * d], d))
        .collect();
    let mut eta = vec![-1.2; n];
    for i in 0..n {
        for j in 0..5 {
            bank_x[i * 5 + j] = normal(&mut rng);
            eta[i] += bank_w[j] * bank_x[i * 5 + j];
        }
        for (k, (x, d)) in partners.iter_mut().enumerate() {
            for j in 0..*d {
                let v = 0.5 * bank_x[i * 5 + j % 5] + normal(&mut rng);
                x[i * *d + j] = v;
                eta[i] += [0.9, -0.6, 0.4, 0.0, 0.3][j % 5] / (k + 1) as f64 * v;
            }
        }
    }
    let labels = eta
        .iter()
        .map(|&e| rng.random::<f64>() < crate::propensity::sigmoid(e))
        .collect();
    standardise(&mut bank_x, 5, &holdout);
    for (x, d) in &mut partners {
        standardise(x, *d, &holdout);
    }
    Case {
        data: JointData {
            bank_x,
            bank_cols: 5,
            labels,
            partners,
            start: 0.0,
        },
        holdout,
    }
}

/// The pooled design (intercept, bank, partners) of all rows.
pub(super) fn pooled(c: &Case) -> (Vec<f64>, usize) {
    let n = c.holdout.len();
    let d = 1 + 5 + c.data.partners.iter().map(|p| p.1).sum::<usize>();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        x.push(1.0);
        x.extend_from_slice(&c.data.bank_x[i * 5..(i + 1) * 5]);
        for (p, dk) in &c.data.partners {
            x.extend_from_slice(&p[i * dk..(i + 1) * dk]);
        }
    }
    (x, d)
}

pub(super) fn params(holdout: &[bool]) -> FitParams {
    FitParams {
        owners: Vec::new(),
        holdout: holdout.to_vec(),
        l2: 1.0,
        tolerance: 1e-15,
        max_steps: 200,
        momentum: 0.0,
        curvature: Curvature::Exact,
    }
}

fn assembled(r: &RunReport, d: usize) -> Vec<f64> {
    let mut beta = vec![f64::NAN; d];
    for &(j, v) in r.bank.coefficients.iter().chain(&r.partner.coefficients) {
        beta[j] = v;
    }
    for &(_, j, v) in &r.helpers {
        beta[j] = v;
    }
    beta
}

/// Every coefficient within 1e-4 of the centralized fit's.
fn assert_coefficients_match(beta: &[f64], exact: &[f64]) {
    for (j, (b, e)) in beta.iter().zip(exact).enumerate() {
        assert!((b - e).abs() < 1e-4, "column {j}: {b} vs {e}");
    }
    assert_eq!(beta.len(), exact.len());
}

/// The pooled design, its training rows and labels, and the centralized
/// fit on them.
#[allow(clippy::type_complexity)]
fn pooled_fit(c: &Case) -> (Vec<f64>, usize, Vec<f64>, Vec<bool>, Vec<f64>) {
    let (x, d) = pooled(c);
    let train: Vec<usize> = (0..c.holdout.len()).filter(|&i| !c.holdout[i]).collect();
    let xt: Vec<f64> = train
        .iter()
        .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
        .collect();
    let yt: Vec<bool> = train.iter().map(|&i| c.data.labels[i]).collect();
    let exact = plain::fit(&xt, &yt, d, 1.0);
    (x, d, xt, yt, exact)
}

fn check_against_pooled(n: usize, partner_cols: &[usize], seed: u64, curvature: Curvature) -> u32 {
    let c = case(n, partner_cols, seed);
    let (x, d, xt, yt, exact) = pooled_fit(&c);
    let mut p = params(&c.holdout);
    p.curvature = curvature;
    let r = run_fit(&c.data, p, seed, false).unwrap();
    let beta = assembled(&r, d);
    assert!(
        r.bank.converged,
        "steps {} decrements {:?}",
        r.bank.steps, r.bank.decrements
    );
    assert_coefficients_match(&beta, &exact);
    let (o_mpc, o_exact) = (
        plain::objective(&xt, &yt, d, &beta, 1.0),
        plain::objective(&xt, &yt, d, &exact, 1.0),
    );
    assert!(
        (o_mpc - o_exact).abs() / o_exact < 1e-6,
        "{o_mpc} vs {o_exact}"
    );
    // holdout evaluation from the bank's joint scores
    let scores = r.bank.scores.as_ref().unwrap();
    let hold: Vec<usize> = (0..c.holdout.len()).filter(|&i| c.holdout[i]).collect();
    let eta_exact: Vec<f64> = hold
        .iter()
        .map(|&i| {
            x[i * d..(i + 1) * d]
                .iter()
                .zip(&exact)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect();
    let eta_mpc: Vec<f64> = hold.iter().map(|&i| scores[i]).collect();
    let labels: Vec<bool> = hold.iter().map(|&i| c.data.labels[i]).collect();
    let (e_mpc, e_exact) = (evaluate(&eta_mpc, &labels), evaluate(&eta_exact, &labels));
    assert!(
        (e_mpc.auc - e_exact.auc).abs() < 0.001,
        "{e_mpc:?} vs {e_exact:?}"
    );
    assert!(e_exact.auc > 0.7);
    eprintln!(
        "partners {partner_cols:?}: steps {}, max |Δβ| {:.2e}, auc {:.5} vs {:.5}",
        r.bank.steps,
        (0..d)
            .map(|j| (beta[j] - exact[j]).abs())
            .fold(0.0, f64::max),
        e_mpc.auc,
        e_exact.auc
    );
    r.bank.steps
}

#[test]
fn one_partner_fit_equals_pooled_fit() {
    let steps = check_against_pooled(3000, &[5], 11, Curvature::Exact);
    // Newton's quadratic convergence: the bound takes tens of steps
    assert!(steps <= 12, "{steps} exact Newton steps");
}

#[test]
fn two_partner_fit_equals_pooled_fit() {
    check_against_pooled(3000, &[3, 2], 12, Curvature::Exact);
}

#[test]
fn a_far_start_is_reined_in_and_still_reaches_the_pooled_fit() {
    // From an intercept of 6 (the model's rate is far lower) the first
    // exact step would move the linear predictor by 280 in root mean
    // square and the fit would diverge; the trust region shortens it, and
    // the fit ends where the pooled one does.
    let mut c = case(1500, &[5], 13);
    c.data.start = 6.0;
    let (_, d, _, _, exact) = pooled_fit(&c);
    let r = run_fit(&c.data, params(&c.holdout), 13, false).unwrap();
    let moves = &r.bank.moves;
    eprintln!("steps {}, moves {moves:.2?}", r.bank.steps);
    assert!(
        moves[0] > fit::STEP_RMS,
        "the first step was not long: {moves:?}"
    );
    assert!(r.bank.converged, "{:?}", r.bank.decrements);
    let beta = assembled(&r, d);
    assert_coefficients_match(&beta, &exact);
}

#[test]
fn the_hessian_bound_reaches_the_same_fit_in_more_steps() {
    // fewer customers: each of the bound's many steps costs as much
    let steps = check_against_pooled(1000, &[5], 11, Curvature::Bound);
    assert!(steps > 12, "{steps} fixed-Hessian steps");
}

/// Whether a vector looks like uniform shares: no element is a small
/// fixed-point number (below 2^76: every secret here is below 2^72; a
/// share is uniform on the ring, or on ±2^95 after a SecureML truncation,
/// so small with probability at most 2^-19) and the sign bit is set about
/// half the time.
pub(super) fn looks_uniform(v: &[u128]) -> bool {
    let small = v
        .iter()
        .filter(|&&x| (x as i128).unsigned_abs() < 1u128 << 76)
        .count();
    let top = v.iter().filter(|&&x| x >> 127 == 1).count() as f64;
    let n = v.len() as f64;
    small == 0 && (v.len() < 64 || (top / n - 0.5).abs() < 5.0 * (0.25 / n).sqrt() + 0.01)
}

#[test]
fn partner_and_dealer_see_only_uniform_values() {
    let c = case(600, &[5], 21);
    let r = run_fit(&c.data, params(&c.holdout), 21, true).unwrap();
    assert!(!r.partner_saw.is_empty());
    for o in &r.partner_saw {
        assert!(
            looks_uniform(&o.values),
            "opening {} of {} not uniform: {:?}",
            o.seq,
            r.partner_saw.len(),
            &o.values[..o.values.len().min(4)]
                .iter()
                .map(|&v| v as i128)
                .collect::<Vec<_>>()
        );
    }
    for o in &r.bank_saw {
        assert!(looks_uniform(&o.values), "opening {} not uniform", o.seq);
    }
    for corr in &r.partner_dealt {
        assert!(looks_uniform(&corr.share), "dealt {} not uniform", corr.seq);
    }
    // no bank value or label among what the partner received
    let secrets: std::collections::HashSet<u128> =
        c.data.bank_x.iter().map(|&v| ring::enc(v)).collect();
    assert!(
        r.partner_saw
            .iter()
            .flat_map(|o| &o.values)
            .all(|v| !secrets.contains(v))
    );
    // the dealer saw shapes only (its type holds no value)
    assert!(!r.dealer_saw.is_empty());
    // negative control: the bank's columns opened without their mask fail
    let unmasked = Opening {
        seq: 0,
        values: c.data.bank_x.iter().map(|&v| ring::enc(v)).collect(),
    };
    assert!(!looks_uniform(&unmasked.values));
    let labels: Vec<u128> = c
        .data
        .labels
        .iter()
        .map(|&l| ring::enc(if l { 1.0 } else { 0.0 }))
        .collect();
    assert!(!looks_uniform(&labels));
}

#[test]
fn a_missing_mask_is_detected() {
    // a party that opened x itself instead of x − a: what its peer receives
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let x: Vec<u128> = (0..1000).map(|_| ring::enc(normal(&mut rng))).collect();
    let a = ring::random_vec(&mut rng, 1000);
    assert!(looks_uniform(&ring::sub(&x, &a)));
    assert!(!looks_uniform(&x));
}

/// A dealer whose masks are all zero: what a forgotten mask would be.
struct ZeroDealer;

impl super::engine::DealerLink for ZeroDealer {
    fn request(
        &mut self,
        _req: super::dealer::Request,
        len: usize,
    ) -> Result<super::dealer::Correlation, super::MpcError> {
        Ok(super::dealer::Correlation {
            seq: 0,
            share: vec![0; len],
        })
    }
}

#[test]
fn removing_the_mask_exposes_the_bank_and_the_check_fails() {
    let c = case(200, &[5], 4);
    let x: Vec<u128> = c.data.bank_x.iter().map(|&v| ring::enc(v)).collect();
    let sent = |dealer_masks: bool| -> Vec<u128> {
        let (tx, peer_rx) = channel();
        let (peer_tx, rx) = channel();
        peer_tx
            .send(Opening {
                seq: 0,
                values: vec![0; x.len()],
            })
            .unwrap();
        let peer = ChannelPeer::new(tx, rx, false);
        if dealer_masks {
            let dealer = Arc::new(Mutex::new(Dealer::new(ChaCha20Rng::seed_from_u64(2))));
            let mut p = Party::new(0, peer, LockedDealer::new(dealer, 0, false));
            let _ = p.mask(&x, 200, 5).unwrap();
        } else {
            let mut p = Party::new(0, peer, ZeroDealer);
            let _ = p.mask(&x, 200, 5).unwrap();
        }
        peer_rx.recv().unwrap().values
    };
    assert!(looks_uniform(&sent(true)));
    let exposed = sent(false);
    assert_eq!(exposed, x);
    assert!(!looks_uniform(&exposed));
}

#[test]
fn sigmoid_error_is_below_1e6_on_its_range() {
    let grid: Vec<f64> = (-1600..=1600).map(|i| i as f64 / 100.0).collect();
    let enc: Vec<u128> = grid.iter().map(|&v| ring::enc(v)).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let shares = ring::share(&mut rng, &enc);
    let out = two_party(shares, |p, s| sigmoid::sigmoid(p, &s).unwrap());
    let max = grid
        .iter()
        .zip(&out)
        .map(|(&e, &s)| (ring::decode(s) - crate::propensity::sigmoid(e)).abs())
        .fold(0.0, f64::max);
    eprintln!("secure sigmoid max error on [-16, 16]: {max:.3e}");
    assert!(max < 1e-6, "{max}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn beaver_product_is_within_two_ulps(a in prop::collection::vec(-1e4f64..1e4, 1..20), seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let b: Vec<f64> = a.iter().map(|_| rng.random::<f64>() * 200.0 - 100.0).collect();
        let (ea, eb): (Vec<u128>, Vec<u128>) = (a.iter().map(|&v| ring::enc(v)).collect(), b.iter().map(|&v| ring::enc(v)).collect());
        let mut both = ea.clone();
        both.extend(&eb);
        let len = a.len();
        let out = two_party(ring::share(&mut rng, &both), move |p, s| {
            let mx = p.mask(&s[..len], len, 1).unwrap();
            let my = p.mask(&s[len..], len, 1).unwrap();
            p.mul(&mx, &my).unwrap()
        });
        for i in 0..len {
            let exact = ring::decode(ea[i]) * ring::decode(eb[i]);
            prop_assert!((ring::decode(out[i]) - exact).abs() <= 2.0 / ring::SCALE);
        }
    }

    #[test]
    fn masked_matrix_product_equals_plain(seed: u64, m in 1usize..6, k in 1usize..6) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..m * k).map(|_| rng.random::<f64>() * 10.0 - 5.0).collect();
        let y: Vec<f64> = (0..k).map(|_| rng.random::<f64>() * 10.0 - 5.0).collect();
        let mut both: Vec<u128> = x.iter().map(|&v| ring::enc(v)).collect();
        both.extend(y.iter().map(|&v| ring::enc(v)));
        let out = two_party(ring::share(&mut rng, &both), move |p, s| {
            let mx = p.mask(&s[..m * k], m, k).unwrap();
            let my = p.mask(&s[m * k..], k, 1).unwrap();
            let mut z = p.matmul(&mx, false, &my, false).unwrap();
            ring::truncate_all(p.index, &mut z, ring::FRAC);
            // reuse the matrix mask against a fresh vector mask: Xᵀ(Xy)
            let mz = p.mask(&z, m, 1).unwrap();
            let mut w = p.matmul(&mx, true, &mz, false).unwrap();
            ring::truncate_all(p.index, &mut w, ring::FRAC);
            z.extend(w);
            z
        });
        for i in 0..m {
            let exact: f64 = (0..k).map(|j| x[i * k + j] * y[j]).sum();
            prop_assert!((ring::decode(out[i]) - exact).abs() < 1e-7);
        }
        let _ = Owner::Bank;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn row_scaled_matrix_equals_plain(seed: u64, n in 1usize..8, d in 1usize..5) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>() * 10.0 - 5.0).collect();
        let v: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        let mut both: Vec<u128> = x.iter().map(|&a| ring::enc(a)).collect();
        both.extend(v.iter().map(|&a| ring::enc(a)));
        let out = two_party(ring::share(&mut rng, &both), move |p, s| {
            let mx = p.mask(&s[..n * d], n, d).unwrap();
            let mv = p.mask(&s[n * d..], n, 1).unwrap();
            let mut u = p.row_scale(&mv, &mx).unwrap();
            ring::truncate_all(p.index, &mut u, ring::FRAC);
            u
        });
        for i in 0..n {
            for j in 0..d {
                let exact = ring::decode(ring::enc(v[i])) * ring::decode(ring::enc(x[i * d + j]));
                prop_assert!((ring::decode(out[i * d + j]) - exact).abs() <= 2.0 / ring::SCALE);
            }
        }
    }
}

#[test]
fn masks_travel_as_seeds_and_products_once_in_full() {
    use super::dealer::{Dealt, Request};
    let mut d = Dealer::new(ChaCha20Rng::seed_from_u64(3));
    let both = |d: &mut Dealer<ChaCha20Rng>, req: Request| {
        let (a, b) = (d.serve(0, req).unwrap(), d.serve(1, req).unwrap());
        let seeded = [&a, &b].map(|x| matches!(x.dealt, Dealt::Seed(..)));
        (ring::add(&a.expand().share, &b.expand().share), seeded)
    };
    let (x, seeded) = both(&mut d, Request::Mask { len: 5 });
    assert_eq!(seeded, [true, true]);
    let (y, _) = both(&mut d, Request::Mask { len: 5 });
    let (xy, seeded) = both(&mut d, Request::Hadamard { left: 0, right: 1 });
    assert_eq!(seeded, [true, false]);
    let want: Vec<u128> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
    assert_eq!(xy, want);
    assert!(looks_uniform(&x) && looks_uniform(&xy));
    // two seeds of two elements' bytes each per party, then 5 elements
    assert_eq!(d.elements_sent, [2 + 2 + 2, 2 + 2 + 5]);
}

#[test]
fn dealer_refuses_mismatched_requests() {
    let mut d = Dealer::new(ChaCha20Rng::seed_from_u64(1));
    d.serve(0, super::dealer::Request::Mask { len: 3 }).unwrap();
    let err = d
        .serve(1, super::dealer::Request::Mask { len: 4 })
        .unwrap_err();
    assert_eq!(err.fault(), super::Fault::Peer);
    let _ = ChaCha20Rng::seed_from_u64(0).next_u64();
}
