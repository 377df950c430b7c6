//! The consortium PKI: a CA and the certificates of its members.
//!
//! Keys are ECDSA P-256 by default, Ed25519 on request
//! (`fedseg_common::keys::KeyAlgorithm`); the coordinator's also signs the
//! journal. Private keys are PKCS#8 PEM that OpenSSL, BoringSSL, rustls and
//! Go read: ECDSA as PKCS#8 v1 with the public key inside the EC private key
//! (RFC 5915), Ed25519 as PKCS#8 v1 without the optional public key (RFC
//! 8410), since OpenSSL 3.0 refuses the v2 encoding `ring` writes. A leaf
//! names its member as common name and DNS subject alternative name, and its
//! role as organisational unit (see `fedseg_common::identity`). Private keys
//! are written with mode 0600, and nothing is ever overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use fedseg_common::identity::{self, IdentityError, Role};
use fedseg_common::keys::KeyAlgorithm;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate in a PKI directory.
pub const CA_CERT: &str = "ca.crt";
/// File name of the CA private key in a PKI directory.
pub const CA_KEY: &str = "ca.key";

/// Why a PKI operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The file exists; PKI commands never overwrite.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The member identity is not acceptable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The consortium name is empty.
    #[error("the consortium name must not be empty")]
    EmptyConsortium,
    /// A generated Ed25519 key could not be re-encoded as PKCS#8 v1.
    #[error("PKCS#8 encoding: {0}")]
    Pkcs8(String),
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (clock skew) for `days` days.
    pub fn days_from_now(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PkiError::Exists(path.to_path_buf()),
            _ => PkiError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(io_error(path))
}

fn refuse_existing(paths: &[&Path]) -> Result<(), PkiError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(PkiError::Exists(p.to_path_buf())),
        None => Ok(()),
    }
}

/// A fresh key pair of `algorithm` and its PKCS#8 PEM as written to disk.
fn generate(algorithm: KeyAlgorithm) -> Result<(KeyPair, String), PkiError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let pem = key.serialize_pem();
            Ok((key, pem))
        }
        KeyAlgorithm::Ed25519 => {
            // ring writes PKCS#8 v2 (public key attached); keep the seed only.
            let v2 = KeyPair::generate_for(&PKCS_ED25519)?.serialize_der();
            let pkcs8 = |e: ed25519_dalek::pkcs8::Error| PkiError::Pkcs8(e.to_string());
            let mut bytes = KeypairBytes::from_pkcs8_der(&v2).map_err(pkcs8)?;
            bytes.public_key = None;
            let pem = bytes.to_pkcs8_pem(pkcs8::LineEnding::LF).map_err(pkcs8)?;
            Ok((KeyPair::from_pem(&pem)?, pem.to_string()))
        }
    }
}

/// Creates the consortium CA in `dir` with the default key algorithm.
pub fn init(dir: &Path, consortium: &str) -> Result<(), PkiError> {
    init_with(dir, consortium, KeyAlgorithm::default())
}

/// Creates the consortium CA in `dir`: `ca.crt` and `ca.key`, a key of
/// `algorithm`.
pub fn init_with(dir: &Path, consortium: &str, algorithm: KeyAlgorithm) -> Result<(), PkiError> {
    if consortium.trim().is_empty() {
        return Err(PkiError::EmptyConsortium);
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    refuse_existing(&[&cert_path, &key_path])?;
    let (key, key_pem) = generate(algorithm)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("{consortium} consortium CA"));
    name.push(DnType::OrganizationName, consortium);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let validity = Validity::days_from_now(3650);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.self_signed(&key)?;
    write_new(&key_path, &key_pem, 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)
}

/// Issues a member's certificate with the default key algorithm.
pub fn issue(dir: &Path, id: &str, role: Role, validity: Validity) -> Result<(), PkiError> {
    issue_with(dir, id, role, validity, KeyAlgorithm::default())
}

