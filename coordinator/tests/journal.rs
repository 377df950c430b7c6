//! The journal verifies offline with only the CA certificate, and every kind
//! of tampering is caught and names the first bad record. The signed byte
//! layout is pinned. Under both key algorithms: a coordinator with an ECDSA
//! P-256 key (the default) or an Ed25519 key writes journals that verify
//! whatever the CA's own algorithm; committed journals (one written before
//! ECDSA keys existed) verify byte for byte, and an ECDSA signature is
//! pinned as a known answer.

use std::path::Path;

use ed25519_dalek::SigningKey;
use fedseg_common::identity::Role;
use fedseg_common::journal::{self, Entry, SIGNING_CONTEXT};
use fedseg_common::keys::{self, KeyAlgorithm};
use fedseg_coordinator::journal::{JournalWriteError, JournalWriter};
use fedseg_coordinator::pki::{self, Validity};

/// A CA of `ca` and a coordinator, a participant and an analyst with keys
/// of `member`.
fn pki_dir_with(dir: &Path, ca: KeyAlgorithm, member: KeyAlgorithm) {
    pki::init_with(dir, "journal algorithms", ca).unwrap();
    for (id, role) in [
        ("coordinator", Role::Coordinator),
        ("bank-a", Role::Participant),
        ("analyst", Role::Analyst),
    ] {
        pki::issue_with(dir, id, role, Validity::days_from_now(30), member).unwrap();
    }
}

fn pki_dir(dir: &Path) {
    pki::init(dir, "audit test").unwrap();
    pki::issue(
        dir,
        "coordinator",
        Role::Coordinator,
        Validity::days_from_now(30),
    )
    .unwrap();
    pki::issue(
        dir,
        "bank-a",
        Role::Participant,
        Validity::days_from_now(30),
    )
    .unwrap();
}

fn entries() -> Vec<Entry> {
    let job = || "job-1".to_string();
    let pair = || vec!["bank-a".to_string(), "bank-b".to_string()];
    vec![
        Entry::JobSubmitted {
            job_id: job(),
            config_hash: "ab".repeat(32),
            config: "seed = 1\n".into(),
        },
        Entry::CohortFixed {
            job_id: job(),
            cohort: pair(),
            threshold: 2,
            neighbours: 1,
            // A journal from before survivor sets were signed.
            quorum: 0,
            signed_inputs: false,
        },
        Entry::AggregateReleased {
            job_id: job(),
            round: 0,
            survivors: pair(),
            values: vec![1.5, -2.0],
        },
        Entry::RoundAborted {
            job_id: job(),
            round: 1,
            reason: "too few".into(),
        },
        Entry::JobFinished {
            job_id: job(),
            success: true,
            reason: String::new(),
        },
    ]
}

/// A journal signed by `id`'s key.
fn written(dir: &Path, id: &str) -> Vec<u8> {
    let path = dir.join(format!("{id}.journal"));
    let key = dir.join(format!("{id}.key"));
    let cert = dir.join(format!("{id}.crt"));
    let mut writer = JournalWriter::open(&path, &key, &cert, id).unwrap();
    for entry in entries() {
        writer.append(entry).unwrap();
    }
    std::fs::read(&path).unwrap()
}

/// The byte range of each record.
fn offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, at + 4 + len + 64));
        at += 4 + len + 64;
    }
    out
}

fn ca(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("ca.crt")).unwrap()
}

fn first_bad(bytes: &[u8], ca_pem: &[u8]) -> u64 {
    journal::verify(bytes, ca_pem)
        .expect_err("tampering must be caught")
        .record
}

#[test]
fn an_honest_journal_verifies_with_the_ca_alone() {
    let dir = tempfile::tempdir().unwrap();
    pki_dir(dir.path());
    let bytes = written(dir.path(), "coordinator");
    let verified = journal::verify(&bytes, &ca(dir.path())).unwrap();
    assert_eq!(verified.coordinator, "coordinator");
    assert_eq!(verified.records.len(), 6);
    assert_eq!(verified.records[3].entry, entries()[2]);
}

