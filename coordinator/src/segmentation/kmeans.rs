//! Step 3, federated k-means: exact Lloyd in the clustering space, every
//! restart of every candidate k in one vector so a step is one round. The
//! initial centroids are drawn from the released histograms (never from a
//! customer), seeded by the job; the best restart per k is kept, and k is
//! chosen by the Calinski-Harabasz index when the job gives a range.

use fedseg_common::computation::kmeans::{ClusterSums, Layout};
use fedseg_common::features::{DIM, Space};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};
use tracing::info;

use super::{Candidate, SegmentationError, Statistics};
use crate::config::{Job, SegmentationSettings};
use crate::release::{Releases, wire_space};

/// One k-means run in progress.
#[derive(Debug, Clone)]
pub struct Run {
    /// Clusters.
    pub k: u32,
    /// Which seeded start it is.
    pub restart: u32,
    /// Its initial centroids, clustering space, row-major.
    pub init: Vec<f64>,
    /// Its current centroids.
    pub centroids: Vec<f64>,
    /// Sum of squared distances to the assigned centroid.
    pub inertia: f64,
    /// Customers per cluster.
    pub sizes: Vec<f64>,
    /// Lloyd steps taken.
    pub iterations: u32,
    /// Whether no centroid moved more than the tolerance.
    pub converged: bool,
}

/// What k-means chose.
#[derive(Debug, Clone)]
pub struct KMeans {
    /// The chosen run.
    pub chosen: Run,
    /// Every candidate k.
    pub candidates: Vec<Candidate>,
    /// How k was chosen.
    pub k_choice: &'static str,
    /// Σ‖p‖² over all customers, the total sum of squares.
    pub total_ss: f64,
}

/// Runs every restart of every candidate k of `job`, initialised from the
/// histograms in `statistics`, and chooses one.
pub async fn kmeans(
    releases: &mut Releases<'_, '_>,
    job: &Job,
    statistics: &Statistics,
    space: &Space,
) -> Result<KMeans, SegmentationError> {
    let settings = &job.config.segmentation;
    let mut runs = Vec::new();
    for k in settings.k_min..=settings.k_max {
        for restart in 0..settings.restarts {
            let mut rng = job_rng(job.config.seed, "init", k, restart);
            let mut init = Vec::with_capacity(k as usize * DIM);
            for _ in 0..k {
                let x: [f64; DIM] =
                    std::array::from_fn(|j| statistics.quantile(j, rng.random::<f64>()));
                init.extend(space.project(&x));
            }
            runs.push(Run {
                k,
                restart,
                centroids: init.clone(),
                init,
                inertia: f64::INFINITY,
                sizes: vec![],
                iterations: 0,
                converged: false,
            });
        }
    }
    // Σ‖p‖² over all customers: each z-score has mean 0 and variance 1.
    let count = statistics.standardization.count;
    let total_ss: f64 = (0..DIM)
        .filter(|&j| space.std[j] > 0.0)
        .map(|j| space.scale[j] * space.scale[j])
        .sum::<f64>()
        * count;
    lloyd(releases, space, &mut runs, settings, "k-means", total_ss).await?;
    let (chosen, candidates, k_choice) = choose_k(&runs, settings, total_ss, count);
    info!(k = chosen.k, inertia = chosen.inertia, "k-means converged");
    Ok(KMeans {
        chosen,
        candidates,
        k_choice,
        total_ss,
    })
}

/// The best restart per k, then k by the Calinski-Harabasz index.
fn choose_k(
    runs: &[Run],
    settings: &SegmentationSettings,
    total_ss: f64,
    count: f64,
) -> (Run, Vec<Candidate>, &'static str) {
    let mut candidates = Vec::new();
    let mut best_per_k = Vec::new();
    for k in settings.k_min..=settings.k_max {
        let best = runs
            .iter()
            .filter(|r| r.k == k)
            .fold(None::<&Run>, |best, r| match best {
                Some(b) if b.inertia <= r.inertia => Some(b),
                _ => Some(r),
            })
            .expect("restarts >= 1");
        let k_f = k as f64;
        let between = (total_ss - best.inertia).max(0.0);
        let calinski_harabasz = if best.inertia > 0.0 && count > k_f {
            (between / (k_f - 1.0)) / (best.inertia / (count - k_f))
        } else {
            0.0
        };
        candidates.push(Candidate {
            k,
            inertia: best.inertia,
            calinski_harabasz,
            restart: best.restart,
            iterations: best.iterations,
            converged: best.converged,
        });
        best_per_k.push(best.clone());
    }
    let (chosen_index, k_choice) = if candidates.len() == 1 {
        (0, "fixed by the job")
    } else {
        let i = (0..candidates.len()).fold(0, |b, i| {
            if candidates[i].calinski_harabasz > candidates[b].calinski_harabasz {
                i
            } else {
                b
            }
        });
        (i, "largest Calinski-Harabasz index")
    };
    (best_per_k.swap_remove(chosen_index), candidates, k_choice)
}

