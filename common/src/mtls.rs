//! Mutual-TLS settings for both sides, read from the PEM files the PKI
//! commands write. Both sides use rustls through tonic with the `ring`
//! provider, whose signature schemes cover both key algorithms of the PKI
//! (`crate::keys`): ECDSA P-256 with SHA-256 and Ed25519, in certificates,
//! chains mixing the two, and handshake signatures; private keys are PKCS#8
//! PEM of either. The server always requires a client certificate chaining
//! to the consortium CA.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Why TLS material could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not PEM of the expected kind.
    #[error("{path} holds no PEM {kind}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What was expected.
        kind: &'static str,
    },
    /// The private key file is readable by every user of the machine.
    #[error("{0}: the private key is readable by every user (mode {1:o}); chmod 600 it")]
    KeyExposed(PathBuf, u32),
}

/// Refuses a private key file that every user of the machine can read
/// (`pki` writes keys 0600; Kubernetes mounts them 0400).
fn check_key_mode(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(TlsError::KeyExposed(path.to_path_buf(), mode & 0o777));
    }
    Ok(())
}

/// Where a member's TLS material lives.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The consortium CA certificate (PEM).
    pub ca: PathBuf,
    /// This member's certificate (PEM).
    pub cert: PathBuf,
    /// This member's private key (PEM).
    pub key: PathBuf,
}

fn read_pem(path: &Path, kind: &'static str, marker: &str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(TlsError::NotPem {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(bytes)
}

impl TlsFiles {
    /// The same files, with relative paths taken from `base`.
    pub fn relative_to(&self, base: &Path) -> Self {
        Self {
            ca: base.join(&self.ca),
            cert: base.join(&self.cert),
            key: base.join(&self.key),
        }
    }

    /// The consortium CA certificate, PEM bytes.
    pub fn ca_pem(&self) -> Result<Vec<u8>, TlsError> {
        read_pem(&self.ca, "certificate", "BEGIN CERTIFICATE")
    }

    /// The consortium's fingerprint: SHA-256 (hex) of the CA certificate's
    /// DER bytes, the same at every member however its PEM file is laid
    /// out. Per-job protocols bind it into their keys and hash tags.
    pub fn consortium_fingerprint(&self) -> Result<String, TlsError> {
        use sha2::{Digest, Sha256};
        let pem = self.ca_pem()?;
        let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| TlsError::NotPem {
            path: self.ca.clone(),
            kind: "certificate",
        })?;
        Ok(hex::encode(Sha256::digest(&parsed.contents)))
    }

    fn identity(&self) -> Result<Identity, TlsError> {
        let (cert, key) = self.identity_pem()?;
        Ok(Identity::from_pem(cert, key))
    }

    /// This member's certificate and private key, PEM bytes (the key
    /// refused when every user may read it).
    pub fn identity_pem(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        let cert = read_pem(&self.cert, "certificate", "BEGIN CERTIFICATE")?;
        check_key_mode(&self.key)?;
        let key = read_pem(&self.key, "private key", "PRIVATE KEY")?;
        Ok((cert, key))
    }

    /// Server settings: this member's identity, client certificates required
    /// and verified against the consortium CA.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsError> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(Certificate::from_pem(self.ca_pem()?))
            .client_auth_optional(false))
    }

    /// Client settings: this member's identity, the server verified against
    /// the consortium CA under the name `server_id`.
    pub fn client_config(&self, server_id: &str) -> Result<ClientTlsConfig, TlsError> {
        Ok(ClientTlsConfig::new()
            .identity(self.identity()?)
            .ca_certificate(Certificate::from_pem(self.ca_pem()?))
            .domain_name(server_id))
    }
}

/// Connects out to the coordinator at `url` (`https://host:port`) over
/// mutual TLS with `tls`, giving up after five seconds.
pub async fn connect(
    url: &str,
    tls: ClientTlsConfig,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_private_key_every_user_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let files = TlsFiles {
            ca: write("ca.crt", "-----BEGIN CERTIFICATE-----\n"),
            cert: write("a.crt", "-----BEGIN CERTIFICATE-----\n"),
            key: write("a.key", "-----BEGIN PRIVATE KEY-----\n"),
        };
        let mode = |m: u32| {
            std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(0o644);
        assert!(matches!(
            files.server_config(),
            Err(TlsError::KeyExposed(_, 0o644))
        ));
        assert!(matches!(
            files.client_config("c"),
            Err(TlsError::KeyExposed(..))
        ));
        mode(0o600);
        assert!(files.server_config().is_ok());
        mode(0o640);
        assert!(files.client_config("c").is_ok());
    }
}
