//! The reports of a campaign evaluation: `report.md`, and `report.html`
//! with the uplift per segment as a chart (each segment's measured uplift
//! with its interval), saying plainly where the campaign did nothing
//! measurable and which groups were withheld as too small.

use std::fmt::Write;

use plotters::prelude::*;

use super::estimate::{Estimate, Verdict};
use super::{CampaignResult, SegmentEstimate};
use crate::report::esc;

fn percent(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn interval(v: Option<[f64; 2]>, scale: f64, unit: &str) -> String {
    v.map_or("–".into(), |[lo, hi]| {
        format!("{:.1}{unit} to {:.1}{unit}", lo * scale, hi * scale)
    })
}

fn count(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0}"))
}

/// What an estimate says, in plain words.
fn words(label: &str, e: &Estimate, confidence: f64) -> String {
    let level = format!("{:.0}%", confidence * 100.0);
    match e.verdict {
        Verdict::Uplift => format!(
            "{label}: the campaign raised conversion by {} points ({level} interval {} points), \
             about {:.0} conversions it added.",
            percent(e.uplift).trim_end_matches('%'),
            interval(e.uplift_ci, 100.0, ""),
            e.incremental_conversions.unwrap_or(0.0)
        ),
        Verdict::Harm => format!(
            "{label}: the campaign LOWERED conversion by {} points ({level} interval {} points).",
            percent(e.uplift.map(|u| -u)).trim_end_matches('%'),
            interval(e.uplift_ci, 100.0, "")
        ),
        Verdict::NoMeasurableEffect => format!(
            "{label}: the campaign did nothing measurable: {} treated against {} in control, \
             a difference of {} points whose {level} interval ({} points) includes zero.",
            percent(e.conversion_treated),
            percent(e.conversion_control),
            percent(e.uplift).trim_end_matches('%'),
            interval(e.uplift_ci, 100.0, "")
        ),
        Verdict::Suppressed => format!(
            "{label}: withheld: its treatment or control group is below the small-cell minimum."
        ),
    }
}

fn table_rows(result: &CampaignResult) -> Vec<[String; 9]> {
    let row = |label: String, e: &Estimate| {
        [
            label,
            count(e.treated),
            count(e.control),
            percent(e.conversion_treated),
            percent(e.conversion_control),
            percent(e.uplift),
            interval(e.uplift_ci, 100.0, "%"),
            interval(e.relative_uplift_ci, 100.0, "%"),
            e.incremental_conversions
                .map_or("–".into(), |v| format!("{v:.0}")),
        ]
    };
    let c = &result.campaign;
    let mut rows: Vec<[String; 9]> = c
        .segments
        .iter()
        .filter(|s| s.targeted)
        .map(|s| row(s.name.clone(), &s.estimate))
        .collect();
    rows.push(row("all customers on the lists".into(), &c.total));
    // The chosen score deciles, highest first.
    let lowest = fedseg_common::campaign::DECILES + 1 - c.settings.top_deciles as usize;
    rows.extend(
        c.deciles
            .iter()
            .rev()
            .filter(|d| d.decile >= lowest)
            .map(|d| row(format!("score decile {}", d.decile), &d.estimate)),
    );
    rows
}

const HEADERS: [&str; 9] = [
    "segment or decile",
    "treated",
    "control",
    "conversion (treated)",
    "conversion (control)",
    "uplift",
    "uplift interval",
    "relative uplift interval",
    "incremental conversions",
];

/// The findings in words, one line per targeted segment and the total.
fn findings(result: &CampaignResult) -> Vec<String> {
    let c = &result.campaign;
    let mut lines: Vec<String> = c
        .segments
        .iter()
        .filter(|s| s.targeted)
        .map(|s| {
            words(
                &format!("Segment {}", s.name),
                &s.estimate,
                c.settings.confidence,
            )
        })
        .collect();
    lines.push(words("Overall", &c.total, c.settings.confidence));
    if let Some(noise) = &c.noise {
        lines.push(format!(
            "Counts carry differential-privacy noise of standard deviation {:.2} each \
             (ρ {:.4}); the intervals do not include it.",
            noise.count_sd, noise.rho
        ));
    }
    if c.missing_outcomes > 0.0 {
        lines.push(format!(
            "{:.0} customers on the lists had no outcome row and were left out.",
            c.missing_outcomes
        ));
    }
    lines
}