#[test]
fn tampering_is_caught_at_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    pki_dir(dir.path());
    let ca_pem = ca(dir.path());
    let bytes = written(dir.path(), "coordinator");
    let at = offsets(&bytes);
    let part = |i: usize| &bytes[at[i].0..at[i].1];

    // A flipped byte inside record 3's payload.
    let mut flipped = bytes.clone();
    flipped[at[3].1 - 70] ^= 0x01;
    assert_eq!(first_bad(&flipped, &ca_pem), 3);

    // Record 2 deleted.
    let deleted = [&bytes[..at[2].0], &bytes[at[2].1..]].concat();
    assert_eq!(first_bad(&deleted, &ca_pem), 2);

    // Records 2 and 3 swapped.
    let swapped = [&bytes[..at[2].0], part(3), part(2), &bytes[at[3].1..]].concat();
    assert_eq!(first_bad(&swapped, &ca_pem), 2);

    // Truncated inside the last record.
    assert_eq!(first_bad(&bytes[..bytes.len() - 10], &ca_pem), 5);

    // Record 3 replaced and signed with another key, the chain kept intact.
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let prev = journal::record_hash(part(2));
    let fake = Entry::RoundAborted {
        job_id: "job-1".into(),
        round: 0,
        reason: "x".into(),
    };
    let forged = journal::encode_record(&other, 3, 0, &prev, &fake);
    let resigned = [&bytes[..at[3].0], &forged[..], &bytes[at[3].1..]].concat();
    assert_eq!(first_bad(&resigned, &ca_pem), 3);

    // A whole journal signed by a coordinator key another CA certified.
    let rogue = tempfile::tempdir().unwrap();
    pki_dir(rogue.path());
    let error = journal::verify(&written(rogue.path(), "coordinator"), &ca_pem).unwrap_err();
    assert_eq!(error.record, 0);
    assert!(error.reason.contains("not issued by this CA"), "{error}");

    // A journal signed by a participant's key is not a coordinator's.
    let error = journal::verify(&written(dir.path(), "bank-a"), &ca_pem).unwrap_err();
    assert_eq!(error.record, 0);
    assert!(error.reason.contains("not coordinator"), "{error}");
}

#[test]
fn reopening_continues_the_chain_and_a_damaged_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    pki_dir(dir.path());
    let key = dir.path().join("coordinator.key");
    let cert = dir.path().join("coordinator.crt");
    let path = dir.path().join("coordinator.journal");
    written(dir.path(), "coordinator");
    let mut reopened = JournalWriter::open(&path, &key, &cert, "coordinator").unwrap();
    assert_eq!(reopened.records().len(), 6);
    let finished = Entry::JobFinished {
        job_id: "job-2".into(),
        success: false,
        reason: "stopped".into(),
    };
    reopened.append(finished).unwrap();
    let verified = journal::verify(&std::fs::read(&path).unwrap(), &ca(dir.path())).unwrap();
    assert_eq!(verified.records.len(), 7);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, &bytes).unwrap();
    match JournalWriter::open(&path, &key, &cert, "coordinator") {
        Err(JournalWriteError::Damaged { error, .. }) => assert_eq!(error.record, 6),
        other => panic!("a damaged journal was opened: {:?}", other.err()),
    }
}

/// The exact bytes of one record, field by field. Changing the layout, the
/// payload encoding or the signing context breaks this test on purpose.
#[test]
fn record_bytes_are_pinned() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let entry = Entry::RoundAborted {
        job_id: "j".into(),
        round: 2,
        reason: "r".into(),
    };
    let record = journal::encode_record(&key, 3, 1_700_000_000_000, &[0xab; 32], &entry);
    let payload = br#"{"kind":"round_aborted","job_id":"j","round":2,"reason":"r"}"#;
    let body_len = 4 + 8 + 8 + 32 + 1 + payload.len();
    assert_eq!(record[..4], (body_len as u32).to_le_bytes()); // body length
    assert_eq!(&record[4..8], b"FSJ1"); // magic
    assert_eq!(hex::encode(&record[8..16]), "0300000000000000"); // sequence 3
    assert_eq!(hex::encode(&record[16..24]), "0068e5cf8b010000"); // unix ms 1_700_000_000_000
    assert_eq!(record[24..56], [0xab; 32]); // previous record's hash
    assert_eq!(record[56], 7); // kind: round_aborted
    assert_eq!(&record[57..57 + payload.len()], payload); // payload JSON
    assert_eq!(record.len(), 4 + body_len + 64); // then the Ed25519 signature
    // Ed25519 is deterministic, so the whole record, signature included, is fixed.
    assert_eq!(
        hex::encode(journal::record_hash(&record)),
        GOLDEN_RECORD_SHA256
    );
}

const GOLDEN_RECORD_SHA256: &str =
    "64fe876023ec1368dd8cf9763647bb5502d4b6e9bbcb738ce454998716ab7197";

