//! The reports of a vertical job: what the intersection found and what the
//! joint model adds over the label holder's own, with its sampling error.
//! Sizes and quality figures only, as `result.json` holds them.

use std::fmt::Write;

use fedseg_common::result::{ModelQuality, VerticalJobResult};

use super::Table;

/// The terminal summary of a vertical job.
pub fn vertical_summary(result: &VerticalJobResult) -> String {
    let v = &result.vertical;
    let sizes: Vec<String> = v
        .set_sizes
        .iter()
        .map(|(party, n)| format!("{party} {n}"))
        .collect();
    let mut out = format!(
        "job {}: {} and {} share {} customers (sets: {})",
        result.job_id,
        v.label_holder,
        v.partners.join(", "),
        v.intersection
            .map_or("fewer than min_overlap".to_string(), |n| n.to_string()),
        sizes.join(", ")
    );
    if v.overlap_only {
        out.push_str("\n  overlap only: no party learned which customers");
    }
    if let Some(c) = &v.contribution {
        let _ = write!(
            out,
            "\n  holdout AUC {:.3} joint vs {:.3} {} alone ({} holdout customers)",
            c.joint.auc, c.label_holder_only.auc, v.label_holder, c.holdout_count
        );
        let _ = write!(
            out,
            "\n  {}: difference {:+.3}, standard error {:.3} ({} steps{})",
            verdict(c),
            c.auc_difference,
            c.auc_difference_standard_error,
            v.steps,
            if v.converged {
                ", converged"
            } else {
                ", NOT converged"
            }
        );
    }
    out
}

/// The verdict on the partners' contribution, in words.
fn verdict(c: &fedseg_common::result::Contribution) -> &'static str {
    if !c.measurable {
        "the partners' columns add nothing measurable on this holdout"
    } else if c.auc_difference > 0.0 {
        "the partners' columns raise the AUC"
    } else {
        "the joint model does worse than the bank's own"
    }
}

/// A vertical job's report as Markdown.
pub fn vertical_markdown(result: &VerticalJobResult) -> String {
    let v = &result.vertical;
    let mut out = format!("# Vertical joint model, job `{}`\n\n", result.job_id);
    let _ = writeln!(
        out,
        "Label holder **{}**, feature partners {}; reference date {}.\n",
        v.label_holder,
        v.partners.join(", "),
        result.as_of
    );
    out.push_str("## The intersection\n\n");
    let mut sizes = Table::new(&["party", "customers brought (consenting)"]);
    for (party, n) in &v.set_sizes {
        sizes.rows.push(vec![party.clone(), n.to_string()]);
    }
    out.push_str(&sizes.markdown());
    let _ = writeln!(
        out,
        "\nShared customers: **{}** (minimum released: {}). Every party learned this size{}; \
         the coordinator relayed {} sealed bytes and saw no id.\n",
        v.intersection
            .map_or("below the minimum".into(), |n| n.to_string()),
        v.min_overlap,
        if v.overlap_only {
            " and nothing else (overlap only)"
        } else {
            ", and each which of its own customers are shared"
        },
        v.relayed_bytes.values().sum::<u64>()
    );
    let Some(c) = &v.contribution else {
        out.push_str("No joint model was fitted.\n");
        return out;
    };
    out.push_str("## What the partners' data adds\n\n");
    let mut models = Table::new(&[
        "model",
        "holdout AUC",
        "± s.e.",
        "log-loss",
        "top-decile lift",
    ]);
    let row = |name: String, q: &ModelQuality| {
        vec![
            name,
            format!("{:.3}", q.auc),
            format!("{:.3}", q.auc_standard_error),
            format!("{:.3}", q.log_loss),
            format!("{:.2}", q.top_decile_lift),
        ]
    };
    models
        .rows
        .push(row("joint (all parties' columns)".into(), &c.joint));
    models.rows.push(row(
        format!("{} alone", v.label_holder),
        &c.label_holder_only,
    ));
    out.push_str(&models.markdown());
    let _ = writeln!(
        out,
        "\nOn {} holdout customers, {}: AUC difference {:+.3}, standard error {:.3} \
         (measurable when over twice it). The joint model took {} Newton steps on secret \
         shares ({}). Each party holds its own coefficients; the bank holds the joint \
         score of each shared customer.",
        c.holdout_count,
        verdict(c),
        c.auc_difference,
        c.auc_difference_standard_error,
        v.steps,
        if v.converged {
            "converged"
        } else {
            "NOT converged"
        }
    );
    out
}
