//! The migration section of a series job's reports: the matrix as a table
//! (report.md) and a heat map (report.html), the segment sizes over the
//! series, and the playbook for the customers who moved.

use std::fmt::Write;

use fedseg_common::series::Migration;
use plotters::prelude::*;

use crate::report::esc;

fn cell(v: Option<f64>) -> String {
    v.map_or("suppressed".into(), |v| format!("{v:.0}"))
}

/// The section for `report.md`.
pub fn markdown(m: &Migration) -> String {
    let mut out = format!("\n## Series {}\n\n", m.series);
    let Some(previous) = &m.previous_job else {
        out.push_str("The first job of the series: no migration yet.\n");
        return out;
    };
    let _ = writeln!(
        out,
        "Customers by segment in the previous job `{previous}` (rows) and now (columns); \
         counts under {} are suppressed.\n",
        m.min_cell
    );
    let _ = write!(
        out,
        "| previous \\ now | {} | left |\n|",
        m.segments.join(" | ")
    );
    out.push_str(&"---|".repeat(m.segments.len() + 2));
    out.push('\n');
    for (i, row) in m.matrix.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|v| cell(*v)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            m.previous_segments[i],
            cells.join(" | "),
            cell(m.left[i])
        );
    }
    let joined: Vec<String> = m.joined.iter().map(|v| cell(*v)).collect();
    let _ = writeln!(out, "| joined | {} | |", joined.join(" | "));
    if let Some(sd) = m.noise_sd {
        let _ = writeln!(
            out,
            "\nEvery count carries differential-privacy noise of standard deviation {sd:.2}."
        );
    }
    out.push_str("\nSegments now and what they continue: ");
    let continued: Vec<String> = m
        .segments
        .iter()
        .zip(&m.matched)
        .map(|(name, matched)| match matched {
            Some(j) => format!("{name} (continues {})", m.previous_segments[*j]),
            None => format!("{name} (new)"),
        })
        .collect();
    let _ = writeln!(out, "{}.", continued.join(", "));
    out.push_str("\n### Customers who moved\n\n");
    if m.movers.is_empty() {
        out.push_str("No flow between two segments reached the small-cell minimum.\n");
    } else {
        for mv in &m.movers {
            let _ = writeln!(
                out,
                "- {:.0} from {} to {}: {}",
                mv.customers, mv.from, mv.to, mv.playbook
            );
        }
    }
    out.push_str("\n### Segment sizes over the series\n\n| job | as of | sizes |\n|---|---|---|\n");
    for job in &m.history {
        let sizes: Vec<String> = job
            .segments
            .iter()
            .zip(&job.sizes)
            .map(|(n, s)| format!("{n} {s:.0}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            job.job_id,
            job.as_of,
            sizes.join(", ")
        );
    }
    out
}

/// The section for `report.html`: the heat map and the sizes chart.
pub fn html(out: &mut String, m: &Migration) -> Result<(), Box<dyn std::error::Error>> {
    let _ = writeln!(out, "<h2>Series {}</h2>", esc(&m.series));
    let text = markdown(m);
    if m.previous_job.is_some() {
        out.push_str(&heat_map(m)?);
    }
    out.push_str(&sizes_chart(m)?);
    let _ = writeln!(out, "<pre>{}</pre>", esc(&text));
    Ok(())
}

/// The migration matrix as a heat map (suppressed cells blank).
fn heat_map(m: &Migration) -> Result<String, Box<dyn std::error::Error>> {
    let (rows, columns) = (m.previous_segments.len(), m.segments.len());
    let top = m
        .matrix
        .iter()
        .flatten()
        .flatten()
        .fold(1.0f64, |a, &b| a.max(b));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 60 + 50 * rows as u32 + 60))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Migration: previous segment (rows) to segment now (columns)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(140)
            .build_cartesian_2d(0f64..columns as f64, 0f64..rows as f64)?;
        let label = |names: &[String], x: f64| {
            if (x - x.floor() - 0.5).abs() < 1e-6 {
                names.get(x.floor() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let reversed: Vec<String> = m.previous_segments.iter().rev().cloned().collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * columns + 1)
            .y_labels(2 * rows + 1)
            .x_label_formatter(&|x| label(&m.segments, *x))
            .y_label_formatter(&|y| label(&reversed, *y))
            .draw()?;
        for (i, row) in m.matrix.iter().enumerate() {
            let y = (rows - 1 - i) as f64;
            for (j, v) in row.iter().enumerate() {
                let Some(v) = v else { continue };
                let shade = 1.0 - 0.85 * (v / top);
                let colour = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
                let x = j as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    colour.filled(),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    format!("{v:.0}"),
                    (x + 0.45, y + 0.55),
                    ("sans-serif", 13),
                )))?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// Each segment name's size over the jobs of the series.
fn sizes_chart(m: &Migration) -> Result<String, Box<dyn std::error::Error>> {
    let jobs = m.history.len().max(1);
    let top = m
        .history
        .iter()
        .flat_map(|j| j.sizes.iter().copied())
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut names: Vec<&String> = m.history.iter().flat_map(|j| &j.segments).collect();
    names.sort();
    names.dedup();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Segment sizes over the series", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(jobs as f64 - 0.5), 0f64..top)?;
        chart
            .configure_mesh()
            .x_labels(jobs)
            .x_label_formatter(&|x| {
                m.history
                    .get(x.round() as usize)
                    .map_or(String::new(), |j| j.as_of.clone())
            })
            .draw()?;
        for (n, name) in names.iter().enumerate() {
            let colour = Palette99::pick(n).to_rgba();
            let points: Vec<(f64, f64)> = m
                .history
                .iter()
                .enumerate()
                .filter_map(|(x, j)| {
                    let at = j.segments.iter().position(|s| s == *name)?;
                    Some((x as f64, j.sizes[at]))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
