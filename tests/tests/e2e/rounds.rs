//! Real coordinator and participant processes over mutual TLS on loopback:
//! secure sums over several rounds, participants killed (SIGKILL) in every
//! phase, too few survivors, and a participant that restarts mid-job.
//!
//! Every released sum is checked against the plain sum of exactly the
//! survivors' vectors, which the test computes from the files it wrote.

use fedseg_tests::Consortium;
use serde_json::Value;

const LENGTH: u32 = 4;

fn vector_of(site: usize) -> Vec<f64> {
    let i = site as f64 + 1.0;
    vec![i * 1.5, -i * 0.25, 100.0 * i, 7.0]
}

/// A consortium of `n` sites with distinct vectors and a job of `rounds`.
fn consortium(
    n: usize,
    rounds: u32,
    epoch_rounds: u32,
    threshold: Option<u32>,
    phase_timeout_s: f64,
) -> Consortium {
    let c = Consortium::new(n, phase_timeout_s, epoch_rounds);
    c.write_job(rounds, LENGTH, threshold);
    for (i, site) in c.sites.iter().enumerate() {
        c.write_vector(site, &vector_of(i));
    }
    c
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Checks every released round's sum against its survivors' vectors and
/// returns the rounds.
fn checked_rounds(c: &Consortium) -> Vec<Value> {
    let result = c.result();
    let rounds = result["rounds"].as_array().unwrap().clone();
    for round in &rounds {
        if round["outcome"] == "released" {
            let mut expected = vec![0.0; LENGTH as usize];
            for survivor in strings(&round["survivors"]) {
                let i = c.sites.iter().position(|s| *s == survivor).unwrap();
                for (e, v) in expected.iter_mut().zip(vector_of(i)) {
                    *e += v;
                }
            }
            let sum = fedseg_tests::floats(&round["sum"]);
            assert_eq!(sum, expected, "round {}", round["round"]);
        } else {
            assert!(round["sum"].is_null(), "an aborted round released a sum");
        }
    }
    rounds
}

fn released(rounds: &[Value]) -> usize {
    rounds.iter().filter(|r| r["outcome"] == "released").count()
}

#[test]
fn five_participants_sum_exactly_over_several_rounds_and_epochs() {
    let c = consortium(5, 5, 2, None, 10.0);
    let mut coordinator = c.run_coordinator();
    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    coordinator.expect_success(60);
    let rounds = checked_rounds(&c);
    assert_eq!(released(&rounds), 5);
    for round in &rounds {
        assert_eq!(strings(&round["survivors"]), c.sites);
    }
    // Five rounds at two per key epoch: epochs 0, 0, 1, 1, 2.
    let epochs: Vec<u64> = rounds
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![0, 0, 1, 1, 2]);
    check_journal(&c, &rounds);
    check_ledgers(&c);
}

fn ledger_verify_against(
    c: &Consortium,
    site: &str,
    journal: &std::path::Path,
) -> std::process::Output {
    c.verify_ledger(site, journal)
}

