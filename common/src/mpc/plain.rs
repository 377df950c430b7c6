//! The plain (f64) reference: exact Newton for the L2 logistic regression
//! of design.md. The bank uses it for its label-holder-only model; the
//! tests use it as the pooled fit the secure fit must equal.

use crate::propensity::{log_loss, sigmoid};

/// Objective: Σ log-loss + (l2/2)·‖β[1..]‖² (the intercept, column 0, free).
pub fn objective(x: &[f64], y: &[bool], d: usize, beta: &[f64], l2: f64) -> f64 {
    let loss: f64 = y
        .iter()
        .enumerate()
        .map(|(i, &l)| log_loss(dot(&x[i * d..(i + 1) * d], beta), l))
        .sum();
    loss + 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Newton's method to a gradient norm of 1e-12·n; row-major `x` (n × d,
/// intercept column first). Returns the coefficients.
pub fn fit(x: &[f64], y: &[bool], d: usize, l2: f64) -> Vec<f64> {
    let n = y.len();
    let mut beta = vec![0.0; d];
    for _ in 0..100 {
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        for i in 0..n {
            let row = &x[i * d..(i + 1) * d];
            let p = sigmoid(dot(row, &beta));
            let r = p - if y[i] { 1.0 } else { 0.0 };
            let w = p * (1.0 - p);
            for a in 0..d {
                g[a] += row[a] * r;
                for b in 0..d {
                    h[a * d + b] += w * row[a] * row[b];
                }
            }
        }
        for j in 1..d {
            g[j] += l2 * beta[j];
            h[j * d + j] += l2;
        }
        let step = solve(h, g.clone(), d);
        for j in 0..d {
            beta[j] -= step[j];
        }
        if g.iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-12 * n as f64 {
            break;
        }
    }
    beta
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, d: usize) -> Vec<f64> {
    for c in 0..d {
        let p = (c..d)
            .max_by(|&i, &j| a[i * d + c].abs().total_cmp(&a[j * d + c].abs()))
            .unwrap_or(c);
        for k in 0..d {
            a.swap(c * d + k, p * d + k);
        }
        b.swap(c, p);
        for r in c + 1..d {
            let f = a[r * d + c] / a[c * d + c];
            for k in c..d {
                a[r * d + k] -= f * a[c * d + k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; d];
    for c in (0..d).rev() {
        let s: f64 = (c + 1..d).map(|k| a[c * d + k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c * d + c];
    }
    x
}
