//! Shamir secret sharing over the prime field of Curve25519's group order
//! (ℓ = 2^252 + 27742317777372353535851937790883648493), using the dalek
//! `Scalar` arithmetic.
//!
//! A share is the value of a random degree-(t−1) polynomial at the holder's
//! x-coordinate (cohort index + 1, never 0); any t shares give the secret by
//! Lagrange interpolation at 0, t−1 shares give nothing. Many secrets are
//! shared to the same holders at once, so [`Interpolator`] computes the
//! Lagrange coefficients of one holder set once and reuses them.

use curve25519_dalek::Scalar;
use rand::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use thiserror::Error;
use zeroize::Zeroize;

/// Why shares could not be made or combined.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShamirError {
    /// Threshold is zero or larger than the number of holders.
    #[error("threshold {threshold} is not within 1..={holders}")]
    Threshold {
        /// Threshold asked for.
        threshold: usize,
        /// Holders available.
        holders: usize,
    },
    /// Two shares (or holders) have the same x-coordinate.
    #[error("x-coordinate {0} appears twice")]
    DuplicateX(u32),
    /// x = 0 would be the secret itself.
    #[error("x-coordinate 0 is reserved for the secret")]
    ZeroX,
    /// Fewer shares than the threshold.
    #[error("{have} shares given, {need} needed")]
    NotEnoughShares {
        /// Shares given.
        have: usize,
        /// Threshold.
        need: usize,
    },
}

/// One share: the holder's x-coordinate and the polynomial's value there.
#[derive(Clone, Copy, Zeroize)]
pub struct Share {
    /// Holder's x-coordinate (cohort index + 1).
    pub x: u32,
    /// The polynomial's value at `x`.
    pub y: Scalar,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share {{ x: {}, y: .. }}", self.x)
    }
}

impl ConstantTimeEq for Share {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.x.ct_eq(&other.x) & self.y.ct_eq(&other.y)
    }
}

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Share {}

fn check_xs(xs: &[u32]) -> Result<(), ShamirError> {
    let mut seen = std::collections::HashSet::with_capacity(xs.len());
    for &x in xs {
        if x == 0 {
            return Err(ShamirError::ZeroX);
        }
        if !seen.insert(x) {
            return Err(ShamirError::DuplicateX(x));
        }
    }
    Ok(())
}

/// Splits `secret` into one share per x-coordinate in `xs`, any `threshold`
/// of which reconstruct it.
pub fn split<R: CryptoRng + ?Sized>(
    secret: &Scalar,
    threshold: usize,
    xs: &[u32],
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    if threshold == 0 || threshold > xs.len() {
        return Err(ShamirError::Threshold {
            threshold,
            holders: xs.len(),
        });
    }
    check_xs(xs)?;
    let mut coefficients = Vec::with_capacity(threshold);
    coefficients.push(*secret);
    coefficients.extend((1..threshold).map(|_| Scalar::random(rng)));
    let shares = xs
        .iter()
        .map(|&x| {
            let at = Scalar::from(x);
            // Horner's rule from the highest coefficient down.
            let y = coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc * at + c);
            Share { x, y }
        })
        .collect();
    coefficients.zeroize();
    Ok(shares)
}

/// Lagrange coefficients at 0 for one fixed set of x-coordinates.
#[derive(Debug, Clone)]
pub struct Interpolator {
    xs: Vec<u32>,
    coefficients: Vec<Scalar>,
}

impl Interpolator {
    /// Coefficients for exactly the holders `xs` (distinct, non-zero).
    pub fn new(xs: &[u32]) -> Result<Self, ShamirError> {
        check_xs(xs)?;
        let points: Vec<Scalar> = xs.iter().map(|&x| Scalar::from(x)).collect();
        let mut numerators = Vec::with_capacity(xs.len());
        let mut denominators = Vec::with_capacity(xs.len());
        for (i, xi) in points.iter().enumerate() {
            let mut num = Scalar::ONE;
            let mut den = Scalar::ONE;
            for (j, xj) in points.iter().enumerate() {
                if i != j {
                    num *= xj;
                    den *= xj - xi;
                }
            }
            numerators.push(num);
            denominators.push(den);
        }
        Scalar::invert_batch_alloc(&mut denominators);
        let coefficients = numerators
            .iter()
            .zip(&denominators)
            .map(|(n, d)| n * d)
            .collect();
        Ok(Self {
            xs: xs.to_vec(),
            coefficients,
        })
    }

