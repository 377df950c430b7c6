//! Per-step cost of the secure fit, in process (both computing parties and
//! the dealer on this machine, two threads): run with
//! `cargo test --release -p fedseg-common --lib mpc::bench -- --ignored --nocapture`
//! (or, to reuse debug dependencies, add
//! `--config 'profile.dev.package.fedseg-common.opt-level=3'` instead of
//! `--release`); `MPC_BENCH_N=10000,100000,1000000` sets the sizes.

use std::time::Instant;

use super::runner::run_fit;
use super::tests::{case, params};

/// Wall seconds and ring elements (both directions and dealt) of a fit cut
/// at `steps` Newton steps.
fn run(n: usize, steps: u32) -> (f64, u64, u64, usize) {
    let c = case(n, &[5], 7);
    let mut p = params(&c.holdout);
    p.max_steps = steps;
    p.tolerance = 0.0;
    let t = Instant::now();
    let r = run_fit(&c.data, p, 7, false).expect("fit");
    let wall = t.elapsed().as_secs_f64();
    let train = c.holdout.iter().filter(|&&h| !h).count();
    (
        wall,
        r.elements[0] + r.elements[1],
        r.elements[2] + r.elements[3],
        train,
    )
}

#[test]
#[ignore = "benchmark: run optimised with --ignored --nocapture"]
fn seconds_and_bytes_per_newton_step() {
    let sizes: Vec<usize> = std::env::var("MPC_BENCH_N")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    println!(
        "| customers (training) | s per step | bytes / training customer / step, each way between bank and partner | dealer bytes / training customer / step, to both | set-up + finish s |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let (t1, p1, d1, train) = run(n, 1);
        let (t4, p4, d4, _) = run(n, 4);
        let step = (t4 - t1) / 3.0;
        let per = |a: u64, b: u64| (b - a) as f64 * 16.0 / 3.0 / train as f64;
        println!(
            "| {n} ({train}) | {step:.3} | {:.0} | {:.0} | {:.3} |",
            per(p1, p4) / 2.0,
            per(d1, d4),
            t1 - step
        );
    }
    println!(
        "FATE (published, 10^5 rows): SSHE-LR 5-6 min per epoch; Paillier hetero-LR 2 min 20 s; no encryption 19 s"
    );
}
