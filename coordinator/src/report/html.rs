//! `report.html`: one self-contained page (inline CSS and SVG, no network),
//! written section by section.

use std::fmt::Write;

use super::charts::{calibration_chart, k_chart, profile_chart, unit_chart};
use super::{
    activity_table, ahp_line, calibration_table, campaign_table, candidates_table,
    coefficients_table, esc, members, participation_note, privacy_line, rounds_table,
    segments_table, skipped_note,
};
use crate::propensity::PropensityResult;
use crate::result::JobResult;

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The report as one self-contained HTML page (inline CSS and SVG, no
/// network): segments with profiles and playbooks, the propensity model
/// with its ROC curve and calibration chart, and the audit of every round
/// with `journal_status`, the result of verifying the journal.
pub fn html(
    result: &JobResult,
    journal_status: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut out = String::new();
    header(&mut out, result);
    segments(&mut out, result)?;
    if let Some(p) = &result.propensity {
        propensity(&mut out, result, p)?;
    }
    if let Some(m) = &result.migration {
        crate::series::report::html(&mut out, m)?;
    }
    audit(&mut out, result, journal_status);
    Ok(out)
}

/// The page's head (title and inline style) up to the open body.
pub(super) fn page_head(job_id: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>fedseg report: {id}</title><style>\
         body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th{{background:#f3f3f3}}td.t,th.t{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:1em}}\
         .seg{{border-left:4px solid #1f77b4;padding-left:1em;margin:1.5em 0}}</style></head><body>\n",
        id = esc(job_id)
    )
}

/// The page's head and the opening paragraph.
fn header(out: &mut String, result: &JobResult) {
    out.push_str(&page_head(&result.job_id));
    let _ = write!(
        out,
        "<h1>Joint customer segmentation and propensity model</h1>\n\
         <p>Job <code>{id}</code> as of {as_of}: <span data-key=\"customers\">{n}</span> consenting customers of \
         {sites} members ({cohort}); {excluded} customers who refused marketing were excluded at their own bank before \
         anything was computed.{participation}{skipped} Every number below comes from secure sums: no customer record left its bank.</p>\n",
        id = esc(&result.job_id),
        as_of = esc(&result.as_of),
        n = result.standardization.count,
        sites = members(result).len(),
        cohort = esc(&members(result).join(", ")),
        participation = esc(&participation_note(result)),
        excluded = result.census.excluded_no_consent,
        skipped = esc(&skipped_note(result)),
    );
}

/// Segments: charts, table, and each segment's playbook.
fn segments(out: &mut String, result: &JobResult) -> Drawn {
    let seg = &result.segmentation;
    let _ = writeln!(out, "<h2>Activity</h2>\n{}", activity_table(result).html());
    let _ = writeln!(
        out,
        "<h2>Segments</h2>\n<div class=\"charts\">{}{}</div>{}",
        profile_chart(result)?,
        k_chart(result)?,
        segments_table(result).html()
    );
    let _ = writeln!(
        out,
        "<p>k = {} ({}); segments merged for being under {} customers: {}. {}</p>",
        seg.k,
        esc(&seg.k_choice),
        seg.min_segment_size,
        seg.suppressed,
        ahp_line(result)
    );
    for s in &seg.segments {
        let _ = writeln!(
            out,
            "<div class=\"seg\"><h3>{} <small>({} customers)</small></h3><p>{}</p><ul>\
             <li><b>Product</b>: {}</li><li><b>Price</b>: {}</li><li><b>Channel</b>: {}</li><li><b>Promotion</b>: {}</li></ul>",
            esc(&s.name),
            s.size,
            esc(&s.summary),
            esc(&s.playbook.product),
            esc(&s.playbook.price),
            esc(&s.playbook.channel),
            esc(&s.playbook.promotion)
        );
        let refined: Vec<String> = s
            .refined
            .iter()
            .filter(|r| r.customers > 0.0)
            .map(|r| {
                format!(
                    "<li>{:.1}% <i>{}</i>: {}</li>",
                    100.0 * r.share,
                    esc(&r.name),
                    esc(&r.action)
                )
            })
            .collect();
        if !refined.is_empty() {
            let _ = writeln!(
                out,
                "<p>Customers without a purchase:</p><ul>{}</ul>",
                refined.join("")
            );
        }
        let _ = writeln!(out, "</div>");
    }
    let _ = writeln!(
        out,
        "<h3>Choice of k</h3>{}",
        candidates_table(result).html()
    );
    Ok(())
}

/// The propensity model: coefficients, and the holdout evaluation with its
/// charts.
fn propensity(out: &mut String, result: &JobResult, p: &PropensityResult) -> Drawn {
    let _ = writeln!(
        out,
        "<h2>Propensity model</h2><p>Logistic regression ({:?}, l2 = {}) on {} training customers, {} iterations, converged: <span data-key=\"converged\">{}</span>{}.</p>{}",
        p.optimizer,
        p.l2,
        p.training_count,
        p.iterations,
        p.converged,
        p.reason
            .as_ref()
            .map(|r| format!(" ({})", esc(r)))
            .unwrap_or_default(),
        coefficients_table(result, p).html()
    );
    if let Some(e) = &p.evaluation {
        let roc: Vec<(f64, f64)> = e.roc.iter().map(|p| (p[0], p[1])).collect();
        let _ = writeln!(
            out,
            "<p>On <span data-key=\"holdout\">{}</span> holdout customers: AUC <span data-key=\"auc\">{:.4}</span>, log-loss <span data-key=\"log_loss\">{:.4}</span>, top-decile lift {:.2}.</p><div class=\"charts\">{}{}</div>{}{}",
            e.count,
            e.auc,
            e.log_loss,
            e.top_decile_lift,
            unit_chart(
                &format!("ROC curve (AUC {:.3})", e.auc),
                "false positive rate",
                "true positive rate",
                &roc,
                false
            )?,
            calibration_chart("Calibration", &e.calibration)?,
            calibration_table(&e.calibration).html(),
            campaign_table(result, e).html()
        );
    }
    Ok(())
}

/// The audit: the journal's check, the configuration hash, privacy, and
/// every round.
fn audit(out: &mut String, result: &JobResult, journal_status: &str) {
    let _ = writeln!(
        out,
        "<h2>Audit</h2><p>Journal: <span data-key=\"journal\">{}</span>. Configuration SHA-256 <code>{}</code>.</p><p data-key=\"privacy\">{}</p>{}</body></html>",
        esc(journal_status),
        esc(&result.config_hash),
        esc(&privacy_line(result)),
        rounds_table(result).html()
    );
}
