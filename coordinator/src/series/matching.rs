//! Matching a job's segments to the previous job's of its series. The
//! previous centroids are taken back to transformed feature units through
//! the previous job's clustering space and into this job's space, so both
//! sets are compared in one space. Pairs are taken one to one, closest
//! first; a pair counts only when the new centroid is closer to the
//! previous one than half the distance from that previous centroid to its
//! nearest other previous centroid (nearer to it than to any midpoint), so
//! a segment that appeared has no counterpart and is new.

use fedseg_common::features::{DIM, Space};

use super::Entry;

/// Per segment now, its previous segment and their distance, or none.
pub fn match_segments(
    previous: &Entry,
    space: &Space,
    centroids: &[f64],
) -> Vec<Option<(usize, f64)>> {
    let mapped: Vec<[f64; DIM]> = previous
        .centroids
        .iter()
        .map(|c| space.project(&previous.space.unproject(c)))
        .collect();
    let now: Vec<&[f64]> = centroids.chunks_exact(DIM).collect();
    let distance = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    // Half the distance to the nearest other previous centroid.
    let reach: Vec<f64> = mapped
        .iter()
        .enumerate()
        .map(|(j, a)| {
            mapped
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != j)
                .map(|(_, b)| distance(a, b) / 2.0)
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let mut pairs: Vec<(f64, usize, usize)> = now
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            mapped
                .iter()
                .enumerate()
                .map(move |(j, m)| (distance(c, m), i, j))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = vec![None; now.len()];
    let mut taken = vec![false; mapped.len()];
    for (d, i, j) in pairs {
        if out[i].is_none() && !taken[j] && d < reach[j] {
            out[i] = Some((j, d));
            taken[j] = true;
        }
    }
    out
}

/// The names of the segments now: a segment that continues a previous one
/// keeps its name; a new one keeps its own, marked `(new)` when a
/// continuing segment already carries it.
pub fn stable_names(
    names: &[String],
    matches: &[Option<(usize, f64)>],
    previous: &[String],
) -> Vec<String> {
    let kept: Vec<Option<String>> = matches
        .iter()
        .map(|m| m.map(|(j, _)| previous[j].clone()))
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let chosen = match &kept[i] {
            Some(name) => name.clone(),
            None => {
                let mut candidate = name.clone();
                while kept.iter().flatten().any(|k| *k == candidate) || out.contains(&candidate) {
                    candidate.push_str(" (new)");
                }
                candidate
            }
        };
        out.push(chosen);
    }
    out
}

/// Value rank of seed 001's groups along the customer lifecycle.
fn rank(group: &str) -> u8 {
    match group {
        "high-value" => 4,
        "important-value" => 3,
        "growth" => 2,
        "active" => 1,
        _ => 0,
    }
}

/// What to do with customers who moved from a segment of `from` group to
/// one of `to` group (seed 001's lifecycle stages).
pub fn movers_playbook(from: &str, to: &str) -> &'static str {
    use std::cmp::Ordering;
    match rank(to).cmp(&rank(from)) {
        Ordering::Less if rank(from) >= 3 => {
            "recovery: a win-back campaign for lapsing valuable customers (personal contact, \
             a retention offer on the products they used, before they leave)"
        }
        Ordering::Less => {
            "reactivation: a reminder with an incentive to return, through the channel they \
             used last"
        }
        Ordering::Greater => {
            "development: welcome them to the new segment's playbook (upgrade offers, loyalty \
             benefits) while the momentum lasts"
        }
        Ordering::Equal => "the new segment's playbook applies as for its other customers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(centroids: Vec<Vec<f64>>) -> Entry {
        let space = Space {
            mean: [0.0; DIM],
            std: [1.0; DIM],
            scale: [1.0; DIM],
            lo: [-100.0; DIM],
            hi: [100.0; DIM],
        };
        Entry {
            job_id: "j".into(),
            as_of: "2026-01-01".into(),
            segments: (0..centroids.len()).map(|i| format!("s{i}")).collect(),
            groups: vec!["general".into(); centroids.len()],
            sizes: vec![1.0; centroids.len()],
            centroids,
            space,
        }
    }

    #[test]
    fn close_segments_continue_and_far_ones_are_new() {
        let previous = entry(vec![vec![0.0; DIM], vec![4.0, 0.0, 0.0, 0.0, 0.0]]);
        let space = previous.space.clone();
        // Segment 0 now sits near previous 1, segment 1 near previous 0,
        // segment 2 far from both.
        let now = [
            [3.8, 0.1, 0.0, 0.0, 0.0],
            [0.2, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 9.0, 0.0, 0.0],
        ]
        .concat();
        let m = match_segments(&previous, &space, &now);
        assert_eq!(
            m.iter().map(|x| x.map(|p| p.0)).collect::<Vec<_>>(),
            [Some(1), Some(0), None]
        );
        let names = stable_names(
            &["general".into(), "growth".into(), "s0".into()],
            &m,
            &previous.segments,
        );
        assert_eq!(names, ["s1", "s0", "s0 (new)"]);
    }

    #[test]
    fn a_fall_from_high_value_is_a_recovery() {
        assert!(movers_playbook("high-value", "general").starts_with("recovery"));
        assert!(movers_playbook("general", "growth").starts_with("development"));
        assert!(movers_playbook("active", "general").starts_with("reactivation"));
    }
}
