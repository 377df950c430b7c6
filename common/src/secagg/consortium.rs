//! An in-memory consortium: a CA and participant credentials issued in
//! process, for the in-process runner's users (tests and the `bench
//! secure-sum` command), which have no PKI directory to read.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};

use super::signing::{CohortTrust, Credential, Membership};
use crate::keys::{KeyAlgorithm, SigningKey};

/// A CA and one credential per cohort member.
pub struct Consortium {
    /// The CA certificate, DER.
    pub ca: Vec<u8>,
    /// Member identities by index (`p0`, `p1`, …).
    pub cohort: Vec<String>,
    /// What each member brings to the protocol, by index.
    pub members: Vec<Arc<Membership>>,
    ca_issuer: Issuer<'static, KeyPair>,
    algorithm: KeyAlgorithm,
}

fn key_pair(algorithm: KeyAlgorithm) -> KeyPair {
    let alg = match algorithm {
        KeyAlgorithm::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Ed25519 => &PKCS_ED25519,
    };
    KeyPair::generate_for(alg).expect("key generation works")
}

impl Consortium {
    /// A CA and members `p0`..`p{n-1}`, every key of `algorithm`.
    pub fn generate(n: u32, algorithm: KeyAlgorithm) -> Self {
        Self::for_cohort((0..n).map(|i| format!("p{i}")).collect(), algorithm)
    }

    /// A CA and the members `cohort`, by index, every key of `algorithm`.
    pub fn for_cohort(cohort: Vec<String>, algorithm: KeyAlgorithm) -> Self {
        let ca_key = key_pair(algorithm);
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "test consortium CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let ca = ca_cert.der().to_vec();
        let ca_issuer = Issuer::new(params, ca_key);
        let mut consortium = Self {
            ca,
            cohort,
            members: Vec::new(),
            ca_issuer,
            algorithm,
        };
        consortium.members = (0..consortium.cohort.len())
            .map(|i| {
                let id = consortium.cohort[i].clone();
                Arc::new(consortium.issue(&id, "participant"))
            })
            .collect();
        consortium
    }

    /// A membership for a certificate this CA issues to `id` in `role`
    /// (any identity and role, so tests can issue the wrong ones).
    pub fn issue(&self, id: &str, role: &str) -> Membership {
        let key = key_pair(self.algorithm);
        let mut params = CertificateParams::new(vec![id.to_string()]).expect("valid name");
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, id);
        name.push(DnType::OrganizationalUnitName, role);
        params.distinguished_name = name;
        let cert = params
            .signed_by(&key, &self.ca_issuer)
            .expect("member certificate");
        let signing =
            SigningKey::from_pkcs8_pem(&key.serialize_pem()).expect("a PKI algorithm's key");
        Membership {
            credential: Credential::new(signing, cert.der().to_vec()).expect("matching key"),
            trust: self.trust(),
        }
    }

    /// The trust every member of this consortium holds.
    pub fn trust(&self) -> CohortTrust {
        CohortTrust::new(self.ca.clone(), self.cohort.clone())
    }
}
