//! The coordinator's TLS handshakes, done here rather than inside tonic so
//! that every refused handshake is counted in `/metrics` and a connection
//! that does not finish its handshake in time is closed: a TCP connection
//! that never speaks, or a client that stalls half-way, holds nothing for
//! long; so is one that finishes its handshake and then sends nothing.
//! The accepted streams go to tonic, which reads the client certificate
//! from them as from its own.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fedseg_common::mtls::{TlsError, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
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

/// A TLS stream whose first bytes were read before it was handed to
/// tonic (so that a connection that finishes its handshake and then says
/// nothing is closed, not held): those bytes are read back first.
pub struct Primed {
    inner: TlsStream<TcpStream>,
    first: Vec<u8>,
    at: usize,
}

impl AsyncRead for Primed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.first.len() {
            let n = buf.remaining().min(this.first.len() - this.at);
            buf.put_slice(&this.first[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Primed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Connected for Primed {
    // The TLS stream's own: tonic reads the client certificate from it.
    type ConnectInfo = <TlsStream<TcpStream> as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Finishes the TLS handshake of `tcp` and waits for its first bytes, each
/// within `limit`; the refusal reason to count otherwise.
async fn prime(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> Result<Primed, &'static str> {
    let mut inner = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(reason(&error)),
        Err(_) => return Err("handshake_timeout"),
    };
    let mut first = vec![0u8; 1024];
    match tokio::time::timeout(limit, inner.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {
            first.truncate(n);
            Ok(Primed {
                inner,
                first,
                at: 0,
            })
        }
        Ok(_) => Err("closed_after_handshake"),
        Err(_) => Err("silent_after_handshake"),
    }
}

/// Accepts connections on `listener`, each with `limit` to finish its TLS
/// handshake and then again to send its first bytes; the streams that do,
/// in order, for tonic. Refused, timed-out and silent connections are
/// counted in `metrics` and closed. Stops (and closes the listener) when
/// tonic drops the stream.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    limit: Duration,
    metrics: Arc<Metrics>,
) -> ReceiverStream<Result<Primed, std::io::Error>> {
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
                match prime(&acceptor, tcp, limit).await {
                    Ok(stream) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Err(reason) => {
                        debug!(%peer, reason, "closed a connection");
                        metrics.rejected_connection(reason);
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
