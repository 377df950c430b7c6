//! The propensity model end to end: three banks of different sizes, real
//! processes over mutual TLS. The test pools every bank's files itself and
//! computes the references: a centralized Newton solve of the contract's
//! objective on the pooled training customers, and the exact AUC of the
//! pooled holdout scores.

use std::fs;

use fedseg_common::features::DIM;
use fedseg_common::propensity::{is_holdout, log_loss, sigmoid};
use fedseg_participant::rfmlt::Customer;
use fedseg_tests::{Consortium, floats};

use super::pooled::{self, x_of};
use serde_json::Value;

const AS_OF: time::Date = time::macros::date!(2026 - 11 - 01);
const SEED: u64 = 11;

fn customers(c: &Consortium) -> Vec<Vec<Customer>> {
    pooled::customers(c, AS_OF)
}

fn write_job(c: &Consortium, extra: &str) {
    fs::write(
        c.path().join("job.toml"),
        format!(
            "seed = {SEED}\nas_of = \"2026-11-01\"\nholdout_fraction = 0.25\n{extra}\n\
             [segmentation]\nk_min = 3\nk_max = 3\nrestarts = 2\nmin_segment_size = 5\n"
        ),
    )
    .unwrap();
}

/// Solves a·x = b by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            let (above, below) = a.split_at_mut(row);
            for (x, p) in below[0][col..].iter_mut().zip(&above[col][col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (b[i] - (i + 1..n).map(|k| a[i][k] * x[k]).sum::<f64>()) / a[i][i];
    }
    x
}

