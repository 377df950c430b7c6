//! Clients that are not ours talk to a real `fedseg-coordinator serve`:
//! Python's grpcio (BoringSSL) checks health with a participant's certificate
//! and streams the journal with an auditor's, and is refused without a
//! certificate, with another CA's and as an unlisted identity; OpenSSL reads
//! every key `pki` writes, completes a mutual-TLS handshake and verifies a
//! journal signature on its own. grpcio presents an Ed25519 client
//! certificate to an ECDSA coordinator, but cannot connect at all to a
//! coordinator whose own certificate is Ed25519 (BoringSSL does not offer
//! Ed25519 signatures in TLS by default), which is asserted as the known
//! limitation, while OpenSSL still can.
//!
//! The tools come from the system: `FEDSEG_PYTHON` (a Python with grpcio,
//! grpcio-health-checking and grpcio-tools; default the virtual environment
//! `.ci/run` makes, `~/.cache/fedseg-venv`) and `openssl`. Without them a
//! test is skipped with a message, unless `CI` is set: then it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fedseg_common::journal::SIGNING_CONTEXT;
use fedseg_coordinator::journal::JournalWriter;
use fedseg_tests::{Consortium, pki};
use serde_json::{Value, json};

/// `Some(tool)` if `found`; otherwise skips (`None`), or fails under CI.
fn required(what: &str, found: Option<PathBuf>, install: &str) -> Option<PathBuf> {
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must have {what}");
        eprintln!("skipped: no {what} ({install})");
    }
    found
}

