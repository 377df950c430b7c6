//! The registry of local computations a round can ask for. Each turns the
//! request into a real vector from this site's own data (sums over its
//! customers, never one customer's values); only its masked encoding ever
//! leaves.

use std::path::PathBuf;

use fedseg_common::computation::{
    RequestError, activity, campaign, census, evaluation, feature_stats, kmeans, local_epochs,
    newton, profile,
};
use fedseg_common::dp;
use fedseg_common::features::{self, DIM, Space};
use fedseg_common::fixed_point::{ClipRange, Encoded, EncodingError, FixedPointEncoder};
use fedseg_common::privacy::Bounds;
use fedseg_common::propensity::{self, Design};
use fedseg_common::proto::{self, computation::Kind};
use fedseg_common::wire;
use thiserror::Error;
use time::Date;

use crate::config::ParticipantConfig;
use crate::rfmlt::{self, DataError, Features, Tables};

/// Why a computation could not be done.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The request names no computation or encoding.
    #[error("the request carries no {0}")]
    Missing(&'static str),
    /// The requested vector is not configured here.
    #[error("no vector named {0:?} in [vectors]")]
    UnknownVector(String),
    /// The vector file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A number in the vector file does not parse.
    #[error("{path}: entry {entry}: {text:?} is not a number")]
    BadNumber {
        /// The file.
        path: PathBuf,
        /// 1-based entry.
        entry: usize,
        /// The text.
        text: String,
    },
    /// The vector has another length than the round's.
    #[error("the vector has {got} entries, the round expects {expected}")]
    Length {
        /// Round length.
        expected: usize,
        /// Vector length.
        got: usize,
    },
    /// The request needs this site's tables, and none are configured.
    #[error("this site has no [data] tables configured")]
    NoData,
    /// The request is inconsistent.
    #[error("bad request: {0}")]
    Request(String),
    /// The values cannot be encoded.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// The noise cannot be drawn.
    #[error(transparent)]
    Noise(#[from] dp::DpError),
}

impl From<RequestError> for TaskError {
    fn from(e: RequestError) -> Self {
        TaskError::Request(e.0)
    }
}

/// A site's data for one job: its customers' features as of the job's
/// date, loaded once when the job is accepted, and their segments once the
/// segmentation is final.
#[derive(Debug)]
pub struct Site {
    /// The job's reference date.
    pub as_of: Date,
    /// RFMLT features of the consenting customers.
    pub features: Features,
    /// Transformed features x, one per customer.
    points: Vec<[f64; DIM]>,
    /// Each customer's nearest centroid, for the centroids last asked
    /// about (requests carry their centroids, so a node that reconnects
    /// mid-job needs no state from earlier rounds).
    assignment: Option<(Vec<f64>, Vec<u32>)>,
    /// The holdout split last asked for: (seed, fraction, per customer).
    split: Option<(u64, f64, Vec<bool>)>,
    /// A campaign evaluation job's list and outcomes, read when the job
    /// was accepted.
    pub campaign: Option<crate::campaign::Observed>,
}

impl Site {
    /// Reads the site's tables and computes features as of `as_of`.
    pub fn load(tables: &Tables, as_of: Date) -> Result<Self, DataError> {
        Ok(Self::from_features(rfmlt::compute(tables, as_of)?, as_of))
    }

    /// A site of already computed features.
    pub fn from_features(features: Features, as_of: Date) -> Self {
        let points = features
            .customers
            .iter()
            .map(|c| features::transform([c.r, c.f, c.m, c.l, c.t]))
            .collect();
        Self {
            as_of,
            features,
            points,
            assignment: None,
            split: None,
            campaign: None,
        }
    }
}

/// Customers per chunk of parallel work; fixed, so that the floating-point
/// sums do not depend on the number of threads.
const CHUNK: usize = 1 << 14;

/// Sums `per_customer(i, out)` over every customer into a vector of
/// `length`, in parallel chunks added up in chunk order.
fn sum_over_customers(
    customers: usize,
    length: usize,
    per_customer: impl Fn(usize, &mut [f64]) + Sync,
) -> Vec<f64> {
    let chunks = customers.div_ceil(CHUNK);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks.max(1));
    let mut partials = vec![vec![0.0; length]; chunks];
    std::thread::scope(|scope| {
        for (t, slots) in partials
            .chunks_mut(chunks.div_ceil(threads).max(1))
            .enumerate()
        {
            let per_customer = &per_customer;
            let first_chunk = t * chunks.div_ceil(threads).max(1);
            scope.spawn(move || {
                for (c, out) in slots.iter_mut().enumerate() {
                    let start = (first_chunk + c) * CHUNK;
                    for i in start..(start + CHUNK).min(customers) {
                        per_customer(i, out);
                    }
                }
            });
        }
    });
    let mut total = vec![0.0; length];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    total
}

