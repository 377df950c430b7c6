//! The human-readable reports of a job, written beside `result.json`: what
//! the consortium found, segment by segment, with each segment's playbook,
//! the propensity model, and what every round released. `report.md` for a
//! terminal or a repository; `report.html`, self-contained with charts drawn
//! by plotters as inline SVG, for the marketing and compliance teams.

mod charts;
mod html;
mod vertical;

use std::fmt::Write;

use fedseg_common::features::NAMES;

use crate::propensity::{CalibrationBin, Evaluation, PropensityResult};
use crate::result::JobResult;

pub use html::html;
pub use vertical::{vertical_html, vertical_markdown, vertical_summary};

/// What a coefficient of column `name` means.
fn segment_meaning(result: &JobResult, name: &str) -> String {
    let segments = &result.segmentation.segments;
    match name
        .strip_prefix("segment ")
        .and_then(|i| i.parse::<usize>().ok())
    {
        Some(i) => format!(
            "odds multiplier for {} against {} (the first segment)",
            segments.get(i).map_or(name, |s| s.name.as_str()),
            segments
                .first()
                .map_or("the first segment", |s| s.name.as_str())
        ),
        None => format!("odds multiplier per standard deviation more {name}"),
    }
}

/// A table both reports show: headers, then rows of cells. A column may
/// carry a key, which the HTML report writes as `data-key` so tools (and
/// tests) can find a number without parsing prose.
struct Table {
    headers: Vec<&'static str>,
    keys: Vec<Option<&'static str>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            keys: vec![None; headers.len()],
            rows: vec![],
        }
    }

    fn key(mut self, column: usize, key: &'static str) -> Self {
        self.keys[column] = Some(key);
        self
    }

    fn markdown(&self) -> String {
        let mut out = format!("| {} |\n|", self.headers.join(" | "));
        for i in 0..self.headers.len() {
            out.push_str(if i == 0 { "---|" } else { "---:|" });
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }

    /// The first column is text (left-aligned), the others numbers.
    fn html(&self) -> String {
        let cell = |i: usize| if i == 0 { " class=\"t\"" } else { "" };
        let mut out = String::from("<table><tr>");
        for (i, h) in self.headers.iter().enumerate() {
            let _ = write!(out, "<th{}>{}</th>", cell(i), esc(h));
        }
        out.push_str("</tr>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, value) in row.iter().enumerate() {
                let key = self.keys[i]
                    .map(|k| format!(" data-key=\"{k}\""))
                    .unwrap_or_default();
                let _ = write!(out, "<td{}{key}>{}</td>", cell(i), esc(value));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        out
    }
}

fn segments_table(result: &JobResult) -> Table {
    let mut table = Table::new(&[
        "segment",
        "customers",
        "R days",
        "F",
        "M",
        "L days",
        "T",
        "profile (R F M L T)",
        "conversion",
    ])
    .key(1, "size");
    for s in &result.segmentation.segments {
        let profile: Vec<&str> = NAMES.iter().map(|&n| s.profile[n].as_str()).collect();
        table.rows.push(vec![
            s.name.clone(),
            s.size.to_string(),
            format!("{:.0}", s.means["R"]),
            format!("{:.1}", s.means["F"]),
            format!("{:.0}", s.means["M"]),
            format!("{:.0}", s.means["L"]),
            format!("{:.1}", s.means["T"]),
            profile.join(" "),
            format!("{:.1}%", 100.0 * s.conversion_rate),
        ]);
    }
    table
}

fn candidates_table(result: &JobResult) -> Table {
    let mut table = Table::new(&[
        "k",
        "inertia",
        "Calinski-Harabasz",
        "Lloyd steps",
        "converged",
    ]);
    for c in &result.segmentation.candidates {
        table.rows.push(vec![
            c.k.to_string(),
            format!("{:.1}", c.inertia),
            format!("{:.1}", c.calinski_harabasz),
            c.iterations.to_string(),
            c.converged.to_string(),
        ]);
    }
    table
}

fn coefficients_table(result: &JobResult, p: &PropensityResult) -> Table {
    let mut table = Table::new(&["column", "coefficient", "odds ratio", "meaning"]);
    table.rows.push(vec![
        "intercept".into(),
        format!("{:.4}", p.intercept),
        format!("{:.3}", p.intercept.exp()),
        "odds of converting for an average customer of the first segment".into(),
    ]);
    for (name, c) in p.features.iter().zip(&p.coefficients) {
        table.rows.push(vec![
            name.clone(),
            format!("{c:.4}"),
            format!("{:.3}", c.exp()),
            segment_meaning(result, name),
        ]);
    }
    table
}

/// Customers per lifecycle stage by recency, over the consortium.
fn activity_table(result: &JobResult) -> Table {
    let mut table = Table::new(&["last purchase", "customers"]);
    for band in &result.activity {
        table.rows.push(vec![
            band.band.to_string(),
            format!("{:.0}", band.customers),
        ]);
    }
    table
}

fn calibration_table(bins: &[CalibrationBin]) -> Table {
    let mut table = Table::new(&["predicted", "customers", "mean predicted", "observed"]);
    for b in bins {
        table.rows.push(vec![
            format!("{:.1}–{:.1}", b.lo, b.hi),
            b.count.to_string(),
            format!("{:.3}", b.mean_predicted),
            format!("{:.3}", b.observed_rate),
        ]);
    }
    table
}

fn campaign_table(result: &JobResult, e: &Evaluation) -> Table {
    let mut table = Table::new(&[
        "segment",
        "holdout customers",
        "conversion",
        "in top decile",
        "conversion in top decile",
    ]);
    for c in &e.campaign {
        let name = result
            .segmentation
            .segments
            .get(c.segment)
            .map_or("all", |s| s.name.as_str());
        table.rows.push(vec![
            name.to_string(),
            c.size.to_string(),
            format!("{:.1}%", 100.0 * c.conversion_rate),
            format!("{:.1}%", 100.0 * c.top_decile_share),
            format!("{:.1}%", 100.0 * c.top_decile_conversion_rate),
        ]);
    }
    table
}

fn rounds_table(result: &JobResult) -> Table {
    let dp = result.privacy.dp;
    let mut headers = vec!["released", "round", "outcome", "took part", "dropped"];
    if dp {
        headers.extend(["ρ spent", "noise sd on a count"]);
    }
    let mut table = Table::new(&headers);
    for r in &result.rounds {
        let mut row = vec![
            r.purpose.clone(),
            r.round.to_string(),
            r.outcome.to_string(),
            r.survivors.join(", "),
            r.dropped.join(", "),
        ];
        if dp {
            let show = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_default();
            row.push(show(r.rho, |v| format!("{v:.2e}")));
            row.push(show(r.count_noise_sd, |v| format!("{v:.1}")));
        }
        table.rows.push(row);
    }
    table
}

/// What differential privacy did for this job, in plain words.
fn privacy_line(result: &JobResult) -> String {
    let p = &result.privacy;
    let (Some(epsilon), Some(delta), Some(clip)) = (p.epsilon, p.delta, p.clip) else {
        return "Differential privacy: off. Every released sum is exact; the secure sum hides each bank's contribution, not what the totals say about customers.".into();
    };
    format!(
        "Differential privacy: on. The releases spent ε = {epsilon:.3} at δ = {delta:e} (ρ = {:.4} in zCDP) of a budget of ε = {}, over {} releases (planned {}). Each customer's R, F, M, L, T are clipped to at most {} days, {} purchases, {} spent, {} days and {} interactions before anything is summed, and every bank adds discrete Gaussian noise, so no release says much about any one customer; the cost is noise on every released number (its standard deviation on a count is in the rounds table).",
        p.rho.unwrap_or_default(),
        p.budget_epsilon.unwrap_or_default(),
        result.secure_sum_rounds,
        p.planned_releases.unwrap_or_default(),
        clip[0],
        clip[1],
        clip[2],
        clip[3],
        clip[4]
    )
}

fn ahp_line(result: &JobResult) -> String {
    format!(
        "AHP weights R, F, M, L, T: {} (consistency ratio {:.3}).",
        result
            .ahp
            .weights
            .iter()
            .map(|w| format!("{:.1}%", 100.0 * w))
            .collect::<Vec<_>>()
            .join(", "),
        result.ahp.consistency_ratio
    )
}

/// A few lines for the terminal.
pub fn summary(result: &JobResult) -> String {
    let seg = &result.segmentation;
    let mut out = format!(
        "job {}: {:.0} customers of {} sites ({}) in {} segments ({} secure-sum rounds)",
        result.job_id,
        result.standardization.count,
        members(result).len(),
        members(result).join(", "),
        seg.k,
        result.secure_sum_rounds
    );
    let note = participation_note(result);
    if !note.is_empty() {
        let _ = write!(out, "\n {note}");
    }
    for s in &seg.segments {
        let _ = write!(
            out,
            "\n  {:<20} {:>9.0} customers  conversion {:>5.1}%",
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
        "As of {}, over {} consenting customers of {} members ({}); {} customers who refused marketing were excluded at their own site before anything was computed.{}{} Configuration SHA-256 `{}`.\n",
        result.as_of,
        std.count,
        members(result).len(),
        members(result).join(", "),
        result.census.excluded_no_consent,
        participation_note(result),
        skipped_note(result),
        result.config_hash
    );
    let _ = writeln!(out, "## Activity\n\n{}", activity_table(result).markdown());
    let _ = writeln!(out, "## Segments\n\n{}", segments_table(result).markdown());
    let _ = writeln!(
        out,
        "Pooled means (transformed: R, log1p F, log1p M, L, T): {:?}. Chosen k = {} ({}); segments merged for being under {} customers: {}.\n",
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
    let _ = writeln!(
        out,
        "## Choice of k\n\n{}\n{}\n",
        candidates_table(result).markdown(),
        ahp_line(result)
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
        let _ = writeln!(out, "{}", coefficients_table(result, p).markdown());
        if let Some(e) = &p.evaluation {
            let _ = writeln!(
                out,
                "On {} holdout customers: AUC {:.4}, log-loss {:.4}, top-decile lift {:.2}.\n",
                e.count, e.auc, e.log_loss, e.top_decile_lift
            );
            let _ = writeln!(out, "{}", calibration_table(&e.calibration).markdown());
            let _ = writeln!(out, "{}", campaign_table(result, e).markdown());
        }
    }
    if let Some(m) = &result.migration {
        let _ = writeln!(out, "{}", crate::series::report::markdown(m));
    }
    let _ = writeln!(
        out,
        "## Rounds\n\n{}\n\n{}",
        privacy_line(result),
        rounds_table(result).markdown()
    );
    out
}

/// The sentence on bad rows the sites skipped, if any were.
/// The members whose data is in the result: those whose input is in a
/// released sum (the whole cohort for a result written before that was
/// recorded).
fn members(result: &JobResult) -> &[String] {
    if result.took_part.is_empty() {
        &result.cohort
    } else {
        &result.took_part
    }
}

/// Who declined and who dropped out, as sentences (empty when every
/// member took part throughout).
fn participation_note(result: &JobResult) -> String {
    let mut out = String::new();
    for d in &result.declined {
        let _ = write!(
            out,
            " {} declined the job and contributed nothing: {}.",
            d.participant, d.reason
        );
    }
    for d in &result.dropped_out {
        let _ = write!(
            out,
            " {} stopped contributing at round {} ({}): {} released sums leave its customers out{}, so counts from that step on differ from the census.",
            d.participant,
            d.round,
            d.purpose,
            d.rounds_missed,
            if d.back_by_end {
                "; it was back by the end"
            } else {
                ""
            }
        );
    }
    out
}

fn skipped_note(result: &JobResult) -> String {
    match result.census.skipped_rows {
        Some(n) if n > 0.0 => format!(
            " {n} bad rows were skipped under the members' own bad-row policies (the count per reason stays at each site)."
        ),
        _ => String::new(),
    }
}

/// Escapes text for HTML.
/// `text` escaped for HTML.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
