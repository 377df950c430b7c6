//! A series of segmentation jobs (`series = "..."` in `job.toml`): what a
//! job of a series releases about how customers moved since the previous
//! job of the series (the `migration` block of `result.json`).

use serde::{Deserialize, Serialize};

/// The `migration` block of a series job's `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// The series' name.
    pub series: String,
    /// The previous job of the series (none for the first job).
    pub previous_job: Option<String>,
    /// The previous job's segment names, in its order.
    pub previous_segments: Vec<String>,
    /// This job's segment names, in its order (after matching).
    pub segments: Vec<String>,
    /// Per segment now, the previous segment it continues (index), or
    /// none for a new segment.
    pub matched: Vec<Option<usize>>,
    /// Distance of each match in this job's clustering space.
    pub match_distance: Vec<Option<f64>>,
    /// `matrix[i][j]`: customers in previous segment i now in segment j;
    /// none where the count is below the small-cell minimum.
    pub matrix: Vec<Vec<Option<f64>>>,
    /// Per segment now, customers not in the previous job (suppressed
    /// like the matrix).
    pub joined: Vec<Option<f64>>,
    /// Per previous segment, customers not among this job's consenting
    /// customers.
    pub left: Vec<Option<f64>>,
    /// The smallest count released.
    pub min_cell: u64,
    /// Under differential privacy, the standard deviation of the noise on
    /// each count of the matrix.
    #[serde(default)]
    pub noise_sd: Option<f64>,
    /// Customers who moved between segments, largest flows first, each
    /// with the playbook that applies to them.
    pub movers: Vec<Movers>,
    /// Segment sizes of every job of the series so far, oldest first.
    pub history: Vec<SeriesSizes>,
}

/// One released flow between two different segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movers {
    /// Previous segment.
    pub from: String,
    /// Segment now.
    pub to: String,
    /// Customers.
    pub customers: f64,
    /// What to do with them.
    pub playbook: String,
}

/// One job of a series and its segments' sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSizes {
    /// The job.
    pub job_id: String,
    /// Its reference date.
    pub as_of: String,
    /// Segment names, in the job's order.
    pub segments: Vec<String>,
    /// Their sizes.
    pub sizes: Vec<f64>,
}
