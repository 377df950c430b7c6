//! Vertical jobs over real processes and mutual TLS: a bank (the label
//! holder) and two feature partners whose shared customers are planted, so
//! the intersection is known from the files alone. Each party's local
//! `intersection.csv` must hold exactly the planted customers in one order
//! shared by all; nothing but sizes and digests may reach the journal.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use fedseg_tests::{Consortium, Process};

/// The bank's customers from its `customers.csv`: (consenting, refusing).
fn bank_customers(c: &Consortium) -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(c.path().join("sites/bank-a/customers.csv")).unwrap();
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        match fields[1] {
            "true" => yes.push(fields[0].to_string()),
            _ => no.push(fields[0].to_string()),
        }
    }
    (yes, no)
}

fn row(id: &str, consent: bool) -> String {
    format!("{id},{},{}.5,{consent}", id.len() % 7, id.len() * 3)
}

/// Plants the partners' tables and returns the expected intersection:
/// `fintech-x` holds consenting bank customers 0..800 (refusing 300..320
/// itself), 50 who refused the bank, and 300 of its own; `fintech-y` holds
/// bank customers 300..1100, 30 who refused the bank, 100 of fintech-x's
/// own and 200 of its own. All three share customers 320..800 only.
fn plant(c: &mut Consortium) -> BTreeSet<String> {
    let (yes, no) = bank_customers(c);
    assert!(
        yes.len() >= 1100 && no.len() >= 80,
        "{} {}",
        yes.len(),
        no.len()
    );
    let own_x: Vec<String> = (0..300).map(|i| format!("XONLY-{i:04}")).collect();
    let mut x: Vec<String> = (0..800)
        .map(|i| row(&yes[i], !(300..320).contains(&i)))
        .collect();
    x.extend(no[..50].iter().map(|id| row(id, true)));
    x.extend(own_x.iter().map(|id| row(id, true)));
    c.write_features("fintech-x", &x);
    let mut y: Vec<String> = (300..1100).map(|i| row(&yes[i], true)).collect();
    y.extend(no[50..80].iter().map(|id| row(id, true)));
    y.extend(own_x[..100].iter().map(|id| row(id, true)));
    y.extend((0..200).map(|i| row(&format!("YONLY-{i:04}"), true)));
    c.add_partner("fintech-y", &y);
    yes[320..800].iter().cloned().collect()
}

/// Writes the vertical job with the three parties.
fn write_job(c: &Consortium, min_overlap: u64, overlap_only: bool) {
    fs::write(
        c.path().join("job.toml"),
        format!(
            "seed = 42\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
             [vertical]\nlabel_holder = \"bank-a\"\npartners = [\"fintech-x\", \"fintech-y\"]\n\
             min_overlap = {min_overlap}\noverlap_only = {overlap_only}\n"
        ),
    )
    .unwrap();
}

/// Runs the job with every party; the coordinator's process, finished.
pub(crate) fn run(c: &Consortium) -> (Process, Vec<Process>) {
    let mut coordinator = c.run_coordinator();
    let parties = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    coordinator.wait(std::time::Duration::from_secs(300));
    (coordinator, parties)
}

/// A site's `intersection.csv`, position → customer, if it wrote one.
fn aligned(c: &Consortium, site: &str) -> Option<BTreeMap<u64, String>> {
    let out = c.path().join("sites").join(site).join("out");
    let job = fs::read_dir(&out).ok()?.next()?.ok()?.path();
    let text = fs::read_to_string(job.join("intersection.csv")).ok()?;
    Some(
        text.lines()
            .skip(1)
            .map(|l| {
                let (id, pos) = l.split_once(',').unwrap();
                (pos.parse().unwrap(), id.to_string())
            })
            .collect(),
    )
}

/// Every journaled step, in order.
fn steps(c: &Consortium) -> Vec<String> {
    c.journal_records()
        .iter()
        .filter(|r| r["entry"]["kind"] == "vertical_message")
        .map(|r| r["entry"]["step"].as_str().unwrap().to_string())
        .collect()
}

