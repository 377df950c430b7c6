//! What makes the secure sum hold against a malicious coordinator
//! (Bonawitz et al. CCS 2017, the actively secure variant): every member
//! signs its key advertisement and the survivor set of every round it
//! masked, with the key of its consortium certificate, and checks the
//! others' signatures against the consortium CA before relying on them.
//!
//! - **Signed advertisements.** A member signs (job, epoch, its index, every
//!   public key) and the roster relays its certificate with the signature.
//!   A member seals shares only to a neighbour whose certificate chains to
//!   the CA, names the participant at that cohort index, and signed those
//!   keys: the coordinator cannot hand out keys of its own.
//! - **Consistency check.** Before revealing any share of a round, a member
//!   needs signatures of at least `quorum` distinct cohort members, each
//!   listed as a survivor, on exactly the survivor set it is asked about.
//!   An honest member signs one survivor set per round. With c colluding
//!   members, two different sets of one round can both gather a quorum only
//!   if 2·quorum ≤ n + c, so [`min_quorum`] gives (n + c)/2 + 1 and every
//!   honest holder of a round's shares then sees the same set.
//!
//! Signatures are the PKI's fixed 64-byte ones ([`crate::keys`]) over the
//! byte strings of [`advertisement_message`] and [`survivors_message`],
//! each prefixed with its own domain-separation context.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use crate::certs::{self, CertError};
use crate::identity::Role;
use crate::keys::{FixedSigner, KeyError, SIGNATURE_LEN, SigningKey, VerifyingKey};

use super::error::SecAggError;
use super::messages::{EpochRoster, KeyAdvertisement};

/// A signature of the PKI: 64 bytes for both algorithms.
pub type Signature = [u8; SIGNATURE_LEN];

/// Prefix of every signed key advertisement.
pub const ADVERTISEMENT_CONTEXT: &[u8] = b"fedseg/secagg/keys/v1\0";
/// Prefix of every signed survivor set.
pub const SURVIVORS_CONTEXT: &[u8] = b"fedseg/secagg/survivors/v1\0";
/// Prefix of every signed masked input.
pub const INPUT_CONTEXT: &[u8] = b"fedseg/secagg/input/v1\0";

/// The fewest signatures on a survivor set that keep two different sets of
/// one round from both being confirmed when up to `collusion` of `n`
/// members sign whatever they are asked: the smallest q with 2q > n + c.
pub fn min_quorum(n: u32, collusion: u32) -> u32 {
    (n + collusion) / 2 + 1
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bytes `member` signs for its advertisement `keys` in job `job_id`:
/// context | job (u32 length, UTF-8) | epoch u32 | member u32 |
/// encryption key | count u32 | mask keys, integers little-endian.
pub fn advertisement_message(job_id: &str, member: u32, keys: &KeyAdvertisement) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + job_id.len() + 32 * (1 + keys.mask_keys.len()));
    out.extend_from_slice(ADVERTISEMENT_CONTEXT);
    put_str(&mut out, job_id);
    out.extend_from_slice(&keys.epoch.to_le_bytes());
    out.extend_from_slice(&member.to_le_bytes());
    out.extend_from_slice(&keys.encryption_key);
    out.extend_from_slice(&(keys.mask_keys.len() as u32).to_le_bytes());
    for key in &keys.mask_keys {
        out.extend_from_slice(key);
    }
    out
}

/// The bytes a survivor signs for the survivor set of `round`:
/// context | job (u32 length, UTF-8) | round u64 | count u32 | members u32,
/// integers little-endian, members sorted.
pub fn survivors_message(job_id: &str, round: u64, survivors: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + job_id.len() + 4 * survivors.len());
    out.extend_from_slice(SURVIVORS_CONTEXT);
    put_str(&mut out, job_id);
    out.extend_from_slice(&round.to_le_bytes());
    out.extend_from_slice(&(survivors.len() as u32).to_le_bytes());
    for s in survivors {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The digest a member signs of its masked input: SHA-256 of its words as
/// they travel (little-endian u64s, the `words` bytes of `MaskedInput`).
pub fn input_digest(words: &[u64]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for w in words {
        hash.update(w.to_le_bytes());
    }
    hash.finalize().into()
}

/// The bytes a member signs for its masked input of `round`:
/// context | job (u32 length, UTF-8) | round u64 | input digest (32 bytes).
/// The coordinator journals the signature with the release, so anyone can
/// check offline which inputs a sum covers, and each member that the
/// journal credits with an input sent exactly that one.
pub fn input_message(job_id: &str, round: u64, digest: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(72 + job_id.len());
    out.extend_from_slice(INPUT_CONTEXT);
    put_str(&mut out, job_id);
    out.extend_from_slice(&round.to_le_bytes());
    out.extend_from_slice(digest);
    out
}

/// A member's own signing key and certificate (DER).
pub struct Credential {
    key: SigningKey,
    certificate: Vec<u8>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({})", self.key.algorithm())
    }
}