/// The pooled design: (row, label, holdout) per customer, with the pooled
/// standardisation and the segment of the result's final centroids.
fn pooled_design(c: &Consortium, result: &Value) -> Vec<(Vec<f64>, bool, bool)> {
    let all: Vec<Customer> = customers(c).concat();
    let n = all.len() as f64;
    let xs: Vec<[f64; DIM]> = all.iter().map(x_of).collect();
    let mean: [f64; DIM] = std::array::from_fn(|j| xs.iter().map(|x| x[j]).sum::<f64>() / n);
    let std: [f64; DIM] = std::array::from_fn(|j| {
        (xs.iter().map(|x| (x[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt()
    });
    let seg = &result["segmentation"];
    let scale = floats(&seg["space_scale"]);
    let centroids: Vec<Vec<f64>> = seg["centroids"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let segments = result["propensity"]["design_segments"].as_u64().unwrap() as usize;
    all.iter()
        .zip(&xs)
        .map(|(customer, x)| {
            let z: [f64; DIM] = std::array::from_fn(|j| (x[j] - mean[j]) / std[j]);
            let segment = (0..centroids.len())
                .min_by(|&a, &b| {
                    let d = |k: usize| -> f64 {
                        (0..DIM)
                            .map(|j| (z[j] * scale[j] - centroids[k][j]).powi(2))
                            .sum()
                    };
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            let mut row = vec![1.0];
            row.extend(z);
            for s in 1..segments {
                row.push(f64::from(segment == s));
            }
            (
                row,
                customer.converted,
                is_holdout(SEED, &customer.id, 0.25),
            )
        })
        .collect()
}

/// Centralized Newton on the contract's objective, to full convergence.
fn centralized_newton(design: &[(Vec<f64>, bool, bool)], l2: f64) -> Vec<f64> {
    let d = design[0].0.len();
    let mut beta = vec![0.0; d];
    for _ in 0..100 {
        let mut g = vec![0.0; d];
        let mut h = vec![vec![0.0; d]; d];
        for (row, y, holdout) in design {
            if *holdout {
                continue;
            }
            let eta: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = sigmoid(eta);
            for a in 0..d {
                g[a] += (p - f64::from(*y)) * row[a];
                for b in 0..d {
                    h[a][b] += p * (1.0 - p) * row[a] * row[b];
                }
            }
        }
        for a in 1..d {
            g[a] += l2 * beta[a];
            h[a][a] += l2;
        }
        let step = solve(h, g);
        for a in 0..d {
            beta[a] -= step[a];
        }
        if step.iter().all(|s| s.abs() < 1e-13) {
            break;
        }
    }
    beta
}

/// Exact AUC: the share of (positive, negative) pairs the positive wins,
/// ties counting one half.
fn exact_auc(scores: &[(f64, bool)]) -> f64 {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut wins, mut negatives_below, mut i) = (0.0, 0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let pos = sorted[i..j].iter().filter(|s| s.1).count() as f64;
        let neg = (j - i) as f64 - pos;
        wins += pos * (negatives_below + neg / 2.0);
        negatives_below += neg;
        i = j;
    }
    let positives = scores.iter().filter(|s| s.1).count() as f64;
    wins / (positives * (scores.len() as f64 - positives))
}

fn run(c: &Consortium) -> Value {
    drop(c.run_job());
    c.result()
}

#[test]
fn federated_newton_equals_the_pooled_solve_and_evaluates_honestly() {
    let c = Consortium::with_customers(3, 1500, 20.0, 16);
    write_job(&c, "l2 = 1.0");
    let result = run(&c);
    let p = &result["propensity"];
    assert_eq!(p["converged"], true, "{p}");
    let iterations = p["iterations"].as_u64().unwrap();
    assert!((1..=10).contains(&iterations), "{iterations} Newton steps");

    let design = pooled_design(&c, &result);
    let expected = centralized_newton(&design, 1.0);
    let mut got = vec![p["intercept"].as_f64().unwrap()];
    got.extend(floats(&p["coefficients"]));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-6, "{got:?}\nvs\n{expected:?}");
    }
    let training = design.iter().filter(|d| !d.2).count() as f64;
    assert_eq!(p["training_count"].as_f64().unwrap(), training);
    let objective: f64 = design
        .iter()
        .filter(|d| !d.2)
        .map(|(row, y, _)| log_loss(row.iter().zip(&expected).map(|(a, b)| a * b).sum(), *y))
        .sum::<f64>()
        + 0.5 * expected[1..].iter().map(|b| b * b).sum::<f64>();
    assert!((p["objective"].as_f64().unwrap() - objective).abs() < 1e-6 * objective);

    // Evaluation on the holdout, from histograms only.
    let evaluation = &p["evaluation"];
    let holdout: Vec<(f64, bool)> = design
        .iter()
        .filter(|d| d.2)
        .map(|(row, y, _)| (sigmoid(row.iter().zip(&got).map(|(a, b)| a * b).sum()), *y))
        .collect();
    let auc = evaluation["auc"].as_f64().unwrap();
    let exact = exact_auc(&holdout);
    assert!((auc - exact).abs() < 0.005, "binned {auc} vs exact {exact}");
    assert!(auc > 0.6, "the synthetic label is predictable: {auc}");
    assert_eq!(evaluation["count"].as_f64().unwrap(), holdout.len() as f64);
    let calibration = evaluation["calibration"].as_array().unwrap();
    let binned: f64 = calibration
        .iter()
        .map(|b| b["count"].as_f64().unwrap())
        .sum();
    assert_eq!(binned, holdout.len() as f64);
    let log_loss_mean = holdout
        .iter()
        .map(|(s, y)| if *y { -s.ln() } else { -(1.0 - s).ln() })
        .sum::<f64>()
        / holdout.len() as f64;
    assert!((evaluation["log_loss"].as_f64().unwrap() - log_loss_mean).abs() < 1e-6);

    // Every bank scored its own customers locally with the same model.
    for site in &c.sites {
        let scores = c.site_output(site, "scores.csv");
        let deciles: Vec<u64> = scores
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(deciles.iter().all(|d| (1..=10).contains(d)));
        assert!(deciles.contains(&10) && deciles.contains(&1));
    }
}

#[test]
fn without_l2_separable_data_is_reported_not_fitted() {
    let c = Consortium::with_customers(3, 600, 20.0, 16);
    // Relabel: a customer converted exactly when they bought at least 5
    // times, so F separates the classes.
    for (site, list) in c.sites.iter().zip(customers(&c)) {
        let path = c.path().join("sites").join(site).join("customers.csv");
        let text = fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
            if i > 0 {
                let frequent = list
                    .iter()
                    .find(|c| c.id == fields[0])
                    .is_some_and(|c| c.f >= 5.0);
                fields[2] = u8::from(frequent).to_string();
            }
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        fs::write(&path, out).unwrap();
    }
    write_job(&c, "l2 = 0.0\n\n[propensity]\nsegment_features = false\n");
    let result = run(&c);
    let p = &result["propensity"];
    assert_eq!(p["converged"], false, "{p}");
    let reason = p["reason"].as_str().unwrap();
    assert!(
        reason.contains("separate") || reason.contains("singular"),
        "{reason}"
    );
    for b in std::iter::once(&p["intercept"]).chain(p["coefficients"].as_array().unwrap()) {
        assert!(b.as_f64().is_some_and(f64::is_finite), "{p}");
    }
}

#[test]
fn fedprox_approaches_the_newton_optimum() {
    let c = Consortium::with_customers(3, 900, 20.0, 16);
    write_job(
        &c,
        "l2 = 1.0\n\n[propensity]\noptimizer = \"fedprox\"\nmax_iterations = 60\ntolerance = 1e-4\nlocal_epochs = 5\nlearning_rate = 1.0\n",
    );
    let fedprox = run(&c);
    let design = pooled_design(&c, &fedprox);
    let newton = centralized_newton(&design, 1.0);
    let objective = |beta: &[f64]| -> f64 {
        design
            .iter()
            .filter(|d| !d.2)
            .map(|(row, y, _)| log_loss(row.iter().zip(beta).map(|(a, b)| a * b).sum(), *y))
            .sum::<f64>()
            + 0.5 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    };
    let p = &fedprox["propensity"];
    let mut beta = vec![p["intercept"].as_f64().unwrap()];
    beta.extend(floats(&p["coefficients"]));
    let (got, best) = (objective(&beta), objective(&newton));
    assert!(got >= best - 1e-9);
    assert!(
        (got - best) / best < 0.01,
        "FedProx objective {got} vs Newton {best} after {} rounds",
        p["iterations"]
    );
}