/// A Python that imports grpcio, its health service and its tools.
fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FEDSEG_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let home = PathBuf::from(std::env::var_os("HOME")?);
            Some(home.join(".cache/fedseg-venv/bin/python"))
        })
        .filter(|python| {
            Command::new(python)
                .args(["-c", "import grpc, grpc_health.v1, grpc_tools.protoc"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    required(
        "Python with grpcio (FEDSEG_PYTHON)",
        candidate,
        "python3 -m venv ~/.cache/fedseg-venv && ~/.cache/fedseg-venv/bin/pip install grpcio grpcio-health-checking grpcio-tools",
    )
}

fn openssl() -> Option<PathBuf> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("openssl"));
    required("openssl", found, "apt-get install openssl")
}

/// The independent client's results for `calls` against `c`'s coordinator.
fn grpcio(python: &Path, c: &Consortium, calls: Value) -> Value {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plan = json!({
        "target": format!("127.0.0.1:{}", c.port),
        "server_name": "coordinator",
        "ca": c.path().join("pki/ca.crt"),
        "proto": workspace.join("proto"),
        "calls": calls,
    });
    let mut child = Command::new(python)
        .arg(workspace.join("tests/python/independent_client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    eprintln!("grpcio {}: {}", answer["grpcio"], answer["results"]);
    answer["results"].clone()
}

/// A call as member `id` of the consortium's PKI (or of `dir`).
fn call_as(name: &str, call: &str, dir: &Path, id: &str) -> Value {
    json!({
        "name": name,
        "call": call,
        "cert": dir.join(format!("{id}.crt")),
        "key": dir.join(format!("{id}.key")),
    })
}

/// Asserts that the call `name` was refused with gRPC status `code`.
fn assert_refused(results: &Value, name: &str, code: &str) {
    let result = &results[name];
    assert_eq!(result["ok"], false, "{name}: {result}");
    assert_eq!(result["code"], code, "{name}: {result}");
}

#[test]
fn grpcio_checks_health_and_reads_the_journal_with_ecdsa_certificates() {
    let Some(python) = python() else { return };
    let c = Consortium::new(2, 5.0, 4);
    c.write_job(1, 4, None);
    drop(c.run_job());
    let dir = c.path().join("pki");
    pki(&dir, &["issue", "--id", "bank-q", "--role", "participant"]);
    // A listed member whose own key is Ed25519, the coordinator's ECDSA.
    let ed25519 = ["--algorithm", "ed25519"];
    pki(
        &dir,
        &[
            &["issue", "--id", "bank-e", "--role", "participant"][..],
            &ed25519,
        ]
        .concat(),
    );
    let config = c.path().join("coordinator.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("participants = [", "participants = [\"bank-e\", "),
    )
    .unwrap();
    let rogue = c.path().join("rogue");
    pki(&rogue, &["init", "--consortium", "rogue"]);
    pki(
        &rogue,
        &["issue", "--id", "bank-a", "--role", "participant"],
    );
    let _server = c.serve();

    let copy = c.path().join("journal-copy.log");
    let mut read = call_as("auditor", "read_journal", &dir, "auditor");
    read["out"] = json!(copy);
    let results = grpcio(
        &python,
        &c,
        json!([
            call_as("participant", "health", &dir, "bank-a"),
            call_as("Ed25519 participant", "health", &dir, "bank-e"),
            read,
            {"name": "no certificate", "call": "health"},
            call_as("another CA", "health", &rogue, "bank-a"),
            call_as("unlisted", "health", &dir, "bank-q"),
            call_as("participant reads the journal", "read_journal", &dir, "bank-a"),
        ]),
    );
    assert_eq!(results["participant"]["status"], "SERVING", "{results}");
    // BoringSSL signs with an Ed25519 client key when the server asks; only
    // an Ed25519 server certificate is out of its reach (next test).
    assert_eq!(
        results["Ed25519 participant"]["status"], "SERVING",
        "{results}"
    );
    let journal = std::fs::read(c.path().join("journal.log")).unwrap();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        journal,
        "the journal's exact bytes"
    );
    assert!(
        results["auditor"]["records"].as_u64().unwrap() > 5,
        "{results}"
    );
    // Refused at the handshake (no call reaches a service) ...
    assert_refused(&results, "no certificate", "UNAVAILABLE");
    assert_refused(&results, "another CA", "UNAVAILABLE");
    // ... or at the first call, by identity and role.
    assert_refused(&results, "unlisted", "PERMISSION_DENIED");
    assert_refused(
        &results,
        "participant reads the journal",
        "PERMISSION_DENIED",
    );
}

#[test]
fn grpcio_cannot_connect_with_ed25519_certificates_and_openssl_can() {
    let Some(python) = python() else { return };
    let c = Consortium::new(2, 5.0, 4);
    c.reissue_pki("ed25519");
    let _server = c.serve();
    let dir = c.path().join("pki");
    let results = grpcio(
        &python,
        &c,
        json!([call_as("participant", "health", &dir, "bank-a")]),
    );
    // BoringSSL does not offer to verify Ed25519 signatures, so the server
    // cannot sign its handshake: the documented limitation (README, "Key
    // algorithms").
    assert_refused(&results, "participant", "UNAVAILABLE");
    let details = results["participant"]["details"].as_str().unwrap();
    assert!(details.contains("HANDSHAKE_FAILURE"), "{details}");
    if let Some(openssl) = openssl() {
        // The same server and certificates work for OpenSSL.
        let session = s_client(&openssl, &c, Some("bank-a"), "-tls1_3");
        assert_mutual_tls(&session);
    }
}

/// Whether `command` exited successfully, and what it printed.
fn run(command: &mut Command) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    (status.success(), text)
}

/// `openssl s_client -brief` to `c`'s coordinator as member `id` (or with
/// no certificate), verifying the server against the CA under its
/// identity: whether it exited successfully, and what it printed.
fn s_client(openssl: &Path, c: &Consortium, id: Option<&str>, version: &str) -> (bool, String) {
    let dir = c.path().join("pki");
    let mut command = Command::new(openssl);
    command
        .args(["s_client", "-brief", version, "-connect"])
        .arg(format!("127.0.0.1:{}", c.port))
        .args([
            "-servername",
            "coordinator",
            "-verify_hostname",
            "coordinator",
        ])
        .args(["-verify_return_error", "-alpn", "h2", "-CAfile"])
        .arg(dir.join("ca.crt"));
    if let Some(id) = id {
        command
            .arg("-cert")
            .arg(dir.join(format!("{id}.crt")))
            .arg("-key")
            .arg(dir.join(format!("{id}.key")));
    }
    run(&mut command)
}

/// The handshake completed, the server's certificate verified under its
/// identity, and no alert was seen (under TLS 1.2 a client certificate the
/// server refuses ends the handshake with one).
fn assert_mutual_tls((success, session): &(bool, String)) {
    assert!(*success, "{session}");
    for expected in [
        "CONNECTION ESTABLISHED",
        "Verification: OK",
        "Verified peername: coordinator",
    ] {
        assert!(session.contains(expected), "{expected}: {session}");
    }
    assert!(!session.contains("alert"), "{session}");
}

#[test]
fn openssl_reads_every_key_pki_writes_and_completes_mutual_tls() {
    let Some(openssl) = openssl() else { return };
    for algorithm in ["ecdsa-p256", "ed25519"] {
        let c = Consortium::new(2, 5.0, 4);
        if algorithm != "ecdsa-p256" {
            c.reissue_pki(algorithm);
        }
        let dir = c.path().join("pki");
        let keys: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "key"))
            .collect();
        assert_eq!(
            keys.len(),
            6,
            "CA, coordinator, two sites, auditor, analyst"
        );
        for key in &keys {
            let output = Command::new(&openssl)
                .args(["pkey", "-noout", "-text", "-in"])
                .arg(key)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{algorithm}: openssl pkey {}: {}",
                key.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            let expected = match algorithm {
                "ed25519" => "ED25519 Private-Key",
                _ => "NIST CURVE: P-256",
            };
            assert!(text.contains(expected), "{algorithm}: {text}");
        }

        assert_openssl_verifies_the_journal(&openssl, &c, algorithm);
        let _server = c.serve();
        // Under TLS 1.2 the server checks the client's certificate before
        // its Finished, so an established session proves mutual TLS.
        assert_mutual_tls(&s_client(&openssl, &c, Some("bank-a"), "-tls1_2"));
        assert_mutual_tls(&s_client(&openssl, &c, Some("bank-a"), "-tls1_3"));
        // Without a certificate: no session. (Under TLS 1.3 the server's
        // alert comes after the client's Finished, which s_client may not
        // wait to read; TLS 1.2 refuses within the handshake.)
        let (success, session) = s_client(&openssl, &c, None, "-tls1_2");
        assert!(!success, "{algorithm} without a certificate: {session}");
        assert!(
            session.contains("alert certificate required"),
            "{algorithm}: {session}"
        );
    }
}

