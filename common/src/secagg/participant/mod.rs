//! The member's side of the protocol, as states consumed by value:
//! [`start_epoch`] → [`AwaitingRoster`] → [`AwaitingShares`] → [`ReadyEpoch`],
//! which then masks and unmasks the epoch's rounds in order.

mod ready;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use curve25519_dalek::Scalar;
use rand::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::{Phase, SecAggError};
use super::kdf::DerivedKey;
use super::messages::{
    EpochRoster, EpochStart, KeyAdvertisement, SealedShares, ShareBundle, ShareDelivery,
};
use super::sealed::{SealContext, ShareChannel};
use super::shamir;
use super::signing::{self, Membership, SignerKeys};
use super::{JobParams, pairwise_key, share_x, strictly_sorted};

pub use ready::ReadyEpoch;
use ready::RoundState;

/// Bytes of one round's shares in a sealed bundle: mask-key share then
/// self-mask-seed share, 32 bytes each.
const ROUND_SHARE_BYTES: usize = 64;

/// One member's secrets for one epoch; wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct EpochSecrets {
    encryption: [u8; 32],
    mask_keys: Vec<Scalar>,
    self_seeds: Vec<Scalar>,
}

impl EpochSecrets {
    fn encryption_secret(&self) -> StaticSecret {
        StaticSecret::from(self.encryption)
    }
}

fn mask_secret(scalar: &Scalar) -> StaticSecret {
    StaticSecret::from(scalar.to_bytes())
}

/// This member's shares of one owner's secrets, one pair per round.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct HeldShares {
    mask_key: Vec<Scalar>,
    self_seed: Vec<Scalar>,
}

/// Begins epoch set-up: draws fresh secrets and advertises their public
/// keys, signed with the member's certificate key.
pub fn start_epoch<R: CryptoRng + ?Sized>(
    params: Arc<JobParams>,
    me: u32,
    start: EpochStart,
    membership: Arc<Membership>,
    rng: &mut R,
) -> Result<(KeyAdvertisement, AwaitingRoster), SecAggError> {
    if me >= params.participants() {
        return Err(SecAggError::InvalidParams(format!(
            "member {me} is not in the cohort"
        )));
    }
    if start.rounds == 0 || !strictly_sorted(&start.members) {
        return Err(SecAggError::Malformed {
            from: u32::MAX,
            reason: "epoch start has no rounds or an unsorted member list".into(),
        });
    }
    if start.members.binary_search(&me).is_err() {
        return Err(SecAggError::NotMember {
            who: me,
            phase: Phase::AdvertiseKeys,
        });
    }
    let mut encryption = [0u8; 32];
    rng.fill_bytes(&mut encryption);
    let secrets = EpochSecrets {
        encryption,
        mask_keys: (0..start.rounds).map(|_| Scalar::random(rng)).collect(),
        self_seeds: (0..start.rounds).map(|_| Scalar::random(rng)).collect(),
    };
    let mut advertisement = KeyAdvertisement {
        epoch: start.epoch,
        encryption_key: PublicKey::from(&secrets.encryption_secret()).to_bytes(),
        mask_keys: secrets
            .mask_keys
            .iter()
            .map(|k| PublicKey::from(&mask_secret(k)).to_bytes())
            .collect(),
        certificate: membership.credential.certificate().to_vec(),
        signature: [0; 64],
    };
    advertisement.signature = membership.credential.sign(&signing::advertisement_message(
        &params.job_id,
        me,
        &advertisement,
    ));
    Ok((
        advertisement.clone(),
        AwaitingRoster {
            params,
            me,
            start,
            secrets,
            advertisement,
            membership,
        },
    ))
}

/// Keys advertised; waiting for everyone else's.
pub struct AwaitingRoster {
    params: Arc<JobParams>,
    me: u32,
    start: EpochStart,
    secrets: EpochSecrets,
    advertisement: KeyAdvertisement,
    membership: Arc<Membership>,
}

impl AwaitingRoster {
    /// The epoch whose roster this state waits for.
    pub fn start(&self) -> &EpochStart {
        &self.start
    }

