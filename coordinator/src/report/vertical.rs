//! The reports of a vertical job: what the intersection found and what the
//! joint model adds over the label holder's own, with its sampling error.
//! Sizes and quality figures only, as `result.json` holds them.

use std::fmt::Write;

use fedseg_common::result::{Contribution, ModelQuality, VerticalJobResult};

use super::charts::calibration_chart;
use super::html::page_head;
use super::{Table, calibration_table, esc};

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
fn verdict(c: &Contribution) -> &'static str {
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
    out.push_str(&sizes_table(result).markdown());
    let _ = writeln!(out, "\n{}\n", overlap_text(result));
    let Some(c) = &v.contribution else {
        out.push_str("No joint model was fitted.\n");
        return out;
    };
    out.push_str("## What the partners' data adds\n\n");
    out.push_str(&models_table(result, c).markdown());
    let _ = writeln!(out, "\n{}", contribution_text(result, c));
    if !c.joint_calibration.is_empty() {
        let _ = writeln!(
            out,
            "\n### Calibration of the joint model on the holdout\n\n{}",
            calibration_table(&c.joint_calibration).markdown()
        );
    }
    out
}

/// A vertical job's report as one self-contained HTML page: the overlap,
/// both models' holdout quality, the verdict, and the joint model's
/// calibration chart (from the label holder's aggregate bins).
pub fn vertical_html(
    result: &VerticalJobResult,
    journal_status: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let v = &result.vertical;
    let mut out = page_head(&result.job_id);
    let _ = writeln!(
        out,
        "<h1>Vertical joint model</h1>\n<p>Job <code>{}</code> as of {}: label holder <b>{}</b>, \
         feature partners {}.</p>\n<h2>The intersection</h2>\n{}<p data-key=\"overlap\">{}</p>",
        esc(&result.job_id),
        esc(&result.as_of),
        esc(&v.label_holder),
        esc(&v.partners.join(", ")),
        sizes_table(result).html(),
        esc(&overlap_text(result))
    );
    if let Some(c) = &v.contribution {
        let _ = writeln!(
            out,
            "<h2>What the partners' data adds</h2>\n{}<p data-key=\"verdict\">{}</p>\n\
             <h3>Calibration of the joint model on the holdout</h3>\n<div class=\"charts\">{}</div>{}",
            models_table(result, c).html(),
            esc(&contribution_text(result, c)),
            calibration_chart("Calibration (joint model)", &c.joint_calibration)?,
            calibration_table(&c.joint_calibration).html()
        );
    } else {
        out.push_str("<p>No joint model was fitted.</p>\n");
    }
    let _ = writeln!(
        out,
        "<h2>Audit</h2><p>Journal: <span data-key=\"journal\">{}</span>. Configuration SHA-256 \
         <code>{}</code>. Threat model: {}.</p></body></html>",
        esc(journal_status),
        esc(&result.config_hash),
        esc(fedseg_common::mpc::THREAT_MODEL)
    );
    Ok(out)
}

/// Each party's consenting customers brought to the intersection.
fn sizes_table(result: &VerticalJobResult) -> Table {
    let mut sizes = Table::new(&["party", "customers brought (consenting)"]);
    for (party, n) in &result.vertical.set_sizes {
        sizes.rows.push(vec![party.clone(), n.to_string()]);
    }
    sizes
}

/// The intersection's size and who learned what of it.
fn overlap_text(result: &VerticalJobResult) -> String {
    let v = &result.vertical;
    format!(
        "Shared customers: {} (minimum released: {}). Every party learned this size{}; \
         the coordinator relayed {} sealed bytes and saw no id.",
        v.intersection
            .map_or("below the minimum".into(), |n| n.to_string()),
        v.min_overlap,
        if v.overlap_only {
            " and nothing else (overlap only)"
        } else {
            ", and each which of its own customers are shared"
        },
        v.relayed_bytes.values().sum::<u64>()
    )
}

/// Both models' holdout quality, side by side.
fn models_table(result: &VerticalJobResult, c: &Contribution) -> Table {
    let mut models = Table::new(&[
        "model",
        "holdout AUC",
        "± s.e.",
        "log-loss",
        "top-decile lift",
    ])
    .key(1, "auc");
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
        format!("{} alone", result.vertical.label_holder),
        &c.label_holder_only,
    ));
    models
}

/// The verdict with its sampling error, and what each party holds.
fn contribution_text(result: &VerticalJobResult, c: &Contribution) -> String {
    let v = &result.vertical;
    format!(
        "On {} holdout customers, {}: AUC difference {:+.3}, standard error {:.3} \
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
    )
}
