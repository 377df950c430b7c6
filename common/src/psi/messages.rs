//! Protocol messages as plain types. Every message goes through the
//! coordinator; the sender of an [`Envelope`] is stamped by the transport
//! (mTLS identity, or the in-process runner) and the coordinator checks it.

use super::group::POINT_BYTES;

/// A 32-byte X25519 public key.
pub type PublicKeyBytes = [u8; 32];

/// The steps of the protocol, in order. Their names (`hello`, `link-0`,
/// `compare-1`, `verdict`, `reveal-0`, `result`) are the ones errors, logs
/// and the journal use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Parties advertise their sealing key and set size.
    Hello,
    /// Ring `k` of the linking pass: a list with `k` foreign blindings.
    Link(u32),
    /// Ring `k` of the comparison pass: a list with `k + 1` blindings.
    Compare(u32),
    /// The label holder announces the intersection size or the stop.
    Verdict,
    /// Hop `k` of the reveal chain: the intersection being unblinded.
    Reveal(u32),
    /// The last party sends the unblinded intersection to every other.
    Result,
}

impl Step {
    /// Kind byte and counter, as bound into sealing keys.
    pub(crate) fn code(self) -> [u8; 5] {
        let (kind, k) = match self {
            Step::Hello => (0u8, 0u32),
            Step::Link(k) => (1, k),
            Step::Compare(k) => (2, k),
            Step::Verdict => (3, 0),
            Step::Reveal(k) => (4, k),
            Step::Result => (5, 0),
        };
        let mut out = [kind, 0, 0, 0, 0];
        out[1..].copy_from_slice(&k.to_le_bytes());
        out
    }
}

impl Step {
    /// The step a name (`link-0`, `result`, ...) denotes; `None` for
    /// anything else.
    pub fn from_name(name: &str) -> Option<Step> {
        match name {
            "hello" => return Some(Step::Hello),
            "verdict" => return Some(Step::Verdict),
            "result" => return Some(Step::Result),
            _ => {}
        }
        let (kind, k) = name.split_once('-')?;
        // Only the canonical decimal spelling: one name per step.
        if k.is_empty()
            || (k.len() > 1 && k.starts_with('0'))
            || !k.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let k: u32 = k.parse().ok()?;
        match kind {
            "link" => Some(Step::Link(k)),
            "compare" => Some(Step::Compare(k)),
            "reveal" => Some(Step::Reveal(k)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Hello => f.write_str("hello"),
            Step::Link(k) => write!(f, "link-{k}"),
            Step::Compare(k) => write!(f, "compare-{k}"),
            Step::Verdict => f.write_str("verdict"),
            Step::Reveal(k) => write!(f, "reveal-{k}"),
            Step::Result => f.write_str("result"),
        }
    }
}

/// Party → coordinator, in the clear: the job's sealing key and set size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Fresh X25519 key that lists for this party are sealed to.
    pub seal_key: PublicKeyBytes,
    /// Number of distinct ids the party brings.
    pub set_size: u64,
}

/// Coordinator → every party: every sealing key and set size, by party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// Sealing keys, indexed by party.
    pub seal_keys: Vec<PublicKeyBytes>,
    /// Set sizes, indexed by party.
    pub set_sizes: Vec<u64>,
}

/// Party → coordinator → party: one list of points, sealed end to end in
/// chunks. The coordinator sees the header and the lengths, nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Step the list belongs to.
    pub step: Step,
    /// Sender (stamped by the transport).
    pub from: u32,
    /// Recipient.
    pub to: u32,
    /// Sealed chunks, in order; see [`super::seal`].
    pub chunks: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("step", &self.step)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("chunks", &self.chunks.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Envelope {
    /// Sealed bytes carried.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

/// Label holder → coordinator → partners, in the clear: the only values
/// the coordinator learns besides the set sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The intersection has this many customers, at least `min_overlap`.
    Intersection(u64),
    /// The intersection is smaller than `min_overlap`; nothing else is
    /// released, not even its size.
    BelowMinOverlap,
}

/// Bytes of a list of `points` points before sealing.
pub fn list_bytes(points: u64) -> u64 {
    points * POINT_BYTES as u64
}
