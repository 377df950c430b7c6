//! This site's part of a vertical job: its ids for the private set
//! intersection (consenting customers only: refusals are dropped before
//! anything is computed), the protocol's states driven message by message,
//! and, at the end, `output/<job_id>/intersection.csv` (`customer_id,
//! position`): which of its own customers are in the intersection and their
//! position in the order every party shares. That file never leaves the
//! site; what leaves is the hello (a fresh key and the set size), sealed
//! lists of blinded points, and the label holder's verdict.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fedseg_common::job::JobConfig;
use fedseg_common::proto::{self, participant_message, vertical_down, vertical_up};
use fedseg_common::psi::party::{self, Party};
use fedseg_common::psi::{Envelope, Outcome, PsiError, PsiParams, wire};
use tracing::{info, warn};

use super::blocking;
use crate::config::ParticipantConfig;
use crate::partner::PartnerRows;
use crate::tasks::Site;

use super::fit;

/// This site's data for a vertical job.
pub(crate) enum VerticalData {
    /// The label holder: its RFMLT features and labels.
    LabelHolder(Site),
    /// A feature partner: its offered columns.
    Partner(PartnerRows),
}

impl VerticalData {
    /// The join keys, in local order.
    fn ids(&self) -> Vec<&str> {
        match self {
            VerticalData::LabelHolder(site) => site
                .features
                .customers
                .iter()
                .map(|c| c.id.as_str())
                .collect(),
            VerticalData::Partner(rows) => rows.ids.iter().map(String::as_str).collect(),
        }
    }
}

/// A vertical job's state at this site.
pub(crate) struct VerticalJob {
    params: Arc<PsiParams>,
    me: u32,
    data: VerticalData,
    party: Option<Party>,
    assembler: wire::Assembler,
    outcome: Option<Outcome>,
    output: PathBuf,
    /// The job's settings (seed, holdout, l2) for the joint model.
    job: JobConfig,
    /// The joint model's state at this site.
    model: fit::Model,
}

/// Why this site cannot take part in a vertical job (said to the
/// coordinator as the decline reason).
pub(crate) fn prepare(
    config: &ParticipantConfig,
    job: &JobConfig,
    job_id: &str,
    offer: &proto::JobOffer,
) -> Result<VerticalJob, String> {
    let vertical = job.vertical.as_ref().ok_or("not a vertical job")?;
    if offer.cohort != vertical.parties() {
        return Err("the offer's cohort is not the job's label holder and partners".into());
    }
    let consortium = config
        .tls
        .consortium_fingerprint()
        .map_err(|e| format!("the consortium certificate: {e}"))?;
    let params = PsiParams::new(
        consortium,
        job_id,
        offer.cohort.len() as u32,
        vertical.min_overlap,
        vertical.overlap_only,
    )
    .map_err(|e| e.to_string())?;
    let data = config
        .data
        .as_ref()
        .ok_or("this site has no [data] for a vertical job")?;
    let loaded = if offer.index == 0 {
        let as_of = job.as_of_date().ok_or("the job has no valid as_of date")?;
        blocking(|| data.features(as_of))
            .map(|f| VerticalData::LabelHolder(Site::from_features(f, as_of)))
    } else {
        blocking(|| data.partner_rows()).map(VerticalData::Partner)
    };
    let data = loaded.map_err(|error| super::offer::unusable_data(job_id, &error))?;
    info!(job = %job_id, ids = data.ids().len(), label_holder = offer.index == 0, "vertical job: local ids ready");
    Ok(VerticalJob {
        params: Arc::new(params),
        me: offer.index,
        data,
        party: None,
        assembler: wire::Assembler::new(),
        outcome: None,
        output: config.output.join(job_id),
        job: job.clone(),
        model: fit::Model::Idle,
    })
}

/// The egress ledger's kind of a vertical message.
pub(crate) fn ledger_kind(message: &proto::VerticalUp) -> &'static str {
    match message.body {
        Some(vertical_up::Body::PsiHello(_)) => "psi-hello",
        Some(vertical_up::Body::PsiChunk(_)) => "psi-chunk",
        Some(vertical_up::Body::PsiVerdict(_)) => "psi-verdict",
        Some(vertical_up::Body::Failed(_)) => "vertical-failed",
        Some(vertical_up::Body::MpcHello(_)) => "mpc-hello",
        Some(vertical_up::Body::MpcOpening(_)) => "mpc-opening",
        Some(vertical_up::Body::MpcRequest(_)) => "mpc-request",
        Some(vertical_up::Body::Report(_)) => "vertical-report",
        None => "vertical-empty",
    }
}

pub(crate) fn up(body: vertical_up::Body) -> participant_message::Body {
    participant_message::Body::Vertical(proto::VerticalUp { body: Some(body) })
}

fn lists(envelopes: Vec<Envelope>) -> Vec<participant_message::Body> {
    envelopes
        .into_iter()
        .flat_map(wire::chunks)
        .map(|c| up(vertical_up::Body::PsiChunk(c)))
        .collect()
}

