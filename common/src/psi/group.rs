//! The group operations of the protocol over ristretto255, on slices so a
//! caller can stream ids in chunks and spread them over threads.
//!
//! - Hash to group: RFC 9380 `expand_message_xmd` with SHA-512 to 64
//!   uniform bytes, then the RFC 9496 one-way map
//!   (`RistrettoPoint::from_uniform_bytes`): `hash_to_ristretto255` of
//!   RFC 9380 section 6.8.2, as RFC 9497 uses it. The domain-separation tag
//!   binds the consortium and the job ([`HashTag::for_job`]).
//! - Blinding: multiplication by a per-job secret scalar. A list is blinded
//!   by multiplying with `k/2` and encoding with
//!   `double_and_compress_batch`, which shares one field inversion across
//!   the batch instead of one per point.
//! - Decoding refuses non-canonical encodings and the identity.

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::{RistrettoPoint, Scalar};
use rand::CryptoRng;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A compressed ristretto255 point as it travels: 32 bytes.
pub type Point = [u8; 32];

/// Bytes of one encoded point.
pub const POINT_BYTES: usize = 32;

/// Prefix of the hash-to-group tag of every job; changes with the protocol.
pub const HASH_TO_GROUP_TAG: &[u8] = b"fedseg/psi/v1/hash-to-group/";

/// Points encoded together, sharing one inversion.
const BATCH: usize = 256;

/// An RFC 9380 domain-separation tag with the SHA-512 state after the
/// zero block precomputed.
#[derive(Clone)]
pub struct HashTag {
    prefix: Sha512,
    dst_prime: Vec<u8>,
}

impl std::fmt::Debug for HashTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashTag")
            .field(
                "dst",
                &String::from_utf8_lossy(&self.dst_prime[..self.dst_prime.len() - 1]),
            )
            .finish()
    }
}

impl HashTag {
    /// The tag of one job of one consortium: [`HASH_TO_GROUP_TAG`] followed
    /// by the hex SHA-256 of the length-prefixed consortium and job id (92
    /// bytes). Every party of the job uses the same tag, or nothing would
    /// match; the parties themselves are bound in the sealing keys.
    pub fn for_job(consortium: &str, job_id: &str) -> Self {
        let mut h = Sha256::new();
        for part in [consortium, job_id] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest: [u8; 32] = h.finalize().into();
        let mut dst = HASH_TO_GROUP_TAG.to_vec();
        dst.extend_from_slice(hex::encode(digest).as_bytes());
        Self::raw(&dst).expect("92-byte tag")
    }

    /// A tag given as bytes (1 to 255 of them, as RFC 9380 requires).
    pub fn raw(dst: &[u8]) -> Option<Self> {
        if dst.is_empty() || dst.len() > 255 {
            return None;
        }
        let mut dst_prime = dst.to_vec();
        dst_prime.push(dst.len() as u8);
        let mut prefix = Sha512::new();
        prefix.update([0u8; 128]);
        Some(Self { prefix, dst_prime })
    }

    /// RFC 9380 `expand_message_xmd` with SHA-512 to 64 bytes (one block,
    /// so `ell = 1`).
    fn expand(&self, msg: &[u8]) -> [u8; 64] {
        let mut h = self.prefix.clone();
        h.update(msg);
        h.update([0u8, 64, 0]);
        h.update(&self.dst_prime);
        let b0: [u8; 64] = h.finalize().into();
        let mut h = Sha512::new();
        h.update(b0);
        h.update([1u8]);
        h.update(&self.dst_prime);
        h.finalize().into()
    }
}

/// Hashes one id to the group under `tag`.
pub fn hash_to_group(tag: &HashTag, id: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&tag.expand(id))
}

/// A per-job secret scalar (never zero), wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindingKey {
    scalar: Scalar,
    /// `scalar / 2`, for the double-and-compress batch encoding.
    half: Scalar,
}

impl std::fmt::Debug for BlindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindingKey(..)")
    }
}

impl BlindingKey {
    fn from_scalar(scalar: Scalar) -> Option<Self> {
        if scalar == Scalar::ZERO {
            return None;
        }
        let half = scalar * Scalar::from(2u8).invert();
        Some(Self { scalar, half })
    }

