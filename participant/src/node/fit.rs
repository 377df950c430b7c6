//! The joint model's worker at a computing party (the label holder or its
//! first partner). The fit is a sequential program of openings with the
//! peer and requests to the dealer (`fedseg_common::mpc`), so it runs in a
//! thread of its own: the session hands it the peer's sealed openings and
//! the dealer's correlations as they arrive, and sends (ledgered) what it
//! produces. At the end the label holder reports the holdout quality of the
//! joint model against its own, and each party writes its own block of the
//! model (and the bank its customers' joint scores) under its output
//! directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use fedseg_common::mpc::MpcError;
use fedseg_common::mpc::dealer::{Correlation, Delivery, Request};
use fedseg_common::mpc::engine::{DealerLink, Opening, Party, PeerLink};
use fedseg_common::mpc::eval::Evaluation;
use fedseg_common::mpc::fit::{Curvature, FitParams, Inputs, Output, Owner, Prepared};
use fedseg_common::mpc::wire::{self, Chunks, SealedLink};
use fedseg_common::proto::{self, participant_message, vertical_down, vertical_up};
use fedseg_common::psi::AlignedRow;
use tracing::{info, warn};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::joint::{self, LocalDesign};

use super::vertical::{VerticalData, up};
use super::{helper, score};

mod links;
use links::{Inbox, NetDealer, NetPeer};

/// Where the worker's messages go: the session sends them, job id first.
pub(crate) type Outbox = tokio::sync::mpsc::UnboundedSender<(String, participant_message::Body)>;

/// How long the worker waits for the peer or the dealer before it gives up
/// (the coordinator's own phase timeout ends a stalled job sooner).
const WAIT: Duration = Duration::from_secs(600);

/// What the session hands the worker.
pub(crate) enum Inbound {
    Opening(proto::MpcOpening),
    Correlation(proto::MpcCorrelation),
}

/// A running fit; dropping it makes the worker's next wait fail.
pub(crate) struct Worker {
    tx: Sender<Inbound>,
}

impl Worker {
    /// Hands the worker a message; false when it is gone.
    pub(crate) fn deliver(&self, message: Inbound) -> bool {
        self.tx.send(message).is_ok()
    }
}

/// What the joint model needs of the site's vertical job.
pub(crate) struct Site<'a> {
    pub(crate) job_id: &'a str,
    pub(crate) consortium: &'a str,
    pub(crate) me: u32,
    /// Parties of the job (the label holder, then every partner).
    pub(crate) parties: u32,
    pub(crate) job: &'a fedseg_common::job::JobConfig,
    pub(crate) data: &'a VerticalData,
    /// This site's customers in the intersection, by position.
    pub(crate) rows: &'a [AlignedRow],
    pub(crate) output: &'a std::path::Path,
}

/// Most Newton steps of the joint model.
pub const MAX_STEPS: u32 = 200;

/// The joint model stops when the per-customer Newton decrement falls
/// below this.
pub const TOLERANCE: f64 = 1e-11;

/// Heavy-ball momentum of the joint model's steps that fall back to the
/// Hessian bound (see `FitParams`).
pub const MOMENTUM: f64 = 0.8;

/// The joint model's state at a site.
pub(crate) enum Model {
    /// Not started (or stopped).
    Idle,
    /// Said hello with a fresh sealing key; waits for the peer's.
    Hello {
        secret: StaticSecret,
        design: Box<LocalDesign>,
    },
    /// The fit runs.
    Running(Worker),
    /// A helper partner shared its columns and waits for its coefficients.
    Helping(Box<helper::Helper>),
    /// Joint scoring: this site's part of each shared customer's linear
    /// predictor is computed; waits for every party's key.
    ScoreHello {
        secret: StaticSecret,
        partial: Vec<f64>,
        ids: Vec<String>,
    },
    /// Joint scoring at the label holder: gathers the partners' parts.
    Scoring(Box<score::Collect>),
}

