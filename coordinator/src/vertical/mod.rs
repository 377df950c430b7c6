//! Vertical jobs (design.md, "Vertical joint modelling contract"): the
//! label holder and its feature partners find their common customers by
//! private set intersection ([`intersection`]), relayed by the coordinator
//! that learns only the set sizes and the intersection size. The result
//! (`result.json`'s `vertical` block) holds sizes only.

mod batch;
mod intersection;
mod model;
mod score;

use std::sync::Arc;

use fedseg_common::journal::Entry;
use fedseg_common::mtls::TlsError;
use fedseg_common::proto::{self, vertical_down, vertical_up};
use fedseg_common::psi::{PsiError, PsiParams, Step, Verdict};
use fedseg_common::result::{VerticalJobResult, VerticalResult};
use thiserror::Error;
use tokio::time::Instant as Deadline;
use tracing::warn;

use crate::config::Job;
use crate::engine::{Engine, EngineError, VerticalEvent};

pub use intersection::{Intersection, intersect};
pub use model::{ModelReport, fit};

/// Why a vertical job stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerticalError {
    /// The sessions or the journal failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The intersection protocol failed (the party at fault is named).
    #[error("private set intersection: {0}")]
    Psi(#[from] PsiError),
    /// The intersection protocol failed through this party (it left, went
    /// silent, or sent something wrong).
    #[error("private set intersection: {party} is at fault: {error}")]
    PsiAtFault {
        /// The party's identity.
        party: String,
        /// What went wrong.
        error: PsiError,
    },
    /// The joint model stopped: a malformed message or a stall.
    #[error("joint model: {0}")]
    ModelFault(String),
    /// A party reported that it cannot go on.
    #[error("{party} stopped the job ({code}): {reason}")]
    PartyFailed {
        /// The party.
        party: String,
        /// Its error code.
        code: String,
        /// Its reason.
        reason: String,
    },
    /// The intersection is smaller than the job's minimum; nothing else
    /// was released.
    #[error("the intersection is below min_overlap ({0}); nothing was released")]
    BelowMinOverlap(u64),
    /// The consortium certificate could not be read.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A job without a `[vertical]` table.
    #[error("the job has no [vertical] table")]
    NotVertical,
}

/// Runs the vertical job on `engine`'s cohort (label holder first).
/// `consortium` is the CA fingerprint every party binds into its keys.
pub async fn run(
    engine: &mut Engine<'_>,
    job: &Job,
    consortium: &str,
) -> Result<VerticalJobResult, VerticalError> {
    let settings = job
        .config
        .vertical
        .as_ref()
        .ok_or(VerticalError::NotVertical)?;
    let params = Arc::new(PsiParams::new(
        consortium,
        job.id.clone(),
        engine.cohort().len() as u32,
        settings.min_overlap,
        settings.overlap_only,
    )?);
    let started = std::time::Instant::now();
    let found = match intersect(engine, params).await {
        Ok(found) => found,
        Err(error) => {
            let error = name_culprit(error, engine.cohort());
            abort(engine, &error).await;
            return Err(error);
        }
    };
    engine.metrics().vertical_phase(
        "psi",
        started.elapsed().as_secs_f64(),
        found.relayed_bytes.values().sum(),
    );
    let cohort = engine.cohort().to_vec();
    let set_sizes = cohort
        .iter()
        .cloned()
        .zip(found.set_sizes.iter().copied())
        .collect();
    let intersection = match found.verdict {
        Verdict::Intersection(size) => Some(size),
        Verdict::BelowMinOverlap => None,
    };
    engine.journal(Entry::IntersectionDone {
        job_id: job.id.clone(),
        set_sizes: std::collections::BTreeMap::clone(&set_sizes),
        intersection,
    })?;
    let Some(_) = intersection else {
        return Err(VerticalError::BelowMinOverlap(settings.min_overlap));
    };
    let scored = match &settings.score_with {
        Some(_) if !settings.overlap_only => match score::score(engine).await {
            Ok(scored) => Some(scored),
            Err(error) => {
                abort(engine, &error).await;
                return Err(error);
            }
        },
        _ => None,
    };
    let model = if settings.overlap_only || scored.is_some() {
        None
    } else {
        let started = std::time::Instant::now();
        match fit(engine).await {
            Ok(model) => {
                let metrics = engine.metrics();
                metrics.vertical_phase(
                    "model",
                    started.elapsed().as_secs_f64(),
                    model.relayed_bytes,
                );
                metrics.vertical_model(model.steps, model.dealt_bytes);
                Some(model)
            }
            Err(error) => {
                let error = name_culprit(error, engine.cohort());
                abort(engine, &error).await;
                return Err(error);
            }
        }
    };
    Ok(VerticalJobResult {
        job_id: job.id.clone(),
        config_hash: job.config_hash.clone(),
        cohort: cohort.clone(),
        as_of: job.config.as_of.clone(),
        vertical: VerticalResult {
            intersection,
            below_min_overlap: false,
            min_overlap: settings.min_overlap,
            overlap_only: settings.overlap_only,
            label_holder: settings.label_holder.clone(),
            partners: settings.partners.clone(),
            set_sizes,
            steps: model.as_ref().map_or(0, |m| m.steps),
            converged: model.as_ref().is_some_and(|m| m.converged),
            contribution: model.and_then(|m| m.contribution),
            relayed_bytes: found.relayed_bytes,
            score_with: settings.score_with.clone(),
            scored,
        },
    })
}

