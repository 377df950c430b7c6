//! Checking a consortium certificate without TLS: that it was issued by the
//! consortium CA, names one member in the expected role, was valid at a
//! given time, and holds a key of one of the PKI's algorithms. The journal
//! checks the coordinator's certificate this way, and every participant the
//! certificates of the other cohort members whose signatures it relies on.

use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{IdentityError, Member, Role, member_of};
use crate::keys::{KeyError, VerifyingKey};

/// Why a certificate is not a valid consortium member's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not one PEM or DER certificate.
    #[error("{what} does not parse: {reason}")]
    Unparseable {
        /// Which certificate.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// The signature on the certificate is not the CA's.
    #[error("the certificate was not issued by the consortium CA")]
    NotIssuedByCa,
    /// The certificate names no member.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The certificate names another member or role than expected.
    #[error("the certificate names {got}, not {expected}")]
    WrongMember {
        /// `role id` expected.
        expected: String,
        /// `id (role)` found.
        got: String,
    },
    /// The certificate was not valid at the time asked about.
    #[error("the certificate was not valid at unix time {0}")]
    NotValidAt(i64),
    /// The certificate's key is of no PKI algorithm.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// DER of the one certificate in `pem`.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| CertError::Unparseable {
            what: "certificate PEM",
            reason: e.to_string(),
        })?;
    Ok(parsed.contents)
}

fn parse<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, CertError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Unparseable {
        what,
        reason: e.to_string(),
    })?;
    Ok(cert)
}

/// The public key a DER certificate holds, its chain not checked.
pub fn key_unchecked(der: &[u8]) -> Result<VerifyingKey, CertError> {
    Ok(VerifyingKey::from_spki(
        parse(der, "certificate")?.public_key(),
    )?)
}

/// Checks that `der` was issued by the CA (DER `ca_der`), names `id` in
/// `role`, and was valid at `unix_s`; returns the member and its key.
pub fn verify_member(
    der: &[u8],
    ca_der: &[u8],
    (id, role): (&str, Role),
    unix_s: i64,
) -> Result<(Member, VerifyingKey), CertError> {
    let ca = parse(ca_der, "CA certificate")?;
    let cert = parse(der, "certificate")?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| CertError::NotIssuedByCa)?;
    let member = member_of(der)?;
    if member.role != role || member.id != id {
        return Err(CertError::WrongMember {
            expected: format!("{role} {id}"),
            got: format!("{} ({})", member.id, member.role),
        });
    }
    let validity = cert.validity();
    if unix_s < validity.not_before.timestamp() || unix_s > validity.not_after.timestamp() {
        return Err(CertError::NotValidAt(unix_s));
    }
    let key = VerifyingKey::from_spki(cert.public_key())?;
    Ok((member, key))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