/// Every site's egress ledger matches what the signed journal says it
/// contributed; an altered ledger does not.
fn check_ledgers(c: &Consortium) {
    for site in &c.sites {
        let out = c.assert_ledger_verifies(site);
        // Per round three messages (masked input, signature on the
        // survivors, unmasking shares), per key epoch two more: 5 rounds,
        // 3 epochs.
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("21 contributions of"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let ledger = c.path().join("sites/bank-a/ledger.log");
    let honest = std::fs::read_to_string(&ledger).unwrap();
    let lines: Vec<&str> = honest.lines().collect();
    let target = lines
        .iter()
        .position(|l| l.contains("\"masked-input\""))
        .unwrap();

    // Altered in place: the hash chain breaks at the next line.
    let mut altered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    altered[target] = altered[target].replace("\"sha256\":\"", "\"sha256\":\"0");
    std::fs::write(&ledger, altered.join("\n") + "\n").unwrap();
    let out = c.ledger_verify("bank-a");
    assert!(!out.status.success());

    // Altered and re-chained: the chain holds, the digests do not match.
    let mut prev = "0".repeat(64);
    let mut rechained = Vec::new();
    for line in &altered {
        let mut entry: Value = serde_json::from_str(line).unwrap();
        entry["prev"] = Value::String(prev.clone());
        let text = serde_json::to_string(&entry).unwrap();
        prev = sha256_hex(text.as_bytes());
        rechained.push(text);
    }
    std::fs::write(&ledger, rechained.join("\n") + "\n").unwrap();
    let out = c.ledger_verify("bank-a");
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("is not in the ledger") && report.contains("is not in the journal"),
        "{report}"
    );
    std::fs::write(&ledger, honest).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The job's journal verifies offline with only the CA certificate, records
/// exactly the released sums, and a flipped byte is caught.
/// A copy of the journal rewritten and re-signed by the coordinator's own
/// key, `edit` applied to every entry (it returns whether it changed it);
/// the copy and the number of the first record changed.
fn rewritten_journal(
    c: &Consortium,
    name: &str,
    mut edit: impl FnMut(&mut fedseg_common::journal::Entry) -> bool,
) -> (std::path::PathBuf, usize) {
    let bytes = std::fs::read(c.path().join("journal.log")).unwrap();
    let records = fedseg_common::journal::read(&bytes).unwrap();
    let copy = c.path().join(name);
    let pki = c.path().join("pki");
    let mut writer = fedseg_coordinator::journal::JournalWriter::open(
        &copy,
        &pki.join("coordinator.key"),
        &pki.join("coordinator.crt"),
        "coordinator",
    )
    .unwrap();
    let mut altered = None;
    for (i, record) in records.into_iter().enumerate().skip(1) {
        let mut entry = record.entry;
        if edit(&mut entry) && altered.is_none() {
            altered = Some(i);
        }
        writer.append(entry).unwrap();
    }
    (copy, altered.expect("an entry to alter"))
}

/// A coordinator that rewrites its journal (`edit` sees every entry and
/// says whether it changed it), re-signing every record with its own key, cannot alter a bank's signature on a survivor set: the copy
/// fails verification at that record, naming the bank.
fn check_survivor_signatures_cannot_be_rewritten(c: &Consortium) {
    use fedseg_common::journal::Entry;
    let mut once = true;
    let (copy, altered) = rewritten_journal(c, "rewritten.log", |entry| {
        let Entry::SurvivorsConfirmed { signatures, .. } = entry else {
            return false;
        };
        if !std::mem::take(&mut once) {
            return false;
        }
        let signature = signatures.get_mut("bank-b").unwrap();
        let first = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(..1, first);
        true
    });
    let refused = c.verify_journal(&copy);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("record {altered}:")) && stderr.contains("bank-b"),
        "{stderr}"
    );
    // Dropping bank-a's signature keeps the quorum, and the journal
    // verifies; bank-a's own ledger check finds the release it did not sign.
    let mut once = true;
    let (copy, _) = rewritten_journal(c, "unsigned.log", |entry| {
        let Entry::SurvivorsConfirmed { signatures, .. } = entry else {
            return false;
        };
        std::mem::take(&mut once) && signatures.remove("bank-a").is_some()
    });
    assert!(c.verify_journal(&copy).status.success());
    let out = ledger_verify_against(c, "bank-a", &copy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("round 0 of") && stdout.contains("bank-a did not sign"),
        "{stdout}"
    );
    check_input_signatures_cannot_be_rewritten(c);
}

/// Nor can it change the digest of a bank's masked input, or strip the
/// banks' signatures on their inputs from the job: the verifier finds the
/// first, and each bank's ledger check the second.
fn check_input_signatures_cannot_be_rewritten(c: &Consortium) {
    use fedseg_common::journal::Entry;
    let mut once = true;
    let (copy, altered) = rewritten_journal(c, "input-digest.log", |entry| {
        let Entry::SurvivorsConfirmed { inputs, .. } = entry else {
            return false;
        };
        if !std::mem::take(&mut once) {
            return false;
        }
        inputs.get_mut("bank-b").unwrap().digest = "00".repeat(32);
        true
    });
    let refused = c.verify_journal(&copy);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("record {altered}:"))
            && stderr.contains("bank-b on its masked input"),
        "{stderr}"
    );
    let (copy, _) = rewritten_journal(c, "inputs-stripped.log", |entry| match entry {
        Entry::CohortFixed { signed_inputs, .. } => {
            *signed_inputs = false;
            true
        }
        Entry::SurvivorsConfirmed { inputs, .. } => {
            inputs.clear();
            false
        }
        _ => false,
    });
    assert!(c.verify_journal(&copy).status.success());
    let out = ledger_verify_against(c, "bank-a", &copy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("round 0 of") && stdout.contains("holds no signature of it on that input"),
        "{stdout}"
    );
}