impl Credential {
    /// A credential from a key and the DER certificate of its public key.
    pub fn new(key: SigningKey, certificate: Vec<u8>) -> Result<Self, KeyError> {
        let public = certs::key_unchecked(&certificate)
            .map_err(|e| KeyError::Unsupported(format!(": {e}")))?;
        if public != key.verifying_key() {
            return Err(KeyError::Unsupported(
                ": the key is not the certificate's".into(),
            ));
        }
        Ok(Self { key, certificate })
    }

    /// The certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign_fixed(message)
    }
}

/// What a member trusts: the consortium CA and the cohort, by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortTrust {
    ca_der: Vec<u8>,
    cohort: Vec<String>,
    unix_s: Option<i64>,
}

impl CohortTrust {
    /// Trust in the CA (DER) for the cohort `cohort` (identities by index);
    /// certificates must be valid at the time of each check.
    pub fn new(ca_der: Vec<u8>, cohort: Vec<String>) -> Self {
        Self {
            ca_der,
            cohort,
            unix_s: None,
        }
    }

    /// The same trust, checking validity at a fixed time instead (for
    /// verifying a journal offline).
    pub fn at(mut self, unix_s: i64) -> Self {
        self.unix_s = Some(unix_s);
        self
    }

    /// The identity at cohort index `member`.
    pub fn identity(&self, member: u32) -> Option<&str> {
        self.cohort.get(member as usize).map(String::as_str)
    }

    /// The key of `member`'s certificate `der`, once it is checked to chain
    /// to the CA and to name the participant at that cohort index.
    pub fn member_key(&self, member: u32, der: &[u8]) -> Result<VerifyingKey, CertError> {
        let id = self
            .identity(member)
            .ok_or_else(|| CertError::WrongMember {
                expected: format!("cohort member {member}"),
                got: "an index outside the cohort".into(),
            })?;
        let when = self.unix_s.unwrap_or_else(certs::unix_now);
        let (_, key) = certs::verify_member(der, &self.ca_der, (id, Role::Participant), when)?;
        Ok(key)
    }
}

/// What a member brings to the protocol besides its parameters.
#[derive(Debug)]
pub struct Membership {
    /// Its own key and certificate.
    pub credential: Credential,
    /// Whom it trusts.
    pub trust: CohortTrust,
}

/// Checks that `keys` in the roster is `member`'s own: its certificate
/// checks out and signed these keys for this job.
pub fn check_advertisement(
    trust: &CohortTrust,
    job_id: &str,
    member: u32,
    keys: &KeyAdvertisement,
) -> Result<VerifyingKey, SecAggError> {
    let forged = |reason: String| SecAggError::Forged { member, reason };
    let key = trust
        .member_key(member, &keys.certificate)
        .map_err(|e| forged(e.to_string()))?;
    key.verify(
        &advertisement_message(job_id, member, keys),
        &keys.signature,
    )
    .map_err(|_| forged("the signature over its keys does not verify".into()))?;
    Ok(key)
}

/// The keys of the roster's members, each checked on first use.
#[derive(Debug, Default)]
pub(crate) struct SignerKeys {
    checked: HashMap<u32, VerifyingKey>,
}

impl SignerKeys {
    /// Records a key already checked.
    pub(crate) fn insert(&mut self, member: u32, key: VerifyingKey) {
        self.checked.insert(member, key);
    }

