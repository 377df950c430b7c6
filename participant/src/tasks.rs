//! The registry of local computations a round can ask for. Each turns the
//! request into a real vector from this site's own files; only its masked
//! encoding ever leaves.

use std::path::PathBuf;

use fedseg_common::fixed_point::{ClipRange, Encoded, EncodingError, FixedPointEncoder};
use fedseg_common::proto::{self, computation::Kind};
use thiserror::Error;

use crate::config::ParticipantConfig;

/// Why a computation could not be done.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The request names no computation or encoding.
    #[error("the request carries no {0}")]
    Missing(&'static str),
    /// The requested vector is not configured here.
    #[error("no vector named {0:?} in [vectors]")]
    UnknownVector(String),
    /// The vector file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A number in the vector file does not parse.
    #[error("{path}: entry {entry}: {text:?} is not a number")]
    BadNumber {
        /// The file.
        path: PathBuf,
        /// 1-based entry.
        entry: usize,
        /// The text.
        text: String,
    },
    /// The vector has another length than the round's.
    #[error("the vector has {got} entries, the round expects {expected}")]
    Length {
        /// Round length.
        expected: usize,
        /// Vector length.
        got: usize,
    },
    /// The values cannot be encoded.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// Computes and encodes this site's vector for `computation`.
pub fn compute(
    config: &ParticipantConfig,
    computation: &proto::Computation,
    member: u32,
    length: usize,
) -> Result<Encoded, TaskError> {
    let encoding = computation
        .encoding
        .as_ref()
        .ok_or(TaskError::Missing("encoding"))?;
    let ranges = encoding
        .ranges
        .iter()
        .map(|r| ClipRange::new(r.lo, r.hi))
        .collect();
    let encoder = FixedPointEncoder::new(encoding.frac_bits, ranges)?;
    let values = match computation
        .kind
        .as_ref()
        .ok_or(TaskError::Missing("computation"))?
    {
        Kind::VectorFile(file) => read_vector(config, &file.name)?,
        Kind::TestVector(t) => (0..length as u64)
            .map(|i| {
                (t.seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(member as u64 * 7_919)
                    .wrapping_add(i)
                    % t.modulus.max(1)) as f64
            })
            .collect(),
    };
    if values.len() != length {
        return Err(TaskError::Length {
            expected: length,
            got: values.len(),
        });
    }
    Ok(encoder.encode(&values)?)
}

fn read_vector(config: &ParticipantConfig, name: &str) -> Result<Vec<f64>, TaskError> {
    let path = config
        .vectors
        .get(name)
        .ok_or_else(|| TaskError::UnknownVector(name.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.clone(),
        source,
    })?;
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            s.parse::<f64>().map_err(|_| TaskError::BadNumber {
                path: path.clone(),
                entry: i + 1,
                text: s.to_string(),
            })
        })
        .collect()
}
