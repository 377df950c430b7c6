//! Step 5, the segment profiles at the final centroids: per segment the
//! mean R, F, M, L, T, interactions by kind, the refined groups of
//! customers without a purchase, and conversions, in one round. Each
//! segment is named after the seed's group whose high/low profile it
//! matches best and gets that group's 4P playbook.

use fedseg_common::computation::profile::{self, SegmentSums};
use fedseg_common::features::{self, DIM, NAMES, PROFILE_ENTRIES, Space};
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};

use super::kmeans::Run;
use super::{RefinedGroup, Segment, SegmentationError, SegmentationResult, Statistics};
use crate::config::{Job, SegmentationSettings};
use crate::playbook;
use crate::release::{Releases, wire_space};

/// Releases the profiles of the segments of `chosen` and describes them;
/// the segmentation block without its k-means history (candidates, how k
/// was chosen, what was suppressed), which the caller fills in.
pub async fn profiles(
    releases: &mut Releases<'_, '_>,
    job: &Job,
    statistics: &Statistics,
    space: &Space,
    chosen: &Run,
    weights: &[f64],
) -> Result<SegmentationResult, SegmentationError> {
    let settings = &job.config.segmentation;
    let n = releases.customers;
    let (lo, hi) = (
        statistics.standardization.clip_lo,
        statistics.standardization.clip_hi,
    );
    let k = chosen.k as usize;
    let bounds_original = (features::untransform(lo), features::untransform(hi));
    let mut ranges = Vec::with_capacity(k * PROFILE_ENTRIES);
    for _ in 0..k {
        ranges.push(ClipRange::new(0.0, n));
        for j in 0..DIM {
            ranges.push(ClipRange::new(0.0, bounds_original.1[j] * n + 1.0));
        }
        // Interactions by kind are bounded by T's bound.
        for _ in 0..4 {
            ranges.push(ClipRange::new(0.0, hi[4] * n + 1.0));
        }
        for _ in 0..5 {
            ranges.push(ClipRange::new(0.0, n));
        }
    }
    let profile = releases
        .sum(
            "segment profiles",
            Kind::SegmentProfile(proto::SegmentProfile {
                as_of: job.config.as_of.clone(),
                space: Some(wire_space(space)),
                centroids: Some(proto::KMeansRun {
                    k: chosen.k,
                    centroids: chosen.centroids.clone(),
                }),
                frequent: settings.frequent_interactions,
            }),
            ranges,
        )
        .await?;
    let segments = profile::decode(&profile, k)?;
    Ok(describe(chosen, &segments, space, weights, settings))
}

/// Names, profiles and playbooks of the final segments.
fn describe(
    run: &Run,
    profile: &[SegmentSums],
    space: &Space,
    weights: &[f64],
    settings: &SegmentationSettings,
) -> SegmentationResult {
    let k = run.k as usize;
    let rows = |flat: &[f64]| -> Vec<Vec<f64>> { flat.chunks(DIM).map(<[f64]>::to_vec).collect() };
    let mut groups = Vec::new();
    let mut segments = Vec::new();
    for (c, (centroid, sums)) in run.centroids.chunks(DIM).zip(profile).enumerate() {
        let high: [bool; DIM] = std::array::from_fn(|j| centroid[j] > 0.0);
        let group = playbook::closest_group(&high, weights);
        groups.push(group);
        segments.push(segment(c, group, high, sums));
    }
    for (segment, name) in segments.iter_mut().zip(playbook::names(&groups)) {
        segment.name = name;
    }
    let centroids = rows(&run.centroids);
    let centroids_original = centroids
        .iter()
        .map(|c| features::untransform(space.unproject(c)).to_vec())
        .collect();
    SegmentationResult {
        k,
        space_scale: space.scale,
        init_centroids: rows(&run.init),
        centroids,
        centroids_original,
        sizes: run.sizes.iter().map(|s| s.max(0.0)).collect(),
        inertia: run.inertia,
        iterations: run.iterations,
        restarts: settings.restarts,
        k_choice: String::new(),
        candidates: vec![],
        suppressed: 0,
        min_segment_size: settings.min_segment_size,
        segments,
    }
}

/// Segment `index` of seed group `group` from its profile sums (unnamed
/// until every group is known).
fn segment(
    index: usize,
    group: &'static playbook::Group,
    high: [bool; DIM],
    sums: &SegmentSums,
) -> Segment {
    // Noise can make a count negative; none is.
    let size = sums.count.max(0.0);
    let per = |v: f64| if size > 0.0 { v / size } else { 0.0 };
    Segment {
        index,
        name: String::new(),
        group: group.name.to_string(),
        summary: group.summary.to_string(),
        size,
        profile: NAMES
            .iter()
            .zip(high)
            .map(|(&n, h)| (n.to_string(), if h { "high" } else { "low" }.to_string()))
            .collect(),
        means: NAMES
            .iter()
            .enumerate()
            .map(|(j, &n)| (n.to_string(), per(sums.sums[j])))
            .collect(),
        interactions: ["inquiry", "save", "search", "other"]
            .iter()
            .enumerate()
            .map(|(i, &n)| (n.to_string(), per(sums.kinds[i])))
            .collect(),
        conversion_rate: per(sums.converted),
        refined: playbook::REFINED
            .iter()
            .enumerate()
            .map(|(i, &(name, action))| RefinedGroup {
                name: name.to_string(),
                customers: sums.refined[i],
                share: per(sums.refined[i]),
                action: action.to_string(),
            })
            .collect(),
        playbook: group.playbook.owned(),
    }
}
