//! Identities and roles in consortium certificates.
//!
//! A member's certificate names it twice, identically: as the subject's
//! common name and as a DNS subject alternative name (which TLS checks). Its
//! role is the subject's organisational unit. Every decision about a peer is
//! taken from its verified certificate, never from a message field.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// What a certificate holder may do in the consortium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the rounds.
    Coordinator,
    /// A bank's node.
    Participant,
    /// Reads the journal through the audit service, nothing else.
    Auditor,
    /// Submits and reads jobs on a running coordinator (a job service yet to
    /// come: until then an analyst is admitted to nothing).
    Analyst,
}

impl Role {
    /// The name written into certificates.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Participant => "participant",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "coordinator" => Ok(Role::Coordinator),
            "participant" => Ok(Role::Participant),
            "auditor" => Ok(Role::Auditor),
            "analyst" => Ok(Role::Analyst),
            other => Err(IdentityError::UnknownRole(other.to_string())),
        }
    }
}

/// Why a certificate does not name a consortium member.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not a parseable X.509 certificate.
    #[error("certificate does not parse: {0}")]
    Unparseable(String),
    /// No usable common name or DNS name, or they disagree.
    #[error("certificate names no single member identity")]
    NoIdentity,
    /// The organisational unit is not a known role.
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// The identity is not a lowercase DNS label.
    #[error(
        "identity {0:?} must be 1-63 lowercase letters, digits or hyphens, starting with a letter or digit"
    )]
    InvalidId(String),
    /// The peer presented no certificate.
    #[error("no client certificate presented")]
    NoCertificate,
}

/// A member identity and its role, as a verified certificate states them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// The identity (e.g. `bank-a`).
    pub id: String,
    /// Its role.
    pub role: Role,
}

/// Checks that `id` can name a member: a lowercase DNS label.
pub fn validate_id(id: &str) -> Result<(), IdentityError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidId(id.to_string()))
    }
}

/// Reads the member identity and role from a DER certificate. The caller is
/// responsible for having verified the certificate chain (TLS does).
pub fn member_of(der: &[u8]) -> Result<Member, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Unparseable(e.to_string()))?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or(IdentityError::NoIdentity)?;
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .ok_or(IdentityError::UnknownRole(String::new()))?
        .parse()?;
    let dns_names: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(*d),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if dns_names != [common_name] {
        return Err(IdentityError::NoIdentity);
    }
    validate_id(common_name)?;
    Ok(Member {
        id: common_name.to_string(),
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dns_labels() {
        assert!(validate_id("bank-a").is_ok());
        assert!(validate_id("b2").is_ok());
        for bad in ["", "Bank", "-a", "a_b", "a.b", &"x".repeat(64)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_round_trip() {
        for role in [
            Role::Coordinator,
            Role::Participant,
            Role::Auditor,
            Role::Analyst,
        ] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
