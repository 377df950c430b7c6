//! Who gets in: a real `fedseg-coordinator serve` over mutual TLS, called
//! with certificates from the consortium CA, from another CA, expired, and
//! for identities the coordinator does not list. Also: a wrong configuration
//! fails at start-up naming the key at fault, and a consortium of Ed25519
//! keys still works between fedseg's own processes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fedseg_common::identity::Role;
use fedseg_common::mtls::TlsFiles;
use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{ParticipantMessage, participant_message};
use fedseg_coordinator::pki::{self, Validity};
use fedseg_tests::{Consortium, binary, rejected_connections};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn files(pki: &Path, ca: &Path, id: &str) -> TlsFiles {
    TlsFiles {
        ca: ca.to_path_buf(),
        cert: pki.join(format!("{id}.crt")),
        key: pki.join(format!("{id}.key")),
    }
}

async fn channel(port: u16, tls: &TlsFiles) -> Result<Channel, String> {
    let config = tls
        .client_config("coordinator")
        .map_err(|e| e.to_string())?;
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(config)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))
}

/// The health answer, or the status code and message of the refusal.
async fn health(port: u16, tls: &TlsFiles) -> Result<ServingStatus, (Code, String)> {
    let channel = channel(port, tls)
        .await
        .map_err(|e| (Code::Unavailable, e))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status())
        .map_err(|s| (s.code(), format!("{s:?}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn only_listed_consortium_members_get_in() {
    let c = Consortium::new(2, 5.0, 4);
    let pki_dir = c.path().join("pki");
    let ca = pki_dir.join("ca.crt");
    // bank-z is listed but its certificate has expired; bank-q is valid but unlisted.
    let config = c.path().join("coordinator.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("participants = [", "participants = [\"bank-z\", ");
    std::fs::write(&config, text).unwrap();
    let past = Validity {
        not_before: time::OffsetDateTime::now_utc() - time::Duration::days(30),
        not_after: time::OffsetDateTime::now_utc() - time::Duration::days(1),
    };
    pki::issue(&pki_dir, "bank-z", Role::Participant, past).unwrap();
    pki::issue(
        &pki_dir,
        "bank-q",
        Role::Participant,
        Validity::days_from_now(30),
    )
    .unwrap();
    // Another consortium's CA issues a certificate for a listed name.
    let rogue = c.path().join("rogue");
    pki::init(&rogue, "rogue").unwrap();
    pki::issue(
        &rogue,
        "bank-a",
        Role::Participant,
        Validity::days_from_now(30),
    )
    .unwrap();

    let metrics = c.enable_metrics();
    let server = c.serve();

    assert_eq!(
        health(c.port, &files(&pki_dir, &ca, "bank-a")).await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        health(c.port, &files(&pki_dir, &ca, "auditor")).await,
        Ok(ServingStatus::Serving)
    );

    // Refused at the TLS handshake: the call fails in the transport (an
    // alert such as UnknownCA, or the server closing the connection) and
    // never reaches a service, so it is never a PermissionDenied.
    for (who, tls) in [
        ("another CA", files(&rogue, &ca, "bank-a")),
        ("expired", files(&pki_dir, &ca, "bank-z")),
    ] {
        let refused = health(c.port, &tls).await.unwrap_err();
        assert!(refused.1.contains("transport::Error"), "{who}: {refused:?}");
        assert_ne!(refused.0, Code::PermissionDenied, "{who}");
    }
    // A valid consortium certificate whose identity is not listed: refused
    // at its first call, and the refusal is logged.
    let unlisted = health(c.port, &files(&pki_dir, &ca, "bank-q"))
        .await
        .unwrap_err();
    assert_eq!(unlisted.0, Code::PermissionDenied, "{unlisted:?}");
    assert!(server.wait_for_log(
        "refused an identity not on the consortium list",
        Duration::from_secs(5)
    ));
    // Every refusal is counted: the refused handshakes, the unlisted caller.
    // (A client may try a refused handshake more than once.)
    assert!(rejected_connections(metrics, "bad_certificate", 2.0) >= 2.0);
    assert!(rejected_connections(metrics, "not_admitted", 1.0) >= 1.0);

    // An auditor may not open a participant session.
    let auditor = channel(c.port, &files(&pki_dir, &ca, "auditor"))
        .await
        .unwrap();
    let hello = ParticipantMessage {
        body: Some(participant_message::Body::Hello(Default::default())),
    };
    let denied = CoordinatorClient::new(auditor)
        .session(tokio_stream::iter(vec![hello]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A client expecting another coordinator identity refuses this one.
    let wrong_name = files(&pki_dir, &ca, "bank-a")
        .client_config("not-the-coordinator")
        .unwrap();
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", c.port))
        .unwrap()
        .tls_config(wrong_name)
        .unwrap();
    let result = match endpoint.connect().await {
        Err(e) => Err(e.to_string()),
        Ok(ch) => HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .map(|_| ())
            .map_err(|s| s.to_string()),
    };
    assert!(result.is_err());
}

#[test]
fn a_wrong_configuration_fails_at_start_up_naming_the_key() {
    let c = Consortium::new(2, 5.0, 4);
    let config = c.path().join("coordinator.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    let cases = [
        (good.replace("journal =", "jurnal ="), "jurnal"),
        (
            good.replace("phase_timeout_s = 5.0", "phase_timeout_s = -1.0"),
            "rounds.phase_timeout_s",
        ),
        (
            good.replace("id = \"coordinator\"", "id = \"Coordinator!\""),
            "`id`",
        ),
    ];
    for (text, key) in cases {
        std::fs::write(&config, &text).unwrap();
        let output = Command::new(binary("fedseg-coordinator"))
            .current_dir(c.path())
            .args(["serve", "--config", "coordinator.toml"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    let participant = c.path().join("sites/bank-a/participant.toml");
    let text = std::fs::read_to_string(&participant)
        .unwrap()
        .replace("ledger =", "ledgr =");
    std::fs::write(&participant, text).unwrap();
    let output = Command::new(binary("fedseg-participant"))
        .arg("run")
        .arg("--config")
        .arg(&participant)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ledgr"));
}

/// fedseg's own processes (rustls on both sides) under Ed25519 keys, which
/// `pki` wrote before ECDSA P-256 became its default: a job runs to its end
/// and the journal verifies as signed by an Ed25519 coordinator.
#[test]
fn an_ed25519_consortium_runs_a_job_between_fedseg_processes() {
    let c = Consortium::new(2, 5.0, 4);
    c.reissue_pki("ed25519");
    c.write_job(1, 4, None);
    drop(c.run_job());
    let output = c.verify_journal(&c.path().join("journal.log"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("(ed25519)"), "{stdout}");
}
