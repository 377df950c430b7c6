//! A participant killed between writing a message's ledger line and
//! sending it: the journal never got the message, and the bank's
//! `ledger verify` must say so (not accepted, or in flight) and pass, both
//! right after the job and after the participant restarts and works on.

use std::process::Command;

use fedseg_tests::{Consortium, Process, binary, spawn};

/// `fedseg-participant run` for `site`, dying after its first ledger line
/// of `kind` (the node's fault-injection variable).
fn participant_dying_after(c: &Consortium, site: &str, kind: &str) -> Process {
    let mut command = Command::new(binary("fedseg-participant"));
    command
        .arg("run")
        .arg("--config")
        .arg(c.path().join("sites").join(site).join("participant.toml"))
        .env("FEDSEG_FAULT_DIE_AFTER_LEDGER", kind);
    spawn(command, c.path().join(format!("{site}-dying.log")))
}

#[test]
fn a_participant_killed_between_its_ledger_line_and_the_send_still_verifies() {
    for kind in [
        "advertise-keys",
        "masked-input",
        "confirm-survivors",
        "unmask",
    ] {
        let c = Consortium::new(4, 3.0, 2);
        c.write_job(4, 4, Some(3));
        let mut coordinator = c.run_coordinator();
        let _honest: Vec<_> = c.sites[..3]
            .iter()
            .map(|s| c.run_participant(s, None))
            .collect();
        let mut dying = participant_dying_after(&c, "bank-d", kind);
        let status = dying.wait(std::time::Duration::from_secs(120));
        assert!(!status.success(), "{kind}: {}", dying.log_text());
        // It restarts and takes part again from the next key set-up.
        let _back = c.run_participant("bank-d", None);
        coordinator.expect_success(180);
        let ledger = std::fs::read_to_string(c.path().join("sites/bank-d/ledger.log")).unwrap();
        assert!(ledger.contains(&format!("\"{kind}\"")), "{kind}: {ledger}");
        let verified = c.verify_journal(&c.path().join("journal.log"));
        assert!(verified.status.success(), "{kind}: {verified:?}");
        for site in &c.sites {
            let out = c.assert_ledger_verifies(site);
            if site == "bank-d" {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    stdout.contains("not accepted by the coordinator")
                        || stdout.contains("in flight"),
                    "{kind}: {stdout}"
                );
            }
        }
    }
}