#[test]
fn every_algorithm_combination_verifies_and_a_flipped_bit_fails() {
    for ca in KeyAlgorithm::ALL {
        for member in KeyAlgorithm::ALL {
            let dir = tempfile::tempdir().unwrap();
            pki_dir_with(dir.path(), ca, member);
            let ca_pem = std::fs::read(dir.path().join("ca.crt")).unwrap();
            let bytes = written(dir.path(), "coordinator");
            let verified = journal::verify(&bytes, &ca_pem).unwrap();
            assert_eq!(verified.algorithm, member, "CA {ca}, coordinator {member}");
            assert_eq!(verified.records.len(), 6);
            assert_eq!(journal::read(&bytes).unwrap(), verified.records);

            let at = offsets(&bytes);
            let (end, opening_end) = (at[2].1, at[0].1);
            // A bit of the signature, of the payload, of record 0's certificate.
            for (byte, record) in [(end - 1, 2), (end - 70, 2), (opening_end / 2, 0)] {
                let mut flipped = bytes.clone();
                flipped[byte] ^= 0x01;
                let error = journal::verify(&flipped, &ca_pem).unwrap_err();
                assert_eq!(
                    error.record, record,
                    "CA {ca}, coordinator {member}: {error}"
                );
            }
        }
    }
}

#[test]
fn record_zero_must_hold_a_coordinator_certificate_of_this_ca() {
    let dir = tempfile::tempdir().unwrap();
    pki_dir_with(dir.path(), KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256);
    let ca_pem = std::fs::read(dir.path().join("ca.crt")).unwrap();
    for id in ["bank-a", "analyst"] {
        let error = journal::verify(&written(dir.path(), id), &ca_pem).unwrap_err();
        assert_eq!(error.record, 0);
        assert!(error.reason.contains("not coordinator"), "{error}");
    }
    for algorithm in KeyAlgorithm::ALL {
        let rogue = tempfile::tempdir().unwrap();
        pki_dir_with(rogue.path(), algorithm, algorithm);
        let error = journal::verify(&written(rogue.path(), "coordinator"), &ca_pem).unwrap_err();
        assert_eq!(error.record, 0);
        assert!(error.reason.contains("not issued by this CA"), "{error}");
    }
}

/// Journals committed under `tests/fixtures`, each with its CA: `ed25519`
/// was written by the coordinator before ECDSA keys existed, `ecdsa-p256`
/// by this one. Both must keep verifying, byte for byte.
#[test]
fn committed_journals_still_verify() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, algorithm, records) in [
        ("ed25519", KeyAlgorithm::Ed25519, FIXTURE_RECORDS_ED25519),
        ("ecdsa-p256", KeyAlgorithm::EcdsaP256, FIXTURE_RECORDS_ECDSA),
    ] {
        let dir = fixtures.join(format!("journal-{name}"));
        let bytes = std::fs::read(dir.join("journal.log")).unwrap();
        let ca_pem = std::fs::read(dir.join("ca.crt")).unwrap();
        let verified = journal::verify(&bytes, &ca_pem).unwrap();
        assert_eq!(verified.algorithm, algorithm, "{name}");
        assert_eq!(verified.records.len(), records, "{name}");
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x80;
        assert!(journal::verify(&flipped, &ca_pem).is_err(), "{name}");
    }
}

const FIXTURE_RECORDS_ED25519: usize = 11;
const FIXTURE_RECORDS_ECDSA: usize = 11;

/// A fixed P-256 key (PKCS#8, as `pki issue` writes) and a signature OpenSSL
/// made with it over a fixed record (`openssl dgst -sha256 -sign`, DER
/// converted to `r || s`): ECDSA signatures are randomised, so the record's
/// body is pinned and the signature must verify, not repeat.
#[test]
fn an_ecdsa_signature_is_pinned_as_a_known_answer() {
    let key = keys::SigningKey::from_pkcs8_pem(KAT_KEY).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
    let entry = Entry::RoundAborted {
        job_id: "j".into(),
        round: 2,
        reason: "r".into(),
    };
    let record = journal::encode_record(&key, 3, 1_700_000_000_000, &[0xab; 32], &entry);
    let body = &record[4..record.len() - 64];
    assert_eq!(hex::encode(body), KAT_BODY);
    let signed = [SIGNING_CONTEXT, body].concat();
    let public = key.verifying_key();
    // A fresh signature verifies, and so does OpenSSL's.
    public
        .verify(&signed, record[record.len() - 64..].try_into().unwrap())
        .unwrap();
    let mut pinned: [u8; 64] = hex::decode(KAT_SIGNATURE).unwrap().try_into().unwrap();
    public.verify(&signed, &pinned).unwrap();
    pinned[63] ^= 0x01;
    assert!(public.verify(&signed, &pinned).is_err());
}

