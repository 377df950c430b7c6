//! `result.json` (design.md, "Results contract"), typed once: the
//! coordinator writes it, a participant reads its copy (to score its own
//! customers locally), tools read it. What every step released, the
//! propensity model, the privacy the job spent and every round without its
//! timings (those are in `rounds.json`), so the same job on the same data
//! gives the same file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::computation::activity::Band;
use crate::features::DIM;
use crate::job::Optimizer;

/// Product, price, channel and promotion advice for one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playbook {
    /// What to offer.
    pub product: String,
    /// How to price it.
    pub price: String,
    /// Through which channel.
    pub channel: String,
    /// How to promote it.
    pub promotion: String,
}

/// The census round's totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Census {
    /// Consenting customers.
    pub customers: f64,
    /// Customers excluded for refusing marketing.
    pub excluded_no_consent: f64,
    /// Transaction rows read (withheld under differential privacy: one
    /// customer's row count has no bound).
    pub transactions: Option<f64>,
    /// Interaction rows read (withheld under differential privacy).
    pub interactions: Option<f64>,
    /// Rows dated after as_of, ignored (withheld under differential
    /// privacy).
    pub rows_after_as_of: Option<f64>,
    /// Consenting customers with converted = 1.
    pub converted: f64,
    /// Bad rows the sites skipped under their bad-row policies, in all
    /// (withheld under differential privacy, like the row counts).
    pub skipped_rows: Option<f64>,
}

/// The pooled standardisation (results contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Standardization {
    /// Feature names.
    pub features: [String; DIM],
    /// Transform applied before standardising.
    pub transform: [String; DIM],
    /// Customers it covers.
    pub count: f64,
    /// Pooled mean of the transformed features.
    pub mean: [f64; DIM],
    /// Pooled population standard deviation of the transformed features.
    pub std: [f64; DIM],
    /// Per-customer clip bounds of the transformed features.
    pub clip_lo: [f64; DIM],
    /// Upper clip bounds.
    pub clip_hi: [f64; DIM],
    /// Quantiles of each feature in original units, from the histograms.
    pub quantiles: Quantiles,
}

/// Estimated quantiles per feature, original units.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quantiles {
    /// The probabilities.
    pub p: [f64; 5],
    /// One row per feature.
    pub values: Vec<[f64; 5]>,
}

/// AHP block of the result (results contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AhpResult {
    /// Weights of R, F, M, L, T.
    pub weights: Vec<f64>,
    /// Saaty's consistency ratio.
    pub consistency_ratio: f64,
    /// The principal eigenvalue.
    pub lambda_max: f64,
    /// The judgments used.
    pub judgments: Vec<f64>,
}

/// One candidate k after its restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// Number of clusters.
    pub k: u32,
    /// Lowest final inertia over the restarts.
    pub inertia: f64,
    /// Calinski-Harabasz index of that run.
    pub calinski_harabasz: f64,
    /// Which restart won.
    pub restart: u32,
    /// Lloyd steps it took.
    pub iterations: u32,
    /// Whether it converged within the cap.
    pub converged: bool,
}

/// One released segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    /// Position in the centroid list (and in participants' local files).
    pub index: usize,
    /// Name: the seed group, numbered when several segments share it.
    pub name: String,
    /// The seed group.
    pub group: String,
    /// What the group needs.
    pub summary: String,
    /// Customers in the segment.
    pub size: f64,
    /// "high" or "low" against the pooled mean, per feature.
    pub profile: BTreeMap<String, String>,
    /// Mean R, F, M, L, T of the segment's customers, original units.
    pub means: BTreeMap<String, f64>,
    /// Mean interactions per customer by kind.
    pub interactions: BTreeMap<String, f64>,
    /// Share of the segment that converted.
    pub conversion_rate: f64,
    /// Refined groups of customers without a purchase.
    pub refined: Vec<RefinedGroup>,
    /// 4P playbook.
    pub playbook: Playbook,
}

/// A refined behavioural group inside a segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefinedGroup {
    /// The seed's name of the group.
    pub name: String,
    /// Customers of the segment in it.
    pub customers: f64,
    /// Their share of the segment.
    pub share: f64,
    /// The seed's recommended action.
    pub action: String,
}

