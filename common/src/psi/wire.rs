//! The intersection's messages on the wire (`proto/fedseg/v1/vertical.proto`):
//! conversions, and the reassembly of a list from its chunks. A list of
//! points travels as one `PsiChunk` message per sealed chunk, so no gRPC
//! message exceeds about 1 MiB whatever the set size. Decoding never
//! panics: anything malformed is a [`PsiError`] naming the sender.

use std::collections::BTreeMap;

use super::error::PsiError;
use super::group::POINT_BYTES;
use super::messages::{Envelope, Hello, Roster, Step, Verdict};
use super::seal::{CHUNK_POINTS, TAG_BYTES, chunk_count};
use super::{MAX_PARTIES, MAX_SET};
use crate::proto;

/// Most chunks one list may have.
pub fn max_chunks() -> usize {
    chunk_count(MAX_SET)
}

/// Most bytes one sealed chunk may have.
pub const MAX_CHUNK_BYTES: usize = CHUNK_POINTS * POINT_BYTES + TAG_BYTES;

/// The chunk messages of a list, in order.
pub fn chunks(env: Envelope) -> Vec<proto::PsiChunk> {
    let total = env.chunks.len() as u32;
    let step = env.step.to_string();
    env.chunks
        .into_iter()
        .enumerate()
        .map(|(i, sealed)| proto::PsiChunk {
            step: step.clone(),
            from: env.from,
            to: env.to,
            index: i as u32,
            total,
            sealed,
        })
        .collect()
}

/// A hello from the wire.
pub fn hello_from_wire(from: u32, hello: proto::PsiHello) -> Result<Hello, PsiError> {
    let seal_key =
        <[u8; 32]>::try_from(hello.seal_key.as_slice()).map_err(|_| PsiError::WrongLength {
            step: Step::Hello,
            from,
            reason: format!("a sealing key of {} bytes", hello.seal_key.len()),
        })?;
    Ok(Hello {
        seal_key,
        set_size: hello.set_size,
    })
}

/// A hello to the wire.
pub fn hello_to_wire(hello: &Hello) -> proto::PsiHello {
    proto::PsiHello {
        seal_key: hello.seal_key.to_vec(),
        set_size: hello.set_size,
    }
}

/// A roster to the wire.
pub fn roster_to_wire(roster: &Roster) -> proto::PsiRoster {
    proto::PsiRoster {
        seal_keys: roster.seal_keys.iter().map(|k| k.to_vec()).collect(),
        set_sizes: roster.set_sizes.clone(),
    }
}