fn check_journal(c: &Consortium, rounds: &[Value]) {
    let journal = c.path().join("journal.log");
    let verify = |file: &std::path::Path| c.verify_journal(file);
    let verified = verify(&journal);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(out.contains("signed by coordinator coordinator"), "{out}");
    // Every release's survivor set carries every survivor's signature.
    let signatures: usize = rounds
        .iter()
        .map(|r| r["survivors"].as_array().unwrap().len())
        .sum();
    assert!(
        out.contains(&format!(
            "{} releases co-signed by their survivors, {signatures} survivor signatures verified, \
             {signatures} signatures of survivors on their own masked inputs verified",
            rounds.len()
        )),
        "{out}"
    );
    check_survivor_signatures_cannot_be_rewritten(c);

    let released: Vec<Value> = c
        .journal_records()
        .into_iter()
        .map(|r| r["entry"].clone())
        .filter(|e| e["kind"] == "aggregate_released")
        .collect();
    assert_eq!(released.len(), rounds.len());
    for (entry, round) in released.iter().zip(rounds) {
        assert_eq!(entry["values"], round["sum"]);
        assert_eq!(entry["survivors"], round["survivors"]);
    }

    let mut bytes = std::fs::read(&journal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let tampered = c.path().join("tampered.log");
    std::fs::write(&tampered, bytes).unwrap();
    let refused = verify(&tampered);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("verification failed at record"));
    // A bank matching its ledger against that altered journal refuses it too.
    let ledger_check = c.verify_ledger("bank-a", &tampered);
    assert!(!ledger_check.status.success());
    assert!(String::from_utf8_lossy(&ledger_check.stderr).contains("journal verification failed"));
}