/// Segmentation block of the result (results contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentationResult {
    /// Segments released.
    pub k: usize,
    /// z-score multipliers of the clustering space.
    pub space_scale: [f64; DIM],
    /// The chosen run's initial centroids, clustering space.
    pub init_centroids: Vec<Vec<f64>>,
    /// Final centroids, clustering space.
    pub centroids: Vec<Vec<f64>>,
    /// Final centroids in R, F, M, L, T units.
    pub centroids_original: Vec<Vec<f64>>,
    /// Customers per segment.
    pub sizes: Vec<f64>,
    /// Sum of squared distances to the assigned centroid, clustering space.
    pub inertia: f64,
    /// Lloyd steps of the chosen run (merging steps included).
    pub iterations: u32,
    /// Random starts per k.
    pub restarts: u32,
    /// How k was chosen.
    pub k_choice: String,
    /// Every candidate k (the inertia curve is the elbow plot).
    pub candidates: Vec<Candidate>,
    /// Segments merged away for being under the minimum size.
    pub suppressed: usize,
    /// The minimum segment size.
    pub min_segment_size: u64,
    /// The segments.
    pub segments: Vec<Segment>,
}

/// One row of the calibration table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of predicted probability.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Holdout customers whose score falls in the bin.
    pub count: f64,
    /// Their mean predicted probability.
    pub mean_predicted: f64,
    /// Their observed conversion rate.
    pub observed_rate: f64,
}

/// Holdout evaluation, from secure sums only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Holdout customers.
    pub count: f64,
    /// Area under the ROC curve from the binned scores.
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Predicted against observed, per tenth of the probability range.
    pub calibration: Vec<CalibrationBin>,
    /// The ROC curve: (false positive rate, true positive rate) from the
    /// highest score down.
    pub roc: Vec<[f64; 2]>,
    /// Score thresholds of the holdout's deciles (10%, 20%, …, 90%).
    pub decile_thresholds: Vec<f64>,
    /// Conversion rate of the top-scoring tenth over the holdout's rate.
    pub top_decile_lift: f64,
    /// Campaign metrics per segment (seed 002).
    pub campaign: Vec<CampaignRow>,
}

/// Campaign metrics of one segment on the holdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignRow {
    /// Segment index (0 when the model has no segments).
    pub segment: usize,
    /// Holdout customers in it.
    pub size: f64,
    /// Their conversion rate.
    pub conversion_rate: f64,
    /// Share of them in the consortium's top-scoring decile.
    pub top_decile_share: f64,
    /// Conversion rate of those in the top decile.
    pub top_decile_conversion_rate: f64,
}

/// The propensity block of `result.json` (results contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PropensityResult {
    /// Columns after the intercept: feature names, then `segment <i>`.
    pub features: Vec<String>,
    /// The intercept.
    pub intercept: f64,
    /// One coefficient per entry of `features` (per standard deviation of
    /// a feature; log-odds against the first segment for a segment).
    pub coefficients: Vec<f64>,
    /// L2 penalty.
    pub l2: f64,
    /// Accepted Newton steps, or FedProx rounds.
    pub iterations: u32,
    /// Whether the fit met its stopping rule.
    pub converged: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
    /// `newton` or `fedprox`.
    pub optimizer: Optimizer,
    /// The objective at the final coefficients.
    pub objective: f64,
    /// Training customers.
    pub training_count: f64,
    /// Which of R, F, M, L, T enter the model (zero-variance ones do not).
    pub design_features: [bool; DIM],
    /// Segments with indicator columns (0: none).
    pub design_segments: u32,
    /// Holdout evaluation (absent when the job holds nothing out).
    pub evaluation: Option<Evaluation>,
}

/// What a round did, without timings (those are in `rounds.json`), so that
/// the same job gives the same result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundSummary {
    /// Round number.
    pub round: u64,
    /// What it computed.
    pub purpose: String,
    /// released or aborted.
    pub outcome: String,
    /// Members whose input the sum covers.
    pub survivors: Vec<String>,
    /// Members that did not send an input.
    pub dropped: Vec<String>,
    /// zCDP ρ the release spent, under differential privacy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Standard deviation of the noise on a released count, under
    /// differential privacy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_noise_sd: Option<f64>,
}

/// Privacy block (results contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Privacy {
    /// Whether noise was added.
    pub dp: bool,
    /// ε the job's releases spent, at `delta` (tight conversion of the
    /// composed ρ), when DP is on.
    pub epsilon: Option<f64>,
    /// δ of the job, when DP is on.
    pub delta: Option<f64>,
    /// ε the job declared as its budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_epsilon: Option<f64>,
    /// Composed zCDP ρ of every release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Releases the budget was split over (the rounds list those made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_releases: Option<u32>,
    /// Per-customer clip bounds of R, F, M, L, T in original units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<[f64; DIM]>,
}

/// A cohort member that declined the job, in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declined {
    /// The member.
    pub participant: String,
    /// Its reason.
    pub reason: String,
}

