//! A further feature partner's part of the joint model (party 2, 3, ...:
//! every partner after the first). It does not compute: it splits its
//! standardised columns into two additive shares over the ring, a uniformly
//! random one sealed to the label holder and the difference sealed to the
//! first partner, so neither computing party (nor the relaying coordinator)
//! sees a value. At the end each computing party seals its share of this
//! partner's coefficients back; their sum is this partner's block, which it
//! writes to `vertical_model.json` like every party. It learns nothing per
//! customer of anyone.

use std::path::PathBuf;

use fedseg_common::mpc::engine::Opening;
use fedseg_common::mpc::wire::{Chunks, SealedLink};
use fedseg_common::mpc::{MpcError, ring};
use fedseg_common::proto::{self, participant_message, vertical_up};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use tracing::{info, warn};
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use super::fit::{Site, check_roster, link_to};
use super::vertical::up;
use crate::joint::{self, LocalDesign};

/// A helper partner between sharing its columns and receiving its
/// coefficients.
pub(crate) struct Helper {
    design: LocalDesign,
    /// Links to the label holder (0) and the first partner (1).
    links: [SealedLink; 2],
    chunks: [Chunks; 2],
    shares: [Option<Vec<u128>>; 2],
    output: PathBuf,
}

/// Shares this partner's columns between the two computing parties.
pub(crate) fn begin(
    site: &Site<'_>,
    secret: &StaticSecret,
    design: LocalDesign,
    roster: proto::MpcRoster,
) -> Result<(Helper, Vec<participant_message::Body>), MpcError> {
    check_roster(site, secret, &design, &roster)?;
    let links = [
        link_to(site, secret, &roster, 0)?,
        link_to(site, secret, &roster, 1)?,
    ];
    let mut values = design
        .z
        .iter()
        .map(|&z| ring::encode(z).ok_or(MpcError::OutOfRange("input column")))
        .collect::<Result<Vec<u128>, _>>()?;
    let mut rng = ChaCha20Rng::from_rng(&mut fedseg_common::psi::os_rng());
    let random = ring::random_vec(&mut rng, values.len());
    let rest = ring::sub(&values, &random);
    values.zeroize();
    let mut out = Vec::new();
    for (link, share) in links.iter().zip([random, rest]) {
        let opening = Opening {
            seq: 0,
            values: share,
        };
        out.extend(
            link.seal(&opening)
                .into_iter()
                .map(|c| up(vertical_up::Body::MpcOpening(c))),
        );
    }
    info!(
        rows = design.rows(),
        columns = design.features.len(),
        "joint model: this partner's columns shared"
    );
    Ok((
        Helper {
            design,
            links,
            chunks: Default::default(),
            shares: [None, None],
            output: site.output.to_path_buf(),
        },
        out,
    ))
}

impl Helper {
    /// Takes one chunk of a computing party's coefficient shares; true once
    /// both arrived and the block is written.
    pub(crate) fn receive(&mut self, chunk: &proto::MpcOpening) -> Result<bool, MpcError> {
        let from = chunk.from as usize;
        if from > 1 || chunk.seq != 0 || self.shares[from].is_some() {
            return Err(MpcError::OutOfOrder(format!(
                "opening {} from party {from}",
                chunk.seq
            )));
        }
        let values = self.links[from].open(chunk)?;
        let Some(share) = self.chunks[from].add(chunk.seq, chunk.index, chunk.total, values)?
        else {
            return Ok(false);
        };
        if share.len() != self.design.features.len() {
            return Err(MpcError::Shape(format!(
                "{} coefficient shares for {} columns",
                share.len(),
                self.design.features.len()
            )));
        }
        self.shares[from] = Some(share);
        let [Some(a), Some(b)] = &self.shares else {
            return Ok(false);
        };
        let coefficients: Vec<f64> = ring::add(a, b).into_iter().map(ring::decode).collect();
        if let Err(error) =
            joint::write_outputs(&self.output, &self.design, &coefficients, None, None)
        {
            warn!(%error, "could not write the joint model's local files");
        }
        Ok(true)
    }
}
