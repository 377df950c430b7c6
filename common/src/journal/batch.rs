//! The digest of a [`super::Entry::VerticalBatch`]: SHA-256 over the raw
//! SHA-256 digests of the batch's messages, in the order sent. The
//! coordinator computes it from what it received; a party's ledger check
//! recomputes it from its own lines, so one definition serves both.

use sha2::{Digest, Sha256};

/// A batch digest being accumulated.
#[derive(Debug, Clone, Default)]
pub struct BatchDigest {
    hasher: Sha256,
    messages: u64,
}

impl BatchDigest {
    /// Adds one message by its SHA-256 in hex; false (and nothing added)
    /// when that is not 64 hex digits.
    pub fn add(&mut self, sha256_hex: &str) -> bool {
        let mut raw = [0u8; 32];
        if hex::decode_to_slice(sha256_hex, &mut raw).is_err() {
            return false;
        }
        self.hasher.update(raw);
        self.messages += 1;
        true
    }

    /// Messages added.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_every_message_and_their_order() {
        let (a, b) = (hex::encode([1u8; 32]), hex::encode([2u8; 32]));
        let digest = |items: &[&str]| {
            let mut d = BatchDigest::default();
            assert!(items.iter().all(|i| d.add(i)));
            d.finish()
        };
        assert_ne!(digest(&[&a, &b]), digest(&[&b, &a]));
        assert_ne!(digest(&[&a]), digest(&[&a, &b]));
        assert!(!BatchDigest::default().add("zz"));
    }
}
