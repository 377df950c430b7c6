//! Sessions under hostile or clumsy peers: connections that never finish
//! their TLS handshake, or never send Hello, are closed within
//! `hello_timeout_s`; a second session with an identity whose session is
//! live is refused and the first goes on; every refusal is counted in
//! `/metrics` (`fedseg_rejected_connections_total{reason}`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{self, ParticipantMessage, participant_message};
use fedseg_tests::{Consortium, rejected_connections as rejected};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// Whether the coordinator closes `stream` within `within` (a read ends).
fn closed_within(mut stream: TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

fn consortium() -> (Consortium, u16) {
    let c = Consortium::new(2, 5.0, 4);
    c.set_rounds("hello_timeout_s = 1.0\nkeepalive_s = 2.0\n");
    let port = c.enable_metrics();
    (c, port)
}

#[test]
fn connections_that_never_finish_their_handshake_are_closed_and_counted() {
    let (c, metrics) = consortium();
    let _server = c.serve();
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", c.port)).unwrap())
        .collect();
    // Half a TLS record header, then nothing.
    let mut stalled = TcpStream::connect(("127.0.0.1", c.port)).unwrap();
    stalled.write_all(&[0x16, 0x03]).unwrap();
    // Not TLS at all.
    let mut garbage = TcpStream::connect(("127.0.0.1", c.port)).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    for stream in idle.into_iter().chain([stalled, garbage]) {
        assert!(
            closed_within(stream, Duration::from_secs(6)),
            "a connection was held for {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(rejected(metrics, "handshake_timeout"), 4.0);
    assert_eq!(rejected(metrics, "tls_handshake"), 1.0);
}

/// Opens a session as `id` that sends what arrives on `rx`; the status it
/// ends with (before or after its first message).
async fn refused_session(
    c: &Consortium,
    id: &str,
    rx: tokio::sync::mpsc::Receiver<ParticipantMessage>,
) -> tonic::Status {
    let mut client = CoordinatorClient::new(c.channel(id).await);
    match client.session(ReceiverStream::new(rx)).await {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    }
}

fn hello() -> ParticipantMessage {
    ParticipantMessage {
        body: Some(participant_message::Body::Hello(proto::Hello {
            protocol_version: 1,
            software: "a second session".into(),
            resumable_jobs: vec![],
        })),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_session_of_a_live_identity_is_refused_and_a_silent_one_closed() {
    let (c, metrics) = consortium();
    let server = c.serve();
    let bank_a = c.run_participant("bank-a", None);
    server.expect_log("participant connected", 30);

    // bank-a's certificate again while its session is live: refused.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello()).await.unwrap();
    let refused = refused_session(&c, "bank-a", rx).await;
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert_eq!(rejected(metrics, "duplicate_session"), 1.0);
    // The real bank-a's session went on.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !bank_a.log_text().contains("session ended"),
        "{}",
        bank_a.log_text()
    );

    // bank-b opens a session and never says Hello: closed after 1 s.
    let (_keep, rx) = tokio::sync::mpsc::channel::<ParticipantMessage>(4);
    let started = Instant::now();
    let closed = refused_session(&c, "bank-b", rx).await;
    assert_eq!(closed.code(), Code::DeadlineExceeded, "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rejected(metrics, "no_hello"), 1.0);
}
