//! The joint model's messages on the wire (`proto/fedseg/v1/vertical.proto`):
//! dealer requests (shapes only), correlations, and openings sealed end to
//! end between the two computing parties. Long vectors travel in chunks of
//! [`CHUNK_ELEMENTS`] ring elements so no message exceeds about 1 MiB.
//! Decoding never panics: anything malformed is an [`MpcError`].
//!
//! Sealing: each computing party draws a fresh X25519 key per job; the key
//! of one direction is HKDF-SHA256 of their shared secret bound to the
//! consortium, job, sender and recipient, and each chunk is sealed with
//! ChaCha20-Poly1305 under the nonce (opening sequence, chunk index) with
//! the sequence, index, count and parties as associated data, so chunks
//! cannot be dropped, reordered, replayed or moved between openings. The
//! coordinator relays them and, although it dealt the masks, never sees an
//! opened value.

use std::collections::BTreeMap;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::dealer::{Dealt, Delivery, Operand, Request, SEED_LEN};
use super::engine::Opening;
use super::error::MpcError;
use crate::proto;

/// Ring elements per chunk (1 MiB).
pub const CHUNK_ELEMENTS: usize = 65_536;

/// Bytes of one ring element on the wire.
pub const ELEMENT_BYTES: usize = 16;

/// Most elements one opening or correlation may carry (2^28: 4 GiB).
pub const MAX_ELEMENTS: u64 = 1 << 28;

/// Protocol tag of every key derivation and associated data.
const SEAL_TAG: &[u8] = b"fedseg/mpc/v1/opening";