    /// The x-coordinates this interpolator was built for.
    pub fn xs(&self) -> &[u32] {
        &self.xs
    }

    /// The secret from shares whose x-coordinates are exactly `self.xs()`,
    /// given in the same order.
    pub fn interpolate<'a>(&self, ys: impl IntoIterator<Item = &'a Scalar>) -> Scalar {
        self.coefficients
            .iter()
            .zip(ys)
            .fold(Scalar::ZERO, |acc, (c, y)| acc + c * y)
    }
}

/// Reconstructs a secret from at least `threshold` shares (the first
/// `threshold` of them are used).
pub fn reconstruct(shares: &[Share], threshold: usize) -> Result<Scalar, ShamirError> {
    if threshold == 0 || shares.len() < threshold {
        return Err(ShamirError::NotEnoughShares {
            have: shares.len(),
            need: threshold,
        });
    }
    let used = &shares[..threshold];
    let xs: Vec<u32> = used.iter().map(|s| s.x).collect();
    Ok(Interpolator::new(&xs)?.interpolate(used.iter().map(|s| &s.y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..(1 << n))
            .filter(|m| m.count_ones() as usize == k)
            .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn every_threshold_subset_reconstructs_and_smaller_ones_do_not() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let secret = Scalar::random(&mut rng);
        let xs: Vec<u32> = (1..=7).collect();
        for t in 1..=7 {
            let shares = split(&secret, t, &xs, &mut rng).unwrap();
            for subset in subsets(7, t) {
                let chosen: Vec<Share> = subset.iter().map(|&i| shares[i]).collect();
                assert_eq!(reconstruct(&chosen, t).unwrap(), secret, "t={t} {subset:?}");
                if t > 1 {
                    // t−1 shares interpolate to something unrelated.
                    let fewer = &chosen[..t - 1];
                    assert_ne!(reconstruct(fewer, t - 1).unwrap(), secret);
                    assert!(matches!(
                        reconstruct(fewer, t),
                        Err(ShamirError::NotEnoughShares { .. })
                    ));
                }
            }
        }
    }

    #[test]
    fn rejects_bad_holders_and_thresholds() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let s = Scalar::ONE;
        assert_eq!(split(&s, 2, &[1, 0], &mut rng), Err(ShamirError::ZeroX));
        assert_eq!(
            split(&s, 2, &[3, 3], &mut rng),
            Err(ShamirError::DuplicateX(3))
        );
        assert!(matches!(
            split(&s, 3, &[1, 2], &mut rng),
            Err(ShamirError::Threshold { .. })
        ));
        assert!(matches!(
            split(&s, 0, &[1, 2], &mut rng),
            Err(ShamirError::Threshold { .. })
        ));
    }

    #[test]
    fn share_comparison_checks_both_coordinates() {
        let a = Share {
            x: 1,
            y: Scalar::ONE,
        };
        assert_eq!(
            a,
            Share {
                x: 1,
                y: Scalar::ONE
            }
        );
        assert_ne!(
            a,
            Share {
                x: 2,
                y: Scalar::ONE
            }
        );
        assert_ne!(
            a,
            Share {
                x: 1,
                y: Scalar::ZERO
            }
        );
        assert_eq!(format!("{a:?}"), "Share { x: 1, y: .. }");
    }

    proptest! {
        #[test]
        fn random_subsets_of_threshold_size_reconstruct(
            seed: u64, n in 1usize..30, t_frac in 0.0f64..1.0, pick_seed: u64,
        ) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let t = 1 + ((n - 1) as f64 * t_frac) as usize;
            let secret = Scalar::random(&mut rng);
            let xs: Vec<u32> = (1..=n as u32).map(|i| i * 3 + 1).collect();
            let mut shares = split(&secret, t, &xs, &mut rng).unwrap();
            let mut pick = ChaCha20Rng::seed_from_u64(pick_seed);
            rand::seq::SliceRandom::shuffle(shares.as_mut_slice(), &mut pick);
            prop_assert_eq!(reconstruct(&shares[..t], t).unwrap(), secret);
        }
    }
}