/// OpenSSL alone checks the signature of a journal's first record, written
/// by the coordinator's journal code with the consortium's coordinator key,
/// against the public key of the certificate the record carries; and
/// refuses it over a changed body.
fn assert_openssl_verifies_the_journal(openssl: &Path, c: &Consortium, algorithm: &str) {
    let dir = c.path().join("pki");
    let work = c.path().join("openssl-journal");
    std::fs::create_dir_all(&work).unwrap();
    let (key, cert) = (dir.join("coordinator.key"), dir.join("coordinator.crt"));
    let journal = work.join("journal.log");
    JournalWriter::open(&journal, &key, &cert, "coordinator").unwrap();
    let bytes = std::fs::read(&journal).unwrap();
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let (body, signature) = (&bytes[4..4 + len], &bytes[4 + len..4 + len + 64]);
    let public = work.join("coordinator.pub");
    let (ok, text) = run(Command::new(openssl)
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&public));
    assert!(ok, "{text}");
    let signature_file = work.join("signature");
    let ed25519 = algorithm == "ed25519";
    let signature = if ed25519 {
        signature.to_vec()
    } else {
        der_signature(signature)
    };
    std::fs::write(&signature_file, signature).unwrap();
    let signed = [SIGNING_CONTEXT, body].concat();
    let mut changed = signed.clone();
    *changed.last_mut().unwrap() ^= 1;
    for (message, valid) in [(signed, true), (changed, false)] {
        let message_file = work.join("message");
        std::fs::write(&message_file, message).unwrap();
        let mut command = Command::new(openssl);
        if ed25519 {
            command
                .args(["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey"])
                .arg(&public)
                .arg("-in")
                .arg(&message_file)
                .arg("-sigfile")
                .arg(&signature_file);
        } else {
            command
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&signature_file)
                .arg(&message_file);
        }
        let (ok, text) = run(&mut command);
        assert_eq!(ok, valid, "{algorithm}: {text}");
    }
}

/// An ECDSA signature `r || s` in the DER form OpenSSL takes: a SEQUENCE of
/// two INTEGERs, each minimal and positive.
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let integer = |half: &[u8]| {
        let first = half.iter().position(|&b| b != 0).unwrap_or(half.len() - 1);
        let digits = &half[first..];
        let pad = usize::from(digits[0] & 0x80 != 0);
        let mut out = vec![0x02, (digits.len() + pad) as u8];
        out.resize(2 + pad, 0);
        out.extend_from_slice(digits);
        out
    };
    let body = [integer(&fixed[..32]), integer(&fixed[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}
