//! Conversion between the `fedseg.v1` wire messages and the protocol types
//! of [`crate::secagg`]. Decoding checks every length and encoding, so the
//! protocol code only ever sees well-formed values.

use curve25519_dalek::Scalar;
use thiserror::Error;

use crate::features::Space;
use crate::propensity::Design;
use crate::proto;
use crate::secagg::messages::{
    EpochRoster, EpochStart, KeyAdvertisement, MaskRequest, MaskedInput, PublicKeyBytes,
    RevealedShare, SealedShares, ShareBundle, ShareDelivery, ShareValue, SurvivorSet,
    SurvivorSignature, UnmaskRequest, UnmaskResponse,
};
use crate::secagg::signing::Signature;

/// A wire message that does not decode into a protocol message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed {field}: {reason}")]
pub struct WireError {
    /// Which field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: &'static str,
}

fn bad(field: &'static str, reason: &'static str) -> WireError {
    WireError { field, reason }
}

fn key(bytes: &[u8], field: &'static str) -> Result<PublicKeyBytes, WireError> {
    bytes.try_into().map_err(|_| bad(field, "not 32 bytes"))
}

fn signature(bytes: &[u8], field: &'static str) -> Result<Signature, WireError> {
    bytes.try_into().map_err(|_| bad(field, "not 64 bytes"))
}

/// The keys of one advertisement, as both wire messages carry them.
fn advertisement(
    epoch: u32,
    encryption_key: &[u8],
    mask_keys: &[Vec<u8>],
    certificate: Vec<u8>,
    sig: &[u8],
) -> Result<KeyAdvertisement, WireError> {
    Ok(KeyAdvertisement {
        epoch,
        encryption_key: key(encryption_key, "encryption_key")?,
        mask_keys: mask_keys
            .iter()
            .map(|m| key(m, "mask_keys"))
            .collect::<Result<_, _>>()?,
        certificate,
        signature: signature(sig, "signature")?,
    })
}

/// The clustering space a computation request carries.
pub fn space_from_wire(space: Option<&proto::Space>) -> Result<Space, WireError> {
    let s = space.ok_or(bad("space", "missing"))?;
    Space::from_slices(&s.mean, &s.std, &s.scale, &s.lo, &s.hi)
        .ok_or(bad("space", "needs 5 entries per field and lo <= hi"))
}

/// The design (feature flags and segments) of a propensity request.
pub fn design_from_wire(p: &proto::Propensity) -> Result<Design, WireError> {
    Ok(Design {
        features: p
            .features
            .as_slice()
            .try_into()
            .map_err(|_| bad("features", "a model names 5 feature flags"))?,
        segments: p.segments,
    })
}

