//! Fixed-point encoding of real-valued vectors into wrapping `u64` words.
//!
//! Every secure sum adds `u64` words modulo 2^64. A real value is first
//! clipped to its declared range, divided by its entry's unit (1 unless
//! declared), then scaled by 2^`frac_bits` and rounded to a two's-complement
//! `i64`. [`FixedPointEncoder::check_capacity`] proves that the sum over a
//! cohort of a given size cannot leave the `i64` range, so the wrapped sum
//! decodes to the true (clipped, rounded) sum.
//!
//! Units let one vector carry quantities of very different magnitudes (a
//! count next to a sum of squares) with the same relative precision:
//! [`FixedPointEncoder::finest`] sets each entry's unit to the power of two
//! at or above its range, so dividing by it is exact, and gives every entry
//! all the fractional bits the cohort size leaves.

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
    /// A unit is not a positive finite number, or there are neither one per
    /// range nor one for all.
    #[error("unit {index} is invalid: {unit}")]
    InvalidUnit {
        /// Position of the unit.
        index: usize,
        /// The unit given.
        unit: f64,
    },
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
    /// One unit per range, or a single unit for every entry.
    units: Vec<f64>,
}

impl FixedPointEncoder {
    /// An encoder with `frac_bits` fractional bits. `ranges` holds either one
    /// range per entry or a single range applied to every entry.
    pub fn new(frac_bits: u32, ranges: Vec<ClipRange>) -> Result<Self, EncodingError> {
        Self::with_units(frac_bits, ranges, vec![1.0])
    }

    /// An encoder whose entries are counted in `units` (one per range, or
    /// one for all): entry i encodes `value / units[i] · 2^frac_bits`.
    pub fn with_units(
        frac_bits: u32,
        ranges: Vec<ClipRange>,
        units: Vec<f64>,
    ) -> Result<Self, EncodingError> {
        if !(units.len() == 1 || units.len() == ranges.len()) {
            return Err(EncodingError::InvalidUnit {
                index: units.len(),
                unit: f64::NAN,
            });
        }
        if let Some((index, &unit)) = units
            .iter()
            .enumerate()
            .find(|(_, u)| !(u.is_finite() && **u > 0.0))
        {
            return Err(EncodingError::InvalidUnit { index, unit });
        }
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
        let encoder = Self {
            frac_bits,
            ranges,
            units,
        };
        encoder.check_capacity(1)?;
        Ok(encoder)
    }

    /// Each entry's unit.
    pub fn units(&self) -> &[f64] {
        &self.units
    }

    fn unit(&self, index: usize) -> f64 {
        if self.units.len() == 1 {
            self.units[0]
        } else {
            self.units[index]
        }
    }

    /// The encoder whose sums over `participants` cannot wrap with the most
    /// fractional bits (at most `max_frac_bits`), each entry counted in the
    /// power of two at or above its range's largest magnitude: every entry
    /// is then resolved to about 2^-frac_bits of its range.
    pub fn finest(
        ranges: Vec<ClipRange>,
        participants: u64,
        max_frac_bits: u32,
    ) -> Result<Self, EncodingError> {
        let units: Vec<f64> = ranges
            .iter()
            .map(|r| r.max_abs().log2().ceil().exp2().max(f64::MIN_POSITIVE))
            .collect();
        let mut last = None;
        for frac_bits in (0..=max_frac_bits.min(62)).rev() {
            let fits = Self::with_units(frac_bits, ranges.clone(), units.clone())
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
            // One more step covers rounding of the largest value.
            let bound = (r.max_abs() / self.unit(index) * self.scale()).ceil() + 1.0;
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
            words.push((kept / self.unit(index) * scale).round() as i64 as u64);
        }
        Ok(Encoded { words, clipped })
    }

    /// Decodes summed words back to real numbers.
    pub fn decode(&self, words: &[u64]) -> Vec<f64> {
        let step = self.resolution();
        words
            .iter()
            .enumerate()
            .map(|(i, &w)| w as i64 as f64 * step * self.unit(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finest_gives_every_entry_the_same_relative_precision() {
        let ranges = vec![ClipRange::new(0.0, 1e12), ClipRange::new(-1.0, 1.0)];
        let e = FixedPointEncoder::finest(ranges.clone(), 10, 40).unwrap();
        // Units 2^40 and 1: each range is at most one unit, and
        // 10 · 2^f < 2^63 leaves all 40 bits.
        assert_eq!(e.units(), &[2f64.powi(40), 1.0]);
        assert_eq!(e.frac_bits(), 40);
        assert!(e.check_capacity(10).is_ok());
        let values = [123_456_789.123_456, -0.000_123];
        let decoded = e.decode(&e.encode(&values).unwrap().words);
        assert!((decoded[0] - values[0]).abs() <= 2f64.powi(40) * e.resolution());
        assert!((decoded[1] - values[1]).abs() <= e.resolution());
        let capped = FixedPointEncoder::finest(ranges.clone(), 10, 20).unwrap();
        assert_eq!(capped.frac_bits(), 20);
        // A cohort of 2^30: 2^30 · (2^f + 1) < 2^63 holds up to f = 32.
        let large = FixedPointEncoder::finest(ranges, 1 << 30, 40).unwrap();
        assert_eq!(large.frac_bits(), 32);
    }

    #[test]
    fn units_must_be_positive_and_match_the_ranges() {
        let ranges = vec![ClipRange::new(0.0, 1.0), ClipRange::new(0.0, 2.0)];
        assert!(FixedPointEncoder::with_units(8, ranges.clone(), vec![1.0, 0.0]).is_err());
        assert!(FixedPointEncoder::with_units(8, ranges.clone(), vec![1.0; 3]).is_err());
        let e = FixedPointEncoder::with_units(8, ranges, vec![0.5, 4.0]).unwrap();
        let decoded = e.decode(&e.encode(&[0.25, 1.5]).unwrap().words);
        assert_eq!(decoded, vec![0.25, 1.5]);
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