/// A roster from the wire, for `parties` parties.
pub fn roster_from_wire(roster: proto::PsiRoster, parties: u32) -> Result<Roster, PsiError> {
    let bad = |reason: String| PsiError::BadRelay {
        what: "roster",
        reason,
    };
    let n = parties as usize;
    if roster.seal_keys.len() != n || roster.set_sizes.len() != n {
        return Err(bad(format!(
            "{} keys and {} sizes for {n} parties",
            roster.seal_keys.len(),
            roster.set_sizes.len()
        )));
    }
    let seal_keys = roster
        .seal_keys
        .iter()
        .map(|k| <[u8; 32]>::try_from(k.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("a sealing key is not 32 bytes".into()))?;
    Ok(Roster {
        seal_keys,
        set_sizes: roster.set_sizes,
    })
}

/// A verdict to the wire.
pub fn verdict_to_wire(verdict: Verdict) -> proto::PsiVerdict {
    match verdict {
        Verdict::Intersection(size) => proto::PsiVerdict {
            below_min_overlap: false,
            intersection: size,
        },
        Verdict::BelowMinOverlap => proto::PsiVerdict {
            below_min_overlap: true,
            intersection: 0,
        },
    }
}

/// A verdict from the wire; a stop that carries a size is refused (nothing
/// may be released below the minimum).
pub fn verdict_from_wire(verdict: proto::PsiVerdict) -> Result<Verdict, PsiError> {
    match (verdict.below_min_overlap, verdict.intersection) {
        (false, size) => Ok(Verdict::Intersection(size)),
        (true, 0) => Ok(Verdict::BelowMinOverlap),
        (true, _) => Err(PsiError::BadRelay {
            what: "verdict",
            reason: "a stop below the minimum carries a size".into(),
        }),
    }
}

/// Lists being received, chunk by chunk, keyed by step, sender and
/// recipient. A list is handed out whole once its last chunk arrived;
/// chunks must come in order.
#[derive(Debug, Default)]
pub struct Assembler {
    partial: BTreeMap<ListKey, Partial>,
}

/// A list's step, sender and recipient.
type ListKey = (Step, u32, u32);

/// A list's chunk count and the chunks received so far.
type Partial = (u32, Vec<Vec<u8>>);

impl Assembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one chunk from `sender` (as the transport knows it); returns
    /// the whole list once complete.
    pub fn add(
        &mut self,
        sender: u32,
        chunk: proto::PsiChunk,
    ) -> Result<Option<Envelope>, PsiError> {
        let step = Step::from_name(&chunk.step).ok_or_else(|| PsiError::BadRelay {
            what: "chunk",
            reason: format!("unknown step {:?}", truncated(&chunk.step)),
        })?;
        let wrong = |reason: String| PsiError::WrongLength {
            step,
            from: sender,
            reason,
        };
        if chunk.from != sender {
            return Err(PsiError::Unexpected {
                step,
                from: sender,
                to: chunk.to,
            });
        }
        if chunk.to >= MAX_PARTIES {
            return Err(PsiError::Unexpected {
                step,
                from: sender,
                to: chunk.to,
            });
        }
        if chunk.total == 0 || chunk.total as usize > max_chunks() {
            return Err(wrong(format!("{} chunks", chunk.total)));
        }
        if chunk.sealed.len() > MAX_CHUNK_BYTES {
            return Err(wrong(format!("a chunk of {} bytes", chunk.sealed.len())));
        }
        let key = (step, chunk.from, chunk.to);
        let (total, parts) = self
            .partial
            .entry(key)
            .or_insert_with(|| (chunk.total, Vec::new()));
        if *total != chunk.total || chunk.index as usize != parts.len() {
            self.partial.remove(&key);
            return Err(wrong(format!(
                "chunk {} of {} out of order",
                chunk.index, chunk.total
            )));
        }
        parts.push(chunk.sealed);
        if parts.len() < *total as usize {
            return Ok(None);
        }
        let (_, chunks) = self.partial.remove(&key).expect("present");
        Ok(Some(Envelope {
            step,
            from: key.1,
            to: key.2,
            chunks,
        }))
    }

    /// Whether a list is partly received.
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_and_nothing_else_parses() {
        for step in [
            Step::Hello,
            Step::Link(0),
            Step::Link(12),
            Step::Compare(3),
            Step::Verdict,
            Step::Reveal(0),
            Step::Result,
        ] {
            assert_eq!(Step::from_name(&step.to_string()), Some(step));
        }
        for bad in [
            "",
            "link",
            "link-",
            "link-01",
            "link--1",
            "link-+1",
            "reveal-x",
            "Result",
            "link-99999999999",
        ] {
            assert_eq!(Step::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_list_is_reassembled_from_its_chunks_in_order_only() {
        let env = Envelope {
            step: Step::Link(1),
            from: 2,
            to: 0,
            chunks: vec![vec![1; 40], vec![2; 20], vec![3; 16]],
        };
        let mut asm = Assembler::new();
        let parts = chunks(env.clone());
        assert_eq!(parts.len(), 3);
        assert_eq!(asm.add(2, parts[0].clone()), Ok(None));
        assert_eq!(asm.add(2, parts[1].clone()), Ok(None));
        assert_eq!(asm.add(2, parts[2].clone()), Ok(Some(env.clone())));
        assert!(asm.is_empty());
        // Out of order, a spoofed sender, an oversize chunk.
        assert!(asm.add(2, parts[1].clone()).is_err());
        assert!(asm.add(1, parts[0].clone()).is_err());
        let mut big = parts[0].clone();
        big.sealed = vec![0; MAX_CHUNK_BYTES + 1];
        assert!(asm.add(2, big).is_err());
        let mut zero = parts[0].clone();
        zero.total = 0;
        assert!(asm.add(2, zero).is_err());
    }

    #[test]
    fn wire_values_are_checked() {
        assert!(
            hello_from_wire(
                1,
                proto::PsiHello {
                    seal_key: vec![0; 31],
                    set_size: 3
                }
            )
            .is_err()
        );
        let roster = Roster {
            seal_keys: vec![[1; 32], [2; 32]],
            set_sizes: vec![5, 6],
        };
        assert_eq!(
            roster_from_wire(roster_to_wire(&roster), 2),
            Ok(roster.clone())
        );
        assert!(roster_from_wire(roster_to_wire(&roster), 3).is_err());
        for v in [
            Verdict::Intersection(0),
            Verdict::Intersection(9),
            Verdict::BelowMinOverlap,
        ] {
            assert_eq!(verdict_from_wire(verdict_to_wire(v)), Ok(v));
        }
        let leaky = proto::PsiVerdict {
            below_min_overlap: true,
            intersection: 7,
        };
        assert!(verdict_from_wire(leaky).is_err());
    }
}
