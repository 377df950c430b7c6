//! The measured effect of a campaign on one group of customers, from the
//! released counts of its treatment and control groups: conversion in each,
//! the absolute uplift (difference of proportions) with Newcombe's hybrid
//! score interval (Newcombe 1998, method 10: built from the two Wilson
//! score intervals), the relative uplift (risk ratio − 1) with the Katz
//! log interval, and the incremental conversions (the uplift times the
//! treated customers, with the same interval scaled). A group with fewer
//! treated or control customers than the small-cell minimum is withheld.

use fedseg_common::computation::uplift::Cell;
use serde::Serialize;

/// The interval methods, as the result states them.
pub const METHOD: &str = "absolute uplift: Newcombe hybrid score interval (Wilson intervals of \
     each group, Newcombe 1998 method 10); relative uplift: Katz log interval of the risk ratio; \
     incremental conversions: the absolute uplift and its interval times the treated customers; \
     intention to treat (groups as drawn, whether contacted or not); intervals do not include \
     differential-privacy noise";

/// What a group's estimate says, in words the report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval of the uplift lies above 0.
    Uplift,
    /// The interval lies below 0: the campaign lowered conversion.
    Harm,
    /// The interval contains 0: nothing measurable.
    NoMeasurableEffect,
    /// Counts below the small-cell minimum: withheld.
    Suppressed,
}

/// One group's released measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Treated customers (absent when suppressed).
    pub treated: Option<f64>,
    /// Of them converted.
    pub treated_converted: Option<f64>,
    /// Of them contacted, per the outcomes tables.
    pub treated_contacted: Option<f64>,
    /// Control customers.
    pub control: Option<f64>,
    /// Of them converted.
    pub control_converted: Option<f64>,
    /// Of them contacted (should be 0: a contacted control is a leak).
    pub control_contacted: Option<f64>,
    /// Conversion rate of the treatment group.
    pub conversion_treated: Option<f64>,
    /// Conversion rate of the control group.
    pub conversion_control: Option<f64>,
    /// Treatment minus control conversion.
    pub uplift: Option<f64>,
    /// Its interval.
    pub uplift_ci: Option<[f64; 2]>,
    /// Treatment over control conversion, minus 1.
    pub relative_uplift: Option<f64>,
    /// Its interval (absent when a group has no conversion).
    pub relative_uplift_ci: Option<[f64; 2]>,
    /// Conversions the campaign added among the treated.
    pub incremental_conversions: Option<f64>,
    /// Their interval.
    pub incremental_ci: Option<[f64; 2]>,
    /// What the interval says.
    pub verdict: Verdict,
}

/// The standard normal quantile of `p` (Acklam's rational approximation,
/// relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Wilson score interval of `x` successes in `n` trials.
pub fn wilson(x: f64, n: f64, z: f64) -> [f64; 2] {
    let p = x / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Newcombe's hybrid score interval of p1 − p2.
pub fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64, z: f64) -> [f64; 2] {
    let (p1, p2) = (x1 / n1, x2 / n2);
    let ([l1, u1], [l2, u2]) = (wilson(x1, n1, z), wilson(x2, n2, z));
    let d = p1 - p2;
    [
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ]
}

/// Estimates `cell`'s effect at two-sided `confidence`; suppressed when
/// either group has fewer than `min_cell` customers. Noisy counts (under
/// differential privacy) are clamped into their possible range first.
pub fn estimate(cell: &Cell, min_cell: f64, confidence: f64) -> Estimate {
    let (t, c) = (&cell.treated, &cell.control);
    let (n1, n2) = (t.customers.round(), c.customers.round());
    if n1 < min_cell.max(1.0) || n2 < min_cell.max(1.0) {
        return Estimate {
            treated: None,
            treated_converted: None,
            treated_contacted: None,
            control: None,
            control_converted: None,
            control_contacted: None,
            conversion_treated: None,
            conversion_control: None,
            uplift: None,
            uplift_ci: None,
            relative_uplift: None,
            relative_uplift_ci: None,
            incremental_conversions: None,
            incremental_ci: None,
            verdict: Verdict::Suppressed,
        };
    }
    let x1 = t.converted.round().clamp(0.0, n1);
    let x2 = c.converted.round().clamp(0.0, n2);
    let z = normal_quantile(0.5 + confidence / 2.0);
    let (p1, p2) = (x1 / n1, x2 / n2);
    let ci = newcombe(x1, n1, x2, n2, z);
    let verdict = if ci[0] > 0.0 {
        Verdict::Uplift
    } else if ci[1] < 0.0 {
        Verdict::Harm
    } else {
        Verdict::NoMeasurableEffect
    };
    let relative = (x2 > 0.0).then(|| p1 / p2 - 1.0);
    let relative_ci = (x1 > 0.0 && x2 > 0.0).then(|| {
        let se = (1.0 / x1 - 1.0 / n1 + 1.0 / x2 - 1.0 / n2).sqrt();
        let log_rr = (p1 / p2).ln();
        [(log_rr - z * se).exp() - 1.0, (log_rr + z * se).exp() - 1.0]
    });
    Estimate {
        treated: Some(n1),
        treated_converted: Some(x1),
        treated_contacted: Some(t.contacted.round().clamp(0.0, n1)),
        control: Some(n2),
        control_converted: Some(x2),
        control_contacted: Some(c.contacted.round().clamp(0.0, n2)),
        conversion_treated: Some(p1),
        conversion_control: Some(p2),
        uplift: Some(p1 - p2),
        uplift_ci: Some(ci),
        relative_uplift: relative,
        relative_uplift_ci: relative_ci,
        incremental_conversions: Some((p1 - p2) * n1),
        incremental_ci: Some([ci[0] * n1, ci[1] * n1]),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedseg_common::computation::uplift::Group;

    #[test]
    fn the_quantile_matches_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.005) + 2.575_829_304).abs() < 1e-8);
    }

    #[test]
    fn newcombes_worked_example_is_reproduced() {
        // Newcombe (1998), table II, example (a): 56/70 − 48/80, method 10
        // gives 0.0524 to 0.3339.
        let [lo, hi] = newcombe(56.0, 70.0, 48.0, 80.0, normal_quantile(0.975));
        assert!(
            (lo - 0.0524).abs() < 5e-4 && (hi - 0.3339).abs() < 5e-4,
            "{lo} {hi}"
        );
    }

    #[test]
    fn small_groups_are_withheld_and_verdicts_follow_the_interval() {
        let cell = |n1: f64, x1: f64, n2: f64, x2: f64| Cell {
            treated: Group {
                customers: n1,
                converted: x1,
                contacted: n1,
            },
            control: Group {
                customers: n2,
                converted: x2,
                contacted: 0.0,
            },
        };
        let e = estimate(&cell(1000.0, 300.0, 19.0, 2.0), 20.0, 0.95);
        assert_eq!(e.verdict, Verdict::Suppressed);
        assert!(e.treated.is_none() && e.uplift.is_none());
        let e = estimate(&cell(1000.0, 300.0, 200.0, 20.0), 20.0, 0.95);
        assert_eq!(e.verdict, Verdict::Uplift);
        assert!((e.uplift.unwrap() - 0.2).abs() < 1e-12);
        assert!((e.incremental_conversions.unwrap() - 200.0).abs() < 1e-9);
        let e = estimate(&cell(1000.0, 150.0, 200.0, 30.0), 20.0, 0.95);
        assert_eq!(e.verdict, Verdict::NoMeasurableEffect);
        let ci = e.uplift_ci.unwrap();
        assert!(ci[0] < 0.0 && ci[1] > 0.0);
    }
}
