//! Joint scoring with a model trained earlier (`[vertical] score_with`):
//! after a fresh intersection each party applies its own block of the model
//! to its own columns, and the label holder must learn only the joint
//! linear predictor of each shared customer, never one partner's part.
//!
//! Each partner adds to its part, per customer, one pairwise mask per other
//! partner, derived from their X25519 agreement (HKDF-SHA256 bound to the
//! consortium, the job and the pair, expanded by ChaCha20): the lower index
//! adds it, the higher subtracts it, so the masks cancel in the sum the
//! label holder forms and each partner's message alone is uniformly random
//! in the ring. With one partner there is nothing to mask against: the
//! label holder then learns that partner's part, which it could compute
//! anyway from the joint score and its own part.

use hkdf::Hkdf;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use sha2::Sha256;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::error::MpcError;
use super::ring;

const MASK_TAG: &[u8] = b"fedseg/mpc/v1/score-mask";

/// The party's partial linear predictors `partial` (decoded reals, one per
/// shared customer) in the ring, masked against every other partner in
/// `peers` (party index and public key; the label holder is never among
/// them).
pub fn masked_partial(
    own: &StaticSecret,
    me: u32,
    peers: &[(u32, [u8; 32])],
    consortium: &str,
    job_id: &str,
    partial: &[f64],
) -> Result<Vec<u128>, MpcError> {
    let mut out = partial
        .iter()
        .map(|&v| ring::encode(v).ok_or(MpcError::OutOfRange("partial linear predictor")))
        .collect::<Result<Vec<u128>, _>>()?;
    let context = super::wire::context(consortium, job_id);
    for &(peer, key) in peers {
        if peer == me {
            continue;
        }
        let mask = pair_mask(own, &key, (me, peer), &context, out.len())?;
        out = if me < peer {
            ring::add(&out, &mask)
        } else {
            ring::sub(&out, &mask)
        };
    }
    Ok(out)
}

/// The mask the two parties of `pair` share under `context` (the
/// consortium and the job), `n` ring elements.
fn pair_mask(
    own: &StaticSecret,
    peer_key: &[u8; 32],
    pair: (u32, u32),
    context: &[u8],
    n: usize,
) -> Result<Vec<u128>, MpcError> {
    let shared = super::wire::agree(own, peer_key)?;
    let mut info = MASK_TAG.to_vec();
    info.extend_from_slice(context);
    info.extend_from_slice(&pair.0.min(pair.1).to_le_bytes());
    info.extend_from_slice(&pair.0.max(pair.1).to_le_bytes());
    let mut seed = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, shared.as_bytes())
        .expand(&info, &mut *seed)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Ok(ring::random_vec(&mut ChaCha20Rng::from_seed(*seed), n))
}

#[cfg(test)]
mod tests {
    use x25519_dalek::PublicKey;

    use super::*;

    #[test]
    fn the_masks_cancel_in_the_sum_and_hide_each_part() {
        let secrets: Vec<StaticSecret> = (1..=3u8).map(|b| StaticSecret::from([b; 32])).collect();
        let keys: Vec<(u32, [u8; 32])> = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, PublicKey::from(s).to_bytes()))
            .collect();
        let parts = [[0.5, -1.25], [2.0, 0.125], [-0.75, 3.0]];
        let masked: Vec<Vec<u128>> = (0..3)
            .map(|i| masked_partial(&secrets[i], i as u32 + 1, &keys, "c", "j", &parts[i]).unwrap())
            .collect();
        for row in 0..2 {
            let sum = masked.iter().fold(0u128, |acc, m| acc.wrapping_add(m[row]));
            let want: f64 = parts.iter().map(|p| p[row]).sum();
            assert!((ring::decode(sum) - want).abs() < 1e-9);
            // Alone, a masked part is nowhere near its value.
            assert!((ring::decode(masked[0][row]) - parts[0][row]).abs() > 1.0);
        }
        // Another job, other masks.
        let other = masked_partial(&secrets[0], 1, &keys, "c", "k", &parts[0]).unwrap();
        assert_ne!(other, masked[0]);
    }
}