/// The journal's record of a vertical job's security assumption, written
/// at its submission.
pub fn threat_model(job_id: &str, settings: &fedseg_common::job::VerticalSettings) -> Entry {
    Entry::VerticalThreatModel {
        job_id: job_id.to_string(),
        parties: settings.parties(),
        dealer: fedseg_common::mpc::DEALER.to_string(),
        assumption: fedseg_common::mpc::THREAT_MODEL.to_string(),
    }
}

/// A protocol error with the party at fault named by identity.
fn name_culprit(error: VerticalError, cohort: &[String]) -> VerticalError {
    match error {
        VerticalError::Psi(error) => match error.culprit().and_then(|p| cohort.get(p as usize)) {
            Some(party) => VerticalError::PsiAtFault {
                party: party.clone(),
                error,
            },
            None => VerticalError::Psi(error),
        },
        other => other,
    }
}

/// A party's message, journaled.
struct Received {
    from: u32,
    body: vertical_up::Body,
    /// SHA-256 (hex) and size of its wire encoding.
    sha256: String,
    bytes: u64,
}

/// The journal's name of a vertical message's step, and its recipient.
fn step_of(body: &vertical_up::Body, cohort: &[String]) -> (String, String) {
    let party = |p: u32| cohort.get(p as usize).cloned().unwrap_or_default();
    match body {
        vertical_up::Body::PsiHello(_) => ("hello".into(), String::new()),
        vertical_up::Body::PsiChunk(c) => (c.step.chars().take(32).collect(), party(c.to)),
        vertical_up::Body::PsiVerdict(_) => ("verdict".into(), String::new()),
        vertical_up::Body::Failed(_) => ("failed".into(), String::new()),
        vertical_up::Body::MpcHello(_) => ("mpc-hello".into(), String::new()),
        vertical_up::Body::MpcOpening(o) => (format!("mpc-opening-{}", o.seq), party(o.to)),
        vertical_up::Body::MpcRequest(_) => ("mpc-request".into(), String::new()),
        vertical_up::Body::Report(_) => ("report".into(), String::new()),
    }
}

/// The next vertical message, journaled (into `batches` when given: see
/// [`batch`]), or `None` at the deadline; a departure or a party's failure
/// is an error naming the party and `step`.
async fn receive(
    engine: &mut Engine<'_>,
    deadline: Deadline,
    step: Step,
    batches: Option<&mut batch::Batches>,
) -> Result<Option<Received>, VerticalError> {
    let (from, message, sha256, bytes) = match engine.next_vertical(deadline).await? {
        None => return Ok(None),
        Some(VerticalEvent::Gone(party)) => {
            return Err(VerticalError::Psi(PsiError::Dropped { party, step }));
        }
        Some(VerticalEvent::Message {
            from,
            message,
            sha256,
            bytes,
        }) => (from, message, sha256, bytes),
    };
    let Some(body) = message.body else {
        return Err(VerticalError::Psi(PsiError::BadRelay {
            what: "message",
            reason: format!("an empty message from party {from}"),
        }));
    };
    let received = Received {
        from,
        body,
        sha256,
        bytes,
    };
    match batches {
        Some(batches) => batches.record(engine, &received)?,
        None => journal_message(engine, &received)?,
    }
    if let vertical_up::Body::Failed(failed) = received.body {
        warn!(party = from, code = %failed.code, reason = %failed.reason, "a party stopped the vertical job");
        return Err(VerticalError::PartyFailed {
            party: engine.cohort()[from as usize].clone(),
            code: failed.code,
            reason: failed.reason,
        });
    }
    Ok(Some(received))
}

/// Journals one message of party `from` on its own.
fn journal_message(engine: &mut Engine<'_>, message: &Received) -> Result<(), VerticalError> {
    let (step_name, to) = step_of(&message.body, engine.cohort());
    engine.journal(Entry::VerticalMessage {
        job_id: engine.job().id.clone(),
        step: step_name,
        from: engine.cohort()[message.from as usize].clone(),
        to,
        bytes: message.bytes,
        sha256: message.sha256.clone(),
    })?;
    Ok(())
}

/// A message that has no place at this point of the job.
fn out_of_turn(from: u32, body: &vertical_up::Body) -> VerticalError {
    let (what, _) = step_of(body, &[]);
    VerticalError::Psi(PsiError::BadRelay {
        what: "message",
        reason: format!("a {what} message from party {from} out of turn"),
    })
}

/// Tells every party the vertical job stopped, so each forgets its keys.
async fn abort(engine: &Engine<'_>, error: &VerticalError) {
    let code = match error {
        VerticalError::Psi(e) | VerticalError::PsiAtFault { error: e, .. } => e.code().to_string(),
        _ => "stopped".to_string(),
    };
    for p in 0..engine.cohort().len() as u32 {
        engine
            .send_vertical(
                p,
                vertical_down::Body::Abort(proto::VerticalFailed {
                    code: code.clone(),
                    reason: error.to_string(),
                }),
            )
            .await;
    }
}
