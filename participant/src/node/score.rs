//! This site's part of a joint scoring job (`[vertical] score_with`): after
//! the fresh intersection it applies its own saved block of the model
//! (`output/<score_with>/vertical_model.json`) to its own columns of the
//! shared customers. A partner masks its part against every other partner
//! (`fedseg_common::mpc::score`) and seals it to the label holder, which
//! adds the parts to its own and writes `scores.csv`; it learns the joint
//! linear predictor only, and reports the count scored. Partners learn
//! nothing per customer.

use std::collections::BTreeMap;

use fedseg_common::mpc::engine::Opening;
use fedseg_common::mpc::wire::{Chunks, SealedLink};
use fedseg_common::mpc::{MpcError, ring, score};
use fedseg_common::proto::{self, participant_message, vertical_up};
use tracing::{info, warn};
use x25519_dalek::{PublicKey, StaticSecret};

use super::fit::{Model, Site, link_to};
use super::vertical::{VerticalData, up};
use crate::joint;
use crate::joint_raw::{RawColumns, SavedBlock};

type Out = Result<(Model, Vec<participant_message::Body>), MpcError>;

/// The label holder gathering the partners' masked parts.
pub(crate) struct Collect {
    ids: Vec<String>,
    own: Vec<f64>,
    links: BTreeMap<u32, SealedLink>,
    chunks: BTreeMap<u32, Chunks>,
    parts: BTreeMap<u32, Vec<u128>>,
    output: std::path::PathBuf,
}

/// Applies this site's saved block to its shared customers and says hello.
pub(crate) fn start(site: &Site<'_>, training: &str) -> Out {
    let block = SavedBlock::read(&site.output.with_file_name(training))
        .map_err(|e| MpcError::InvalidInput(format!("the model to score with: {e}")))?;
    let raw = match site.data {
        VerticalData::LabelHolder(s) => RawColumns::label_holder(&s.features, site.rows),
        VerticalData::Partner(table) => RawColumns::partner(table, site.rows),
    };
    if (site.me == 0) != block.intercept.is_some() {
        return Err(MpcError::InvalidInput(
            "the model to score with is another party's block".into(),
        ));
    }
    check_parties(site, training, &trained_parties(site, training, &block))?;
    let partial = raw.partial(&block).map_err(MpcError::InvalidInput)?;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::Rng::fill_bytes(&mut fedseg_common::psi::os_rng(), &mut *bytes);
    let secret = StaticSecret::from(*bytes);
    let hello = proto::MpcHello {
        seal_key: PublicKey::from(&secret).to_bytes().to_vec(),
        columns: block.features.len() as u32 + u32::from(site.me == 0),
    };
    info!(
        customers = partial.len(),
        training, "joint scoring: this site's part computed"
    );
    Ok((
        Model::ScoreHello {
            secret,
            partial,
            ids: raw.ids,
        },
        vec![up(vertical_up::Body::MpcHello(hello))],
    ))
}