impl Model {
    /// Takes one coordinator message of the joint model.
    pub(crate) fn handle(
        self,
        site: &Site<'_>,
        body: vertical_down::Body,
        outbox: &Outbox,
    ) -> Result<(Model, Vec<participant_message::Body>), MpcError> {
        let scoring = site
            .job
            .vertical
            .as_ref()
            .and_then(|v| v.score_with.as_deref());
        match (self, body) {
            (Model::Idle, vertical_down::Body::MpcStart(_)) => match scoring {
                Some(training) => score::start(site, training),
                None => start(site),
            },
            (
                Model::ScoreHello {
                    secret,
                    partial,
                    ids,
                },
                vertical_down::Body::MpcRoster(roster),
            ) => score::on_roster(site, &secret, partial, ids, &roster),
            (Model::Scoring(collect), vertical_down::Body::MpcOpening(chunk)) => {
                collect.receive(&chunk)
            }
            (Model::Hello { secret, design }, vertical_down::Body::MpcRoster(roster))
                if site.me >= 2 =>
            {
                let (helper, out) = helper::begin(site, &secret, *design, roster)?;
                Ok((Model::Helping(Box::new(helper)), out))
            }
            (Model::Helping(mut helper), vertical_down::Body::MpcOpening(chunk)) => {
                if helper.receive(&chunk)? {
                    info!("joint model: this partner's coefficients received");
                    return Ok((Model::Idle, Vec::new()));
                }
                Ok((Model::Helping(helper), Vec::new()))
            }
            (Model::Hello { secret, design }, vertical_down::Body::MpcRoster(roster)) => {
                let job = fit_job(site, &secret, *design, roster)?;
                info!(
                    rows = job.design.rows(),
                    columns = job.params.owners.len(),
                    "joint model: started"
                );
                Ok((Model::Running(spawn(job, outbox.clone())), Vec::new()))
            }
            (Model::Running(worker), vertical_down::Body::MpcOpening(chunk)) => {
                deliver(worker, Inbound::Opening(chunk))
            }
            (Model::Running(worker), vertical_down::Body::MpcCorrelation(chunk)) => {
                deliver(worker, Inbound::Correlation(chunk))
            }
            _ => Err(MpcError::OutOfOrder(
                "a joint-model message out of turn".into(),
            )),
        }
    }
}

fn deliver(
    worker: Worker,
    message: Inbound,
) -> Result<(Model, Vec<participant_message::Body>), MpcError> {
    if worker.deliver(message) {
        Ok((Model::Running(worker), Vec::new()))
    } else {
        Err(MpcError::LinkClosed("the joint model's worker ended"))
    }
}

/// The site's design over the intersection and a fresh sealing key.
fn start(site: &Site<'_>) -> Result<(Model, Vec<participant_message::Body>), MpcError> {
    if site.rows.is_empty() {
        return Err(MpcError::InvalidInput(
            "this site has no part in the joint model".into(),
        ));
    }
    let (seed, fraction) = (site.job.seed, site.job.holdout_fraction);
    let mut design = match site.data {
        VerticalData::LabelHolder(s) => {
            LocalDesign::label_holder(&s.features, site.rows, seed, fraction)
        }
        VerticalData::Partner(table) => LocalDesign::partner(table, site.rows, seed, fraction),
    };
    design.parties = site.job.vertical.as_ref().map_or_else(Vec::new, |v| {
        std::iter::once(v.label_holder.clone())
            .chain(v.partners.iter().cloned())
            .collect()
    });
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::Rng::fill_bytes(&mut fedseg_common::psi::os_rng(), &mut *bytes);
    let secret = StaticSecret::from(*bytes);
    let columns = design.features.len() as u32 + u32::from(site.me == 0);
    let hello = proto::MpcHello {
        seal_key: PublicKey::from(&secret).to_bytes().to_vec(),
        columns,
    };
    info!(columns, dropped = ?design.dropped, "joint model: local columns standardised");
    Ok((
        Model::Hello {
            secret,
            design: Box::new(design),
        },
        vec![up(vertical_up::Body::MpcHello(hello))],
    ))
}

