//! Series of segmentation jobs (`series = "..."` in `job.toml`): the
//! coordinator keeps each finished job's released segments (names, groups,
//! sizes, centroids and clustering space) in `series/<name>.json` beside
//! its journal ([`History`]). The next job of the series matches its
//! segments to the previous job's by centroid ([`matching`]), so a segment
//! that continues keeps its name, and secure-sums the migration matrix
//! (previous segment × segment now, joined, left) from every site's own
//! record of its customers' previous segments ([`migrate`]).

pub mod matching;
pub mod report;

use std::path::{Path, PathBuf};

use fedseg_common::computation::{LayoutError, migration};
use fedseg_common::features::{DIM, Space};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use fedseg_common::result::{JobResult, SegmentationResult};
use fedseg_common::series::{Migration, Movers, SeriesSizes};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{CoordinatorConfig, Job};
use crate::release::{ReleaseError, Releases, wire_space};

/// Why a series step failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// The history file cannot be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The migration sum was not released.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The released sum does not fit its layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// One finished job of a series, as the next job needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The job.
    pub job_id: String,
    /// Its reference date.
    pub as_of: String,
    /// Segment names, in order.
    pub segments: Vec<String>,
    /// Each segment's seed group.
    pub groups: Vec<String>,
    /// Their sizes.
    pub sizes: Vec<f64>,
    /// Final centroids in the job's clustering space, one per segment.
    pub centroids: Vec<Vec<f64>>,
    /// The job's clustering space (bounds included).
    pub space: Space,
}

/// Every finished job of one series, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The series.
    pub series: String,
    /// Its jobs.
    pub jobs: Vec<Entry>,
}

fn file(config: &CoordinatorConfig, series: &str) -> PathBuf {
    let dir = config.journal.parent().unwrap_or(Path::new("."));
    dir.join("series").join(format!("{series}.json"))
}