    /// Checks the roster, then shares this epoch's secrets among the holders
    /// that advertised, sealing each holder's shares to it. Every
    /// neighbour's advertisement must be its own (certificate and signature,
    /// [`signing::check_advertisement`]); a single one that is not refuses
    /// the whole roster, the coordinator being at fault.
    pub fn receive_roster<R: CryptoRng + ?Sized>(
        self,
        roster: EpochRoster,
        rng: &mut R,
    ) -> Result<(ShareBundle, AwaitingShares), SecAggError> {
        if roster.start != self.start {
            return Err(SecAggError::WrongEpoch {
                expected: self.start.epoch,
                got: roster.start.epoch,
            });
        }
        let members: Vec<u32> = roster.keys.iter().map(|(m, _)| *m).collect();
        if !strictly_sorted(&members) {
            return Err(SecAggError::Malformed {
                from: u32::MAX,
                reason: "roster is not sorted".into(),
            });
        }
        for (member, keys) in &roster.keys {
            if self.start.members.binary_search(member).is_err() {
                return Err(SecAggError::NotMember {
                    who: *member,
                    phase: Phase::AdvertiseKeys,
                });
            }
            if keys.epoch != self.start.epoch || keys.mask_keys.len() != self.start.rounds as usize
            {
                return Err(SecAggError::Malformed {
                    from: *member,
                    reason: "advertisement does not match the epoch".into(),
                });
            }
        }
        if roster.keys_of(self.me) != Some(&self.advertisement) {
            return Err(SecAggError::Malformed {
                from: u32::MAX,
                reason: "roster does not carry this member's own keys".into(),
            });
        }
        let holders: Vec<u32> = self
            .params
            .graph
            .holders(self.me)
            .into_iter()
            .filter(|h| roster.keys_of(*h).is_some())
            .collect();
        let mut signers = SignerKeys::default();
        for &h in holders.iter().filter(|&&h| h != self.me) {
            let keys = roster.keys_of(h).expect("holder advertised");
            let trust = &self.membership.trust;
            signers.insert(
                h,
                signing::check_advertisement(trust, &self.params.job_id, h, keys)?,
            );
        }
        let t = self.params.t();
        if holders.len() < t {
            return Err(SecAggError::TooFewParticipants {
                have: holders.len(),
                need: t,
                phase: Phase::ShareKeys,
            });
        }
        let xs: Vec<u32> = holders.iter().map(|&h| share_x(h)).collect();
        let rounds = self.start.rounds as usize;
        let mut plaintexts = vec![Vec::with_capacity(rounds * ROUND_SHARE_BYTES); holders.len()];
        for r in 0..rounds {
            let key_shares = shamir::split(&self.secrets.mask_keys[r], t, &xs, rng)?;
            let seed_shares = shamir::split(&self.secrets.self_seeds[r], t, &xs, rng)?;
            for (h, plain) in plaintexts.iter_mut().enumerate() {
                plain.extend_from_slice(key_shares[h].y.as_bytes());
                plain.extend_from_slice(seed_shares[h].y.as_bytes());
            }
        }
        let encryption = self.secrets.encryption_secret();
        let mut sealed_shares = Vec::with_capacity(holders.len() - 1);
        let mut channels = HashMap::with_capacity(holders.len() - 1);
        let mut own = None;
        for (holder, mut plain) in holders.iter().copied().zip(plaintexts) {
            if holder == self.me {
                own = Some(parse_shares(self.me, &plain, rounds)?);
            } else {
                let holder_key = PublicKey::from(
                    roster
                        .keys_of(holder)
                        .expect("holder advertised")
                        .encryption_key,
                );
                let ctx = SealContext {
                    job_id: &self.params.job_id,
                    epoch: self.start.epoch,
                    sender: self.me,
                    holder,
                };
                let channel = ShareChannel::new(&encryption, &holder_key, holder)?;
                sealed_shares.push(SealedShares {
                    sender: self.me,
                    holder,
                    ciphertext: channel.seal(&ctx, &plain)?,
                });
                channels.insert(holder, channel);
            }
            plain.zeroize();
        }
        let mut held = BTreeMap::new();
        held.insert(self.me, own.expect("a member is among its own holders"));
        let bundle = ShareBundle {
            epoch: self.start.epoch,
            shares: sealed_shares,
        };
        Ok((
            bundle,
            AwaitingShares {
                params: self.params,
                me: self.me,
                roster,
                secrets: self.secrets,
                channels,
                held,
                membership: self.membership,
                signers,
            },
        ))
    }
}

