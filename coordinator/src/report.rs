//! The human-readable report of a segmentation job, written beside
//! `result.json`: what the consortium found, segment by segment, with each
//! segment's playbook, and what every round released.

use std::fmt::Write;

use fedseg_common::features::NAMES;

use crate::segmentation::JobResult;

/// A few lines for the terminal.
pub fn summary(result: &JobResult) -> String {
    let seg = &result.segmentation;
    let mut out = format!(
        "job {}: {} customers of {} sites in {} segments ({} secure-sum rounds)",
        result.job_id,
        result.standardization.count,
        result.cohort.len(),
        seg.k,
        result.secure_sum_rounds
    );
    for s in &seg.segments {
        let _ = write!(
            out,
            "\n  {:<20} {:>9} customers  conversion {:>5.1}%",
            s.name,
            s.size,
            100.0 * s.conversion_rate
        );
    }
    out
}

/// The report as Markdown.
pub fn markdown(result: &JobResult) -> String {
    let mut out = String::new();
    let seg = &result.segmentation;
    let std = &result.standardization;
    let _ = writeln!(
        out,
        "# Joint customer segmentation, job `{}`\n",
        result.job_id
    );
    let _ = writeln!(
        out,
        "As of {}, over {} consenting customers of {} members ({}); {} customers who refused marketing were excluded at their own site before anything was computed. Configuration SHA-256 `{}`.\n",
        result.as_of,
        std.count,
        result.cohort.len(),
        result.cohort.join(", "),
        result.census.excluded_no_consent,
        result.config_hash
    );
    let _ = writeln!(out, "## Segments\n");
    let _ = writeln!(
        out,
        "| segment | customers | R days | F | M | L days | T | profile (R F M L T) | conversion |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for s in &seg.segments {
        let profile: Vec<&str> = NAMES.iter().map(|n| s.profile[n]).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1} | {:.0} | {:.0} | {:.1} | {} | {:.1}% |",
            s.name,
            s.size,
            s.means["R"],
            s.means["F"],
            s.means["M"],
            s.means["L"],
            s.means["T"],
            profile.join(" "),
            100.0 * s.conversion_rate
        );
    }
    let _ = writeln!(
        out,
        "\nPooled means (transformed: R, log1p F, log1p M, L, T): {:?}. Chosen k = {} ({}); segments merged for being under {} customers: {}.\n",
        std.mean.map(|m| (m * 100.0).round() / 100.0),
        seg.k,
        seg.k_choice,
        seg.min_segment_size,
        seg.suppressed
    );
    for s in &seg.segments {
        let _ = writeln!(out, "### {} — {}\n", s.name, s.summary);
        let _ = writeln!(out, "- **Product**: {}", s.playbook.product);
        let _ = writeln!(out, "- **Price**: {}", s.playbook.price);
        let _ = writeln!(out, "- **Channel**: {}", s.playbook.channel);
        let _ = writeln!(out, "- **Promotion**: {}", s.playbook.promotion);
        for r in s.refined.iter().filter(|r| r.customers > 0.0) {
            let _ = writeln!(
                out,
                "- {:.1}% are *{}*: {}",
                100.0 * r.share,
                r.name,
                r.action
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Choice of k\n");
    let _ = writeln!(
        out,
        "| k | inertia | Calinski-Harabasz | Lloyd steps | converged |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---|");
    for c in &seg.candidates {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {} |",
            c.k, c.inertia, c.calinski_harabasz, c.iterations, c.converged
        );
    }
    let _ = writeln!(
        out,
        "\nAHP weights R, F, M, L, T: {} (consistency ratio {:.3}).\n",
        result
            .ahp
            .weights
            .iter()
            .map(|w| format!("{:.1}%", 100.0 * w))
            .collect::<Vec<_>>()
            .join(", "),
        result.ahp.consistency_ratio
    );
    if let Some(p) = &result.propensity {
        let _ = writeln!(out, "## Propensity model\n");
        let _ = writeln!(
            out,
            "Logistic regression ({:?}), l2 = {}, fitted on {} training customers in {} iterations; converged: {}{}.\n",
            p.optimizer,
            p.l2,
            p.training_count,
            p.iterations,
            p.converged,
            p.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "| column | coefficient | odds ratio | meaning |");
        let _ = writeln!(out, "|---|---:|---:|---|");
        let _ = writeln!(
            out,
            "| intercept | {:.4} | {:.3} | odds of converting for an average customer of the first segment |",
            p.intercept,
            p.intercept.exp()
        );
        for (name, c) in p.features.iter().zip(&p.coefficients) {
            let meaning = if name.starts_with("segment") {
                format!("odds against the first segment for {name}")
            } else {
                format!("odds multiplier per standard deviation more {name}")
            };
            let _ = writeln!(out, "| {name} | {c:.4} | {:.3} | {meaning} |", c.exp());
        }
        if let Some(e) = &p.evaluation {
            let _ = writeln!(
                out,
                "\nOn {} holdout customers: AUC {:.4}, log-loss {:.4}, top-decile lift {:.2}.\n",
                e.count, e.auc, e.log_loss, e.top_decile_lift
            );
            let _ = writeln!(out, "| predicted | customers | mean predicted | observed |");
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for b in &e.calibration {
                let _ = writeln!(
                    out,
                    "| {:.1}–{:.1} | {} | {:.3} | {:.3} |",
                    b.lo, b.hi, b.count, b.mean_predicted, b.observed_rate
                );
            }
            let _ = writeln!(
                out,
                "\n| segment | holdout customers | conversion | in top decile | conversion in top decile |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for c in &e.campaign {
                let name = seg
                    .segments
                    .get(c.segment)
                    .map_or("all", |s| s.name.as_str());
                let _ = writeln!(
                    out,
                    "| {name} | {} | {:.1}% | {:.1}% | {:.1}% |",
                    c.size,
                    100.0 * c.conversion_rate,
                    100.0 * c.top_decile_share,
                    100.0 * c.top_decile_conversion_rate
                );
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "## Rounds\n");
    let _ = writeln!(out, "| round | purpose | outcome | sites | dropped |");
    let _ = writeln!(out, "|---:|---|---|---:|---|");
    for r in &result.rounds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.round,
            r.purpose,
            r.outcome,
            r.survivors.len(),
            r.dropped.join(", ")
        );
    }
    out
}