fn site<'a>(site: Option<&'a mut Site>, as_of: &str) -> Result<&'a mut Site, TaskError> {
    let site = site.ok_or(TaskError::NoData)?;
    let asked = rfmlt::parse_date(as_of).ok_or_else(|| TaskError::Request("as_of".into()))?;
    if asked != site.as_of {
        return Err(TaskError::Request(format!(
            "as_of {asked} differs from the job's {}",
            site.as_of
        )));
    }
    Ok(site)
}

fn space(space: Option<&proto::Space>) -> Result<Space, TaskError> {
    wire::space_from_wire(space).map_err(|e| TaskError::Request(e.to_string()))
}

fn centroids(run: &proto::KMeansRun) -> Result<&[f64], TaskError> {
    if run.k == 0 || run.centroids.len() != run.k as usize * DIM {
        return Err(TaskError::Request(format!(
            "a run of k = {} carries {} coordinates",
            run.k,
            run.centroids.len()
        )));
    }
    Ok(&run.centroids)
}

/// Computes and encodes this site's vector for `computation`. Under
/// differential privacy (`noise`: the request's checked per-customer
/// bounds) entries without a bound are withheld and discrete Gaussian noise
/// from the OS-seeded generator is added to the encoded words; the noise is
/// neither kept nor logged.
pub fn compute(
    config: &ParticipantConfig,
    data: Option<&mut Site>,
    computation: &proto::Computation,
    member: u32,
    length: usize,
    noise: Option<&Bounds>,
) -> Result<Encoded, TaskError> {
    let encoding = computation
        .encoding
        .as_ref()
        .ok_or(TaskError::Missing("encoding"))?;
    let ranges = encoding
        .ranges
        .iter()
        .map(|r| ClipRange::new(r.lo, r.hi))
        .collect();
    let units = if encoding.units.is_empty() {
        vec![1.0]
    } else {
        encoding.units.clone()
    };
    let encoder = FixedPointEncoder::with_units(encoding.frac_bits, ranges, units)?;
    let mut values = match computation
        .kind
        .as_ref()
        .ok_or(TaskError::Missing("computation"))?
    {
        Kind::VectorFile(file) => read_vector(config, &file.name)?,
        Kind::TestVector(t) => (0..length as u64)
            .map(|i| {
                (t.seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(member as u64 * 7_919)
                    .wrapping_add(i)
                    % t.modulus.max(1)) as f64
            })
            .collect(),
        Kind::Census(c) => census(site(data, &c.as_of)?),
        Kind::Activity(a) => {
            let customers = &site(data, &a.as_of)?.features.customers;
            sum_over_customers(customers.len(), activity::LENGTH, |i, out| {
                activity::add(out, customers[i].f, customers[i].r)
            })
        }
        Kind::FeatureStats(f) => feature_stats(site(data, &f.as_of)?, f)?,
        Kind::KmeansStep(step) => {
            let data = site(data, &step.as_of)?;
            let space = space(step.space.as_ref())?;
            let runs = step
                .runs
                .iter()
                .map(centroids)
                .collect::<Result<Vec<_>, _>>()?;
            kmeans_step(data, &space, &runs)
        }
        Kind::Propensity(p) => propensity(site(data, &p.as_of)?, p)?,
        Kind::Migration(m) => crate::series::migration(config, site(data, &m.as_of)?, m)?,
        Kind::Uplift(u) => {
            let observed = site(data, &u.as_of)?.campaign.as_ref();
            match observed {
                Some(o) if o.name == u.campaign && o.segments == u.segments as usize => o.vector(),
                _ => {
                    return Err(TaskError::Request(format!(
                        "campaign {:?} of {} segments is not the one this site accepted",
                        u.campaign, u.segments
                    )));
                }
            }
        }
        Kind::SegmentProfile(p) => {
            let data = site(data, &p.as_of)?;
            let space = space(p.space.as_ref())?;
            let run = p
                .centroids
                .as_ref()
                .ok_or(TaskError::Missing("centroids"))?;
            segment_profile(data, &space, centroids(run)?, p.frequent as u64)
        }
    };
    if values.len() != length {
        return Err(TaskError::Length {
            expected: length,
            got: values.len(),
        });
    }
    let (Some(bounds), Some(request)) = (noise, &computation.noise) else {
        return Ok(encoder.encode(&values)?);
    };
    for (value, &bound) in values.iter_mut().zip(&bounds.entries) {
        if bound == 0.0 {
            *value = 0.0;
        }
    }
    let mut encoded = encoder.encode(&values)?;
    dp::add_noise(&mut encoded.words, &mut rand::rng(), request.variance, 1)?;
    Ok(encoded)
}