/// A member that accepted the job but whose input is missing from some
/// released sums (it stopped answering, or left after its pairwise
/// secrets were reconstructed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedOut {
    /// The member.
    pub participant: String,
    /// The first released round whose sum does not cover it.
    pub round: u64,
    /// What that round computed.
    pub purpose: String,
    /// Released rounds whose sum does not cover it.
    pub rounds_missed: usize,
    /// Whether the job's last released round covers it again.
    pub back_by_end: bool,
}

/// `result.json` of a segmentation job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    /// Job identifier.
    pub job_id: String,
    /// SHA-256 of job.toml.
    pub config_hash: String,
    /// Cohort identities: every member the job was offered to, whether it
    /// took part or not (see `took_part`, `declined`, `dropped_out`).
    pub cohort: Vec<String>,
    /// Members whose input is in at least one released sum.
    #[serde(default)]
    pub took_part: Vec<String>,
    /// Members that declined the job, with their reasons.
    #[serde(default)]
    pub declined: Vec<Declined>,
    /// Members missing from some released sums, from which round on.
    #[serde(default)]
    pub dropped_out: Vec<DroppedOut>,
    /// Reference date.
    pub as_of: String,
    /// Pooled counts.
    pub census: Census,
    /// Customers per recency band (lifecycle stage).
    pub activity: Vec<Band>,
    /// Pooled standardisation.
    pub standardization: Standardization,
    /// Feature weights.
    pub ahp: AhpResult,
    /// The segmentation.
    pub segmentation: SegmentationResult,
    /// The propensity model (absent when the job turns it off).
    pub propensity: Option<PropensityResult>,
    /// How customers moved since the previous job of the job's series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<crate::series::Migration>,
    /// Differential privacy.
    pub privacy: Privacy,
    /// Secure-sum rounds the job took.
    pub secure_sum_rounds: usize,
    /// Every round.
    pub rounds: Vec<RoundSummary>,
}

/// `result.json` of a vertical job (design.md, "Vertical joint modelling
/// contract"): sizes and quality figures only, never coefficients or
/// per-customer values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerticalJobResult {
    /// Job identifier.
    pub job_id: String,
    /// SHA-256 of job.toml.
    pub config_hash: String,
    /// The parties, label holder first.
    pub cohort: Vec<String>,
    /// Reference date.
    pub as_of: String,
    /// The vertical block.
    pub vertical: VerticalResult,
}

/// The `vertical` block of `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerticalResult {
    /// Customers in the intersection; `null` when below `min_overlap`
    /// (nothing is released then, not even the size).
    pub intersection: Option<u64>,
    /// Whether the intersection was below `min_overlap`.
    pub below_min_overlap: bool,
    /// The job's `min_overlap`.
    pub min_overlap: u64,
    /// Whether only the intersection size was asked for.
    pub overlap_only: bool,
    /// The label holder.
    pub label_holder: String,
    /// The feature partners, in party order.
    pub partners: Vec<String>,
    /// Ids each party brought (every party learns these).
    pub set_sizes: BTreeMap<String, u64>,
    /// Newton steps of the joint model (0 without one).
    pub steps: u32,
    /// Whether the joint model converged (false without one).
    pub converged: bool,
    /// What the partners' columns add, on the holdout; `null` without a
    /// joint model.
    pub contribution: Option<Contribution>,
    /// Sealed bytes the coordinator relayed, by step.
    pub relayed_bytes: BTreeMap<String, u64>,
    /// A joint scoring job: the training job whose model scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_with: Option<String>,
    /// A joint scoring job: customers the label holder scored (its
    /// `scores.csv`; nothing per customer is released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<u64>,
}

/// The joint model against the label holder's own, on the same holdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contribution {
    /// The joint model.
    pub joint: ModelQuality,
    /// The label holder's columns only.
    pub label_holder_only: ModelQuality,
    /// Holdout customers in the intersection.
    pub holdout_count: u64,
    /// Joint AUC minus the label holder's own.
    #[serde(default)]
    pub auc_difference: f64,
    /// Its standard error, from the two AUCs' (Hanley and McNeil) as if
    /// independent: conservative, since both are measured on the same
    /// customers.
    #[serde(default)]
    pub auc_difference_standard_error: f64,
    /// Whether the difference exceeds twice its standard error: below it,
    /// the partner's columns add nothing measurable on this holdout.
    #[serde(default)]
    pub measurable: bool,
    /// The joint model's calibration on the holdout, per tenth of the
    /// predicted probability (computed by the label holder, which alone
    /// holds the scores).
    #[serde(default)]
    pub joint_calibration: Vec<CalibrationBin>,
}

/// Holdout quality of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelQuality {
    /// Area under the ROC curve.
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Conversion of the top-scoring tenth over the holdout's.
    pub top_decile_lift: f64,
    /// Standard error of the AUC (Hanley and McNeil).
    #[serde(default)]
    pub auc_standard_error: f64,
}
