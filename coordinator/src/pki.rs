//! The consortium PKI: a CA and the certificates of its members.
//!
//! All keys are Ed25519 (the coordinator's also signs the journal). A leaf
//! names its member as common name and DNS subject alternative name, and its
//! role as organisational unit (see `fedseg_common::identity`). Private keys
//! are written with mode 0600, and nothing is ever overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fedseg_common::identity::{self, IdentityError, Role};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519,
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

/// Creates the consortium CA in `dir`: `ca.crt` and `ca.key`.
pub fn init(dir: &Path, consortium: &str) -> Result<(), PkiError> {
    if consortium.trim().is_empty() {
        return Err(PkiError::EmptyConsortium);
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    refuse_existing(&[&cert_path, &key_path])?;
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
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
    write_new(&key_path, &key.serialize_pem(), 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)
}

/// Issues `dir/<id>.crt` and `dir/<id>.key` for a member in `role`, signed
/// by the CA in `dir`.
pub fn issue(dir: &Path, id: &str, role: Role, validity: Validity) -> Result<(), PkiError> {
    identity::validate_id(id)?;
    let (cert_path, key_path) = (dir.join(format!("{id}.crt")), dir.join(format!("{id}.key")));
    refuse_existing(&[&cert_path, &key_path])?;
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(io_error(&p));
    let ca_key = KeyPair::from_pem(&read(dir.join(CA_KEY))?)?;
    let issuer = Issuer::from_ca_cert_pem(&read(dir.join(CA_CERT))?, ca_key)?;
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
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
        Role::Participant | Role::Auditor => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, &issuer)?;
    write_new(&key_path, &key.serialize_pem(), 0o600)?;
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

    /// The DER body of the first PEM block.
    fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        parsed.contents
    }
}
