//! Sealing of Shamir shares sent from one member to another through the
//! coordinator: ChaCha20-Poly1305 under a key from X25519 between the two
//! members' epoch encryption keys, bound to job, epoch, sender and holder.
//! Each key seals exactly one message, so the nonce is fixed at zero.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use super::error::SecAggError;
use super::kdf::{self, PROTOCOL_TAG, Purpose};

/// Who sealed what for whom: authenticated as associated data and folded
/// into the key.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Job the shares belong to.
    pub job_id: &'a str,
    /// Key epoch.
    pub epoch: u32,
    /// Member that made the shares.
    pub sender: u32,
    /// Member that holds them.
    pub holder: u32,
}

impl SealContext<'_> {
    fn context_bytes(&self) -> [u8; 12] {
        let mut ctx = [0u8; 12];
        ctx[..4].copy_from_slice(&self.epoch.to_le_bytes());
        ctx[4..8].copy_from_slice(&self.sender.to_le_bytes());
        ctx[8..].copy_from_slice(&self.holder.to_le_bytes());
        ctx
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(PROTOCOL_TAG.len() + 16 + self.job_id.len());
        aad.extend_from_slice(PROTOCOL_TAG);
        aad.extend_from_slice(&(self.job_id.len() as u32).to_le_bytes());
        aad.extend_from_slice(self.job_id.as_bytes());
        aad.extend_from_slice(&self.context_bytes());
        aad
    }
}

/// The X25519 result between two members' epoch encryption keys. Both
/// directions (sealing to the peer, opening from it) derive their own key
/// from it, so one Diffie-Hellman per neighbour and epoch serves both.
pub struct ShareChannel {
    shared: SharedSecret,
}

impl ShareChannel {
    /// The channel between `own` and `peer`'s public encryption key.
    pub fn new(own: &StaticSecret, peer_key: &PublicKey, peer: u32) -> Result<Self, SecAggError> {
        let shared = own.diffie_hellman(peer_key);
        if !shared.was_contributory() {
            return Err(SecAggError::NonContributoryKey(peer));
        }
        Ok(Self { shared })
    }

    fn cipher(&self, ctx: &SealContext<'_>) -> ChaCha20Poly1305 {
        let key = kdf::derive(
            Purpose::ShareSeal,
            self.shared.as_bytes(),
            ctx.job_id,
            &ctx.context_bytes(),
        );
        ChaCha20Poly1305::new(key.as_bytes().into())
    }

    /// Seals `plaintext` as described by `ctx` (this member is the sender).
    pub fn seal(&self, ctx: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SecAggError> {
        let aad = ctx.associated_data();
        self.cipher(ctx)
            .encrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecAggError::InvalidParams("plaintext too long to seal".into()))
    }

    /// Opens shares sealed as described by `ctx` (this member is the holder).
    pub fn open(
        &self,
        ctx: &SealContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecAggError> {
        let aad = ctx.associated_data();
        self.cipher(ctx)
            .decrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SecAggError::SealBroken {
                sender: ctx.sender,
                holder: ctx.holder,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::AeadInOut;

    /// RFC 8439, section 2.8.2: the AEAD_CHACHA20_POLY1305 test vector.
    #[test]
    fn chacha20poly1305_rfc8439_vector() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce = hex::decode("070000004041424344454647").unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let mut text = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let tag = ChaCha20Poly1305::new(&key.into())
            .encrypt_inout_detached(
                nonce.as_slice().try_into().unwrap(),
                &aad,
                text.as_mut_slice().into(),
            )
            .unwrap();
        assert_eq!(hex::encode(&text[..16]), "d31a8d34648e60db7b86afbc53ef7ec2");
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
    }

    /// RFC 7748, section 6.1: X25519 Diffie-Hellman between Alice and Bob.
    #[test]
    fn x25519_rfc7748_key_agreement() {
        let alice = StaticSecret::from(
            <[u8; 32]>::try_from(
                hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                    .unwrap(),
            )
            .unwrap(),
        );
        let bob = StaticSecret::from(
            <[u8; 32]>::try_from(
                hex::decode("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
                    .unwrap(),
            )
            .unwrap(),
        );
        assert_eq!(
            hex::encode(PublicKey::from(&alice).as_bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let shared = alice.diffie_hellman(&PublicKey::from(&bob));
        assert_eq!(
            hex::encode(shared.as_bytes()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    fn keys(seed: u8) -> (StaticSecret, PublicKey) {
        let secret = StaticSecret::from([seed; 32]);
        let public = PublicKey::from(&secret);
        (secret, public)
    }

    #[test]
    fn sealed_shares_open_only_in_their_context() {
        let (a, a_pub) = keys(1);
        let (b, b_pub) = keys(2);
        let ctx = SealContext {
            job_id: "job",
            epoch: 3,
            sender: 0,
            holder: 1,
        };
        let at_a = ShareChannel::new(&a, &b_pub, 1).unwrap();
        let sealed = at_a.seal(&ctx, b"shares").unwrap();
        let at_b = ShareChannel::new(&b, &a_pub, 0).unwrap();
        assert_eq!(at_b.open(&ctx, &sealed).unwrap().as_slice(), b"shares");

        let elsewhere = [
            SealContext { epoch: 4, ..ctx },
            SealContext {
                job_id: "other",
                ..ctx
            },
            SealContext { holder: 2, ..ctx },
        ];
        for other in &elsewhere {
            assert!(matches!(
                at_b.open(other, &sealed),
                Err(SecAggError::SealBroken { .. })
            ));
        }
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(at_b.open(&ctx, &tampered).is_err());
        // Anyone else, such as the relaying coordinator, cannot open it.
        let (c, _) = keys(3);
        assert!(
            ShareChannel::new(&c, &a_pub, 0)
                .unwrap()
                .open(&ctx, &sealed)
                .is_err()
        );
    }

    #[test]
    fn low_order_keys_are_refused() {
        let (a, _) = keys(1);
        let zero = PublicKey::from([0u8; 32]);
        assert!(matches!(
            ShareChannel::new(&a, &zero, 5),
            Err(SecAggError::NonContributoryKey(5))
        ));
    }
}