impl VerticalJob {
    /// Handles one coordinator message; the messages to send back. An
    /// error ends this site's part and is reported to the coordinator.
    pub(crate) fn step(
        &mut self,
        down: proto::VerticalDown,
        outbox: &fit::Outbox,
    ) -> Vec<participant_message::Body> {
        use vertical_down::Body;
        let Some(body) = down.body else {
            return Vec::new();
        };
        let result = match body {
            Body::Abort(abort) => {
                warn!(code = %abort.code, reason = %abort.reason, "the coordinator stopped the vertical job");
                self.party = None;
                self.model = fit::Model::Idle;
                return Vec::new();
            }
            Body::MpcStart(_)
            | Body::MpcRoster(_)
            | Body::MpcOpening(_)
            | Body::MpcCorrelation(_) => self
                .model(body, outbox)
                .map_err(|e| (e.code(), e.to_string())),
            psi => self.advance(psi).map_err(|e| (e.code(), e.to_string())),
        };
        result.unwrap_or_else(|(code, reason)| {
            warn!(code, %reason, "vertical job: stopped");
            self.party = None;
            self.model = fit::Model::Idle;
            vec![up(vertical_up::Body::Failed(proto::VerticalFailed {
                code: code.to_string(),
                reason,
            }))]
        })
    }

    /// The joint model's messages.
    fn model(
        &mut self,
        body: vertical_down::Body,
        outbox: &fit::Outbox,
    ) -> Result<Vec<participant_message::Body>, fedseg_common::mpc::MpcError> {
        let rows = match &self.outcome {
            Some(Outcome::Aligned { rows, .. }) => rows.as_slice(),
            _ => &[],
        };
        let site = fit::Site {
            job_id: &self.params.job_id,
            consortium: &self.params.consortium,
            me: self.me,
            parties: self.params.parties,
            job: &self.job,
            data: &self.data,
            rows,
            output: &self.output,
        };
        let model = std::mem::replace(&mut self.model, fit::Model::Idle);
        let (model, out) = model.handle(&site, body, outbox)?;
        self.model = model;
        Ok(out)
    }

    fn advance(
        &mut self,
        body: vertical_down::Body,
    ) -> Result<Vec<participant_message::Body>, PsiError> {
        let (party, out) = match (body, self.party.take()) {
            (vertical_down::Body::PsiStart(_), None) if self.outcome.is_none() => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let ids = self.data.ids();
                let (hello, joining) = blocking(|| {
                    party::start(
                        self.params.clone(),
                        self.me,
                        &ids,
                        threads,
                        &mut fedseg_common::psi::os_rng(),
                    )
                })?;
                let hello = up(vertical_up::Body::PsiHello(wire::hello_to_wire(&hello)));
                (Party::Joining(joining), vec![hello])
            }
            (vertical_down::Body::PsiRoster(roster), Some(state)) => {
                let roster = wire::roster_from_wire(roster, self.params.parties)?;
                let (state, envelopes) = blocking(|| state.on_roster(roster))?;
                (state, lists(envelopes))
            }
            (vertical_down::Body::PsiChunk(chunk), Some(state)) => {
                let sender = chunk.from;
                let Some(env) = self.assembler.add(sender, chunk)? else {
                    self.party = Some(state);
                    return Ok(Vec::new());
                };
                let (state, reply) = blocking(|| state.on_envelope(env))?;
                // The verdict first: the coordinator plans the reveal from it.
                let verdict = reply
                    .verdict
                    .map(|v| up(vertical_up::Body::PsiVerdict(wire::verdict_to_wire(v))));
                let mut out: Vec<_> = verdict.into_iter().collect();
                out.extend(lists(reply.envelopes));
                (state, out)
            }
            (vertical_down::Body::PsiVerdict(verdict), Some(state)) => {
                let verdict = wire::verdict_from_wire(verdict)?;
                (state.on_verdict(verdict)?, Vec::new())
            }
            (_, state) => {
                self.party = state;
                return Err(PsiError::BadRelay {
                    what: "message",
                    reason: "it arrived out of turn".into(),
                });
            }
        };
        match party {
            Party::Finished(outcome) => self.finish(outcome),
            state => self.party = Some(state),
        }
        Ok(out)
    }

    fn finish(&mut self, outcome: Outcome) {
        match &outcome {
            Outcome::Aligned { intersection, rows } => {
                info!(
                    intersection,
                    mine = rows.len(),
                    "vertical job: intersection found"
                );
                let ids = self.data.ids();
                if let Err(error) = write_intersection(&self.output, &ids, &outcome) {
                    warn!(%error, "could not write the local intersection file");
                }
            }
            Outcome::OverlapOnly { intersection } => {
                info!(intersection, "vertical job: overlap size only");
            }
            Outcome::Stopped { min_overlap } => {
                info!(
                    min_overlap,
                    "vertical job: below min_overlap, nothing released"
                );
            }
        }
        self.outcome = Some(outcome);
    }
}

/// Writes `dir/intersection.csv`: this site's customers in the
/// intersection, by position in the common order.
fn write_intersection(dir: &Path, ids: &[&str], outcome: &Outcome) -> Result<(), csv::Error> {
    let Outcome::Aligned { rows, .. } = outcome else {
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    let mut out = csv::Writer::from_path(dir.join("intersection.csv"))?;
    out.write_record(["customer_id", "position"])?;
    for row in rows {
        out.write_record([ids[row.index], &row.position.to_string()])?;
    }
    out.flush()?;
    Ok(())
}
