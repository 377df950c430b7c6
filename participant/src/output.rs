//! This site's local results of a job: every customer's segment (and, once
//! the propensity model runs, score), written beside a copy of the job's
//! aggregate result. These files stay on the site's own disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::tasks::Site;

/// Writes `DIR/<job_id>/result.json` and, when the job segmented this
/// site's customers, `DIR/<job_id>/segments.csv`
/// (`customer_id,segment,segment_name`). Returns the job's directory.
pub fn write_job(
    dir: &Path,
    job_id: &str,
    site: Option<&Site>,
    result_json: &str,
) -> std::io::Result<PathBuf> {
    let dir = dir.join(job_id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("result.json"), result_json)?;
    let Some((site, segments)) = site.and_then(|s| Some((s, s.segments.as_ref()?))) else {
        return Ok(dir);
    };
    let result: serde_json::Value = serde_json::from_str(result_json).unwrap_or_default();
    let names: Vec<String> = result["segmentation"]["segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .map(|s| s["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("segments.csv"))?);
    writeln!(out, "customer_id,segment,segment_name")?;
    for (customer, &segment) in site.features.customers.iter().zip(segments) {
        let name = names.get(segment as usize).map_or("", String::as_str);
        writeln!(
            out,
            "{},{segment},{}",
            csv_field(&customer.id),
            csv_field(name)
        )?;
    }
    out.flush()?;
    Ok(dir)
}

/// Quotes a field when CSV needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