const KAT_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjId91g1wOt5anxy3\n\
7WOftVkyOao2oIRei5MZKetcgwChRANCAASrTpUkDZ0DsOuITk3/kSbh3/6Hl10n\n\
fqbG30evhtSTrabInj7sadPdU7yb1/nuv568ijfnxCgbYsfsX0Z6uzGZ\n\
-----END PRIVATE KEY-----\n";
const KAT_BODY: &str = concat!(
    "46534a31",                                                         // "FSJ1"
    "0300000000000000",                                                 // sequence 3
    "0068e5cf8b010000",                                                 // unix ms 1_700_000_000_000
    "abababababababababababababababababababababababababababababababab", // previous hash
    "07",                                                               // kind: round_aborted
    "7b226b696e64223a22726f756e645f61626f72746564222c226a6f625f6964223a226a222c",
    "22726f756e64223a322c22726561736f6e223a2272227d"
);
const KAT_SIGNATURE: &str = concat!(
    "881beb4d1521863f37f8fb3edfa20065e2b7cfc82804ff8b21f3f5101ec4505c",
    "459811336fc2d07ba8b723a066560485590700b5a1f4f2cdf8d576600bd22d24"
);

/// A `job_queued` record for `config`, signed by the analyst of `dir`.
fn queued(dir: &Path, config: &str) -> Entry {
    use fedseg_common::secagg::signing::Credential;
    use sha2::Digest;
    let key_pem = std::fs::read_to_string(dir.join("analyst.key")).unwrap();
    let cert =
        fedseg_common::certs::pem_to_der(&std::fs::read(dir.join("analyst.crt")).unwrap()).unwrap();
    let key = keys::SigningKey::from_pkcs8_pem(&key_pem).unwrap();
    let analyst = Credential::new(key, cert.clone()).unwrap();
    Entry::JobQueued {
        job_id: "job-q".into(),
        analyst: "analyst".into(),
        purpose: "retention study".into(),
        config_hash: hex::encode(sha2::Sha256::digest(config.as_bytes())),
        config: config.into(),
        certificate: hex::encode(&cert),
        signature: hex::encode(fedseg_common::submission::sign(&analyst, config)),
    }
}

#[test]
fn two_handles_append_to_one_chain_and_queued_jobs_carry_a_checked_analyst_signature() {
    let dir = tempfile::tempdir().unwrap();
    pki_dir_with(dir.path(), KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256);
    let d = dir.path();
    let (key, cert) = (d.join("coordinator.key"), d.join("coordinator.crt"));
    let path = d.join("shared.journal");
    let mut engine = JournalWriter::open(&path, &key, &cert, "coordinator").unwrap();
    let mut service = engine.share();
    let config = "purpose = \"retention study\"\nseed = 1\n";
    let mut rest = entries().into_iter();
    engine.append(rest.next().unwrap()).unwrap();
    service.append(queued(d, config)).unwrap();
    for entry in rest {
        engine.append(entry).unwrap();
    }
    assert_eq!(engine.records().len(), 2 + entries().len());
    let bytes = std::fs::read(&path).unwrap();
    let verified = journal::verify(&bytes, &ca(d)).unwrap();
    assert_eq!(verified.submissions, 1);
    assert!(matches!(verified.records[2].entry, Entry::JobQueued { .. }));

    // The coordinator's own key can re-sign a record, but not the
    // analyst's signature: naming another analyst, or changing the job's
    // text under the same signature, is caught.
    for (name, tampered) in [
        ("other analyst", {
            let mut e = queued(d, config);
            if let Entry::JobQueued { analyst, .. } = &mut e {
                *analyst = "analyst-b".into();
            }
            e
        }),
        ("other text", {
            let mut e = queued(d, config);
            if let Entry::JobQueued {
                config,
                config_hash,
                ..
            } = &mut e
            {
                *config = config.replace("seed = 1", "seed = 2");
                *config_hash =
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(config.as_bytes()));
            }
            e
        }),
    ] {
        let path = d.join(format!("{}.journal", name.replace(' ', "-")));
        let mut writer = JournalWriter::open(&path, &key, &cert, "coordinator").unwrap();
        writer.append(tampered).unwrap();
        let error = journal::verify(&std::fs::read(&path).unwrap(), &ca(d)).unwrap_err();
        assert_eq!(error.record, 1, "{name}: {error}");
    }
}