/// The parties that fitted the model: as its block names them, or, for a
/// block saved before blocks named them, as the site's copy of the
/// training job's `result.json` does (empty if neither does).
fn trained_parties(site: &Site<'_>, training: &str, block: &SavedBlock) -> Vec<String> {
    if !block.parties.is_empty() {
        return block.parties.clone();
    }
    let path = site.output.with_file_name(training).join("result.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            serde_json::from_str::<fedseg_common::result::VerticalJobResult>(&text).ok()
        })
        .map(|r| {
            std::iter::once(r.vertical.label_holder)
                .chain(r.vertical.partners)
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses a scoring job whose parties are not the training job's: with a
/// partner missing, its part of every linear predictor would silently be
/// left out; with one added, it has no block. (When nothing this site
/// kept names them, the job goes on, with a warning.)
fn check_parties(site: &Site<'_>, training: &str, trained: &[String]) -> Result<(), MpcError> {
    let Some(v) = site.job.vertical.as_ref() else {
        return Ok(());
    };
    let now: Vec<&str> = std::iter::once(v.label_holder.as_str())
        .chain(v.partners.iter().map(String::as_str))
        .collect();
    if trained.is_empty() {
        warn!(
            training,
            "the model block does not name its parties; not checked"
        );
        return Ok(());
    }
    if trained.iter().map(String::as_str).ne(now.iter().copied()) {
        return Err(MpcError::InvalidInput(format!(
            "the model to score with ({training}) was fitted by {}, this job's parties are {}",
            trained.join(", "),
            now.join(", ")
        )));
    }
    Ok(())
}

/// With every party's key: a partner sends its masked part, the label
/// holder waits for them.
pub(crate) fn on_roster(
    site: &Site<'_>,
    secret: &StaticSecret,
    partial: Vec<f64>,
    ids: Vec<String>,
    roster: &proto::MpcRoster,
) -> Out {
    if roster.seal_keys.len() != site.parties as usize
        || roster.seal_keys[site.me as usize] != PublicKey::from(secret).to_bytes()
    {
        return Err(MpcError::InvalidInput(
            "the scoring roster is not one key per party with this site's own".into(),
        ));
    }
    if site.me == 0 {
        let links = (1..site.parties)
            .map(|p| Ok((p, link_to(site, secret, roster, p)?)))
            .collect::<Result<_, MpcError>>()?;
        let collect = Collect {
            ids,
            own: partial,
            links,
            chunks: BTreeMap::new(),
            parts: BTreeMap::new(),
            output: site.output.to_path_buf(),
        };
        return Ok((Model::Scoring(Box::new(collect)), Vec::new()));
    }
    let mut partners = Vec::new();
    for p in 1..site.parties {
        let key: [u8; 32] = roster.seal_keys[p as usize]
            .as_slice()
            .try_into()
            .map_err(|_| MpcError::InvalidInput("a key is not 32 bytes".into()))?;
        partners.push((p, key));
    }
    let values = score::masked_partial(
        secret,
        site.me,
        &partners,
        site.consortium,
        site.job_id,
        &partial,
    )?;
    let link = link_to(site, secret, roster, 0)?;
    let out = link
        .seal(&Opening { seq: 0, values })
        .into_iter()
        .map(|c| up(vertical_up::Body::MpcOpening(c)))
        .collect();
    info!("joint scoring: this partner's masked part sent to the label holder");
    Ok((Model::Idle, out))
}

impl Collect {
    /// Takes a chunk of a partner's masked part; once every partner's is
    /// in, writes `scores.csv` and reports the count.
    pub(crate) fn receive(mut self: Box<Self>, chunk: &proto::MpcOpening) -> Out {
        let from = chunk.from;
        let link = self
            .links
            .get(&from)
            .filter(|_| chunk.seq == 0 && !self.parts.contains_key(&from))
            .ok_or_else(|| MpcError::OutOfOrder(format!("a scoring part from party {from}")))?;
        let values = link.open(chunk)?;
        let chunks = self.chunks.entry(from).or_default();
        if let Some(part) = chunks.add(chunk.seq, chunk.index, chunk.total, values)? {
            if part.len() != self.ids.len() {
                return Err(MpcError::Shape(format!(
                    "party {from} scored {} customers of {}",
                    part.len(),
                    self.ids.len()
                )));
            }
            self.parts.insert(from, part);
        }
        if self.parts.len() < self.links.len() {
            return Ok((Model::Scoring(self), Vec::new()));
        }
        let mut sum = self
            .own
            .iter()
            .map(|&v| ring::encode(v).ok_or(MpcError::OutOfRange("linear predictor")))
            .collect::<Result<Vec<u128>, _>>()?;
        for part in self.parts.values() {
            sum = ring::add(&sum, part);
        }
        let eta: Vec<f64> = sum.into_iter().map(ring::decode).collect();
        joint::write_scores(&self.output, &self.ids, &eta, None)
            .map_err(|e| MpcError::InvalidInput(format!("writing scores.csv: {e}")))?;
        info!(customers = eta.len(), "joint scoring: scores.csv written");
        let report = proto::VerticalReport {
            scored: eta.len() as u64,
            converged: true,
            ..Default::default()
        };
        Ok((
            Model::Idle,
            vec![up(vertical_up::Body::Report(Box::new(report)))],
        ))
    }
}