/// Encodes `u64` words little-endian.
pub fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Decodes little-endian `u64` words.
pub fn bytes_to_words(bytes: &[u8]) -> Result<Vec<u64>, WireError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(bad("words", "length is not a multiple of 8"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

impl From<&EpochStart> for proto::EpochStart {
    fn from(s: &EpochStart) -> Self {
        Self {
            epoch: s.epoch,
            first_round: s.first_round,
            rounds: s.rounds,
            members: s.members.clone(),
        }
    }
}

impl From<proto::EpochStart> for EpochStart {
    fn from(s: proto::EpochStart) -> Self {
        Self {
            epoch: s.epoch,
            first_round: s.first_round,
            rounds: s.rounds,
            members: s.members,
        }
    }
}

impl From<&KeyAdvertisement> for proto::KeyAdvertisement {
    fn from(k: &KeyAdvertisement) -> Self {
        Self {
            epoch: k.epoch,
            encryption_key: k.encryption_key.to_vec(),
            mask_keys: k.mask_keys.iter().map(|m| m.to_vec()).collect(),
            certificate: k.certificate.clone(),
            signature: k.signature.to_vec(),
        }
    }
}

impl TryFrom<proto::KeyAdvertisement> for KeyAdvertisement {
    type Error = WireError;
    fn try_from(k: proto::KeyAdvertisement) -> Result<Self, WireError> {
        advertisement(
            k.epoch,
            &k.encryption_key,
            &k.mask_keys,
            k.certificate,
            &k.signature,
        )
    }
}

impl From<&EpochRoster> for proto::EpochRoster {
    fn from(r: &EpochRoster) -> Self {
        Self {
            epoch: r.start.epoch,
            first_round: r.start.first_round,
            rounds: r.start.rounds,
            keys: r
                .keys
                .iter()
                .map(|(m, k)| proto::AdvertisedKeys {
                    participant: *m,
                    encryption_key: k.encryption_key.to_vec(),
                    mask_keys: k.mask_keys.iter().map(|x| x.to_vec()).collect(),
                    certificate: k.certificate.clone(),
                    signature: k.signature.to_vec(),
                })
                .collect(),
        }
    }
}

/// Decodes a roster; the members invited to the epoch come from the
/// participant's own record of the epoch start, not from the roster.
pub fn roster_from_wire(
    r: proto::EpochRoster,
    start: &EpochStart,
) -> Result<EpochRoster, WireError> {
    let keys = r
        .keys
        .into_iter()
        .map(|a| {
            let advert = advertisement(
                r.epoch,
                &a.encryption_key,
                &a.mask_keys,
                a.certificate,
                &a.signature,
            )?;
            Ok((a.participant, advert))
        })
        .collect::<Result<_, WireError>>()?;
    let claimed = EpochStart {
        epoch: r.epoch,
        first_round: r.first_round,
        rounds: r.rounds,
        members: start.members.clone(),
    };
    Ok(EpochRoster {
        start: claimed,
        keys,
    })
}

fn sealed_to_wire(s: &SealedShares) -> proto::SealedShares {
    proto::SealedShares {
        sender: s.sender,
        holder: s.holder,
        ciphertext: s.ciphertext.clone(),
    }
}

fn sealed_from_wire(s: proto::SealedShares) -> SealedShares {
    SealedShares {
        sender: s.sender,
        holder: s.holder,
        ciphertext: s.ciphertext,
    }
}

impl From<&ShareBundle> for proto::ShareBundle {
    fn from(b: &ShareBundle) -> Self {
        Self {
            epoch: b.epoch,
            shares: b.shares.iter().map(sealed_to_wire).collect(),
        }
    }
}

impl From<proto::ShareBundle> for ShareBundle {
    fn from(b: proto::ShareBundle) -> Self {
        Self {
            epoch: b.epoch,
            shares: b.shares.into_iter().map(sealed_from_wire).collect(),
        }
    }
}

impl From<&ShareDelivery> for proto::ShareDelivery {
    fn from(d: &ShareDelivery) -> Self {
        Self {
            epoch: d.epoch,
            shares: d.shares.iter().map(sealed_to_wire).collect(),
        }
    }
}

impl From<proto::ShareDelivery> for ShareDelivery {
    fn from(d: proto::ShareDelivery) -> Self {
        Self {
            epoch: d.epoch,
            shares: d.shares.into_iter().map(sealed_from_wire).collect(),
        }
    }
}

/// The protocol part of a mask request (the computation travels beside it).
pub fn mask_request_from_wire(m: &proto::MaskRequest) -> MaskRequest {
    MaskRequest {
        round: m.round,
        members: m.members.clone(),
        length: m.length as usize,
    }
}

impl From<&MaskedInput> for proto::MaskedInput {
    fn from(m: &MaskedInput) -> Self {
        Self {
            round: m.round,
            words: words_to_bytes(&m.words),
            signature: m.signature.to_vec(),
        }
    }
}

impl TryFrom<proto::MaskedInput> for MaskedInput {
    type Error = WireError;
    fn try_from(m: proto::MaskedInput) -> Result<Self, WireError> {
        Ok(Self {
            round: m.round,
            words: bytes_to_words(&m.words)?,
            signature: signature(&m.signature, "MaskedInput.signature")?,
        })
    }
}

impl From<&UnmaskRequest> for proto::UnmaskRequest {
    fn from(u: &UnmaskRequest) -> Self {
        Self {
            round: u.round,
            survivors: u.survivors.clone(),
            dropped: u.dropped.clone(),
            signatures: u
                .signatures
                .iter()
                .map(|(m, s)| proto::MemberSignature {
                    participant: *m,
                    signature: s.to_vec(),
                })
                .collect(),
        }
    }
}

impl TryFrom<proto::UnmaskRequest> for UnmaskRequest {
    type Error = WireError;
    fn try_from(u: proto::UnmaskRequest) -> Result<Self, WireError> {
        Ok(Self {
            round: u.round,
            survivors: u.survivors,
            dropped: u.dropped,
            signatures: u
                .signatures
                .iter()
                .map(|s| Ok((s.participant, signature(&s.signature, "signatures")?)))
                .collect::<Result<_, WireError>>()?,
        })
    }
}

impl From<&SurvivorSet> for proto::SurvivorSet {
    fn from(s: &SurvivorSet) -> Self {
        Self {
            round: s.round,
            survivors: s.survivors.clone(),
        }
    }
}

impl From<proto::SurvivorSet> for SurvivorSet {
    fn from(s: proto::SurvivorSet) -> Self {
        Self {
            round: s.round,
            survivors: s.survivors,
        }
    }
}

impl From<&SurvivorSignature> for proto::SurvivorSignature {
    fn from(s: &SurvivorSignature) -> Self {
        Self {
            round: s.round,
            signature: s.signature.to_vec(),
        }
    }
}

impl TryFrom<proto::SurvivorSignature> for SurvivorSignature {
    type Error = WireError;
    fn try_from(s: proto::SurvivorSignature) -> Result<Self, WireError> {
        Ok(Self {
            round: s.round,
            signature: signature(&s.signature, "signature")?,
        })
    }
}

fn shares_to_wire(shares: &[RevealedShare]) -> Vec<proto::Share> {
    shares
        .iter()
        .map(|s| proto::Share {
            owner: s.owner,
            value: s.value.0.to_bytes().to_vec(),
        })
        .collect()
}

fn shares_from_wire(shares: Vec<proto::Share>) -> Result<Vec<RevealedShare>, WireError> {
    shares
        .into_iter()
        .map(|s| {
            let bytes: [u8; 32] = s
                .value
                .as_slice()
                .try_into()
                .map_err(|_| bad("share", "not 32 bytes"))?;
            let scalar = Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes))
                .ok_or(bad("share", "not a canonical scalar"))?;
            Ok(RevealedShare {
                owner: s.owner,
                value: ShareValue(scalar),
            })
        })
        .collect()
}

