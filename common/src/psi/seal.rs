//! Sealing of point lists sent from one party to another through the
//! coordinator: ChaCha20-Poly1305 under a key from X25519 between the two
//! parties' per-job sealing keys, HKDF-bound to the protocol, consortium,
//! job, step, sender and recipient. A list travels in chunks of at most
//! [`CHUNK_POINTS`] points; each (step, sender, recipient) key seals one
//! list, so the nonce is the chunk index, and the associated data binds the
//! index, the chunk count and the list length so chunks cannot be dropped,
//! reordered or moved between lists.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use super::error::PsiError;
use super::group::{POINT_BYTES, Point};
use super::messages::{Envelope, Step};

/// Protocol tag at the start of every HKDF `info` and associated data.
pub const SEAL_TAG: &[u8] = b"fedseg/psi/v1/seal";

/// Purposes a derived key can serve, numbered once and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// ChaCha20-Poly1305 key sealing one list from one party to another.
    ListSeal = 1,
}

/// Points per sealed chunk (1 MiB of plaintext).
pub const CHUNK_POINTS: usize = 32_768;

/// Bytes the AEAD adds to a chunk.
pub const TAG_BYTES: usize = 16;

/// Chunks of a list of `points` points: at least one, so an empty list is
/// still an authenticated message.
pub fn chunk_count(points: u64) -> usize {
    (points.div_ceil(CHUNK_POINTS as u64) as usize).max(1)
}

/// Sealed bytes of chunk `index` of a list of `points` points.
pub fn sealed_chunk_len(points: u64, index: usize) -> usize {
    let before = (index * CHUNK_POINTS) as u64;
    let here = points.saturating_sub(before).min(CHUNK_POINTS as u64) as usize;
    here * POINT_BYTES + TAG_BYTES
}

/// What a sealed list is: authenticated and folded into the key.
#[derive(Debug, Clone, Copy)]
pub struct ListContext<'a> {
    /// Consortium.
    pub consortium: &'a str,
    /// Job.
    pub job_id: &'a str,
    /// Step.
    pub step: Step,
    /// Party that sealed it.
    pub sender: u32,
    /// Party it is for.
    pub recipient: u32,
    /// Points in the list.
    pub points: u64,
}

impl ListContext<'_> {
    fn info(&self) -> Vec<u8> {
        let mut info = Vec::with_capacity(SEAL_TAG.len() + 40 + self.job_id.len());
        info.extend_from_slice(SEAL_TAG);
        info.push(Purpose::ListSeal as u8);
        for part in [self.consortium, self.job_id] {
            info.extend_from_slice(&(part.len() as u32).to_le_bytes());
            info.extend_from_slice(part.as_bytes());
        }
        info.extend_from_slice(&self.step.code());
        info.extend_from_slice(&self.sender.to_le_bytes());
        info.extend_from_slice(&self.recipient.to_le_bytes());
        info
    }

    fn associated_data(&self, index: usize) -> Vec<u8> {
        let mut aad = self.info();
        aad.extend_from_slice(&(index as u32).to_le_bytes());
        aad.extend_from_slice(&(chunk_count(self.points) as u32).to_le_bytes());
        aad.extend_from_slice(&self.points.to_le_bytes());
        aad
    }
}

fn nonce(index: usize) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&(index as u64).to_le_bytes());
    n
}

/// The X25519 result between this party's sealing key and a peer's; both
/// directions and every step derive their own key from it.
pub struct Channel {
    shared: SharedSecret,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Channel(..)")
    }
}

impl Channel {
    /// The channel between `own` and `peer`'s public sealing key.
    pub fn new(own: &StaticSecret, peer_key: &PublicKey, peer: u32) -> Result<Self, PsiError> {
        let shared = own.diffie_hellman(peer_key);
        if !shared.was_contributory() {
            return Err(PsiError::NonContributoryKey(peer));
        }
        Ok(Self { shared })
    }