/// A reproducible random generator for one purpose of the job.
fn job_rng(seed: u64, purpose: &str, k: u32, restart: u32) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"fedseg/segmentation/v1");
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update(k.to_le_bytes());
    h.update(restart.to_le_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// A Lloyd update from one run's clusters' sums: new centroids (an
/// empty cluster keeps its centroid; a mean is kept inside the space's box
/// `bounds`, which only noise can leave), sizes, inertia, and the largest
/// coordinate move. Under differential privacy the squared distances are
/// withheld and the inertia is Σ‖p‖² (`total_ss`, known from the
/// standardisation) + Σ_c (n_c‖c‖² − 2 c·S_c).
fn lloyd_update(
    centroids: &[f64],
    clusters: &[ClusterSums],
    bounds: &[f64; DIM],
    total_ss: Option<f64>,
) -> (Vec<f64>, Vec<f64>, f64, f64) {
    let mut next = centroids.to_vec();
    let mut sizes = Vec::new();
    let mut inertia = total_ss.unwrap_or(0.0);
    let mut shift: f64 = 0.0;
    for (c, cluster) in clusters.iter().enumerate() {
        let count = cluster.count;
        sizes.push(count);
        inertia += match total_ss {
            None => cluster.squared_distance,
            Some(_) => (0..DIM)
                .map(|j| {
                    let centre = centroids[c * DIM + j];
                    count * centre * centre - 2.0 * centre * cluster.sum[j]
                })
                .sum(),
        };
        // Counts are whole numbers without noise; under noise a cluster
        // with less than one customer keeps its centroid.
        if count >= 1.0 {
            for j in 0..DIM {
                let v = (cluster.sum[j] / count).clamp(-bounds[j], bounds[j]);
                shift = shift.max((v - centroids[c * DIM + j]).abs());
                next[c * DIM + j] = v;
            }
        }
    }
    (next, sizes, inertia, shift)
}

/// Runs Lloyd on every run of `runs` at once, one round per step, until each
/// has converged or reached the cap (or the release plan's share of Lloyd
/// steps is used up).
pub(super) async fn lloyd(
    releases: &mut Releases<'_, '_>,
    space: &Space,
    runs: &mut [Run],
    settings: &SegmentationSettings,
    label: &str,
    total_ss: f64,
) -> Result<(), SegmentationError> {
    let computed_inertia = releases.privacy.as_ref().map(|_| total_ss);
    let bounds = space.coordinate_bounds();
    let n = releases.customers;
    let inertia_bound: f64 = n * bounds.iter().map(|b| 4.0 * b * b).sum::<f64>();
    let mut cluster_ranges = vec![ClipRange::new(0.0, n.max(1.0))];
    for b in bounds {
        cluster_ranges.push(ClipRange::new(-b * n - 1.0, b * n + 1.0));
    }
    cluster_ranges.push(ClipRange::new(0.0, inertia_bound.max(1.0)));
    loop {
        let active: Vec<usize> = (0..runs.len())
            .filter(|&i| !runs[i].converged && runs[i].iterations < settings.max_iterations)
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        if let Some(plan) = &mut releases.privacy
            && !plan.take_lloyd_step()
        {
            return Ok(());
        }
        let step = runs[active[0]].iterations + 1;
        let request = proto::KMeansStep {
            as_of: releases.as_of.clone(),
            space: Some(wire_space(space)),
            runs: active
                .iter()
                .map(|&i| proto::KMeansRun {
                    k: runs[i].k,
                    centroids: runs[i].centroids.clone(),
                })
                .collect(),
        };
        let layout = Layout::new(active.iter().map(|&i| runs[i].k as usize));
        let clusters: usize = active.iter().map(|&i| runs[i].k as usize).sum();
        let ranges: Vec<ClipRange> = (0..clusters)
            .flat_map(|_| cluster_ranges.iter().copied())
            .collect();
        let sums = releases
            .sum(
                &format!("{label} step {step} ({} runs)", active.len()),
                Kind::KmeansStep(request),
                ranges,
            )
            .await?;
        for (&i, clusters) in active.iter().zip(layout.decode(&sums)?) {
            let run = &mut runs[i];
            let (next, sizes, inertia, shift) =
                lloyd_update(&run.centroids, &clusters, &bounds, computed_inertia);
            run.centroids = next;
            run.sizes = sizes;
            run.inertia = inertia;
            run.iterations += 1;
            run.converged = shift <= settings.tolerance;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedseg_common::computation::kmeans::{ENTRIES as KMEANS_ENTRIES, decode_run};

    #[test]
    fn a_lloyd_update_keeps_an_empty_cluster_where_it_was() {
        let centroids = [0.0; 2 * DIM];
        // Cluster 0: two customers at 1 and 3 on every axis; cluster 1: none.
        let mut sums = vec![0.0; 2 * KMEANS_ENTRIES];
        sums[0] = 2.0;
        for j in 0..DIM {
            sums[1 + j] = 4.0;
        }
        sums[DIM + 1] = 10.0;
        let bounds = [10.0; DIM];
        let (next, sizes, inertia, shift) =
            lloyd_update(&centroids, &decode_run(&sums), &bounds, None);
        assert_eq!(&next[..DIM], &[2.0; DIM]);
        assert_eq!(&next[DIM..], &[0.0; DIM]);
        assert_eq!((sizes, inertia, shift), (vec![2.0, 0.0], 10.0, 2.0));
        // With the distances withheld, the inertia follows from Σ‖p‖² = 50:
        // about centroid 1 on every axis, 5·(0² + 2²) = 20.
        let mut at_one = centroids;
        at_one[..DIM].fill(1.0);
        let (_, _, inertia, _) = lloyd_update(&at_one, &decode_run(&sums), &bounds, Some(50.0));
        assert!((inertia - 20.0).abs() < 1e-12, "{inertia}");
        // A mean pushed outside the box by noise is brought back.
        sums[1] = 100.0;
        let (next, ..) = lloyd_update(&centroids, &decode_run(&sums), &bounds, None);
        assert_eq!(next[0], 10.0);
    }
}
