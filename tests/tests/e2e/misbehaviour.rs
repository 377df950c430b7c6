//! A listed participant that misbehaves, and both binaries stopping on
//! SIGTERM.

use std::time::Duration;

use fedseg_common::mtls::TlsFiles;
use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{
    self, ParticipantMessage, coordinator_message::Body, participant_message,
};
use fedseg_tests::Consortium;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

/// A channel to the coordinator with bank-e's real certificate, once the
/// coordinator listens.
async fn bank_e(c: &Consortium) -> tonic::transport::Channel {
    let pki = c.path().join("pki");
    let tls = TlsFiles {
        ca: pki.join("ca.crt"),
        cert: pki.join("bank-e.crt"),
        key: pki.join("bank-e.key"),
    };
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", c.port)).unwrap();
    loop {
        match endpoint
            .clone()
            .tls_config(tls.client_config("coordinator").unwrap())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A client holding bank-e's real certificate that accepts the job, then
/// answers the key set-up with a masked input (out of phase) and a masked
/// input whose bytes are not whole words (malformed).
async fn rogue(c: &Consortium) {
    let channel = bank_e(c).await;
    let (tx, rx) = mpsc::channel(8);
    let send = |body| ParticipantMessage { body: Some(body) };
    tx.send(send(participant_message::Body::Hello(proto::Hello {
        protocol_version: fedseg_common::PROTOCOL_VERSION,
        ..Default::default()
    })))
    .await
    .unwrap();
    let mut inbound = CoordinatorClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    while let Ok(Some(message)) = inbound.message().await {
        match message.body {
            Some(Body::JobOffer(_)) => {
                tx.send(send(participant_message::Body::JobAnswer(
                    proto::JobAnswer {
                        accept: true,
                        reason: String::new(),
                    },
                )))
                .await
                .unwrap();
            }
            Some(Body::EpochStart(_)) => {
                let out_of_phase = proto::MaskedInput {
                    round: 0,
                    words: vec![0; 32],
                    signature: vec![0; 64],
                };
                tx.send(send(participant_message::Body::MaskedInput(out_of_phase)))
                    .await
                    .unwrap();
                let ragged = proto::MaskedInput {
                    round: 0,
                    words: vec![0; 7],
                    ..Default::default()
                };
                tx.send(send(participant_message::Body::MaskedInput(ragged)))
                    .await
                    .unwrap();
            }
            Some(Body::JobFinished(_)) => break,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_phase_and_malformed_messages_are_refused_counted_and_harmless() {
    let c = Consortium::new(5, 5.0, 4);
    c.write_job(2, 4, Some(3));
    let mut coordinator = c.run_coordinator();
    let _honest: Vec<_> = c.sites[..4]
        .iter()
        .map(|s| c.run_participant(s, None))
        .collect();
    rogue(&c).await;
    coordinator.expect_success(60);
    let result = c.result();
    assert_eq!(result["rejected_messages"]["out_of_phase"], 1, "{result}");
    assert_eq!(result["rejected_messages"]["malformed"], 1, "{result}");
    for round in result["rounds"].as_array().unwrap() {
        assert_eq!(round["outcome"], "released");
        let survivors = round["survivors"].as_array().unwrap();
        assert!(!survivors.iter().any(|s| s == "bank-e"));
        // The demo vectors of bank-a..bank-d: (i+1)*10 + j for j = 0..4.
        let expected: Vec<f64> = (0..4).map(|j| (10 + 20 + 30 + 40 + 4 * j) as f64).collect();
        let sum = fedseg_tests::floats(&round["sum"]);
        assert_eq!(sum, expected);
    }
    // Refusals are logged with their reason, never with key material.
    let log = coordinator.log_text();
    assert!(log.contains("rejected a protocol message") && log.contains("out_of_phase"));
    assert!(!log.to_lowercase().contains("secret"));
}

#[test]
fn both_binaries_stop_cleanly_on_sigterm() {
    let c = Consortium::new(2, 5.0, 4);
    let mut serve = c.serve();
    let mut participant = c.run_participant("bank-a", None);
    participant.expect_log("session open", 30);
    participant.terminate();
    participant.expect_success(10);
    serve.terminate();
    serve.expect_success(10);
    assert!(serve.log_text().contains("shutting down"));
}

/// A client holding bank-e's real TLS certificate that accepts the job and
/// advertises its keys with another certificate for bank-e, issued by the
/// same CA, signed with that certificate's key.
async fn advertises_with_another_certificate(c: &Consortium, other: &std::path::Path) {
    use fedseg_common::keys::{FixedSigner, SigningKey};
    use fedseg_common::secagg::messages::KeyAdvertisement;
    use fedseg_common::secagg::signing;
    let certificate =
        fedseg_common::certs::pem_to_der(&std::fs::read(other.join("bank-e.crt")).unwrap())
            .unwrap();
    let key =
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(other.join("bank-e.key")).unwrap())
            .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let send = |body| ParticipantMessage { body: Some(body) };
    tx.send(send(participant_message::Body::Hello(proto::Hello {
        protocol_version: fedseg_common::PROTOCOL_VERSION,
        ..Default::default()
    })))
    .await
    .unwrap();
    let mut inbound = CoordinatorClient::new(bank_e(c).await)
        .session(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut index = 0;
    while let Ok(Some(message)) = inbound.message().await {
        match message.body {
            Some(Body::JobOffer(offer)) => {
                index = offer.index;
                let accept = proto::JobAnswer {
                    accept: true,
                    reason: String::new(),
                };
                tx.send(send(participant_message::Body::JobAnswer(accept)))
                    .await
                    .unwrap();
            }
            Some(Body::EpochStart(start)) => {
                let mut advert = KeyAdvertisement {
                    epoch: start.epoch,
                    encryption_key: [7; 32],
                    mask_keys: vec![[8; 32]; start.rounds as usize],
                    certificate: certificate.clone(),
                    signature: [0; 64],
                };
                let signed = signing::advertisement_message(&message.job_id, index, &advert);
                advert.signature = key.sign_fixed(&signed);
                let body = participant_message::Body::KeyAdvertisement((&advert).into());
                tx.send(send(body)).await.unwrap();
            }
            Some(Body::JobFinished(_)) => break,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_advertised_with_a_certificate_other_than_the_sessions_are_refused() {
    let c = Consortium::new(5, 3.0, 4);
    c.write_job(2, 4, Some(3));
    // A second, valid certificate for bank-e from the consortium's CA.
    let other = c.path().join("pki-other");
    std::fs::create_dir_all(&other).unwrap();
    for file in ["ca.crt", "ca.key"] {
        std::fs::copy(c.path().join("pki").join(file), other.join(file)).unwrap();
    }
    fedseg_tests::pki(
        &other,
        &["issue", "--id", "bank-e", "--role", "participant"],
    );
    let mut coordinator = c.run_coordinator();
    let _honest: Vec<_> = c.sites[..4]
        .iter()
        .map(|s| c.run_participant(s, None))
        .collect();
    advertises_with_another_certificate(&c, &other).await;
    coordinator.expect_success(60);
    let result = c.result();
    assert_eq!(
        result["rejected_messages"]["foreign_certificate"], 1,
        "{result}"
    );
    for round in result["rounds"].as_array().unwrap() {
        assert_eq!(round["outcome"], "released");
        assert!(
            !round["survivors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "bank-e")
        );
    }
    let faults: Vec<_> = c
        .journal_records()
        .into_iter()
        .map(|r| r["entry"].clone())
        .filter(|e| e["kind"] == "fault_reported")
        .collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["participant"], "bank-e");
    assert_eq!(faults[0]["fault"], "participant");
    let reason = faults[0]["reason"].as_str().unwrap();
    assert!(reason.contains("TLS session"), "{reason}");
}
