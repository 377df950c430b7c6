//! Key derivation with numbered domain-separation labels.
//!
//! Every symmetric key in the protocol comes from HKDF-SHA256 over a
//! Diffie-Hellman result or a Shamir-shared seed. The HKDF `info` binds the
//! protocol version, a numbered purpose label, the job id and the context
//! (round, epoch, the two parties), so no key can ever serve two purposes or
//! two rounds.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Protocol tag at the start of every HKDF `info`; changes with the protocol.
pub const PROTOCOL_TAG: &[u8] = b"fedseg/secagg/v1";

/// Purposes a derived key can serve, numbered once and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// ChaCha20 key of the pairwise mask between two members in one round.
    PairwiseMask = 1,
    /// ChaCha20 key of a member's self mask in one round.
    SelfMask = 2,
    /// ChaCha20-Poly1305 key sealing one sender's shares to one holder.
    ShareSeal = 3,
}

/// A 32-byte derived key, wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DerivedKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

impl DerivedKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Derives the key for `purpose` from `ikm`, bound to `job_id` and `context`.
pub fn derive(purpose: Purpose, ikm: &[u8], job_id: &str, context: &[u8]) -> DerivedKey {
    let mut info = Vec::with_capacity(PROTOCOL_TAG.len() + 1 + 4 + job_id.len() + context.len());
    info.extend_from_slice(PROTOCOL_TAG);
    info.push(purpose as u8);
    info.extend_from_slice(&(job_id.len() as u32).to_le_bytes());
    info.extend_from_slice(job_id.as_bytes());
    info.extend_from_slice(context);
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, ikm)
        .expand(&info, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    DerivedKey(okm)
}

/// Context of a pairwise mask: the round and the two members, smaller first,
/// so both ends derive the same key.
pub fn pairwise_context(round: u64, a: u32, b: u32) -> [u8; 16] {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut ctx = [0u8; 16];
    ctx[..8].copy_from_slice(&round.to_le_bytes());
    ctx[8..12].copy_from_slice(&lo.to_le_bytes());
    ctx[12..].copy_from_slice(&hi.to_le_bytes());
    ctx
}

/// Context of a self mask: the round and its owner.
pub fn self_mask_context(round: u64, owner: u32) -> [u8; 12] {
    let mut ctx = [0u8; 12];
    ctx[..8].copy_from_slice(&round.to_le_bytes());
    ctx[8..].copy_from_slice(&owner.to_le_bytes());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869, appendix A.1 (basic test case with SHA-256).
    #[test]
    fn hkdf_sha256_rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn purposes_jobs_and_contexts_separate_keys() {
        let base = derive(
            Purpose::PairwiseMask,
            b"ikm",
            "job",
            &pairwise_context(1, 2, 3),
        );
        let others = [
            derive(Purpose::SelfMask, b"ikm", "job", &pairwise_context(1, 2, 3)),
            derive(
                Purpose::PairwiseMask,
                b"ikm",
                "job2",
                &pairwise_context(1, 2, 3),
            ),
            derive(
                Purpose::PairwiseMask,
                b"ikm",
                "job",
                &pairwise_context(2, 2, 3),
            ),
            derive(
                Purpose::PairwiseMask,
                b"ikM",
                "job",
                &pairwise_context(1, 2, 3),
            ),
        ];
        for other in &others {
            assert_ne!(base.as_bytes(), other.as_bytes());
        }
        // Both ends of a pair agree.
        let swapped = derive(
            Purpose::PairwiseMask,
            b"ikm",
            "job",
            &pairwise_context(1, 3, 2),
        );
        assert_eq!(base.as_bytes(), swapped.as_bytes());
    }

    #[test]
    fn derived_keys_are_not_printed() {
        let key = derive(Purpose::SelfMask, b"secret", "job", b"");
        assert_eq!(format!("{key:?}"), "DerivedKey(..)");
    }
}