/// `report.md`.
pub fn markdown(result: &CampaignResult) -> String {
    let c = &result.campaign;
    let mut out = format!(
        "# Campaign evaluation: {}\n\nJob `{}`; lists drawn from model `{}` (top {} score deciles, \
         {:.0}% held back as control, seed {}); members {}. Every count comes from one secure sum: \
         no customer's list assignment or outcome left its bank.\n\n## Findings\n\n",
        c.settings.name,
        result.job_id,
        c.settings.model,
        c.settings.top_deciles,
        100.0 * c.settings.control,
        c.settings.seed,
        result.took_part.join(", ")
    );
    for line in findings(result) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = write!(
        out,
        "\n## Uplift per segment and score decile\n\n| {} |\n|",
        HEADERS.join(" | ")
    );
    out.push_str(&"---|".repeat(HEADERS.len()));
    out.push('\n');
    for row in table_rows(result) {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    let _ = write!(
        out,
        "\nGroups with fewer than {} treated or control customers are withheld. Method: {}.\n",
        c.min_cell, c.method
    );
    out
}

/// A one-paragraph summary for the terminal.
pub fn summary(result: &CampaignResult) -> String {
    findings(result).join("\n")
}

/// `report.html`: the findings, the chart and the table.
pub fn html(result: &CampaignResult) -> Result<String, Box<dyn std::error::Error>> {
    let c = &result.campaign;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fedseg campaign: \
         {name}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;\
         text-align:right}}th{{background:#f3f3f3}}td.t,th.t{{text-align:left}}</style></head><body>\n\
         <h1>Campaign evaluation: {name}</h1>\n<ul>",
        name = esc(&c.settings.name)
    );
    for line in findings(result) {
        let _ = write!(out, "<li>{}</li>", esc(&line));
    }
    out.push_str("</ul>\n");
    out.push_str(&uplift_chart(&c.segments)?);
    out.push_str("<table><tr>");
    for (i, h) in HEADERS.iter().enumerate() {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if i == 0 { " class=\"t\"" } else { "" },
            h
        );
    }
    out.push_str("</tr>");
    for row in table_rows(result) {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i == 0 { " class=\"t\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    let _ = write!(
        out,
        "</table>\n<p>Method: {}.</p>\n</body></html>\n",
        esc(c.method)
    );
    Ok(out)
}

/// Each targeted segment's uplift (percentage points) with its interval;
/// withheld segments are left out.
fn uplift_chart(segments: &[SegmentEstimate]) -> Result<String, Box<dyn std::error::Error>> {
    let shown: Vec<(&str, f64, [f64; 2])> = segments
        .iter()
        .filter(|s| s.targeted)
        .filter_map(|s| {
            let e = &s.estimate;
            Some((
                s.name.as_str(),
                e.uplift? * 100.0,
                e.uplift_ci?.map(|v| v * 100.0),
            ))
        })
        .collect();
    let top = shown
        .iter()
        .fold(1.0f64, |m, (_, _, [lo, hi])| m.max(lo.abs()).max(hi.abs()))
        * 1.15;
    let n = shown.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Uplift per segment (percentage points) with its interval",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..n as f64, -top..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(2 * n + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 1e-6 {
                    shown.get(i).map_or(String::new(), |s| s.0.to_string())
                } else {
                    String::new()
                }
            })
            .y_desc("points")
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(0.0, 0.0), (n as f64, 0.0)],
            BLACK.mix(0.5),
        ))?;
        for (i, (_, uplift, [lo, hi])) in shown.iter().enumerate() {
            let x = i as f64;
            let colour = if *lo > 0.0 {
                RGBColor(44, 160, 44)
            } else if *hi < 0.0 {
                RGBColor(214, 39, 40)
            } else {
                RGBColor(127, 127, 127)
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.25, 0.0), (x + 0.75, *uplift)],
                colour.filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x + 0.5, *lo), (x + 0.5, *hi)],
                BLACK.stroke_width(2),
            )))?;
        }
        root.present()?;
    }
    Ok(svg)
}
