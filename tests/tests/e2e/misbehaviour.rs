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

/// A client holding bank-e's real certificate that accepts the job, then
/// answers the key set-up with a masked input (out of phase) and a masked
/// input whose bytes are not whole words (malformed).
async fn rogue(c: &Consortium) {
    let pki = c.path().join("pki");
    let tls = TlsFiles {
        ca: pki.join("ca.crt"),
        cert: pki.join("bank-e.crt"),
        key: pki.join("bank-e.key"),
    };
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", c.port)).unwrap();
    let channel = loop {
        match endpoint
            .clone()
            .tls_config(tls.client_config("coordinator").unwrap())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let (tx, rx) = mpsc::channel(8);
    let send = |body| ParticipantMessage { body: Some(body) };
    tx.send(send(participant_message::Body::Hello(proto::Hello {
        protocol_version: 1,
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
                    ..Default::default()
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
