//! Segment migration at this site: for a job of a series, each consenting
//! customer's segment now (its nearest of the job's final centroids) is
//! paired with its segment in the series' previous job, which this site
//! kept in its own scores file of that job (`<output>/<job>/scores.csv`).
//! Only the counts per pair leave, inside the secure sum.

use std::collections::HashMap;
use std::path::Path;

use fedseg_common::computation::migration;
use fedseg_common::features::{self, DIM};
use fedseg_common::proto;
use fedseg_common::wire;

use crate::config::ParticipantConfig;
use crate::tasks::{Site, TaskError};

/// Reads `customer_id → segment` from a job's local scores file.
fn previous_segments(path: &Path, segments: usize) -> Result<HashMap<String, usize>, TaskError> {
    let failed = |reason: String| {
        TaskError::Request(format!(
            "the previous job's segments {}: {reason}",
            path.display()
        ))
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| failed(e.to_string()))?;
    let mut out = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| failed(e.to_string()))?;
        let segment = record
            .get(1)
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|s| *s < segments)
            .ok_or_else(|| failed(format!("line {}: no segment below {segments}", i + 2)))?;
        let id = record.get(0).unwrap_or_default().to_string();
        out.insert(id, segment);
    }
    Ok(out)
}

/// This site's migration vector for `request`.
pub fn migration(
    config: &ParticipantConfig,
    site: &Site,
    request: &proto::Migration,
) -> Result<Vec<f64>, TaskError> {
    let space = wire::space_from_wire(request.space.as_ref())
        .map_err(|e| TaskError::Request(e.to_string()))?;
    let run = request
        .centroids
        .as_ref()
        .ok_or(TaskError::Missing("centroids"))?;
    let k = run.k as usize;
    let p = request.previous_segments as usize;
    if k == 0
        || run.centroids.len() != k * DIM
        || p == 0
        || p > fedseg_common::campaign::MAX_SEGMENTS
    {
        return Err(TaskError::Request(format!(
            "a migration of {p} segments to {k} with {} coordinates",
            run.centroids.len()
        )));
    }
    if !fedseg_common::campaign::is_plain_name(&request.previous_job) {
        return Err(TaskError::Request("the previous job's id".into()));
    }
    let path = config.output.join(&request.previous_job).join("scores.csv");
    // A site that did not take part in the previous job has no record of
    // it: its customers are counted as having joined, and the series job
    // goes on for everyone.
    let mut previous = if path.exists() {
        previous_segments(&path, p)?
    } else {
        HashMap::new()
    };
    let mut out = vec![0.0; migration::length(p, k)];
    for (i, customer) in site.features.customers.iter().enumerate() {
        let now = features::nearest(&space.project(site.point(i)), &run.centroids).0;
        let before = previous.remove(&customer.id);
        migration::add(&mut out, k, before, Some(now), p);
    }
    for before in previous.into_values() {
        migration::add(&mut out, k, Some(before), None, p);
    }
    Ok(out)
}