impl From<&UnmaskResponse> for proto::UnmaskResponse {
    fn from(u: &UnmaskResponse) -> Self {
        Self {
            round: u.round,
            self_mask_shares: shares_to_wire(&u.self_mask_shares),
            mask_key_shares: shares_to_wire(&u.mask_key_shares),
        }
    }
}

impl TryFrom<proto::UnmaskResponse> for UnmaskResponse {
    type Error = WireError;
    fn try_from(u: proto::UnmaskResponse) -> Result<Self, WireError> {
        Ok(Self {
            round: u.round,
            self_mask_shares: shares_from_wire(u.self_mask_shares)?,
            mask_key_shares: shares_from_wire(u.mask_key_shares)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_reject_ragged_bytes() {
        let words = vec![0, 1, u64::MAX, 0x0102_0304_0506_0708];
        let bytes = words_to_bytes(&words);
        assert_eq!(&bytes[24..], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(bytes_to_words(&bytes).unwrap(), words);
        assert!(bytes_to_words(&bytes[..7]).is_err());
    }

    #[test]
    fn shares_must_be_canonical_scalars() {
        let wire = proto::UnmaskResponse {
            round: 1,
            self_mask_shares: vec![proto::Share {
                owner: 0,
                value: vec![0xff; 32],
            }],
            mask_key_shares: vec![],
        };
        assert!(UnmaskResponse::try_from(wire).is_err());
        let short = proto::KeyAdvertisement {
            epoch: 0,
            encryption_key: vec![1; 31],
            mask_keys: vec![],
            certificate: vec![],
            signature: vec![0; 64],
        };
        assert!(KeyAdvertisement::try_from(short).is_err());
        let unsigned = proto::KeyAdvertisement {
            encryption_key: vec![1; 32],
            signature: vec![],
            ..Default::default()
        };
        assert_eq!(
            KeyAdvertisement::try_from(unsigned).unwrap_err().field,
            "signature"
        );
        let request = proto::UnmaskRequest {
            round: 1,
            survivors: vec![0, 1],
            dropped: vec![],
            signatures: vec![proto::MemberSignature {
                participant: 0,
                signature: vec![0; 63],
            }],
        };
        assert!(UnmaskRequest::try_from(request).is_err());
    }
}
