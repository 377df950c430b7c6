//! The audit after faults: a journal cut exactly at a record boundary is
//! never reported complete, and a bank that was told the job finished
//! catches the cut; a message a bank sent to a coordinator that crashed
//! before journaling it is reported as such, not as tampering.

use std::path::Path;
use std::time::{Duration, Instant};

use fedseg_tests::Consortium;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits (up to 10 s) until `site`'s ledger keeps the end record of the
/// job; the checks after it tell whether it came.
fn wait_for_end_record(c: &Consortium, site: &str) {
    let ledger = c.path().join("sites").join(site).join("ledger.log");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10)
        && !std::fs::read_to_string(&ledger)
            .unwrap_or_default()
            .contains("\"job-finished\"")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The journal without its last record, cut exactly at the boundary.
fn without_last_record(journal: &Path) -> Vec<u8> {
    let bytes = std::fs::read(journal).unwrap();
    let mut at = 0;
    let mut last = 0;
    while at < bytes.len() {
        last = at;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len + 64;
    }
    bytes[..last].to_vec()
}

#[test]
fn a_journal_cut_before_job_finished_is_unfinished_and_fails_every_ledger() {
    let c = Consortium::new(3, 10.0, 4);
    c.write_job(2, 4, None);
    let _participants = c.run_job();
    let journal = c.path().join("journal.log");
    for site in &c.sites {
        wait_for_end_record(&c, site);
    }

    let cut = c.path().join("cut.log");
    std::fs::write(&cut, without_last_record(&journal)).unwrap();
    let out = c.verify_journal(&cut);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("UNFINISHED") && text(&out).contains("no job_finished"),
        "{}",
        text(&out)
    );
    for site in &c.sites {
        let out = c.verify_ledger(site, &cut);
        assert!(!out.status.success(), "{site} accepted a cut journal");
        assert!(text(&out).contains("TRUNCATED JOURNAL"), "{}", text(&out));
    }

    // `ledger show` says what the journal covers of each line.
    let shown = std::process::Command::new(fedseg_tests::binary("fedseg-participant"))
        .args(["ledger", "show", "--config"])
        .arg(c.path().join("sites/bank-a/participant.toml"))
        .output()
        .unwrap();
    let shown = text(&shown);
    for word in ["checked", " journal ", " signed ", " local ", "Local only"] {
        assert!(shown.contains(word), "{word}: {shown}");
    }

    let full = c.verify_journal(&journal);
    assert!(full.status.success(), "{}", text(&full));
    assert!(text(&full).contains("all 1 jobs ended"), "{}", text(&full));
    for site in &c.sites {
        let out = c.verify_ledger(site, &journal);
        assert!(out.status.success(), "{site}: {}", text(&out));
        assert!(text(&out).contains("1 job ends attested"), "{}", text(&out));
    }
}

#[test]
fn a_message_in_flight_at_a_coordinator_crash_is_reported_as_such() {
    let c = Consortium::new(5, 10.0, 4);
    c.write_job(2, 4, None);
    let mut coordinator = c.run_coordinator();
    let _others: Vec<_> = c.sites[..4]
        .iter()
        .map(|s| c.run_participant(s, None))
        .collect();
    // bank-e holds round 0 open; the others' masked inputs reach the
    // coordinator, which is killed before the phase ends and journals them.
    let mut victim = c.run_participant("bank-e", Some("masked-input"));
    victim.expect_log("fault injection", 60);
    std::thread::sleep(Duration::from_millis(1500));
    coordinator.kill();
    victim.kill();
    let mut second = c.run_coordinator();
    let _victim = c.run_participant("bank-e", None);
    second.expect_success(120);
    assert!(second.log_text().contains("resuming from the journal"));

    let journal = c.path().join("journal.log");
    for site in &c.sites[..4] {
        let out = c.verify_ledger(site, &journal);
        assert!(out.status.success(), "{site}: {}", text(&out));
        assert!(
            text(&out).contains("in flight at a coordinator crash")
                && text(&out).contains("job_resumed"),
            "{site}: {}",
            text(&out)
        );
    }
    let out = c.verify_ledger("bank-e", &journal);
    assert!(out.status.success(), "bank-e: {}", text(&out));
}