/// The journal holds no customer id of any party, only sizes and digests.
pub(crate) fn assert_journal_has_no_ids(c: &Consortium) {
    let journal = fs::read(c.path().join("journal.log")).unwrap();
    let text = String::from_utf8_lossy(&journal);
    for marker in ["C3e8-", "XONLY-", "YONLY-"] {
        assert!(
            !text.contains(marker),
            "an id with {marker} is in the journal"
        );
    }
    let out = c.verify_journal(&c.path().join("journal.log"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bank_and_two_partners_find_exactly_the_planted_intersection_in_one_order() {
    let mut c = Consortium::vertical(1600, 20.0);
    let expected = plant(&mut c);
    write_job(&c, 100, false);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    let result = c.result();
    let v = &result["vertical"];
    assert_eq!(v["intersection"], 480);
    assert_eq!(v["label_holder"], "bank-a");
    assert_eq!(v["partners"], serde_json::json!(["fintech-x", "fintech-y"]));
    assert_eq!(v["set_sizes"]["fintech-y"], 800 + 30 + 100 + 200);
    // Refusals at a partner are dropped before anything leaves it.
    assert_eq!(v["set_sizes"]["fintech-x"], 800 - 20 + 50 + 300);
    let orders: Vec<BTreeMap<u64, String>> = c
        .sites
        .iter()
        .map(|s| aligned(&c, s).unwrap_or_else(|| panic!("{s} wrote no intersection")))
        .collect();
    let ids: BTreeSet<String> = orders[0].values().cloned().collect();
    assert_eq!(ids, expected);
    assert_eq!(
        orders[0].keys().copied().collect::<Vec<_>>(),
        (0..480).collect::<Vec<_>>()
    );
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "the parties' orders differ"
    );
    assert_journal_has_no_ids(&c);
    for site in &c.sites {
        c.assert_ledger_verifies(site);
    }
    // Each list step and the result are journaled, by digest.
    let steps = steps(&c);
    for step in [
        "hello",
        "link-0",
        "link-2",
        "compare-2",
        "verdict",
        "reveal-1",
        "result",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "{step} missing from {steps:?}"
        );
    }
}

#[test]
fn overlap_only_releases_the_size_and_nothing_else() {
    let mut c = Consortium::vertical(1600, 20.0);
    plant(&mut c);
    write_job(&c, 100, true);
    let (mut coordinator, _parties) = run(&c);
    coordinator.expect_success(1);
    assert_eq!(c.result()["vertical"]["intersection"], 480);
    for site in &c.sites {
        assert_eq!(aligned(&c, site), None, "{site} learned membership");
    }
    let steps = steps(&c);
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("reveal") || s == "result"),
        "{steps:?}"
    );
}

#[test]
fn below_min_overlap_the_job_stops_and_releases_nothing() {
    let mut c = Consortium::vertical(1600, 20.0);
    plant(&mut c);
    write_job(&c, 481, false);
    let (coordinator, _parties) = run(&c);
    let log = coordinator.log_text();
    assert!(log.contains("below min_overlap (481)"), "{log}");
    assert!(!log.contains("480"), "the size leaked: {log}");
    assert!(!c.path().join("out/result.json").exists());
    for site in &c.sites {
        assert_eq!(aligned(&c, site), None, "{site} learned membership");
    }
    let done: Vec<_> = c
        .journal_records()
        .into_iter()
        .filter(|r| r["entry"]["kind"] == "intersection_done")
        .map(|r| r["entry"].clone())
        .collect();
    assert_eq!(done.len(), 1);
    assert!(done[0]["intersection"].is_null(), "{}", done[0]);
    assert!(!steps(&c).iter().any(|s| s.starts_with("reveal")));
    assert_journal_has_no_ids(&c);
}

#[test]
fn a_partner_that_stops_mid_intersection_aborts_it_naming_the_partner() {
    let mut c = Consortium::vertical(1600, 3.0);
    plant(&mut c);
    write_job(&c, 100, false);
    let mut coordinator = c.run_coordinator();
    let parties: Vec<Process> = c
        .sites
        .iter()
        .map(|s| c.run_participant(s, (s == "fintech-y").then_some("psi-roster")))
        .collect();
    coordinator.wait(std::time::Duration::from_secs(120));
    let log = coordinator.log_text();
    assert!(
        log.contains("fintech-y is at fault") && log.contains("link-0"),
        "{log}"
    );
    assert!(!c.path().join("out/result.json").exists());
    for (site, party) in c.sites.iter().zip(&parties) {
        assert_eq!(aligned(&c, site), None, "{site}");
        if site != "fintech-y" {
            party.expect_log("the coordinator stopped the vertical job", 30);
        }
    }
}