fn parse_shares(sender: u32, plain: &[u8], rounds: usize) -> Result<HeldShares, SecAggError> {
    if plain.len() != rounds * ROUND_SHARE_BYTES {
        return Err(SecAggError::Malformed {
            from: sender,
            reason: "share bundle has the wrong length".into(),
        });
    }
    let scalar = |bytes: &[u8]| -> Result<Scalar, SecAggError> {
        Option::from(Scalar::from_canonical_bytes(
            bytes.try_into().expect("32-byte slice"),
        ))
        .ok_or_else(|| SecAggError::Malformed {
            from: sender,
            reason: "share is not a canonical scalar".into(),
        })
    };
    let mut held = HeldShares {
        mask_key: Vec::with_capacity(rounds),
        self_seed: Vec::with_capacity(rounds),
    };
    for chunk in plain.chunks_exact(ROUND_SHARE_BYTES) {
        held.mask_key.push(scalar(&chunk[..32])?);
        held.self_seed.push(scalar(&chunk[32..])?);
    }
    Ok(held)
}

/// Shares sent; waiting for the shares sealed to this member.
pub struct AwaitingShares {
    params: Arc<JobParams>,
    me: u32,
    roster: EpochRoster,
    secrets: EpochSecrets,
    /// Channels to the holders this member sealed shares to; the same
    /// members seal theirs back over them.
    channels: HashMap<u32, ShareChannel>,
    held: BTreeMap<u32, HeldShares>,
    membership: Arc<Membership>,
    signers: SignerKeys,
}

impl AwaitingShares {
    /// Opens and stores the shares of every neighbour that completed the
    /// share phase; the epoch's rounds can then run.
    pub fn receive_shares(mut self, delivery: ShareDelivery) -> Result<ReadyEpoch, SecAggError> {
        let epoch = self.roster.start.epoch;
        if delivery.epoch != epoch {
            return Err(SecAggError::WrongEpoch {
                expected: epoch,
                got: delivery.epoch,
            });
        }
        let rounds = self.roster.start.rounds as usize;
        for sealed_shares in &delivery.shares {
            let sender = sealed_shares.sender;
            if sealed_shares.holder != self.me {
                return Err(SecAggError::Malformed {
                    from: sender,
                    reason: "shares addressed to another member".into(),
                });
            }
            // Channels exist exactly for the neighbours in the roster.
            let channel = self.channels.get(&sender).ok_or(SecAggError::NotMember {
                who: sender,
                phase: Phase::ShareKeys,
            })?;
            if self.held.contains_key(&sender) {
                return Err(SecAggError::Duplicate {
                    from: sender,
                    phase: Phase::ShareKeys,
                });
            }
            let ctx = SealContext {
                job_id: &self.params.job_id,
                epoch,
                sender,
                holder: self.me,
            };
            let plain = channel.open(&ctx, &sealed_shares.ciphertext)?;
            self.held
                .insert(sender, parse_shares(sender, &plain, rounds)?);
        }
        let pairwise = self.derive_pairwise_keys()?;
        let rounds_state = vec![RoundState::Pending; rounds];
        Ok(ReadyEpoch {
            pairwise,
            params: self.params,
            me: self.me,
            roster: self.roster,
            secrets: self.secrets,
            held: self.held,
            rounds: rounds_state,
            disclosures: HashMap::new(),
            membership: self.membership,
            signers: self.signers,
        })
    }
}

impl AwaitingShares {
    /// Every round's pairwise mask key with every neighbour that completed
    /// the share phase, derived now so that masking a round costs only
    /// keystream: the round's latency no longer includes k X25519 operations.
    fn derive_pairwise_keys(&self) -> Result<Vec<BTreeMap<u32, DerivedKey>>, SecAggError> {
        let start = &self.roster.start;
        let peers: Vec<u32> = self
            .held
            .keys()
            .copied()
            .filter(|&p| p != self.me)
            .collect();
        (0..start.rounds as usize)
            .map(|r| {
                let round = start.first_round + r as u64;
                let secret = mask_secret(&self.secrets.mask_keys[r]);
                peers
                    .iter()
                    .map(|&peer| {
                        let keys = self.roster.keys_of(peer).expect("holders advertised");
                        let shared = secret.diffie_hellman(&PublicKey::from(keys.mask_keys[r]));
                        if !shared.was_contributory() {
                            return Err(SecAggError::NonContributoryKey(peer));
                        }
                        Ok((
                            peer,
                            pairwise_key(&self.params.job_id, round, self.me, peer, &shared),
                        ))
                    })
                    .collect()
            })
            .collect()
    }
}
