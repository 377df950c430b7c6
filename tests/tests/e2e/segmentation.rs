//! The joint segmentation end to end: three banks of different sizes, real
//! coordinator and participant processes over mutual TLS on loopback, each
//! bank reading its own synthetic CSV tables.
//!
//! The references are computed here, on the pooled data the test reads from
//! every bank's files: the standardisation by a two-pass mean and variance,
//! and the clustering by a plain centralized Lloyd run from the same initial
//! centroids. The federated job must agree with both.

use std::fs;
use std::path::Path;

use fedseg_tests::{Consortium, floats, matrix};

use super::pooled;
use serde_json::Value;

const AS_OF: time::Date = time::macros::date!(2026 - 11 - 01);

/// Every consenting customer's clipped x = [R, log1p F, log1p M, L, T], per
/// site in the order of its customers table.
fn pooled_points(c: &Consortium) -> Vec<Vec<[f64; 5]>> {
    pooled::customers(c, AS_OF)
        .iter()
        .map(|site| site.iter().map(pooled::x_of).collect())
        .collect()
}

fn nearest(p: &[f64; 5], centroids: &[Vec<f64>]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d: f64 = (0..5).map(|j| (p[j] - c[j]).powi(2)).sum();
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// Centralized Lloyd on `points` from `init`, with the job's stopping rule:
/// final centroids and sizes.
fn centralized_lloyd(
    points: &[[f64; 5]],
    init: &[Vec<f64>],
    tolerance: f64,
    max_iterations: u32,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut centroids = init.to_vec();
    let mut sizes = vec![0; init.len()];
    for _ in 0..max_iterations {
        let mut sums = vec![vec![0.0; 5]; init.len()];
        sizes = vec![0; init.len()];
        for p in points {
            let i = nearest(p, &centroids);
            sizes[i] += 1;
            for j in 0..5 {
                sums[i][j] += p[j];
            }
        }
        let mut shift: f64 = 0.0;
        for (i, c) in centroids.iter_mut().enumerate() {
            if sizes[i] > 0 {
                for j in 0..5 {
                    let v = sums[i][j] / sizes[i] as f64;
                    shift = shift.max((v - c[j]).abs());
                    c[j] = v;
                }
            }
        }
        if shift <= tolerance {
            break;
        }
    }
    (centroids, sizes)
}

fn run(c: &Consortium) -> (Value, String) {
    drop(c.run_job());
    let text = fs::read_to_string(c.path().join("out/result.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

#[test]
fn federated_segmentation_equals_the_pooled_computation_and_repeats_exactly() {
    let c = Consortium::with_customers(3, 1500, 20.0, 16);
    c.write_segmentation_job(
        11,
        "k_min = 3\nk_max = 4\nrestarts = 2\nmin_segment_size = 5\ntolerance = 1e-9\n",
    );
    let (result, text) = run(&c);
    let sites = pooled_points(&c);
    let sizes_per_site: Vec<usize> = sites.iter().map(Vec::len).collect();
    assert!(
        sizes_per_site[0] < sizes_per_site[1] && sizes_per_site[1] < sizes_per_site[2],
        "the banks differ in size: {sizes_per_site:?}"
    );
    let points: Vec<[f64; 5]> = sites.concat();
    let n = points.len() as f64;

    // Standardisation: two-pass pooled mean and population deviation.
    let std_block = &result["standardization"];
    assert_eq!(std_block["count"].as_f64().unwrap(), n);
    assert_eq!(result["census"]["customers"].as_f64().unwrap(), n);
    let mean = floats(&std_block["mean"]);
    let std = floats(&std_block["std"]);
    for j in 0..5 {
        let m = points.iter().map(|p| p[j]).sum::<f64>() / n;
        let s = (points.iter().map(|p| (p[j] - m).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            (mean[j] - m).abs() <= 1e-9 * m.abs(),
            "mean {j}: {} vs {m}",
            mean[j]
        );
        assert!(
            (std[j] - s).abs() <= 1e-9 * s.abs(),
            "std {j}: {} vs {s}",
            std[j]
        );
    }

    // The clustering space from the pooled standardisation and the AHP
    // weights the job reports.
    let seg = &result["segmentation"];
    let weights = floats(&result["ahp"]["weights"]);
    let scale: Vec<f64> = weights.iter().map(|w| w.sqrt()).collect();
    assert_eq!(floats(&seg["space_scale"]), scale);
    let space: Vec<[f64; 5]> = points
        .iter()
        .map(|p| std::array::from_fn(|j| (p[j] - mean[j]) / std[j] * scale[j]))
        .collect();
    let init = matrix(&seg["init_centroids"]);
    let (expected, expected_sizes) = centralized_lloyd(&space, &init, 1e-9, 50);
    let centroids = matrix(&seg["centroids"]);
    assert_eq!(centroids.len(), seg["k"].as_u64().unwrap() as usize);
    for (got, want) in centroids.iter().zip(&expected) {
        for j in 0..5 {
            assert!((got[j] - want[j]).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
    let sizes: Vec<usize> = floats(&seg["sizes"]).iter().map(|&s| s as usize).collect();
    assert_eq!(sizes, expected_sizes);
    assert_eq!(seg["suppressed"], 0);
    let segments = seg["segments"].as_array().unwrap();
    assert_eq!(segments.len(), centroids.len());
    for s in segments {
        assert!(s["name"].as_str().is_some_and(|n| !n.is_empty()));
        for key in ["product", "price", "channel", "promotion"] {
            assert!(s["playbook"][key].as_str().is_some_and(|v| !v.is_empty()));
        }
        for feature in ["R", "F", "M", "L", "T"] {
            assert!(matches!(
                s["profile"][feature].as_str(),
                Some("high" | "low")
            ));
        }
    }
    for key in ["job_id", "config_hash", "cohort", "ahp", "privacy"] {
        assert!(!result[key].is_null(), "result.json lacks {key}");
    }

    // Each bank's own file assigns its customers as the pooled centroids do.
    for (site, points) in c.sites.iter().zip(&sites) {
        let local = c.site_output(site, "scores.csv");
        let rows: Vec<&str> = local.lines().skip(1).collect();
        assert_eq!(rows.len(), points.len());
        for (row, p) in rows.iter().zip(points) {
            let z: [f64; 5] = std::array::from_fn(|j| (p[j] - mean[j]) / std[j] * scale[j]);
            let segment: usize = row.split(',').nth(1).unwrap().parse().unwrap();
            assert_eq!(segment, nearest(&z, &centroids));
        }
    }

    // The same job again, from a fresh journal: the same result, byte for
    // byte.
    fs::remove_file(c.path().join("journal.log")).unwrap();
    fs::remove_dir_all(c.path().join("out")).unwrap();
    let (_, again) = run(&c);
    assert_eq!(text, again);
}

#[test]
fn segments_under_the_minimum_size_are_merged_never_released() {
    let c = Consortium::with_customers(3, 600, 20.0, 16);
    let n = pooled_points(&c).concat().len() as u64;
    // Of 6 clusters the smallest holds at most n/6 customers, under n/5:
    // at least one must be merged away.
    let min = n / 5;
    c.write_segmentation_job(
        11,
        &format!("k_min = 6\nk_max = 6\nrestarts = 1\nmin_segment_size = {min}\n"),
    );
    let (result, _) = run(&c);
    let seg = &result["segmentation"];
    let sizes = floats(&seg["sizes"]);
    assert!(seg["suppressed"].as_u64().unwrap() >= 1);
    assert_eq!(
        sizes.len() + seg["suppressed"].as_u64().unwrap() as usize,
        6
    );
    assert!(
        sizes.iter().all(|&s| s >= min as f64),
        "{sizes:?} with minimum {min}"
    );
    assert_eq!(sizes.iter().sum::<f64>(), n as f64);
    for s in seg["segments"].as_array().unwrap() {
        assert!(s["size"].as_f64().unwrap() >= min as f64);
    }
}

#[test]
fn an_inconsistent_ahp_matrix_refuses_the_job_at_start_up() {
    let c = Consortium::new(2, 5.0, 16);
    c.write_segmentation_job(
        11,
        "ahp_judgments = [9.0, 0.1111, 1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n",
    );
    let mut coordinator = c.run_coordinator();
    let status = coordinator.wait(std::time::Duration::from_secs(30));
    assert!(!status.success());
    let log = coordinator.log_text();
    assert!(
        log.contains("segmentation.ahp_judgments") && log.contains("inconsistent"),
        "{log}"
    );
    assert!(!Path::new(&c.path().join("journal.log")).exists());
}

#[test]
fn a_bank_with_a_bad_row_sends_nothing_but_its_refusal() {
    let c = Consortium::with_customers(3, 600, 10.0, 16);
    c.write_segmentation_job(
        11,
        "k_min = 2\nk_max = 2\nrestarts = 1\nmin_segment_size = 5\n",
    );
    let bad_site = c.path().join("sites").join(&c.sites[0]);
    let path = bad_site.join("transactions.csv");
    let mut text = fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    text.push_str("C3e8-0000001,2026-13-45,10.00\n");
    fs::write(&path, text).unwrap();

    let participants = c.run_job();
    let log = participants[0].log_text();
    assert!(
        log.contains(&format!("line {}, column `ts`", lines + 1))
            && log.contains("transactions.csv"),
        "{log}"
    );
    // The bank's ledger: its hello and its refusal, nothing else sent (the
    // job's end record it was told is kept too, received).
    let ledger = fs::read_to_string(bad_site.join("ledger.log")).unwrap();
    let kinds: Vec<String> = ledger
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds
            .iter()
            .all(|k| k == "hello" || k == "job-answer" || k == "job-finished"),
        "{kinds:?}"
    );
    // The coordinator's journal records the refusal, in the bank's words.
    c.assert_only_declined(&c.sites[0], "failed validation");
    // The other two banks carried the job.
    let result = c.result();
    for round in result["rounds"].as_array().unwrap() {
        assert_eq!(round["survivors"].as_array().unwrap().len(), 2);
    }
    // The result says so: the cohort it was offered to, who took part, who
    // declined and why; the report names only the members that took part.
    assert_eq!(result["cohort"].as_array().unwrap().len(), 3);
    assert_eq!(result["took_part"], serde_json::json!(c.sites[1..]));
    let declined = result["declined"].as_array().unwrap();
    assert_eq!(declined.len(), 1, "{result}");
    assert_eq!(declined[0]["participant"], c.sites[0].as_str());
    assert!(
        declined[0]["reason"]
            .as_str()
            .unwrap()
            .contains("failed validation")
    );
    assert_eq!(result["dropped_out"], serde_json::json!([]));
    let report = fs::read_to_string(c.path().join("out/report.md")).unwrap();
    let members = format!("of 2 members ({}, {})", c.sites[1], c.sites[2]);
    assert!(report.contains(&members), "{report}");
    assert!(
        report.contains(&format!("{} declined the job", c.sites[0])),
        "{report}"
    );
}