/// bank-e stalls at the first request of `phase`, is SIGKILLed there, and
/// the job goes on with the other four (threshold 3).
fn kill_during(phase: &str) -> Vec<Value> {
    let c = consortium(5, 3, 3, Some(3), 10.0);
    let mut coordinator = c.run_coordinator();
    let mut others: Vec<_> = c.sites[..4]
        .iter()
        .map(|s| c.run_participant(s, None))
        .collect();
    let mut victim = c.run_participant("bank-e", Some(phase));
    victim.expect_log("fault injection", 30);
    victim.kill();
    coordinator.expect_success(60);
    others.clear();
    let rounds = checked_rounds(&c);
    assert_eq!(released(&rounds), 3, "{rounds:?}");
    // The result names who took part (bank-e if a released sum covers it)
    // and who dropped out, missing how many released sums.
    let result = c.result();
    let covered = |r: &&Value| strings(&r["survivors"]).contains(&"bank-e".to_string());
    let missed = rounds.iter().filter(|r| !covered(r)).count();
    let mut took_part = c.sites[..4].to_vec();
    if rounds.iter().any(|r| covered(&r)) {
        took_part.push("bank-e".into());
    }
    assert_eq!(result["took_part"], serde_json::json!(took_part));
    let dropped = result["dropped_out"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{result}");
    assert_eq!(dropped[0]["participant"], "bank-e");
    assert_eq!(dropped[0]["rounds_missed"], missed);
    rounds
}

#[test]
fn killed_during_key_advertisement() {
    let rounds = kill_during("advertise-keys");
    for round in &rounds {
        assert!(!strings(&round["survivors"]).contains(&"bank-e".to_string()));
        assert!(!strings(&round["dropped"]).contains(&"bank-e".to_string()));
    }
}

#[test]
fn killed_during_share_distribution() {
    let rounds = kill_during("share-keys");
    for round in &rounds {
        assert!(!strings(&round["survivors"]).contains(&"bank-e".to_string()));
    }
}

#[test]
fn killed_before_sending_its_masked_input() {
    let rounds = kill_during("masked-input");
    // Round 0 cancels bank-e's masks from its reconstructed round key.
    assert_eq!(strings(&rounds[0]["dropped"]), vec!["bank-e"]);
    assert_eq!(strings(&rounds[0]["survivors"]).len(), 4);
}

#[test]
fn killed_after_sending_its_masked_input() {
    let rounds = kill_during("unmask");
    // Its input arrived, so round 0 includes it: its self mask is
    // reconstructed from the others' shares.
    assert!(strings(&rounds[0]["survivors"]).contains(&"bank-e".to_string()));
    assert!(!strings(&rounds[1]["survivors"]).contains(&"bank-e".to_string()));
}

#[test]
fn too_few_survivors_release_nothing() {
    // Four sites, threshold 4: losing one leaves every round short.
    let c = consortium(4, 2, 2, Some(4), 10.0);
    let mut coordinator = c.run_coordinator();
    let _others: Vec<_> = c.sites[..3]
        .iter()
        .map(|s| c.run_participant(s, None))
        .collect();
    let mut victim = c.run_participant("bank-d", Some("masked-input"));
    victim.expect_log("fault injection", 30);
    victim.kill();
    coordinator.expect_success(60);
    let rounds = checked_rounds(&c);
    assert_eq!(released(&rounds), 0);
    assert!(
        rounds[0]["reason"].as_str().unwrap().contains("remain"),
        "{:?}",
        rounds[0]
    );
}

#[test]
fn a_restarted_participant_rejoins_only_at_the_next_key_epoch() {
    // bank-c hangs at its first mask request and stays silent, so every
    // phase that waits for it runs into the 2 s deadline: time enough for
    // bank-d, killed at the same point, to come back. Three of five remain,
    // the quorum of survivor signatures when no member is assumed to
    // collude.
    let c = consortium(5, 4, 2, Some(2), 2.0);
    let job = c.path().join("job.toml");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, text + "collusion = 0\n").unwrap();
    let mut coordinator = c.run_coordinator();
    let _e = c.run_participant("bank-e", None);
    let _a = c.run_participant("bank-a", None);
    let _b = c.run_participant("bank-b", None);
    let _c = c.run_participant("bank-c", Some("masked-input"));
    let mut d = c.run_participant("bank-d", Some("masked-input"));
    d.expect_log("fault injection", 30);
    d.kill();
    let restarted = c.run_participant("bank-d", None);
    coordinator.expect_success(90);
    let rounds = checked_rounds(&c);
    assert_eq!(released(&rounds), 4, "{rounds:?}");
    let has_d = |r: &Value| strings(&r["survivors"]).contains(&"bank-d".to_string());
    // Rounds 0 and 1 use the key epoch bank-d lost with its process.
    assert!(!has_d(&rounds[0]) && !has_d(&rounds[1]));
    // Rounds 2 and 3 use a new key set-up that the restarted node joined.
    assert_eq!(rounds[2]["epoch"], 1);
    assert!(
        has_d(&rounds[2]) && has_d(&rounds[3]),
        "{}",
        restarted.log_text()
    );
}

#[test]
fn a_quorum_below_the_collusion_bound_refuses_the_job_at_start_up() {
    // Five sites, one assumed colluder: a survivor set needs (5 + 1)/2 + 1
    // = 4 signatures; 3 would let the coordinator and the colluder confirm
    // two sets of one round.
    let c = consortium(5, 1, 1, None, 5.0);
    let job = c.path().join("job.toml");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, text + "\n[cohort]\ncollusion = 1\nquorum = 3\n").unwrap();
    let mut coordinator = c.run_coordinator();
    let status = coordinator.wait(std::time::Duration::from_secs(30));
    assert!(!status.success());
    let log = coordinator.log_text();
    assert!(log.contains("cohort.quorum"), "{log}");
    assert!(!c.path().join("journal.log").exists());
}