    fn cipher(&self, ctx: &ListContext<'_>) -> ChaCha20Poly1305 {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, self.shared.as_bytes())
            .expand(&ctx.info(), &mut *key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        ChaCha20Poly1305::new((&*key).into())
    }

    /// Seals `points` as described by `ctx` into an envelope.
    pub fn seal(&self, ctx: &ListContext<'_>, points: &[Point]) -> Envelope {
        debug_assert_eq!(points.len() as u64, ctx.points);
        let cipher = self.cipher(ctx);
        let mut chunks = Vec::with_capacity(chunk_count(ctx.points));
        let mut plain = Zeroizing::new(Vec::with_capacity(CHUNK_POINTS * POINT_BYTES));
        for index in 0..chunk_count(ctx.points) {
            let part = points.chunks(CHUNK_POINTS).nth(index).unwrap_or(&[]);
            plain.clear();
            plain.extend(part.iter().flatten());
            let aad = ctx.associated_data(index);
            let sealed = cipher
                .encrypt(
                    &nonce(index).into(),
                    Payload {
                        msg: &plain,
                        aad: &aad,
                    },
                )
                .expect("a chunk is far below the AEAD length limit");
            chunks.push(sealed);
        }
        Envelope {
            step: ctx.step,
            from: ctx.sender,
            to: ctx.recipient,
            chunks,
        }
    }

    /// Opens a sealed list as described by `ctx`, checking its shape first.
    pub fn open(&self, ctx: &ListContext<'_>, chunks: &[Vec<u8>]) -> Result<Vec<Point>, PsiError> {
        check_shape(ctx.step, ctx.sender, ctx.points, chunks)?;
        let cipher = self.cipher(ctx);
        let mut points = Vec::with_capacity(ctx.points as usize);
        for (index, chunk) in chunks.iter().enumerate() {
            let aad = ctx.associated_data(index);
            let plain = cipher
                .decrypt(
                    &nonce(index).into(),
                    Payload {
                        msg: chunk,
                        aad: &aad,
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| PsiError::SealBroken {
                    step: ctx.step,
                    from: ctx.sender,
                })?;
            points.extend(
                plain
                    .chunks_exact(POINT_BYTES)
                    .map(|p| <Point>::try_from(p).expect("exact chunk")),
            );
        }
        Ok(points)
    }
}

/// Checks that `chunks` has the count and lengths of a sealed list of
/// `points` points; the coordinator runs the same check before relaying.
pub fn check_shape(step: Step, from: u32, points: u64, chunks: &[Vec<u8>]) -> Result<(), PsiError> {
    let expected = chunk_count(points);
    if chunks.len() != expected {
        return Err(PsiError::WrongLength {
            step,
            from,
            reason: format!("{} chunks, {expected} expected", chunks.len()),
        });
    }
    for (index, chunk) in chunks.iter().enumerate() {
        let want = sealed_chunk_len(points, index);
        if chunk.len() != want {
            return Err(PsiError::WrongLength {
                step,
                from,
                reason: format!("chunk {index} has {} bytes, {want} expected", chunk.len()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> (StaticSecret, PublicKey) {
        let secret = StaticSecret::from([seed; 32]);
        let public = PublicKey::from(&secret);
        (secret, public)
    }

    fn ctx(points: u64) -> ListContext<'static> {
        ListContext {
            consortium: "c",
            job_id: "job",
            step: Step::Compare(1),
            sender: 2,
            recipient: 0,
            points,
        }
    }

    #[test]
    fn lists_open_only_in_their_context_and_order() {
        let (a, a_pub) = keys(1);
        let (b, b_pub) = keys(2);
        let points: Vec<Point> = (0..(CHUNK_POINTS + 5))
            .map(|i| [(i % 251) as u8; 32])
            .collect();
        let n = points.len() as u64;
        let env = Channel::new(&a, &b_pub, 0).unwrap().seal(&ctx(n), &points);
        assert_eq!(env.chunks.len(), 2);
        assert_eq!(env.chunks[1].len(), 5 * POINT_BYTES + TAG_BYTES);
        let at_b = Channel::new(&b, &a_pub, 2).unwrap();
        assert_eq!(at_b.open(&ctx(n), &env.chunks).unwrap(), points);

        let elsewhere = [
            ListContext {
                step: Step::Compare(0),
                ..ctx(n)
            },
            ListContext {
                job_id: "job2",
                ..ctx(n)
            },
            ListContext {
                consortium: "d",
                ..ctx(n)
            },
            ListContext {
                recipient: 1,
                ..ctx(n)
            },
        ];
        for other in &elsewhere {
            assert!(matches!(
                at_b.open(other, &env.chunks),
                Err(PsiError::SealBroken { .. })
            ));
        }
        // Chunks cannot be swapped between positions.
        let mut swapped = env.chunks.clone();
        swapped.swap(0, 1);
        assert!(at_b.open(&ctx(n), &swapped).is_err());
        // Nor the list be passed off as a shorter one.
        assert!(matches!(
            at_b.open(&ctx(n - 1), &env.chunks),
            Err(PsiError::WrongLength { from: 2, .. })
        ));
        // The relaying coordinator, holding neither key, cannot open it.
        let (c, _) = keys(3);
        let at_c = Channel::new(&c, &a_pub, 2).unwrap();
        assert!(at_c.open(&ctx(n), &env.chunks).is_err());
    }

    #[test]
    fn empty_lists_are_one_authenticated_chunk() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(sealed_chunk_len(0, 0), TAG_BYTES);
        assert_eq!(chunk_count(CHUNK_POINTS as u64), 1);
        assert_eq!(chunk_count(CHUNK_POINTS as u64 + 1), 2);
    }

    #[test]
    fn low_order_keys_are_refused() {
        let (a, _) = keys(1);
        assert_eq!(
            Channel::new(&a, &PublicKey::from([0u8; 32]), 4).unwrap_err(),
            PsiError::NonContributoryKey(4)
        );
    }
}
