//! The report's charts, drawn by plotters as inline SVG: segment profiles,
//! the choice of k, and the unit-square charts (ROC, calibration).

use fedseg_common::features::NAMES;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::propensity::CalibrationBin;
use crate::result::JobResult;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

pub(super) type Chart = Result<String, Box<dyn std::error::Error>>;

/// Each segment's mean z-score per feature (0 is the pooled mean).
pub(super) fn profile_chart(result: &JobResult) -> Chart {
    let seg = &result.segmentation;
    let z: Vec<Vec<f64>> = seg
        .centroids
        .iter()
        .map(|c| {
            c.iter()
                .zip(&seg.space_scale)
                .map(|(v, s)| if *s > 0.0 { v / s } else { 0.0 })
                .collect()
        })
        .collect();
    let top = z.iter().flatten().fold(0.5f64, |m, v| m.max(v.abs())) * 1.1;
    let k = z.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Segment profiles: mean z-score against the pooled mean (0)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..5f64, -top..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(11)
            .x_label_formatter(&|x| {
                // Ticks fall every half unit; a feature's group is centred
                // on j + 0.5.
                if (x - x.floor() - 0.5).abs() < 1e-6 {
                    NAMES
                        .get(x.floor() as usize)
                        .map_or(String::new(), |n| n.to_string())
                } else {
                    String::new()
                }
            })
            .y_desc("z-score")
            .draw()?;
        let width = 0.8 / k as f64;
        for (s, values) in z.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let name = seg
                .segments
                .get(s)
                .map_or(String::new(), |x| x.name.clone());
            chart
                .draw_series(values.iter().enumerate().map(|(j, v)| {
                    let x0 = j as f64 + 0.1 + s as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// A line chart of `points` with the diagonal, on the unit square.
pub(super) fn unit_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    dots: bool,
) -> Chart {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (370, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        line(&mut chart, points, dots)?;
        root.present()?;
    }
    Ok(svg)
}

/// A calibration chart: mean predicted against observed rate, per
/// non-empty bin.
pub(super) fn calibration_chart(title: &str, bins: &[CalibrationBin]) -> Chart {
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter(|b| b.count > 0.0)
        .map(|b| (b.mean_predicted, b.observed_rate))
        .collect();
    unit_chart(title, "mean predicted", "observed rate", &points, true)
}

/// Inertia (the elbow) per candidate k.
pub(super) fn k_chart(result: &JobResult) -> Chart {
    let c = &result.segmentation.candidates;
    let (lo, hi) = (
        c.first().map_or(1, |x| x.k) as f64,
        c.last().map_or(2, |x| x.k) as f64,
    );
    let top = c.iter().fold(0.0f64, |m, x| m.max(x.inertia)) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (370, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Inertia by k (elbow)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d((lo - 0.5)..(hi + 0.5), 0f64..top.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("k")
            .y_desc("inertia")
            .draw()?;
        let points: Vec<(f64, f64)> = c.iter().map(|x| (x.k as f64, x.inertia)).collect();
        line(&mut chart, &points, true)?;
        root.present()?;
    }
    Ok(svg)
}

/// `points` as a line, with a dot on each point when `dots`.
fn line(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: &[(f64, f64)],
    dots: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        PALETTE[0].stroke_width(2),
    ))?;
    if dots {
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 4, PALETTE[1].filled())),
        )?;
    }
    Ok(())
}
