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
use fedseg_tests::{Consortium, rejected_connections as counted};
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
    assert_eq!(counted(metrics, "handshake_timeout", 4.0), 4.0);
    assert_eq!(counted(metrics, "tls_handshake", 1.0), 1.0);
}

/// Opens a session as `id` that sends what arrives on `rx`; the status it
/// ends with (before or after its first message).
/// A TLS connection with `id`'s consortium certificate that finishes its
/// handshake and then sends nothing; how long until the coordinator closes
/// it (at most `within`).
async fn silent_tls(c: &Consortium, id: &str, within: Duration) -> Duration {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::AsyncReadExt;
    let pki = c.path().join("pki");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.join("ca.crt")).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_file(pki.join(format!("{id}.crt"))).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.join(format!("{id}.key"))).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", c.port))
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = ServerName::try_from("coordinator").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    // Ends with 0 bytes or an error when the coordinator closes it.
    while let Ok(Ok(n)) = tokio::time::timeout(within, tls.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
    started.elapsed()
}

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
            protocol_version: fedseg_common::PROTOCOL_VERSION,
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
    assert_eq!(counted(metrics, "duplicate_session", 1.0), 1.0);
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
    assert_eq!(counted(metrics, "no_hello", 1.0), 1.0);

    // A member's certificate, a finished handshake, then nothing at all:
    // closed after hello_timeout_s, not held.
    let held = silent_tls(&c, "bank-b", Duration::from_secs(10)).await;
    assert!(held < Duration::from_secs(5), "held for {held:?}");
    assert_eq!(counted(metrics, "silent_after_handshake", 1.0), 1.0);
}
