//! The ring Z_2^128 and its fixed-point encoding.
//!
//! A real `v` is the ring element `round(v · 2^FRAC)` (two's complement).
//! A product of two encodings carries `2·FRAC` fractional bits and is brought
//! back by [`truncate_share`], SecureML's local probabilistic truncation
//! (Mohassel–Zhang, S&P 2017, Theorem 1): each party shifts its own share;
//! for a true value with `|x| < 2^l` the result is `x / 2^FRAC` up to ±1 ulp
//! except with probability at most `2^(l + 1 - 128)`.
//!
//! Why 128 bits and 32 fractional bits: the secure sigmoid raises
//! `1 ± η/2^11` to the power 2^10, which amplifies the encoding error of the
//! base by 2^10, so 2^-32 resolution is needed for a sigmoid accurate to
//! ~1e-7; and every product in the protocol stays below 2^88 in raw size,
//! so each truncation fails with probability below 2^-39 (2^-60 for the
//! typical values near 1). In Z_2^64 the two needs cannot both be met.

use rand::Rng;

/// Fractional bits of the encoding.
pub const FRAC: u32 = 32;

/// The scale `2^FRAC` as a float.
pub const SCALE: f64 = (1u64 << FRAC) as f64;

/// Largest magnitude [`encode`] accepts (raw values stay below 2^88 when
/// multiplied by a value of at most 2^24).
pub const MAX_ABS: f64 = (1u64 << 40) as f64;

/// Encodes a real; `None` when it is not finite or exceeds [`MAX_ABS`].
pub fn encode(v: f64) -> Option<u128> {
    if !v.is_finite() || v.abs() > MAX_ABS {
        return None;
    }
    Some(((v * SCALE).round() as i128) as u128)
}

/// Encodes a real known to be in range (constants of the protocol).
pub(crate) fn enc(v: f64) -> u128 {
    encode(v).expect("protocol constant within the encoding range")
}

/// Decodes a ring element as a signed fixed-point real.
pub fn decode(x: u128) -> f64 {
    (x as i128) as f64 / SCALE
}

/// SecureML local truncation of party `party`'s share by `bits`.
pub fn truncate_share(party: usize, share: u128, bits: u32) -> u128 {
    if party == 0 {
        ((share as i128) >> bits) as u128
    } else {
        (((share.wrapping_neg()) as i128) >> bits).wrapping_neg() as u128
    }
}

/// Truncates every element of a share vector in place.
pub fn truncate_all(party: usize, shares: &mut [u128], bits: u32) {
    for s in shares {
        *s = truncate_share(party, *s, bits);
    }
}

/// A uniformly random ring element.
pub fn random(rng: &mut impl Rng) -> u128 {
    ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128
}

/// `n` uniformly random ring elements.
pub fn random_vec(rng: &mut impl Rng, n: usize) -> Vec<u128> {
    (0..n).map(|_| random(rng)).collect()
}

/// Splits a plain vector into two additive shares.
pub fn share(rng: &mut impl Rng, x: &[u128]) -> (Vec<u128>, Vec<u128>) {
    let s0 = random_vec(rng, x.len());
    let s1 = x.iter().zip(&s0).map(|(v, r)| v.wrapping_sub(*r)).collect();
    (s0, s1)
}

/// Element-wise `a + b`.
pub fn add(a: &[u128], b: &[u128]) -> Vec<u128> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// Element-wise `a - b`.
pub fn sub(a: &[u128], b: &[u128]) -> Vec<u128> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

/// Row-major `m×k` times `k×n` in the ring, no truncation.
pub fn matmul(a: &[u128], b: &[u128], m: usize, k: usize, n: usize) -> Vec<u128> {
    let mut out = vec![0u128; m * n];
    for i in 0..m {
        for l in 0..k {
            let x = a[i * k + l];
            if x == 0 {
                continue;
            }
            let row = &mut out[i * n..(i + 1) * n];
            for (o, y) in row.iter_mut().zip(&b[l * n..(l + 1) * n]) {
                *o = o.wrapping_add(x.wrapping_mul(*y));
            }
        }
    }
    out
}

/// Row-major transpose of an `m×n` matrix.
pub fn transpose(a: &[u128], m: usize, n: usize) -> Vec<u128> {
    let mut out = vec![0u128; m * n];
    for i in 0..m {
        for j in 0..n {
            out[j * m + i] = a[i * n + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    #[test]
    fn encode_round_trips_and_refuses_out_of_range() {
        for v in [0.0, 1.0, -1.0, 0.5, -3.25, 1e6, -1e-9] {
            assert!((decode(enc(v)) - v).abs() <= 0.5 / SCALE);
        }
        assert_eq!(encode(f64::NAN), None);
        assert_eq!(encode(2.0 * MAX_ABS), None);
    }

    proptest! {
        #[test]
        fn product_truncation_is_within_one_ulp(a in -1e6f64..1e6, b in -16f64..16.0, seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let prod = enc(a).wrapping_mul(enc(b));
            let (s0, s1) = share(&mut rng, &[prod]);
            let t = truncate_share(0, s0[0], FRAC).wrapping_add(truncate_share(1, s1[0], FRAC));
            let exact = (prod as i128) >> FRAC;
            // the shifted product, up to the one-ulp carry between the shares
            prop_assert!(((t as i128) - exact).abs() <= 1, "{} vs {}", t as i128, exact);
        }

        #[test]
        fn shares_add_up(v in -1e9f64..1e9, seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let (s0, s1) = share(&mut rng, &[enc(v)]);
            prop_assert_eq!(s0[0].wrapping_add(s1[0]), enc(v));
        }
    }

    #[test]
    fn matmul_and_transpose_agree_with_plain_products() {
        let a: Vec<u128> = (1..=6).map(|v| v as u128).collect(); // 2x3
        let b: Vec<u128> = (1..=3).map(|v| v as u128).collect(); // 3x1
        assert_eq!(matmul(&a, &b, 2, 3, 1), vec![14, 32]);
        assert_eq!(transpose(&a, 2, 3), vec![1, 4, 2, 5, 3, 6]);
    }
}