/// Issues `dir/<id>.crt` and `dir/<id>.key` (a key of `algorithm`) for a
/// member in `role`, signed by the CA in `dir` (whatever its algorithm).
pub fn issue_with(
    dir: &Path,
    id: &str,
    role: Role,
    validity: Validity,
    algorithm: KeyAlgorithm,
) -> Result<(), PkiError> {
    identity::validate_id(id)?;
    let (cert_path, key_path) = (dir.join(format!("{id}.crt")), dir.join(format!("{id}.key")));
    refuse_existing(&[&cert_path, &key_path])?;
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(io_error(&p));
    let ca_key = KeyPair::from_pem(&read(dir.join(CA_KEY))?)?;
    let issuer = Issuer::from_ca_cert_pem(&read(dir.join(CA_CERT))?, ca_key)?;
    let (key, key_pem) = generate(algorithm)?;
    let mut params = CertificateParams::new(vec![id.to_string()])?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, id);
    name.push(DnType::OrganizationalUnitName, role.as_str());
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Coordinator => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Participant | Role::Auditor | Role::Analyst => {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        }
    };
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, &issuer)?;
    write_new(&key_path, &key_pem, 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedseg_common::identity::member_of;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fedseg-pki-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn issued_certificates_carry_identity_and_role() {
        let dir = temp_dir("issue");
        init(&dir, "Northern Banks").unwrap();
        issue(
            &dir,
            "bank-a",
            Role::Participant,
            Validity::days_from_now(30),
        )
        .unwrap();
        let pem = std::fs::read_to_string(dir.join("bank-a.crt")).unwrap();
        let der = rustls_pemfile_der(&pem);
        let member = member_of(&der).unwrap();
        assert_eq!(member.id, "bank-a");
        assert_eq!(member.role, Role::Participant);
        let mode = std::fs::metadata(dir.join("bank-a.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let ca_mode = std::fs::metadata(dir.join(CA_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(ca_mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_overwrites_and_validates_ids() {
        let dir = temp_dir("overwrite");
        init(&dir, "c").unwrap();
        assert!(matches!(init(&dir, "c"), Err(PkiError::Exists(_))));
        issue(&dir, "bank-b", Role::Auditor, Validity::days_from_now(1)).unwrap();
        let before = std::fs::read(dir.join("bank-b.key")).unwrap();
        assert!(matches!(
            issue(
                &dir,
                "bank-b",
                Role::Participant,
                Validity::days_from_now(1)
            ),
            Err(PkiError::Exists(_))
        ));
        assert_eq!(std::fs::read(dir.join("bank-b.key")).unwrap(), before);
        assert!(matches!(
            issue(
                &dir,
                "Bank B",
                Role::Participant,
                Validity::days_from_now(1)
            ),
            Err(PkiError::Identity(_))
        ));
        assert!(matches!(
            init(&temp_dir("empty"), " "),
            Err(PkiError::EmptyConsortium)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_of_either_algorithm_are_pkcs8_v1_and_match_their_certificates() {
        use fedseg_common::keys::{SigningKey, VerifyingKey};
        use pkcs8::{PrivateKeyInfoRef, Version};
        use x509_parser::prelude::{FromDer, X509Certificate};
        for algorithm in KeyAlgorithm::ALL {
            let dir = temp_dir(&format!("algorithm-{algorithm}"));
            init_with(&dir, "c", algorithm).unwrap();
            let validity = Validity::days_from_now(1);
            issue_with(&dir, "c1", Role::Coordinator, validity, algorithm).unwrap();
            issue_with(&dir, "a1", Role::Analyst, validity, algorithm).unwrap();
            for id in ["ca", "c1", "a1"] {
                let pem = std::fs::read_to_string(dir.join(format!("{id}.key"))).unwrap();
                assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
                let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
                assert_eq!(key.algorithm(), algorithm);
                let der = rustls_pemfile_der(&pem);
                let info = PrivateKeyInfoRef::try_from(der.as_slice()).unwrap();
                assert_eq!(info.version(), Version::V1, "{algorithm} {id}");
                let cert = rustls_pemfile_der(
                    &std::fs::read_to_string(dir.join(format!("{id}.crt"))).unwrap(),
                );
                let (_, cert) = X509Certificate::from_der(&cert).unwrap();
                let public = VerifyingKey::from_spki(cert.public_key()).unwrap();
                assert_eq!(public, key.verifying_key(), "{algorithm} {id}");
            }
            let analyst = rustls_pemfile_der(&std::fs::read_to_string(dir.join("a1.crt")).unwrap());
            assert_eq!(member_of(&analyst).unwrap().role, Role::Analyst);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// The DER body of the first PEM block.
    fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        parsed.contents
    }
}