fn census(site: &Site) -> Vec<f64> {
    let f = &site.features;
    census::Counts {
        customers: f.customers.len() as f64,
        excluded_no_consent: f.excluded_no_consent as f64,
        transactions: f.rows[0] as f64,
        interactions: f.rows[1] as f64,
        rows_after_as_of: f.rows_after_as_of as f64,
        converted: f.customers.iter().filter(|c| c.converted).count() as f64,
        skipped_rows: f.skipped.total() as f64,
    }
    .to_vector()
}

fn feature_stats(site: &Site, request: &proto::FeatureStats) -> Result<Vec<f64>, TaskError> {
    let layout = feature_stats::Layout::from_request(request)?;
    Ok(sum_over_customers(
        site.points.len(),
        layout.length(),
        |i, out| layout.add(out, &site.points[i]),
    ))
}

fn kmeans_step(site: &Site, space: &Space, runs: &[&[f64]]) -> Vec<f64> {
    let layout = kmeans::Layout::new(runs.iter().map(|run| run.len() / DIM));
    // A centroid outside the space's box could make one customer's
    // distance unbounded.
    let distance_bound = space.distance_bound();
    sum_over_customers(site.points.len(), layout.length(), |i, out| {
        layout.add(out, &space.project(&site.points[i]), runs, distance_bound)
    })
}

fn segment_profile(site: &mut Site, space: &Space, centroids: &[f64], frequent: u64) -> Vec<f64> {
    site.assign(space, centroids);
    let site: &Site = site;
    let assignment = &site.assignment.as_ref().expect("assigned above").1;
    let k = centroids.len() / DIM;
    let customers = &site.features.customers;
    sum_over_customers(customers.len(), profile::length(k), |i, out| {
        let c = &customers[i];
        let kinds = [c.kinds.inquiry, c.kinds.save, c.kinds.search, c.kinds.other];
        let row = profile::Row::new(
            space,
            [c.r, c.f, c.m, c.l, c.t],
            kinds,
            c.converted,
            frequent,
        );
        profile::add(out, assignment[i] as usize, &row);
    })
}

fn read_vector(config: &ParticipantConfig, name: &str) -> Result<Vec<f64>, TaskError> {
    let path = config
        .vectors
        .get(name)
        .ok_or_else(|| TaskError::UnknownVector(name.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.clone(),
        source,
    })?;
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            s.parse::<f64>().map_err(|_| TaskError::BadNumber {
                path: path.clone(),
                entry: i + 1,
                text: s.to_string(),
            })
        })
        .collect()
}

impl Site {
    /// Assigns every customer to its nearest of `centroids` in `space`,
    /// unless already done for these centroids.
    fn assign(&mut self, space: &Space, centroids: &[f64]) {
        if !matches!(&self.assignment, Some((c, _)) if c == centroids) {
            let segments = self
                .points
                .iter()
                .map(|x| features::nearest(&space.project(x), centroids).0 as u32)
                .collect();
            self.assignment = Some((centroids.to_vec(), segments));
        }
    }

    /// Whether each customer is in the holdout of (seed, fraction), cached.
    fn holdout(&mut self, seed: u64, fraction: f64) -> &[bool] {
        if !matches!(&self.split, Some((s, f, _)) if *s == seed && *f == fraction) {
            let flags = self
                .features
                .customers
                .iter()
                .map(|c| propensity::is_holdout(seed, &c.id, fraction))
                .collect();
            self.split = Some((seed, fraction, flags));
        }
        &self.split.as_ref().expect("set above").2
    }

    /// Transformed features x of customer `i`.
    pub fn point(&self, i: usize) -> &[f64; DIM] {
        &self.points[i]
    }

    /// z-scores (clipped, standardised) of customer `i` under `space`.
    pub fn z(&self, space: &Space, i: usize) -> [f64; DIM] {
        space.z(&self.points[i])
    }
}

/// Most design columns a model may have (intercept, 5 features, 49
/// segment indicators at k = 50).
pub const MAX_COLUMNS: usize = 64;

/// The model a propensity request describes.
pub struct Model {
    /// The standardisation.
    pub space: Space,
    /// The design.
    pub design: Design,
    /// Coefficients, one per design column.
    pub beta: Vec<f64>,
}

impl Model {
    /// Reads the model from a request.
    pub fn from_request(p: &proto::Propensity) -> Result<Self, TaskError> {
        let space = space(p.space.as_ref())?;
        let design = wire::design_from_wire(p).map_err(|e| TaskError::Request(e.to_string()))?;
        if design.columns() > MAX_COLUMNS || p.beta.len() != design.columns() {
            return Err(TaskError::Request(format!(
                "the design has {} columns, the model {} coefficients",
                design.columns(),
                p.beta.len()
            )));
        }
        Ok(Self {
            space,
            design,
            beta: p.beta.clone(),
        })
    }