impl History {
    /// The history of `job`'s series (empty for its first job), or none
    /// when the job belongs to no series.
    pub fn load(config: &CoordinatorConfig, job: &Job) -> Result<Option<Self>, SeriesError> {
        let Some(series) = &job.config.series else {
            return Ok(None);
        };
        let path = file(config, series);
        let failed = |reason: String| SeriesError::File {
            path: path.clone(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| failed(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(History {
                series: series.clone(),
                jobs: vec![],
            })),
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// The previous job of the series for job `job_id`: the one recorded
    /// before it when the job is run again, else the last one.
    pub fn previous(&self, job_id: &str) -> Option<&Entry> {
        match self.jobs.iter().position(|e| e.job_id == job_id) {
            Some(at) => at.checked_sub(1).map(|p| &self.jobs[p]),
            None => self.jobs.last(),
        }
    }

    /// The jobs before `job_id` (all of them when it is not recorded).
    fn before(&self, job_id: &str) -> &[Entry] {
        let end = self
            .jobs
            .iter()
            .position(|e| e.job_id == job_id)
            .unwrap_or(self.jobs.len());
        &self.jobs[..end]
    }

    /// Records a finished job of the series (replacing an earlier record of
    /// the same job) and writes the file.
    pub fn record(config: &CoordinatorConfig, result: &JobResult) -> Result<(), SeriesError> {
        let Some(m) = &result.migration else {
            return Ok(());
        };
        let path = file(config, &m.series);
        let failed = |reason: String| SeriesError::File {
            path: path.clone(),
            reason,
        };
        let mut history = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?,
            Err(_) => History {
                series: m.series.clone(),
                jobs: vec![],
            },
        };
        let seg = &result.segmentation;
        let st = &result.standardization;
        let entry = Entry {
            job_id: result.job_id.clone(),
            as_of: result.as_of.clone(),
            segments: seg.segments.iter().map(|s| s.name.clone()).collect(),
            groups: seg.segments.iter().map(|s| s.group.clone()).collect(),
            sizes: seg.sizes.clone(),
            centroids: seg.centroids.clone(),
            space: Space {
                mean: st.mean,
                std: st.std,
                scale: seg.space_scale,
                lo: st.clip_lo,
                hi: st.clip_hi,
            },
        };
        // A job run again keeps its place in the series.
        match history.jobs.iter().position(|e| e.job_id == result.job_id) {
            Some(at) => history.jobs[at] = entry,
            None => history.jobs.push(entry),
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(&history).expect("a history serialises") + "\n";
        std::fs::write(&path, text).map_err(|e| failed(e.to_string()))
    }
}

/// Matches `segmentation`'s segments to the previous job's of `history`
/// (renaming those that continue one), secure-sums the migration matrix
/// when there is a previous job, and returns the `migration` block.
pub async fn migrate(
    releases: &mut Releases<'_, '_>,
    job: &Job,
    space: &Space,
    centroids: &[f64],
    segmentation: &mut SegmentationResult,
    history: &History,
) -> Result<Migration, SeriesError> {
    let k = segmentation.segments.len();
    let min = job.config.segmentation.min_segment_size;
    let mut history_sizes: Vec<SeriesSizes> = history
        .before(&job.id)
        .iter()
        .map(|e| SeriesSizes {
            job_id: e.job_id.clone(),
            as_of: e.as_of.clone(),
            segments: e.segments.clone(),
            sizes: e.sizes.clone(),
        })
        .collect();
    let mut block = Migration {
        series: history.series.clone(),
        previous_job: None,
        previous_segments: vec![],
        segments: vec![],
        matched: vec![None; k],
        match_distance: vec![None; k],
        matrix: vec![],
        joined: vec![],
        left: vec![],
        min_cell: min,
        noise_sd: None,
        movers: vec![],
        history: vec![],
    };
    if let Some(previous) = history.previous(&job.id) {
        let matches = matching::match_segments(previous, space, centroids);
        let names: Vec<String> = segmentation
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let renamed = matching::stable_names(&names, &matches, &previous.segments);
        for (segment, name) in segmentation.segments.iter_mut().zip(&renamed) {
            segment.name = name.clone();
        }
        block.matched = matches.iter().map(|m| m.map(|(j, _)| j)).collect();
        block.match_distance = matches.iter().map(|m| m.map(|(_, d)| d)).collect();
        let p = previous.segments.len();
        let released = releases
            .release(
                "migration",
                Kind::Migration(proto::Migration {
                    as_of: job.config.as_of.clone(),
                    space: Some(wire_space(space)),
                    centroids: Some(proto::KMeansRun {
                        k: k as u32,
                        centroids: centroids.to_vec(),
                    }),
                    previous_job: previous.job_id.clone(),
                    previous_segments: p as u32,
                }),
                vec![ClipRange::new(0.0, 1e9); migration::length(p, k)],
            )
            .await?;
        block.noise_sd = released.count_noise_sd;
        let matrix = migration::decode(&released.sums, p, k)?;
        let shown = |v: f64| {
            let v = v.round().max(0.0);
            (v >= min as f64).then_some(v)
        };
        block.matrix = matrix
            .moved
            .iter()
            .map(|row| row.iter().map(|&v| shown(v)).collect())
            .collect();
        block.joined = matrix.joined.iter().map(|&v| shown(v)).collect();
        block.left = matrix.left.iter().map(|&v| shown(v)).collect();
        block.previous_job = Some(previous.job_id.clone());
        block.previous_segments = previous.segments.clone();
        block.movers = movers(&block, previous, segmentation);
    }
    block.segments = segmentation
        .segments
        .iter()
        .map(|s| s.name.clone())
        .collect();
    history_sizes.push(SeriesSizes {
        job_id: job.id.clone(),
        as_of: job.config.as_of.clone(),
        segments: block.segments.clone(),
        sizes: segmentation.sizes.clone(),
    });
    block.history = history_sizes;
    debug_assert!(centroids.len() == k * DIM);
    Ok(block)
}

/// Every released flow between two different segments (a segment now
/// that continues previous segment i is no move from i), largest first.
fn movers(block: &Migration, previous: &Entry, now: &SegmentationResult) -> Vec<Movers> {
    let mut out = vec![];
    for (i, row) in block.matrix.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            let Some(customers) = *cell else { continue };
            if block.matched[j] == Some(i) || customers == 0.0 {
                continue;
            }
            out.push(Movers {
                from: previous.segments[i].clone(),
                to: now.segments[j].name.clone(),
                customers,
                playbook: matching::movers_playbook(&previous.groups[i], &now.segments[j].group)
                    .to_string(),
            });
        }
    }
    out.sort_by(|a, b| b.customers.total_cmp(&a.customers));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_run_again_keeps_its_predecessor() {
        let entry = |id: &str| Entry {
            job_id: id.into(),
            as_of: "2026-01-01".into(),
            segments: vec![],
            groups: vec![],
            sizes: vec![],
            centroids: vec![],
            space: Space {
                mean: [0.0; DIM],
                std: [1.0; DIM],
                scale: [1.0; DIM],
                lo: [0.0; DIM],
                hi: [1.0; DIM],
            },
        };
        let history = History {
            series: "s".into(),
            jobs: vec![entry("a"), entry("b"), entry("c")],
        };
        assert_eq!(history.previous("b").unwrap().job_id, "a");
        assert!(history.previous("a").is_none());
        assert_eq!(history.previous("d").unwrap().job_id, "c");
        assert_eq!(history.before("c").len(), 2);
        assert_eq!(history.before("d").len(), 3);
    }
}
