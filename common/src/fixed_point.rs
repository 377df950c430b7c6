//! Fixed-point encoding of real-valued vectors into wrapping `u64` words.
//!
//! Every secure sum adds `u64` words modulo 2^64. A real value is first
//! clipped to its declared range, then scaled by 2^`frac_bits` and rounded to
//! a two's-complement `i64`. [`FixedPointEncoder::check_capacity`] proves that
//! the sum over a cohort of a given size cannot leave the `i64` range, so the
//! wrapped sum decodes to the true (clipped, rounded) sum.

use thiserror::Error;

/// Why a vector could not be encoded, or an encoder could not be built.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum EncodingError {
    /// A value is NaN or infinite.
    #[error("entry {index} is not a finite number")]
    NonFinite {
        /// Position in the vector.
        index: usize,
    },
    /// A clip range is empty, reversed or not finite.
    #[error("clip range {index} is invalid: [{lo}, {hi}]")]
    InvalidRange {
        /// Position of the range in the encoder.
        index: usize,
        /// Lower bound given.
        lo: f64,
        /// Upper bound given.
        hi: f64,
    },
    /// The vector's length does not match the declared ranges.
    #[error("vector has {got} entries, the encoding declares {expected}")]
    LengthMismatch {
        /// Entries the encoder declares.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// The sum over the cohort could wrap past the `i64` range.
    #[error(
        "a sum over {participants} participants of entry {index} could overflow: \
         reduce frac_bits ({frac_bits}) or the clip range"
    )]
    CapacityExceeded {
        /// Cohort size checked.
        participants: u64,
        /// Entry whose range is too wide.
        index: usize,
        /// Fractional bits of the encoding.
        frac_bits: u32,
    },
    /// `frac_bits` is outside 0..=62.
    #[error("frac_bits must be at most 62, got {0}")]
    FracBits(u32),
}

/// A declared closed interval a quantity is clipped to before encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipRange {
    /// Smallest value kept.
    pub lo: f64,
    /// Largest value kept.
    pub hi: f64,
}

impl ClipRange {
    /// The range `[lo, hi]`.
    pub fn new(lo: f64, hi: f64) -> Self {
        Self { lo, hi }
    }

    fn max_abs(&self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }
}

/// An encoded vector and how many of its entries were clipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The words to be masked and summed.
    pub words: Vec<u64>,
    /// Entries that lay outside their range and were clipped.
    pub clipped: usize,
}

/// Encodes and decodes vectors with one fractional precision and a clip
/// range per entry (or one range for every entry).
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPointEncoder {
    frac_bits: u32,
    ranges: Vec<ClipRange>,
}

impl FixedPointEncoder {
    /// An encoder with `frac_bits` fractional bits. `ranges` holds either one
    /// range per entry or a single range applied to every entry.
    pub fn new(frac_bits: u32, ranges: Vec<ClipRange>) -> Result<Self, EncodingError> {
        if frac_bits > 62 {
            return Err(EncodingError::FracBits(frac_bits));
        }
        for (index, r) in ranges.iter().enumerate() {
            if !(r.lo.is_finite() && r.hi.is_finite() && r.lo < r.hi) {
                return Err(EncodingError::InvalidRange {
                    index,
                    lo: r.lo,
                    hi: r.hi,
                });
            }
        }
        let encoder = Self { frac_bits, ranges };
        encoder.check_capacity(1)?;
        Ok(encoder)
    }

