//! A series of three monthly segmentation jobs end to end, real processes
//! over mutual TLS. Before the second month a planted share of customers
//! stops buying (their purchases of 2026 are taken out of their
//! bank's table), so they drift from active behaviour towards lapsing. The
//! test pools the banks' local segment files (each job's `scores.csv`) and
//! checks the released migration matrix against the matrix computed from
//! them, that continuing segments keep their names, and the report. Before
//! the third month a tenth of the customers withdraw their consent: they
//! are counted as having left.

use std::collections::BTreeMap;
use std::fs;

use fedseg_tests::Consortium;
use serde_json::Value;
use sha2::{Digest, Sha256};

const MONTHS: [&str; 3] = ["2026-09-01", "2026-10-01", "2026-11-01"];
const MIN_CELL: f64 = 20.0;

fn planted(id: &str) -> bool {
    let digest = Sha256::digest(format!("lapse/{id}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap()) as f64 / 2f64.powi(64) < 0.3
}

fn write_job(c: &Consortium, as_of: &str) {
    fs::write(
        c.path().join("job.toml"),
        format!(
            "series = \"monthly\"\nseed = 5\nas_of = \"{as_of}\"\nholdout_fraction = 0.2\n\
             l2 = 1.0\n\n[segmentation]\nk_min = 4\nk_max = 4\nrestarts = 2\n\
             min_segment_size = {MIN_CELL}\n\n[propensity]\nenabled = false\n"
        ),
    )
    .unwrap();
}

/// The planted customers' purchases of 2026 are taken out.
fn plant_lapses(c: &Consortium, site: &str) {
    let path = c.path().join(format!("sites/{site}/transactions.csv"));
    let text = fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let mut fields = line.split(',');
        let (id, ts) = (fields.next().unwrap(), fields.next().unwrap());
        if !(planted(id) && ts > "2026-01-01") {
            out.push_str(line);
            out.push('\n');
        }
    }
    fs::write(path, out).unwrap();
}

/// A tenth of the customers withdraw their consent: they leave the
/// segmentation (counted as "left" from their previous segment).
fn withdraw_consent(c: &Consortium, site: &str) {
    let path = c.path().join(format!("sites/{site}/customers.csv"));
    let text = fs::read_to_string(&path).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let id = line.split(',').next().unwrap();
            let digest = Sha256::digest(format!("withdraw/{id}").as_bytes());
            if digest[0] < 26 {
                line.replacen(",true,", ",false,", 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    fs::write(path, out.join("\n") + "\n").unwrap();
}

/// `customer_id → segment` of a site's scores file of `job` (none when
/// the site has no record of the job).
fn segments_of(c: &Consortium, site: &str, job: &str) -> BTreeMap<String, usize> {
    fs::read_to_string(c.path().join(format!("sites/{site}/out/{job}/scores.csv")))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect()
}

/// The matrix pooled from every bank's two scores files: (previous,
/// now) → customers; `None` stands for joined / left.
fn pooled_matrix(
    c: &Consortium,
    before: &str,
    after: &str,
) -> BTreeMap<(Option<usize>, Option<usize>), f64> {
    let mut out = BTreeMap::new();
    for site in &c.sites {
        let (b, a) = (segments_of(c, site, before), segments_of(c, site, after));
        for (id, now) in &a {
            *out.entry((b.get(id).copied(), Some(*now))).or_default() += 1.0;
        }
        for (id, was) in &b {
            if !a.contains_key(id) {
                *out.entry((Some(*was), None)).or_default() += 1.0;
            }
        }
    }
    out
}

fn check_against_pooled(c: &Consortium, m: &Value, before: &str, after: &str) {
    let pooled = pooled_matrix(c, before, after);
    let want = |key| pooled.get(&key).copied().unwrap_or(0.0);
    let released = |v: &Value, want: f64, what: String| match v.as_f64() {
        Some(got) => assert_eq!(got, want, "{what}"),
        None => assert!(want < MIN_CELL, "{what}: {want} withheld"),
    };
    let rows = m["matrix"].as_array().unwrap();
    for (i, row) in rows.iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            released(v, want((Some(i), Some(j))), format!("cell {i},{j}"));
        }
        released(&m["left"][i], want((Some(i), None)), format!("left {i}"));
    }
    for (j, v) in m["joined"].as_array().unwrap().iter().enumerate() {
        released(v, want((None, Some(j))), format!("joined {j}"));
    }
}

/// A bank without its record of the previous job (`previous`): its
/// customers count as joined, and the job goes on for everyone.
fn check_bank_without_record(c: &Consortium, previous: &str) {
    fs::remove_dir_all(c.path().join(format!("sites/bank-c/out/{previous}"))).unwrap();
    write_job(c, "2026-11-15");
    drop(c.run_job());
    let fourth = c.result();
    let m = &fourth["migration"];
    assert_eq!(m["previous_job"].as_str(), Some(previous));
    let next = fourth["job_id"].as_str().unwrap();
    check_against_pooled(c, m, previous, next);
    let joined: f64 = m["joined"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .sum();
    assert!(
        joined >= segments_of(c, "bank-c", next).len() as f64 * 0.9,
        "{joined}"
    );
}

/// A job of the series under differential privacy: the matrix carries
/// noise and says how much.
fn check_private_migration(c: &Consortium) {
    let before = c.result()["job_id"].as_str().unwrap().to_string();
    fs::write(
        c.path().join("job.toml"),
        format!(
            "series = \"monthly\"\nseed = 5\nas_of = \"2026-11-20\"\nholdout_fraction = 0.2\n\
             l2 = 1.0\n\n[segmentation]\nk_min = 4\nk_max = 4\nrestarts = 2\nmax_iterations = 10\n\
             min_segment_size = {MIN_CELL}\n\n[propensity]\nenabled = false\n\n\
             [privacy]\nepsilon = 5.0\ndelta = 1e-6\n"
        ),
    )
    .unwrap();
    drop(c.run_job());
    let result = c.result();
    let m = &result["migration"];
    assert_eq!(m["previous_job"].as_str(), Some(before.as_str()));
    let sd = m["noise_sd"].as_f64().expect("the noise is reported");
    eprintln!("private migration: noise sd {sd}");
    assert!(sd > 0.1 && sd < 100.0, "{sd}");
    // The released cells add up to about the customers of both jobs.
    let pooled: f64 = pooled_matrix(c, &before, result["job_id"].as_str().unwrap())
        .values()
        .sum();
    let released: f64 = m["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().filter_map(Value::as_f64))
        .sum();
    assert!(
        released <= pooled + 30.0 * sd && released > 0.5 * pooled,
        "{released} {pooled}"
    );
}

#[test]
fn a_monthly_series_releases_the_migration_its_banks_files_show() {
    let c = Consortium::with_customers(3, 3000, 10.0, 16);
    let mut results: Vec<Value> = vec![];
    for (month, as_of) in MONTHS.iter().enumerate() {
        for site in &c.sites {
            match month {
                1 => plant_lapses(&c, site),
                2 => withdraw_consent(&c, site),
                _ => {}
            }
        }
        write_job(&c, as_of);
        drop(c.run_job());
        results.push(c.result());
    }
    let ids: Vec<String> = results
        .iter()
        .map(|r| r["job_id"].as_str().unwrap().to_string())
        .collect();
    let first = &results[0]["migration"];
    assert_eq!(first["series"], "monthly");
    assert!(first["previous_job"].is_null());
    let mut moved = [(0.0, 0.0); 2];
    for month in 1..3 {
        let m = &results[month]["migration"];
        assert_eq!(m["previous_job"].as_str(), Some(ids[month - 1].as_str()));
        check_against_pooled(&c, m, &ids[month - 1], &ids[month]);
        // A segment that continues one keeps its name.
        let before = &results[month - 1]["segmentation"]["segments"];
        let now = &results[month]["segmentation"]["segments"];
        let matched = m["matched"].as_array().unwrap();
        assert!(
            matched.iter().filter(|x| !x.is_null()).count() >= 3,
            "{matched:?}"
        );
        let pooled = pooled_matrix(&c, &ids[month - 1], &ids[month]);
        for (j, previous) in matched.iter().enumerate() {
            if let Some(i) = previous.as_u64() {
                assert_eq!(now[j]["name"], before[i as usize]["name"], "month {month}");
                // The match is the previous segment most of its customers
                // came from.
                let from = |i: usize| pooled.get(&(Some(i), Some(j))).copied().unwrap_or(0.0);
                let most = (0..before.as_array().unwrap().len())
                    .max_by(|a, b| from(*a).total_cmp(&from(*b)))
                    .unwrap();
                assert_eq!(i as usize, most, "month {month}, segment {j}");
            }
        }
        // The planted lapses show as customers changing segment.
        for site in &c.sites {
            let (b, a) = (
                segments_of(&c, site, &ids[month - 1]),
                segments_of(&c, site, &ids[month]),
            );
            for (id, now) in &a {
                let Some(was) = b.get(id) else { continue };
                let slot = &mut moved[usize::from(planted(id))];
                slot.0 += f64::from(matched[*now].as_u64() != Some(*was as u64));
                slot.1 += 1.0;
            }
        }
    }
    // (moved, seen) of the others and of the planted customers.
    let rate = |(moved, seen): (f64, f64)| moved / seen;
    eprintln!(
        "changed segment: planted {:?}, others {:?}",
        moved[1], moved[0]
    );
    assert!(
        moved[1].0 > 50.0 && rate(moved[1]) > 2.0 * rate(moved[0]),
        "{moved:?}"
    );
    let last = &results[2]["migration"];
    let left: f64 = last["left"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .sum();
    assert!(left > 100.0, "customers who withdrew consent left: {left}");
    assert_eq!(last["history"].as_array().unwrap().len(), 3);
    for r in &results[1..] {
        eprintln!("{}\n{}", r["migration"]["matrix"], r["migration"]["movers"]);
    }
    assert!(
        !results[1]["migration"]["movers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let html = fs::read_to_string(c.path().join("out/report.html")).unwrap();
    assert!(html.contains("Migration: previous segment"), "the heat map");
    assert!(html.contains("Segment sizes over the series"));
    let md = fs::read_to_string(c.path().join("out/report.md")).unwrap();
    assert!(md.contains("Customers who moved"), "{md}");

    check_bank_without_record(&c, &ids[2]);
    check_private_migration(&c);
}

#[test]
fn demo_months_runs_a_series_and_a_campaign_evaluation_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(fedseg_tests::binary("fedseg-coordinator"))
        .args(["demo", "--customers", "3000", "--months", "3", "--listen"])
        .arg(format!("127.0.0.1:{}", fedseg_tests::free_port()))
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |path: &str| -> Value {
        serde_json::from_str(&fs::read_to_string(dir.path().join(path)).unwrap()).unwrap()
    };
    let (second, third) = (
        read("out/month-2/result.json"),
        read("out/month-3/result.json"),
    );
    assert_eq!(third["migration"]["previous_job"], second["job_id"]);
    assert_eq!(third["migration"]["history"].as_array().unwrap().len(), 3);
    let campaign = read("out/campaign/result.json");
    assert_eq!(campaign["kind"], "campaign-evaluation");
    assert_eq!(campaign["campaign"]["settings"]["model"], third["job_id"]);
    // The demo simulates a 10-point lift in the first targeted segment.
    let target = campaign["campaign"]["settings"]["target"][0].clone();
    let lifted = campaign["campaign"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == target)
        .unwrap();
    let ci = &lifted["uplift_ci"];
    assert!(
        ci[0].as_f64().unwrap() < 0.10 && 0.10 < ci[1].as_f64().unwrap(),
        "{lifted}"
    );
    assert!(said.contains("== campaign demo-campaign"), "{said}");
}