    /// The design row of customer `i` of `site` (its first
    /// [`Design::columns`] entries) and the linear predictor.
    pub fn eta(&self, site: &Site, segments: &[u32], i: usize) -> ([f64; MAX_COLUMNS], f64) {
        let mut row = [0.0; MAX_COLUMNS];
        let columns = &mut row[..self.beta.len()];
        let segment = segments.get(i).copied().unwrap_or(0);
        self.design.row(&site.z(&self.space, i), segment, columns);
        let eta = columns.iter().zip(&self.beta).map(|(x, b)| x * b).sum();
        (row, eta)
    }
}

fn propensity(site: &mut Site, p: &proto::Propensity) -> Result<Vec<f64>, TaskError> {
    use proto::propensity::Task;
    let model = Model::from_request(p)?;
    if p.segments > 0 {
        let run = p
            .centroids
            .as_ref()
            .ok_or(TaskError::Missing("centroids"))?;
        let centroids = centroids(run)?;
        if run.k != p.segments {
            return Err(TaskError::Request(format!(
                "{} segments but {} centroids",
                p.segments, run.k
            )));
        }
        site.assign(&model.space, centroids);
    }
    site.holdout(p.seed, p.holdout_fraction);
    let site: &Site = site;
    let holdout = &site.split.as_ref().expect("computed above").2;
    let segments: &[u32] = match (&site.assignment, p.segments) {
        (Some((_, assignment)), 1..) => assignment,
        _ => &[],
    };
    let customers = &site.features.customers;
    let n = customers.len();
    let d = model.design.columns();
    let task = p
        .task
        .as_ref()
        .ok_or(TaskError::Missing("propensity task"))?;
    Ok(match task {
        Task::Newton(_) => sum_over_customers(n, newton::length(d), |i, out| {
            if holdout[i] {
                return;
            }
            let (buffer, eta) = model.eta(site, segments, i);
            newton::add(out, &buffer[..d], eta, customers[i].converted);
        }),
        Task::LocalEpochs(local) => {
            let count = (0..n).filter(|&i| !holdout[i]).count() as f64;
            let loss_at = |w: &[f64]| -> Vec<f64> {
                // [log-loss sum, gradient sum (d)] at w.
                let at = Model {
                    space: model.space.clone(),
                    design: model.design.clone(),
                    beta: w.to_vec(),
                };
                sum_over_customers(n, 1 + d, |i, out| {
                    if holdout[i] {
                        return;
                    }
                    let (buffer, eta) = at.eta(site, segments, i);
                    let row = &buffer[..d];
                    let y = customers[i].converted;
                    out[0] += propensity::log_loss(eta, y);
                    let residual = propensity::sigmoid(eta) - f64::from(y);
                    for a in 0..d {
                        out[1 + a] += residual * row[a];
                    }
                })
            };
            let at_beta = loss_at(&model.beta);
            let mut w = model.beta.clone();
            if count > 0.0 {
                for epoch in 0..local.epochs {
                    let sums = if epoch == 0 {
                        at_beta.clone()
                    } else {
                        loss_at(&w)
                    };
                    for a in 0..d {
                        let penalty = if a == 0 {
                            0.0
                        } else {
                            local.l2_per_customer * w[a]
                        };
                        let gradient =
                            sums[1 + a] / count + penalty + local.mu * (w[a] - model.beta[a]);
                        w[a] -= local.learning_rate * gradient;
                    }
                }
            }
            local_epochs::Update {
                count,
                weighted: w.iter().map(|x| x * count).collect(),
                loss: at_beta[0],
            }
            .to_vector()
        }
        Task::Evaluation(request) => {
            let bins = request.bins.max(1) as usize;
            sum_over_customers(n, evaluation::length(bins), |i, out| {
                if holdout[i] {
                    let eta = model.eta(site, segments, i).1;
                    evaluation::add(out, bins, eta, customers[i].converted);
                }
            })
        }
        Task::Campaign(request) => {
            let groups = (p.segments as usize).max(1);
            sum_over_customers(n, campaign::length(groups), |i, out| {
                if !holdout[i] {
                    return;
                }
                let prob = propensity::sigmoid(model.eta(site, segments, i).1);
                let group = if p.segments > 0 {
                    segments[i] as usize
                } else {
                    0
                };
                campaign::add(out, group, prob, customers[i].converted, request.threshold);
            })
        }
    })
}
