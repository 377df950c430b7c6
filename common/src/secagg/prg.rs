//! Expansion of a 32-byte key into a mask of `u64` words with ChaCha20
//! (RFC 8439, zero nonce: every key is derived for exactly one stream).

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

use super::kdf::DerivedKey;

/// Keystream bytes produced per block of work; large enough for the SIMD
/// backends, small enough to stay in L1.
const CHUNK_WORDS: usize = 512;

/// Whether a mask is added to or subtracted from the accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// Add the mask (wrapping).
    Plus,
    /// Subtract the mask (wrapping).
    Minus,
}

impl Sign {
    /// The opposite sign.
    pub fn flip(self) -> Self {
        match self {
            Sign::Plus => Sign::Minus,
            Sign::Minus => Sign::Plus,
        }
    }
}

fn cipher(key: &DerivedKey) -> ChaCha20 {
    ChaCha20::new(key.as_bytes().into(), &[0u8; 12].into())
}

/// Adds (or subtracts) the mask expanded from `key` to `acc`, word by word,
/// modulo 2^64. Word i of the mask is keystream bytes 8i..8i+8, little-endian.
pub fn apply_mask(acc: &mut [u64], key: &DerivedKey, sign: Sign) {
    let mut stream = cipher(key);
    let mut buf = [0u8; CHUNK_WORDS * 8];
    for chunk in acc.chunks_mut(CHUNK_WORDS) {
        let bytes = &mut buf[..chunk.len() * 8];
        stream.write_keystream(bytes);
        let words = bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("chunks_exact yields 8 bytes")));
        match sign {
            Sign::Plus => chunk
                .iter_mut()
                .zip(words)
                .for_each(|(a, m)| *a = a.wrapping_add(m)),
            Sign::Minus => chunk
                .iter_mut()
                .zip(words)
                .for_each(|(a, m)| *a = a.wrapping_sub(m)),
        }
    }
}

/// Writes raw keystream for `key` into `out`: the baseline the masking cost
/// is compared with in benchmarks.
pub fn write_keystream(key: &DerivedKey, out: &mut [u8]) {
    cipher(key).write_keystream(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::cipher::StreamCipherSeek;

    /// RFC 8439, section 2.4.2: the ChaCha20 encryption test vector.
    #[test]
    fn chacha20_rfc8439_encryption_vector() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let nonce = hex::decode("000000000000004a00000000").unwrap();
        let mut text = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let mut c = ChaCha20::new(&key.into(), nonce.as_slice().try_into().unwrap());
        c.seek(64u64); // initial block counter 1
        c.apply_keystream(&mut text);
        assert_eq!(
            hex::encode(&text[..32]),
            "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        );
        assert_eq!(hex::encode(&text[text.len() - 2..]), "874d");
    }

    #[test]
    fn plus_then_minus_cancels_and_chunks_agree() {
        let key = DerivedKey([7u8; 32]);
        let original: Vec<u64> = (0..1_500).collect();
        let mut acc = original.clone();
        apply_mask(&mut acc, &key, Sign::Plus);
        assert_ne!(acc, original);
        // The mask of a shorter vector is a prefix of the longer one.
        let mut short = original[..700].to_vec();
        apply_mask(&mut short, &key, Sign::Plus);
        assert_eq!(short, acc[..700]);
        apply_mask(&mut acc, &key, Sign::Minus);
        assert_eq!(acc, original);
    }

    #[test]
    fn mask_words_are_little_endian_keystream() {
        let key = DerivedKey([9u8; 32]);
        let mut bytes = [0u8; 24];
        write_keystream(&key, &mut bytes);
        let mut acc = vec![0u64; 3];
        apply_mask(&mut acc, &key, Sign::Plus);
        for (i, word) in acc.iter().enumerate() {
            assert_eq!(
                *word,
                u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
            );
        }
    }
}