/// Everything the fit needs, from the roster.
fn fit_job(
    site: &Site<'_>,
    secret: &StaticSecret,
    design: LocalDesign,
    roster: proto::MpcRoster,
) -> Result<FitJob, MpcError> {
    let me = site.me as usize;
    check_roster(site, secret, &design, &roster)?;
    let mut links = BTreeMap::new();
    for p in 0..site.parties {
        if p != site.me {
            links.insert(p, link_to(site, secret, &roster, p)?);
        }
    }
    // Column owners in party order: the bank's (intercept first), then
    // each partner's; helpers' columns follow, position by position.
    let mut owners = Vec::new();
    let mut helpers = Vec::new();
    for (p, &columns) in roster.columns.iter().enumerate() {
        let owner = if p == 0 {
            Owner::Bank
        } else {
            Owner::Partner(p - 1)
        };
        if p >= 2 {
            helpers.push(HelperColumns {
                party: p as u32,
                first: owners.len(),
                width: columns as usize,
            });
        }
        owners.extend(std::iter::repeat_n(owner, columns as usize));
    }
    let owner = if me == 0 {
        Owner::Bank
    } else {
        Owner::Partner(0)
    };
    let mut inputs = Inputs::own(
        &owners,
        owner,
        design.rows(),
        &design.z,
        design.labels.as_deref(),
    )?;
    inputs.intercept = design.start_intercept();
    let params = FitParams {
        owners,
        holdout: design.holdout.clone(),
        l2: site.job.l2,
        tolerance: TOLERANCE,
        max_steps: MAX_STEPS,
        momentum: MOMENTUM,
        curvature: Curvature::Exact,
    };
    Ok(FitJob {
        job_id: site.job_id.to_string(),
        index: me,
        params,
        inputs,
        design,
        links,
        helpers,
        output: site.output.to_path_buf(),
    })
}

/// Checks the roster against the job's parties and this site's hello.
pub(crate) fn check_roster(
    site: &Site<'_>,
    secret: &StaticSecret,
    design: &LocalDesign,
    roster: &proto::MpcRoster,
) -> Result<(), MpcError> {
    let me = site.me as usize;
    let bad = |why: &str| MpcError::InvalidInput(format!("the joint model's roster: {why}"));
    let parties = site.parties as usize;
    if parties < 2 || roster.seal_keys.len() != parties || roster.columns.len() != parties {
        return Err(bad("not one entry per party of the job"));
    }
    let own_columns = design.features.len() as u32 + u32::from(me == 0);
    if roster.seal_keys[me] != PublicKey::from(secret).to_bytes()
        || roster.columns[me] != own_columns
    {
        return Err(bad("this site's own entry is not what it said"));
    }
    if roster.columns[0] < 1 || roster.columns.iter().map(|&c| c as u64).sum::<u64>() > 1024 {
        return Err(bad("column counts out of range"));
    }
    Ok(())
}

/// The sealed link from this site to party `peer` of the roster.
pub(crate) fn link_to(
    site: &Site<'_>,
    secret: &StaticSecret,
    roster: &proto::MpcRoster,
    peer: u32,
) -> Result<SealedLink, MpcError> {
    let key: [u8; 32] = roster.seal_keys[peer as usize]
        .as_slice()
        .try_into()
        .map_err(|_| {
            MpcError::InvalidInput("the joint model's roster: a key is not 32 bytes".into())
        })?;
    SealedLink::new(secret, &key, site.me, peer, site.consortium, site.job_id)
}

/// Where a helper partner's columns sit in the joint design.
pub(crate) struct HelperColumns {
    /// Its party index.
    party: u32,
    /// Its first column.
    first: usize,
    /// Its column count.
    width: usize,
}

/// Everything the fit needs, fixed before it starts.
pub(crate) struct FitJob {
    pub(crate) job_id: String,
    pub(crate) index: usize,
    pub(crate) params: FitParams,
    pub(crate) inputs: Inputs,
    pub(crate) design: LocalDesign,
    /// Sealed links to the peer and to every helper partner.
    pub(crate) links: BTreeMap<u32, SealedLink>,
    pub(crate) helpers: Vec<HelperColumns>,
    pub(crate) output: PathBuf,
}

/// Starts the fit in its own thread.
pub(crate) fn spawn(job: FitJob, outbox: Outbox) -> Worker {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let job_id = job.job_id.clone();
        if let Err(error) = run(job, rx, &outbox) {
            warn!(code = error.code(), %error, "joint model: stopped");
            let failed = proto::VerticalFailed {
                code: error.code().to_string(),
                reason: error.to_string(),
            };
            let _ = outbox.send((job_id, up(vertical_up::Body::Failed(failed))));
        }
    });
    Worker { tx }
}

