//! The coordinator's TLS handshakes, done here rather than inside tonic so
//! that every refused handshake is counted in `/metrics` and a connection
//! that does not finish its handshake in time is closed: a TCP connection
//! that never speaks, or a client that stalls half-way, holds nothing for
//! long. The accepted streams go to tonic, which reads the client
//! certificate from them as from its own.

use std::sync::Arc;
use std::time::Duration;

use fedseg_common::mtls::{TlsError, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// Why the server's TLS settings could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The TLS files are missing or wrong.
    #[error(transparent)]
    Files(#[from] TlsError),
    /// A PEM file does not parse.
    #[error("{what}: {error}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// The parser's error.
        error: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Rustls(String),
}

/// Server settings: the coordinator's certificate and key, client
/// certificates required and verified against the consortium CA, HTTP/2.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, AcceptError> {
    let pem = |what: &'static str| {
        move |e: rustls::pki_types::pem::Error| AcceptError::Pem {
            what,
            error: e.to_string(),
        }
    };
    let rustls = |e: &dyn std::fmt::Display| AcceptError::Rustls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&files.ca_pem()?) {
        roots
            .add(cert.map_err(pem("CA certificate"))?)
            .map_err(|e| rustls(&e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| rustls(&e))?;
    let (cert, key) = files.identity_pem()?;
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem("certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(pem("private key"))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| rustls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| rustls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The reason label a failed handshake is counted under.
fn reason(error: &std::io::Error) -> &'static str {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            "bad_certificate"
        }
        _ => "tls_handshake",
    }
}

/// Accepts connections on `listener`, each with `handshake` to finish its
/// TLS handshake; the streams that do, in order, for tonic. Refused and
/// timed-out handshakes are counted in `metrics` and closed. Stops (and
/// closes the listener) when tonic drops the stream.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handshake: Duration,
    metrics: Arc<Metrics>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait a little, keep serving.
                    warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        debug!(%peer, %error, "refused a TLS handshake");
                        metrics.rejected_connection(reason(&error));
                    }
                    Err(_) => {
                        debug!(%peer, "closed a connection that did not finish its TLS handshake");
                        metrics.rejected_connection("handshake_timeout");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