    /// A fresh key from `rng` (the OS generator in production).
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            if let Some(key) = Self::from_scalar(Scalar::random(rng)) {
                return key;
            }
        }
    }

    /// A key from its canonical little-endian encoding (test vectors).
    pub fn from_canonical_bytes(bytes: [u8; 32]) -> Option<Self> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes)).and_then(Self::from_scalar)
    }

    /// The inverse key: blinding with it undoes blinding with `self`.
    pub fn inverse(&self) -> Self {
        Self::from_scalar(self.scalar.invert()).expect("inverse of non-zero is non-zero")
    }

    /// The key whose blinding equals blinding with `self`, then `other`.
    pub fn then(&self, other: &BlindingKey) -> Self {
        Self::from_scalar(self.scalar * other.scalar).expect("product of non-zero is non-zero")
    }
}

/// Decodes a point, refusing non-canonical encodings and the identity.
pub fn decode(point: &Point) -> Option<RistrettoPoint> {
    if point == &[0u8; 32] {
        return None;
    }
    CompressedRistretto(*point).decompress()
}

/// Encodes `key · p` for each point, one inversion per batch.
fn blind_points(points: &[RistrettoPoint], key: &BlindingKey, out: &mut Vec<Point>) {
    let halves: Vec<RistrettoPoint> = points.iter().map(|p| p * key.half).collect();
    out.extend(
        RistrettoPoint::double_and_compress_batch(&halves)
            .into_iter()
            .map(|c| c.to_bytes()),
    );
}

/// Hashes each id to the group and blinds it with `key`, in order.
pub fn hash_and_blind<I: AsRef<[u8]>>(tag: &HashTag, ids: &[I], key: &BlindingKey) -> Vec<Point> {
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(BATCH) {
        let points: Vec<RistrettoPoint> = batch
            .iter()
            .map(|id| hash_to_group(tag, id.as_ref()))
            .collect();
        blind_points(&points, key, &mut out);
    }
    out
}

/// A point that failed to decode, by its index in the slice given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPoint {
    /// Index in the input slice.
    pub index: usize,
}

/// Blinds every encoded point with `key`, in order.
pub fn blind(points: &[Point], key: &BlindingKey) -> Result<Vec<Point>, InvalidPoint> {
    let mut out = Vec::with_capacity(points.len());
    for (b, batch) in points.chunks(BATCH).enumerate() {
        let decoded = batch
            .iter()
            .enumerate()
            .map(|(i, p)| {
                decode(p).ok_or(InvalidPoint {
                    index: b * BATCH + i,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        blind_points(&decoded, key, &mut out);
    }
    Ok(out)
}

/// Runs `f` over `threads` contiguous parts of `items` on scoped threads and
/// concatenates the results in order; `f` gets each part's offset. Errors
/// carry indices relative to the part, so `f` adds the offset itself.
pub fn par_map<T, U, E, F>(items: &[T], threads: usize, f: F) -> Result<Vec<U>, E>
where
    T: Sync,
    U: Send,
    E: Send,
    F: Fn(usize, &[T]) -> Result<Vec<U>, E> + Sync,
{
    let threads = threads.max(1);
    if threads == 1 || items.len() < 2 * BATCH {
        return f(0, items);
    }
    let part = items.len().div_ceil(threads);
    let results: Vec<Result<Vec<U>, E>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(part)
            .enumerate()
            .map(|(i, chunk)| {
                let f = &f;
                scope.spawn(move || f(i * part, chunk))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// [`hash_and_blind`] over `threads` threads.
pub fn par_hash_and_blind<I: AsRef<[u8]> + Sync>(
    tag: &HashTag,
    ids: &[I],
    key: &BlindingKey,
    threads: usize,
) -> Vec<Point> {
    par_map(ids, threads, |_, part| {
        Ok::<_, std::convert::Infallible>(hash_and_blind(tag, part, key))
    })
    .unwrap_or_else(|never| match never {})
}

/// [`blind`] over `threads` threads.
pub fn par_blind(
    points: &[Point],
    key: &BlindingKey,
    threads: usize,
) -> Result<Vec<Point>, InvalidPoint> {
    par_map(points, threads, |offset, part| {
        blind(part, key).map_err(|e| InvalidPoint {
            index: offset + e.index,
        })
    })
}

#[cfg(test)]
#[path = "group_vectors.rs"]
mod vectors;