fn run(mut job: FitJob, rx: Receiver<Inbound>, outbox: &Outbox) -> Result<(), MpcError> {
    let peer_index = 1 - job.index as u32;
    let inbox = Rc::new(RefCell::new(Inbox {
        rx,
        links: std::mem::take(&mut job.links),
        openings: BTreeMap::new(),
        opening_chunks: BTreeMap::new(),
        correlations: BTreeMap::new(),
        correlation_chunks: Chunks::default(),
        step: 0,
    }));
    let job_id = job.job_id.clone();
    let send = |body| {
        outbox
            .send((job_id.clone(), up(body)))
            .map_err(|_| MpcError::LinkClosed("session"))
    };
    take_helper_shares(&mut job, &mut inbox.borrow_mut())?;
    let peer = NetPeer {
        inbox: inbox.clone(),
        peer: peer_index,
        send: &send,
    };
    let dealer = NetDealer {
        inbox: inbox.clone(),
        send: &send,
        next: 0,
    };
    let mut party = Party::new(job.index, peer, dealer);
    let l2 = job.params.l2;
    let output = Prepared::new(job.params, job.inputs)?
        .precondition(&mut party)?
        .run(&mut party)?
        .finish(&mut party)?;
    info!(
        steps = output.steps,
        converged = output.converged,
        decrements = ?&output.decrements,
        "joint model: trained"
    );
    give_helper_shares(&job.helpers, &output, &inbox.borrow(), &send)?;
    conclude(&job.design, &output, l2, &job.output, &send)
}

/// Puts each helper partner's share of its columns into this party's
/// inputs (its opening 0 to this party: uniformly random on its own).
fn take_helper_shares(job: &mut FitJob, inbox: &mut Inbox) -> Result<(), MpcError> {
    let (n, d) = (job.design.rows(), job.params.owners.len());
    for helper in &job.helpers {
        let share = inbox.next_from(helper.party)?;
        if share.seq != 0 || share.values.len() != n * helper.width {
            return Err(MpcError::Shape(format!(
                "partner {}'s columns: {} values for {n} rows of {}",
                helper.party,
                share.values.len(),
                helper.width
            )));
        }
        for i in 0..n {
            let row = &share.values[i * helper.width..(i + 1) * helper.width];
            job.inputs.x[i * d + helper.first..i * d + helper.first + helper.width]
                .copy_from_slice(row);
        }
    }
    Ok(())
}

/// Sends each helper partner this party's shares of its coefficients.
fn give_helper_shares(
    helpers: &[HelperColumns],
    output: &Output,
    inbox: &Inbox,
    send: &dyn Fn(vertical_up::Body) -> Result<(), MpcError>,
) -> Result<(), MpcError> {
    for helper in helpers {
        let columns = helper.first..helper.first + helper.width;
        let mut shares: Vec<(usize, u128)> = output
            .helper_shares
            .iter()
            .filter(|(_, j, _)| columns.contains(j))
            .map(|&(_, j, v)| (j, v))
            .collect();
        shares.sort_by_key(|s| s.0);
        let opening = Opening {
            seq: 0,
            values: shares.into_iter().map(|s| s.1).collect(),
        };
        for chunk in inbox.sealed(helper.party, &opening)? {
            send(vertical_up::Body::MpcOpening(chunk))?;
        }
    }
    Ok(())
}

/// Writes this party's outputs and, at the bank, sends the report.
fn conclude(
    design: &LocalDesign,
    output: &Output,
    l2: f64,
    dir: &std::path::Path,
    send: &dyn Fn(vertical_up::Body) -> Result<(), MpcError>,
) -> Result<(), MpcError> {
    let mut coefficients: Vec<(usize, f64)> = output.coefficients.clone();
    coefficients.sort_by_key(|(j, _)| *j);
    let (intercept, own): (Option<f64>, Vec<f64>) = match output.scores {
        Some(_) => (
            coefficients.first().map(|c| c.1),
            coefficients.iter().skip(1).map(|c| c.1).collect(),
        ),
        None => (None, coefficients.iter().map(|c| c.1).collect()),
    };
    if let Err(error) = joint::write_outputs(dir, design, &own, intercept, output.scores.as_deref())
    {
        warn!(%error, "could not write the joint model's local files");
    }
    let Some(scores) = &output.scores else {
        return Ok(());
    };
    let quality = |e: Option<Evaluation>| {
        e.map(|e| proto::ModelQualityReport {
            auc: e.auc,
            log_loss: e.log_loss,
            top_decile_lift: e.top_decile_lift,
            auc_standard_error: e.auc_standard_error,
        })
    };
    send(vertical_up::Body::Report(Box::new(proto::VerticalReport {
        steps: output.steps,
        converged: output.converged,
        joint: quality(design.evaluate(scores)),
        label_holder_only: quality(design.own_model(l2)),
        holdout_count: design.holdout_count(),
        scored: 0,
        joint_calibration: design
            .calibration(scores)
            .into_iter()
            .map(|b| proto::CalibrationBinReport {
                lo: b.lo,
                hi: b.hi,
                count: b.count,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
            })
            .collect(),
    })))
}