/// Ring elements as little-endian bytes.
pub fn to_bytes(values: &[u128]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Bytes back to ring elements; refused unless a whole number of them.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<u128>, MpcError> {
    if !bytes.len().is_multiple_of(ELEMENT_BYTES) {
        return Err(MpcError::Shape(format!(
            "{} bytes of ring elements",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(ELEMENT_BYTES)
        .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")))
        .collect())
}

fn chunk_count(elements: usize) -> usize {
    elements.div_ceil(CHUNK_ELEMENTS).max(1)
}

/// The journal's name of a joint-model step label (`MpcOpening.step`).
pub fn step_purpose(step: u32) -> String {
    match step {
        0 => "mpc-setup".into(),
        super::engine::STEP_FINISH => "mpc-finish".into(),
        k => format!("mpc-step-{k}"),
    }
}

/// A dealer request to the wire.
pub fn request_to_wire(req: Request) -> proto::MpcRequest {
    use proto::mpc_request::Kind;
    let operand = |o: Operand| proto::MpcOperand {
        id: o.id,
        rows: o.rows as u64,
        cols: o.cols as u64,
        transposed: o.transposed,
    };
    let id_only = |id| proto::MpcOperand {
        id,
        ..Default::default()
    };
    let kind = match req {
        Request::Mask { len } => Kind::Mask(len as u64),
        Request::MatProduct { left, right } => Kind::MatProduct(proto::MpcProduct {
            left: Some(operand(left)),
            right: Some(operand(right)),
        }),
        Request::Forget { id } => Kind::Forget(id),
        Request::Hadamard { left, right } => Kind::Hadamard(proto::MpcProduct {
            left: Some(id_only(left)),
            right: Some(id_only(right)),
        }),
        Request::RowScale { vector, matrix } => Kind::RowScale(proto::MpcProduct {
            left: Some(id_only(vector)),
            right: Some(operand(matrix)),
        }),
    };
    proto::MpcRequest {
        kind: Some(kind),
        step: 0,
    }
}

/// A dealer request from the wire, with every size bounded.
pub fn request_from_wire(req: proto::MpcRequest) -> Result<Request, MpcError> {
    use proto::mpc_request::Kind;
    let bad = |what: &str| MpcError::Shape(format!("a request with {what}"));
    let size = |n: u64| -> Result<usize, MpcError> {
        if n > MAX_ELEMENTS {
            return Err(bad("too many elements"));
        }
        Ok(n as usize)
    };
    let operand = |o: Option<proto::MpcOperand>| -> Result<Operand, MpcError> {
        let o = o.ok_or_else(|| bad("no operand"))?;
        let (rows, cols) = (size(o.rows)?, size(o.cols)?);
        size(o.rows.saturating_mul(o.cols))?;
        Ok(Operand {
            id: o.id,
            rows,
            cols,
            transposed: o.transposed,
        })
    };
    match req.kind.ok_or_else(|| bad("no kind"))? {
        Kind::Mask(len) => Ok(Request::Mask { len: size(len)? }),
        Kind::MatProduct(p) => {
            let (left, right) = (operand(p.left)?, operand(p.right)?);
            let ((m, _), (_, n)) = (left.shape(), right.shape());
            size((m as u64).saturating_mul(n as u64))?;
            Ok(Request::MatProduct { left, right })
        }
        Kind::Forget(id) => Ok(Request::Forget { id }),
        Kind::Hadamard(p) => Ok(Request::Hadamard {
            left: p.left.ok_or_else(|| bad("no operand"))?.id,
            right: p.right.ok_or_else(|| bad("no operand"))?.id,
        }),
        Kind::RowScale(p) => {
            let matrix = operand(p.right)?;
            if matrix.transposed {
                return Err(bad("a transposed row-scaled matrix"));
            }
            Ok(Request::RowScale {
                vector: p.left.ok_or_else(|| bad("no operand"))?.id,
                matrix,
            })
        }
    }
}

/// A delivery's chunk messages: a seed in one, values in as many as they
/// need.
pub fn correlation_chunks(delivery: &Delivery) -> Vec<proto::MpcCorrelation> {
    let values = match &delivery.dealt {
        Dealt::Seed(seed, len) => {
            return vec![proto::MpcCorrelation {
                seq: delivery.seq,
                index: 0,
                total: 1,
                values: Vec::new(),
                seed: seed.to_vec(),
                len: *len as u64,
            }];
        }
        Dealt::Values(v) => v,
    };
    let total = chunk_count(values.len()) as u32;
    (0..total as usize)
        .map(|i| {
            let part = values.chunks(CHUNK_ELEMENTS).nth(i).unwrap_or(&[]);
            proto::MpcCorrelation {
                seq: delivery.seq,
                index: i as u32,
                total,
                values: to_bytes(part),
                seed: Vec::new(),
                len: 0,
            }
        })
        .collect()
}

/// Long values being received chunk by chunk, in order, one at a time per
/// sequence number.
#[derive(Debug, Default)]
pub struct Chunks {
    partial: BTreeMap<u64, (u32, Vec<u128>)>,
}

impl Chunks {
    /// Adds chunk `index` of `total` of value `seq`; the whole value once
    /// its last chunk arrived.
    pub fn add(
        &mut self,
        seq: u64,
        index: u32,
        total: u32,
        values: Vec<u128>,
    ) -> Result<Option<Vec<u128>>, MpcError> {
        let max = chunk_count(MAX_ELEMENTS as usize) as u32;
        if total == 0 || total > max || values.len() > CHUNK_ELEMENTS {
            return Err(MpcError::Shape(format!("chunk {index} of {total}")));
        }
        let (expected, got) = self.partial.entry(seq).or_insert((total, Vec::new()));
        let received = got.len().div_ceil(CHUNK_ELEMENTS) as u32;
        let short = index > 0 && got.len() % CHUNK_ELEMENTS != 0;
        if *expected != total || index != received || short {
            self.partial.remove(&seq);
            return Err(MpcError::OutOfOrder(format!(
                "chunk {index} of {total} of {seq}"
            )));
        }
        got.extend(values);
        if index + 1 < total {
            return Ok(None);
        }
        Ok(self.partial.remove(&seq).map(|(_, v)| v))
    }

    /// Takes a correlation chunk; a seed stays unexpanded until the party
    /// that awaits it checks its length ([`Delivery::expand`]).
    pub fn add_correlation(
        &mut self,
        mut chunk: proto::MpcCorrelation,
    ) -> Result<Option<Delivery>, MpcError> {
        if chunk.seed.is_empty() {
            if chunk.len != 0 {
                return Err(MpcError::Shape("a seed's length without a seed".into()));
            }
            let values = from_bytes(&chunk.values)?;
            return Ok(self
                .add(chunk.seq, chunk.index, chunk.total, values)?
                .map(|share| Delivery {
                    seq: chunk.seq,
                    dealt: Dealt::Values(share),
                }));
        }
        let seed: Zeroizing<[u8; SEED_LEN]> =
            Zeroizing::new(
                chunk.seed.as_slice().try_into().map_err(|_| {
                    MpcError::Shape(format!("a seed of {} bytes", chunk.seed.len()))
                })?,
            );
        chunk.seed.zeroize();
        if chunk.index != 0 || chunk.total != 1 || !chunk.values.is_empty() {
            return Err(MpcError::Shape("a seed with values or in chunks".into()));
        }
        if chunk.len > MAX_ELEMENTS || self.partial.contains_key(&chunk.seq) {
            return Err(MpcError::Shape(format!("a seed of {} elements", chunk.len)));
        }
        Ok(Some(Delivery {
            seq: chunk.seq,
            dealt: Dealt::Seed(*seed, chunk.len as usize),
        }))
    }
}

/// The sealed channel between the two computing parties.
pub struct SealedLink {
    send: ChaCha20Poly1305,
    receive: ChaCha20Poly1305,
    me: u32,
    peer: u32,
    context: Vec<u8>,
}

impl std::fmt::Debug for SealedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedLink(..)")
    }
}

/// The X25519 agreement of `own` with `peer_key`, refused when the peer's
/// key is a low-order point (a non-contributory agreement).
pub(crate) fn agree(
    own: &StaticSecret,
    peer_key: &[u8; 32],
) -> Result<x25519_dalek::SharedSecret, MpcError> {
    let shared = own.diffie_hellman(&PublicKey::from(*peer_key));
    if !shared.was_contributory() {
        return Err(MpcError::InvalidInput(
            "a non-contributory sealing key".into(),
        ));
    }
    Ok(shared)
}

/// The consortium and the job, length-prefixed: every key derived from an
/// agreement is bound to them.
pub(crate) fn context(consortium: &str, job_id: &str) -> Vec<u8> {
    let mut context = Vec::new();
    for part in [consortium, job_id] {
        context.extend_from_slice(&(part.len() as u32).to_le_bytes());
        context.extend_from_slice(part.as_bytes());
    }
    context
}

impl SealedLink {
    /// The link of party `me` with its secret key to party `peer` with its
    /// public key, bound to `consortium` and `job_id`.
    pub fn new(
        own: &StaticSecret,
        peer_key: &[u8; 32],
        me: u32,
        peer: u32,
        consortium: &str,
        job_id: &str,
    ) -> Result<Self, MpcError> {
        let shared = agree(own, peer_key)?;
        let context = context(consortium, job_id);
        let cipher = |from: u32, to: u32| {
            let mut info = SEAL_TAG.to_vec();
            info.extend_from_slice(&context);
            info.extend_from_slice(&from.to_le_bytes());
            info.extend_from_slice(&to.to_le_bytes());
            let mut key = Zeroizing::new([0u8; 32]);
            Hkdf::<Sha256>::new(None, shared.as_bytes())
                .expand(&info, &mut *key)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            ChaCha20Poly1305::new((&*key).into())
        };
        Ok(Self {
            send: cipher(me, peer),
            receive: cipher(peer, me),
            me,
            peer,
            context,
        })
    }

    fn aad(&self, from: u32, to: u32, seq: u64, index: u32, total: u32) -> Vec<u8> {
        let mut aad = SEAL_TAG.to_vec();
        aad.extend_from_slice(&self.context);
        for v in [from, to] {
            aad.extend_from_slice(&v.to_le_bytes());
        }
        aad.extend_from_slice(&seq.to_le_bytes());
        aad.extend_from_slice(&index.to_le_bytes());
        aad.extend_from_slice(&total.to_le_bytes());
        aad
    }

    /// An opening to the peer, sealed in chunks.
    pub fn seal(&self, opening: &Opening) -> Vec<proto::MpcOpening> {
        let total = chunk_count(opening.values.len()) as u32;
        (0..total)
            .map(|index| {
                let part = opening
                    .values
                    .chunks(CHUNK_ELEMENTS)
                    .nth(index as usize)
                    .unwrap_or(&[]);
                let plain = Zeroizing::new(to_bytes(part));
                let aad = self.aad(self.me, self.peer, opening.seq, index, total);
                let sealed = self
                    .send
                    .encrypt(
                        &nonce(opening.seq, index).into(),
                        Payload {
                            msg: &plain,
                            aad: &aad,
                        },
                    )
                    .expect("ChaCha20-Poly1305 seals any length below 256 GiB");
                proto::MpcOpening {
                    seq: opening.seq,
                    from: self.me,
                    to: self.peer,
                    index,
                    total,
                    sealed,
                    step: 0,
                }
            })
            .collect()
    }

    /// Opens one chunk from the peer.
    pub fn open(&self, chunk: &proto::MpcOpening) -> Result<Vec<u128>, MpcError> {
        if chunk.from != self.peer || chunk.to != self.me {
            return Err(MpcError::OutOfOrder(format!(
                "an opening from {} to {}",
                chunk.from, chunk.to
            )));
        }
        let aad = self.aad(self.peer, self.me, chunk.seq, chunk.index, chunk.total);
        let plain = Zeroizing::new(
            self.receive
                .decrypt(
                    &nonce(chunk.seq, chunk.index).into(),
                    Payload {
                        msg: &chunk.sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| {
                    MpcError::OutOfOrder(format!("opening {} does not open", chunk.seq))
                })?,
        );
        from_bytes(&plain)
    }
}

fn nonce(seq: u64, index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n[8..].copy_from_slice(&index.to_le_bytes());
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    fn links() -> (SealedLink, SealedLink) {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (a, b) = (
            StaticSecret::random_from_rng(&mut rng),
            StaticSecret::random_from_rng(&mut rng),
        );
        let (pa, pb) = (
            PublicKey::from(&a).to_bytes(),
            PublicKey::from(&b).to_bytes(),
        );
        (
            SealedLink::new(&a, &pb, 0, 1, "c", "job").unwrap(),
            SealedLink::new(&b, &pa, 1, 0, "c", "job").unwrap(),
        )
    }

    #[test]
    fn an_opening_crosses_sealed_in_chunks_and_nothing_else_opens() {
        let (bank, partner) = links();
        let values: Vec<u128> = (0..CHUNK_ELEMENTS as u128 + 5)
            .map(|v| v * 0x1_0000_0001)
            .collect();
        let sealed = bank.seal(&Opening {
            seq: 7,
            values: values.clone(),
        });
        assert_eq!(sealed.len(), 2);
        // The relay sees no element of the opening in the clear.
        let needle = values[12345].to_le_bytes();
        assert!(
            sealed
                .iter()
                .all(|c| !c.sealed.windows(16).any(|w| w == needle))
        );
        let mut chunks = Chunks::default();
        let mut whole = None;
        for c in &sealed {
            whole = chunks
                .add(c.seq, c.index, c.total, partner.open(c).unwrap())
                .unwrap();
        }
        assert_eq!(whole, Some(values));
        // A flipped bit, a chunk moved to another opening, a reflected
        // chunk, another job's key: none opens.
        let mut flipped = sealed[0].clone();
        flipped.sealed[3] ^= 1;
        assert!(partner.open(&flipped).is_err());
        let mut moved = sealed[0].clone();
        moved.seq = 8;
        assert!(partner.open(&moved).is_err());
        assert!(bank.open(&sealed[0]).is_err());
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let other =
            SealedLink::new(&b, &PublicKey::from(&a).to_bytes(), 1, 0, "c", "job-2").unwrap();
        assert!(other.open(&sealed[0]).is_err());
    }

    #[test]
    fn a_seed_travels_in_one_chunk_and_expands_to_the_dealers_share() {
        let seed = [7u8; SEED_LEN];
        let delivery = Delivery {
            seq: 4,
            dealt: Dealt::Seed(seed, 70_000),
        };
        let chunks = correlation_chunks(&delivery);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].values.is_empty());
        let got = Chunks::default()
            .add_correlation(chunks[0].clone())
            .unwrap();
        assert_eq!(got, Some(delivery.clone()));
        assert_eq!(
            got.unwrap().expand().share,
            super::super::dealer::expand(&seed, 70_000)
        );
        // A short seed, a seed with values, a seed over the size bound.
        let mut bad = chunks[0].clone();
        bad.seed.pop();
        assert!(Chunks::default().add_correlation(bad).is_err());
        let mut bad = chunks[0].clone();
        bad.values = vec![0; 16];
        assert!(Chunks::default().add_correlation(bad).is_err());
        let mut bad = chunks[0].clone();
        bad.len = MAX_ELEMENTS + 1;
        assert!(Chunks::default().add_correlation(bad).is_err());
        let mut bad = chunks[0].clone();
        bad.seed.clear();
        assert!(Chunks::default().add_correlation(bad).is_err());
    }

    #[test]
    fn chunks_must_come_in_order_and_fit() {
        let mut chunks = Chunks::default();
        assert!(chunks.add(1, 1, 2, vec![0; 3]).is_err());
        assert!(chunks.add(1, 0, 0, vec![]).is_err());
        assert!(chunks.add(2, 0, 2, vec![0; 3]).unwrap().is_none());
        // A short first chunk cannot be followed.
        assert!(chunks.add(2, 1, 2, vec![0; 3]).is_err());
        assert!(from_bytes(&[0; 17]).is_err());
    }

    #[test]
    fn requests_round_trip_and_sizes_are_bounded() {
        let op = |id, rows, cols, transposed| Operand {
            id,
            rows,
            cols,
            transposed,
        };
        for req in [
            Request::Mask { len: 12 },
            Request::MatProduct {
                left: op(1, 4, 3, false),
                right: op(2, 4, 1, true),
            },
            Request::Forget { id: 9 },
            Request::Hadamard { left: 3, right: 4 },
            Request::RowScale {
                vector: 5,
                matrix: op(6, 7, 3, false),
            },
        ] {
            assert_eq!(request_from_wire(request_to_wire(req)), Ok(req));
        }
        let huge = Request::MatProduct {
            left: op(1, 1 << 20, 1 << 20, false),
            right: op(2, 1, 1, false),
        };
        assert!(request_from_wire(request_to_wire(huge)).is_err());
        assert!(
            request_from_wire(proto::MpcRequest {
                kind: None,
                step: 0
            })
            .is_err()
        );
        let corr = Delivery {
            seq: 4,
            dealt: Dealt::Values((0..70_000).collect()),
        };
        let mut chunks = Chunks::default();
        let mut got = None;
        for c in correlation_chunks(&corr) {
            got = chunks.add_correlation(c).unwrap();
        }
        assert_eq!(got, Some(corr));
    }
}