    /// The encoder with the most fractional bits (at most `max_frac_bits`)
    /// whose sums over `participants` cannot wrap: precision is whatever the
    /// declared ranges leave room for.
    pub fn finest(
        ranges: Vec<ClipRange>,
        participants: u64,
        max_frac_bits: u32,
    ) -> Result<Self, EncodingError> {
        let mut last = None;
        for frac_bits in (0..=max_frac_bits.min(62)).rev() {
            let fits = Self::new(frac_bits, ranges.clone())
                .and_then(|e| e.check_capacity(participants).map(|()| e));
            match fits {
                Ok(encoder) => return Ok(encoder),
                Err(e @ EncodingError::CapacityExceeded { .. }) => last = Some(e),
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or(EncodingError::FracBits(max_frac_bits)))
    }

    /// Fractional bits of the encoding.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// The smallest representable step, 2^-frac_bits.
    pub fn resolution(&self) -> f64 {
        (-(self.frac_bits as f64)).exp2()
    }

    fn scale(&self) -> f64 {
        (self.frac_bits as f64).exp2()
    }

    fn range(&self, index: usize) -> &ClipRange {
        if self.ranges.len() == 1 {
            &self.ranges[0]
        } else {
            &self.ranges[index]
        }
    }

    /// Fails unless the sum of `participants` encoded vectors stays within
    /// the `i64` range for every entry, so that wrapping never changes it.
    pub fn check_capacity(&self, participants: u64) -> Result<(), EncodingError> {
        for (index, r) in self.ranges.iter().enumerate() {
            // One more unit covers rounding of the largest value.
            let bound = (r.max_abs() * self.scale()).ceil() + 1.0;
            let total = bound * participants as f64;
            if total >= i64::MAX as f64 {
                return Err(EncodingError::CapacityExceeded {
                    participants,
                    index,
                    frac_bits: self.frac_bits,
                });
            }
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<(), EncodingError> {
        if self.ranges.len() != 1 && self.ranges.len() != len {
            return Err(EncodingError::LengthMismatch {
                expected: self.ranges.len(),
                got: len,
            });
        }
        Ok(())
    }

    /// Clips and encodes `values`; NaN or infinity is an error, never clipped.
    pub fn encode(&self, values: &[f64]) -> Result<Encoded, EncodingError> {
        self.check_len(values.len())?;
        let scale = self.scale();
        let mut clipped = 0;
        let mut words = Vec::with_capacity(values.len());
        for (index, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                return Err(EncodingError::NonFinite { index });
            }
            let r = self.range(index);
            let kept = v.clamp(r.lo, r.hi);
            if kept != v {
                clipped += 1;
            }
            words.push((kept * scale).round() as i64 as u64);
        }
        Ok(Encoded { words, clipped })
    }

    /// Decodes summed words back to real numbers.
    pub fn decode(&self, words: &[u64]) -> Vec<f64> {
        let step = self.resolution();
        words.iter().map(|&w| w as i64 as f64 * step).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finest_takes_the_most_bits_that_fit() {
        let ranges = vec![ClipRange::new(0.0, 1e6), ClipRange::new(-1.0, 1.0)];
        let e = FixedPointEncoder::finest(ranges.clone(), 10, 40).unwrap();
        // 10 · 1e6 · 2^f < 2^63 holds up to f = 39, and f = 40 is too many.
        assert_eq!(e.frac_bits(), 39);
        assert!(e.check_capacity(10).is_ok());
        assert_eq!(
            FixedPointEncoder::finest(ranges.clone(), 10, 20)
                .unwrap()
                .frac_bits(),
            20
        );
        let huge = vec![ClipRange::new(0.0, 1e18)];
        assert!(FixedPointEncoder::finest(huge, 100, 40).is_err());
    }

    fn encoder(frac_bits: u32, lo: f64, hi: f64) -> FixedPointEncoder {
        FixedPointEncoder::new(frac_bits, vec![ClipRange::new(lo, hi)]).unwrap()
    }

    #[test]
    fn round_trips_within_resolution() {
        let e = encoder(20, -100.0, 100.0);
        let values = [0.0, 1.5, -3.25, 99.999, -0.000_001];
        let decoded = e.decode(&e.encode(&values).unwrap().words);
        for (v, d) in values.iter().zip(&decoded) {
            assert!((v - d).abs() <= e.resolution() / 2.0, "{v} vs {d}");
        }
    }

    #[test]
    fn clips_and_counts() {
        let e = encoder(8, -1.0, 1.0);
        let encoded = e.encode(&[2.0, -5.0, 0.5]).unwrap();
        assert_eq!(encoded.clipped, 2);
        assert_eq!(e.decode(&encoded.words), vec![1.0, -1.0, 0.5]);
    }

    #[test]
    fn rejects_nan_and_infinity() {
        let e = encoder(8, -1.0, 1.0);
        assert_eq!(
            e.encode(&[0.0, f64::NAN]),
            Err(EncodingError::NonFinite { index: 1 })
        );
        assert_eq!(
            e.encode(&[f64::NEG_INFINITY]),
            Err(EncodingError::NonFinite { index: 0 })
        );
    }

    #[test]
    fn wrapped_sum_of_negatives_decodes() {
        let e = encoder(16, -10.0, 10.0);
        let a = e.encode(&[-7.5]).unwrap().words[0];
        let b = e.encode(&[2.25]).unwrap().words[0];
        assert_eq!(e.decode(&[a.wrapping_add(b)]), vec![-5.25]);
    }

    #[test]
    fn capacity_check_refuses_sums_that_could_wrap() {
        // 2^40 * 2^20 = 2^60 per participant: 8 fit below 2^63, 9 do not.
        let e = encoder(20, 0.0, (1u64 << 40) as f64);
        assert!(e.check_capacity(7).is_ok());
        assert!(matches!(
            e.check_capacity(9),
            Err(EncodingError::CapacityExceeded {
                participants: 9,
                ..
            })
        ));
    }

    #[test]
    fn rejects_bad_ranges_and_lengths() {
        assert!(matches!(
            FixedPointEncoder::new(8, vec![ClipRange::new(1.0, 1.0)]),
            Err(EncodingError::InvalidRange { index: 0, .. })
        ));
        assert!(matches!(
            FixedPointEncoder::new(8, vec![ClipRange::new(0.0, f64::INFINITY)]),
            Err(EncodingError::InvalidRange { .. })
        ));
        assert_eq!(
            FixedPointEncoder::new(63, vec![ClipRange::new(0.0, 1.0)]),
            Err(EncodingError::FracBits(63))
        );
        let e = FixedPointEncoder::new(8, vec![ClipRange::new(0.0, 1.0), ClipRange::new(0.0, 2.0)])
            .unwrap();
        assert_eq!(
            e.encode(&[0.5]),
            Err(EncodingError::LengthMismatch {
                expected: 2,
                got: 1
            })
        );
    }
}