    /// `member`'s key from the certificate the roster carries for it,
    /// checked against `trust` the first time.
    pub(crate) fn key(
        &mut self,
        trust: &CohortTrust,
        roster: &EpochRoster,
        member: u32,
    ) -> Result<&VerifyingKey, SecAggError> {
        match self.checked.entry(member) {
            Entry::Occupied(found) => Ok(found.into_mut()),
            Entry::Vacant(slot) => {
                let keys = roster.keys_of(member).ok_or(SecAggError::Forged {
                    member,
                    reason: "not in the epoch's roster".into(),
                })?;
                let key = trust.member_key(member, &keys.certificate).map_err(|e| {
                    SecAggError::Forged {
                        member,
                        reason: e.to_string(),
                    }
                })?;
                Ok(slot.insert(key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::consortium::Consortium;
    use super::*;
    use crate::keys::KeyAlgorithm;

    fn advert(epoch: u32) -> KeyAdvertisement {
        KeyAdvertisement {
            epoch,
            encryption_key: [0x11; 32],
            mask_keys: vec![[0x22; 32], [0x33; 32]],
            certificate: Vec::new(),
            signature: [0; SIGNATURE_LEN],
        }
    }

    #[test]
    fn signed_byte_strings_have_the_documented_layout() {
        let mut expected = b"fedseg/secagg/keys/v1\0".to_vec();
        expected.extend_from_slice(&[1, 0, 0, 0, b'j', 7, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[2, 0, 0, 0]);
        expected.extend_from_slice(&[0x22; 32]);
        expected.extend_from_slice(&[0x33; 32]);
        assert_eq!(advertisement_message("j", 2, &advert(7)), expected);

        let mut expected = b"fedseg/secagg/survivors/v1\0".to_vec();
        expected.extend_from_slice(&[2, 0, 0, 0, b'j', b'b']);
        expected.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(survivors_message("jb", 17, &[0, 1, 4]), expected);
        let mut expected = b"fedseg/secagg/input/v1\0".to_vec();
        expected.extend_from_slice(&[1, 0, 0, 0, b'j', 5, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(input_message("j", 5, &[0xab; 32]), expected);
        // The digest is of the little-endian words, as they travel.
        let bytes: Vec<u8> = [1u64, 2].iter().flat_map(|w| w.to_le_bytes()).collect();
        use sha2::Digest;
        assert_eq!(input_digest(&[1, 2])[..], sha2::Sha256::digest(&bytes)[..]);
        // The job id is length-prefixed: no two jobs share a byte string.
        assert_ne!(
            survivors_message("a", 1, &[1]),
            survivors_message("a\u{1}", 0, &[1])
        );
    }

    #[test]
    fn ed25519_signatures_match_rfc_8032_test_1() {
        let secret =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let key = SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(
            &secret.try_into().unwrap(),
        )));
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(hex::encode(key.sign_fixed(b"")), expected);
    }

    #[test]
    fn the_quorum_is_the_smallest_strict_majority_of_n_plus_c() {
        assert_eq!(min_quorum(5, 0), 3);
        assert_eq!(min_quorum(5, 1), 4);
        assert_eq!(min_quorum(4, 1), 3);
        assert_eq!(min_quorum(100, 10), 56);
        for n in 2..60 {
            for c in 0..n {
                let q = min_quorum(n, c);
                assert!(2 * q > n + c && 2 * (q - 1) <= n + c, "n {n} c {c}");
            }
        }
    }

    #[test]
    fn advertisements_check_against_the_cohort_and_nothing_else() {
        for algorithm in KeyAlgorithm::ALL {
            let consortium = Consortium::generate(3, algorithm);
            let trust = consortium.trust();
            let member = &consortium.members[1];
            let mut keys = advert(0);
            keys.certificate = member.credential.certificate().to_vec();
            keys.signature = member
                .credential
                .sign(&advertisement_message("job", 1, &keys));
            assert!(check_advertisement(&trust, "job", 1, &keys).is_ok());
            // Another index, another job, another key, a flipped bit.
            let forged = |r: Result<VerifyingKey, SecAggError>| {
                assert!(matches!(r, Err(SecAggError::Forged { .. })), "{r:?}");
            };
            forged(check_advertisement(&trust, "job", 2, &keys));
            forged(check_advertisement(&trust, "job", 3, &keys));
            forged(check_advertisement(&trust, "other", 1, &keys));
            let mut other = keys.clone();
            other.mask_keys[1][0] ^= 1;
            forged(check_advertisement(&trust, "job", 1, &other));
            let mut other = keys.clone();
            other.signature[5] ^= 1;
            forged(check_advertisement(&trust, "job", 1, &other));
            // Valid certificates only while they are valid.
            let then = trust.clone().at(0);
            forged(check_advertisement(&then, "job", 1, &keys));
        }
    }

    proptest::proptest! {
        /// Distinct (job, round, survivors) never share a signed byte
        /// string, and a signature on one never verifies for another.
        #[test]
        fn survivor_messages_are_injective(
            a in ("[a-z\\x00-\\x02]{0,4}", 0u64..4, proptest::collection::btree_set(0u32..6, 0..5)),
            b in ("[a-z\\x00-\\x02]{0,4}", 0u64..4, proptest::collection::btree_set(0u32..6, 0..5)),
        ) {
            let list = |s: &std::collections::BTreeSet<u32>| s.iter().copied().collect::<Vec<_>>();
            let (ma, mb) = (
                survivors_message(&a.0, a.1, &list(&a.2)),
                survivors_message(&b.0, b.1, &list(&b.2)),
            );
            proptest::prop_assert_eq!(ma == mb, a == b);
            let key = SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&[9; 32])));
            let signature = key.sign_fixed(&ma);
            proptest::prop_assert_eq!(key.verifying_key().verify(&mb, &signature).is_ok(), a == b);
        }
    }

    #[test]
    fn a_credential_needs_its_certificates_key() {
        let consortium = Consortium::generate(2, KeyAlgorithm::Ed25519);
        let other = SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&[3; 32])));
        let cert = consortium.members[0].credential.certificate().to_vec();
        assert!(Credential::new(other, cert).is_err());
    }
}
