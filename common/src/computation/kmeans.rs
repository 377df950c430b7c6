//! One Lloyd step of several k-means runs at once: per cluster of every
//! run, the count of customers nearest to it, the sum of their coordinates
//! in the clustering space and the sum of their squared distances.
//!
//! Layout: the runs one after the other, each `k` clusters of
//! [`ENTRIES`] = `[count, Σp (DIM), Σd²]`.

use crate::features::{self, DIM, Space};

use super::{LayoutError, check_length};

/// Entries per cluster.
pub const ENTRIES: usize = DIM + 2;

/// The layout of a step: the cluster count of each run.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    offsets: Vec<usize>,
    ks: Vec<usize>,
    length: usize,
}

/// One cluster's released sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterSums {
    /// Customers nearest to the centroid.
    pub count: f64,
    /// Sum of their coordinates.
    pub sum: [f64; DIM],
    /// Sum of their squared distances to the centroid (withheld, 0, under
    /// differential privacy).
    pub squared_distance: f64,
}

impl Layout {
    /// The layout of runs with `ks` clusters each.
    pub fn new(ks: impl IntoIterator<Item = usize>) -> Self {
        let ks: Vec<usize> = ks.into_iter().collect();
        let mut offsets = Vec::with_capacity(ks.len());
        let mut length = 0;
        for k in &ks {
            offsets.push(length);
            length += k * ENTRIES;
        }
        Self {
            offsets,
            ks,
            length,
        }
    }

    /// Entries of the vector.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Adds one customer at point `p` of the clustering space to its
    /// nearest cluster of each run (`runs`: each run's centroids,
    /// row-major); its squared distance is clipped to `distance_bound`.
    pub fn add(&self, out: &mut [f64], p: &[f64; DIM], runs: &[&[f64]], distance_bound: f64) {
        for (run, &offset) in runs.iter().zip(&self.offsets) {
            let (cluster, d2) = features::nearest(p, run);
            let slot = &mut out[offset + cluster * ENTRIES..][..ENTRIES];
            slot[0] += 1.0;
            for j in 0..DIM {
                slot[1 + j] += p[j];
            }
            slot[DIM + 1] += d2.min(distance_bound);
        }
    }

    /// Per-customer bounds, and the squared L2 bound: one cluster per run
    /// (its count and the coordinates that can be non-zero). The squared
    /// distances are withheld: their bound is the box's diameter, far above
    /// typical values, and the coordinator computes the inertia from
    /// counts, sums and the standardisation instead.
    pub fn customer_bounds(&self, space: &Space) -> (Vec<f64>, f64) {
        let coordinate = space.coordinate_bounds();
        let mut cluster = vec![1.0];
        cluster.extend(coordinate);
        cluster.push(0.0);
        let clusters: usize = self.ks.iter().sum();
        let entries = cluster.repeat(clusters);
        let touched = 1 + coordinate.iter().filter(|&&c| c > 0.0).count();
        (entries, (touched * self.ks.len()) as f64)
    }

    /// Reads a released sum: each run's clusters.
    pub fn decode(&self, sum: &[f64]) -> Result<Vec<Vec<ClusterSums>>, LayoutError> {
        check_length("k-means step", sum, self.length)?;
        Ok(self
            .ks
            .iter()
            .zip(&self.offsets)
            .map(|(&k, &offset)| decode_run(&sum[offset..offset + k * ENTRIES]))
            .collect())
    }
}

/// The clusters of one run's part of a released sum (`k` × [`ENTRIES`]).
pub fn decode_run(sums: &[f64]) -> Vec<ClusterSums> {
    sums.chunks_exact(ENTRIES)
        .map(|slot| ClusterSums {
            count: slot[0],
            sum: std::array::from_fn(|j| slot[1 + j]),
            squared_distance: slot[DIM + 1],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_counts_the_customer_in_its_nearest_cluster() {
        let layout = Layout::new([2, 3]);
        assert_eq!(layout.length(), 5 * ENTRIES);
        let mut out = vec![0.0; layout.length()];
        let two = [0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let three = [
            9.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, -3.0, 0.0, 0.0, 0.0, 0.0,
        ];
        layout.add(&mut out, &[3.0, 1.0, 0.0, 0.0, 0.0], &[&two, &three], 100.0);
        let runs = layout.decode(&out).unwrap();
        assert_eq!(runs[0][1].count, 1.0);
        assert_eq!(runs[0][1].sum, [3.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(runs[0][1].squared_distance, 2.0);
        assert_eq!(runs[0][0].count, 0.0);
        assert_eq!(runs[1][1].count, 1.0);
        assert_eq!(runs[1][1].squared_distance, 1.0);
        // A distance beyond the bound is clipped to it.
        layout.add(
            &mut out,
            &[30.0, 0.0, 0.0, 0.0, 0.0],
            &[&two, &three],
            100.0,
        );
        let runs = layout.decode(&out).unwrap();
        assert_eq!(runs[0][1].squared_distance, 102.0);
        assert!(layout.decode(&out[..10]).is_err());
    }
}
