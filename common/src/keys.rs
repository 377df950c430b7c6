//! The key algorithms of the consortium PKI and the fixed-size signatures
//! the coordinator's key makes over its journal.
//!
//! Two algorithms, one definition ([`KeyAlgorithm`]):
//!
//! - **ECDSA P-256 with SHA-256** (the default): the one algorithm OpenSSL,
//!   BoringSSL (grpcio, Chromium), rustls, Go, Java and common HSMs all
//!   accept for TLS client and server certificates.
//! - **Ed25519**: accepted by rustls, OpenSSL and Go, but not offered by
//!   BoringSSL in TLS, so grpcio and other BoringSSL clients cannot use it.
//!
//! Both make 64-byte signatures: Ed25519 natively, ECDSA P-256 in the fixed
//! form `r || s` (two 32-byte big-endian integers, IEEE P1363). Signing uses
//! `ed25519-dalek` and `ring`'s `EcdsaKeyPair`; verification the same crates.
//! Private keys are PKCS#8 PEM; public keys come from X.509 certificates.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, Verifier};
use pkcs8::{DecodePrivateKey, PrivateKeyInfoRef};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use thiserror::Error;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
use x509_parser::x509::SubjectPublicKeyInfo;

/// Length of every signature this module makes or checks.
pub const SIGNATURE_LEN: usize = 64;

/// A key algorithm of the consortium PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    #[default]
    EcdsaP256,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm, the default first.
    pub const ALL: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| KeyError::UnknownAlgorithm(s.to_string()))
    }
}

/// Why a key cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The name is not one of [`KeyAlgorithm::ALL`].
    #[error("unknown key algorithm {0:?} (expected ecdsa-p256 or ed25519)")]
    UnknownAlgorithm(String),
    /// The text is not a PEM `PRIVATE KEY` (PKCS#8) block.
    #[error("not a PKCS#8 PEM private key")]
    NotPkcs8,
    /// The key is of another algorithm (or curve), or malformed.
    #[error("not an ECDSA P-256 or Ed25519 key{0}")]
    Unsupported(String),
    /// A signature did not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A private key that signs journal records.
pub enum SigningKey {
    /// ECDSA P-256 (ring), signing with SHA-256 and a fresh random nonce.
    EcdsaP256(Box<EcdsaKeyPair>),
    /// Ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.algorithm())
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key of either algorithm (PKCS#8 v1 or v2).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) =
            pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(|_| KeyError::NotPkcs8)?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::NotPkcs8);
        }
        let info = PrivateKeyInfoRef::try_from(der.as_slice()).map_err(|_| KeyError::NotPkcs8)?;
        let oid = info.algorithm.oid.as_bytes();
        let unsupported = |e: &dyn fmt::Display| KeyError::Unsupported(format!(": {e}"));
        if oid == OID_KEY_TYPE_EC_PUBLIC_KEY.as_bytes() {
            let rng = SystemRandom::new();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                .map(|k| SigningKey::EcdsaP256(Box::new(k)))
                .map_err(|e| unsupported(&e))
        } else if oid == OID_SIG_ED25519.as_bytes() {
            ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map(|k| SigningKey::Ed25519(Box::new(k)))
                .map_err(|e| unsupported(&e))
        } else {
            Err(KeyError::Unsupported(String::new()))
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::EcdsaP256(k) => VerifyingKey::EcdsaP256(k.public_key().as_ref().to_vec()),
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
        }
    }
}

/// Something that makes [`SIGNATURE_LEN`]-byte signatures: a [`SigningKey`],
/// or an Ed25519 key directly.
pub trait FixedSigner {
    /// Signs `message`.
    ///
    /// # Panics
    /// When the system's random number generator fails (ECDSA needs a nonce).
    fn sign_fixed(&self, message: &[u8]) -> [u8; SIGNATURE_LEN];
}

impl FixedSigner for ed25519_dalek::SigningKey {
    fn sign_fixed(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign(message).to_bytes()
    }
}

impl FixedSigner for SigningKey {
    fn sign_fixed(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        match self {
            SigningKey::Ed25519(k) => k.sign_fixed(message),
            SigningKey::EcdsaP256(k) => k
                .sign(&SystemRandom::new(), message)
                .expect("the system random number generator works")
                .as_ref()
                .try_into()
                .expect("fixed P-256 signatures are 64 bytes"),
        }
    }
}

/// A public key that checks journal signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyingKey {
    /// ECDSA P-256: the uncompressed point (65 bytes, `04 || x || y`).
    EcdsaP256(Vec<u8>),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl VerifyingKey {
    /// The key a certificate's subject public key info holds.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, KeyError> {
        let data = spki.subject_public_key.data.as_ref();
        let algorithm = &spki.algorithm;
        if algorithm.algorithm == OID_SIG_ED25519 {
            let bytes: [u8; 32] = data
                .try_into()
                .map_err(|_| KeyError::Unsupported(": Ed25519 key of the wrong length".into()))?;
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map(VerifyingKey::Ed25519)
                .map_err(|_| KeyError::Unsupported(": not a valid Ed25519 point".into()))
        } else if algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            if curve != Some(OID_EC_P256) {
                return Err(KeyError::Unsupported(": an EC key on another curve".into()));
            }
            Ok(VerifyingKey::EcdsaP256(data.to_vec()))
        } else {
            Err(KeyError::Unsupported(String::new()))
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            VerifyingKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), KeyError> {
        let ok = match self {
            VerifyingKey::Ed25519(k) => k
                .verify(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok(),
            VerifyingKey::EcdsaP256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
        };
        ok.then_some(()).ok_or(KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip_and_ecdsa_is_the_default() {
        assert_eq!(KeyAlgorithm::default(), KeyAlgorithm::EcdsaP256);
        for a in KeyAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<KeyAlgorithm>().unwrap(), a);
        }
        assert!("rsa".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn both_algorithms_sign_and_verify_and_refuse_a_flipped_bit() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ecdsa =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap();
        let keys = [
            SigningKey::EcdsaP256(Box::new(ecdsa)),
            SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]))),
        ];
        for key in keys {
            let public = key.verifying_key();
            assert_eq!(public.algorithm(), key.algorithm());
            let mut signature = key.sign_fixed(b"message");
            public.verify(b"message", &signature).unwrap();
            assert_eq!(
                public.verify(b"messagf", &signature),
                Err(KeyError::BadSignature)
            );
            signature[10] ^= 1;
            assert_eq!(
                public.verify(b"message", &signature),
                Err(KeyError::BadSignature)
            );
        }
    }

    #[test]
    fn pem_that_is_no_private_key_is_refused() {
        assert_eq!(
            SigningKey::from_pkcs8_pem("hello").unwrap_err(),
            KeyError::NotPkcs8
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            SigningKey::from_pkcs8_pem(cert).unwrap_err(),
            KeyError::NotPkcs8
        );
    }
}
