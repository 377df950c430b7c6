//! `coordinator.toml` and `job.toml`, as documented structs. Unknown keys
//! are refused, and every error names the key at fault. Relative paths are
//! taken from the directory of the file that names them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

pub use fedseg_common::config::ConfigError;
use fedseg_common::config::{base_dir, invalid, read_toml};
use fedseg_common::identity;
use fedseg_common::mtls::TlsFiles;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `coordinator.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Address to listen on, `host:port` (contract key).
    pub listen: SocketAddr,
    /// The journal file (contract key).
    pub journal: PathBuf,
    /// This coordinator's identity, as in its certificate.
    pub id: String,
    /// CA certificate, own certificate and key.
    pub tls: TlsFiles,
    /// Participant identities admitted; nobody else gets a participant
    /// session.
    pub participants: Vec<String>,
    /// Auditor identities admitted to the audit service.
    #[serde(default)]
    pub auditors: Vec<String>,
    /// Where to serve Prometheus `/metrics` and `/healthz` over plain HTTP
    /// (`host:port`); off when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Round timing and limits.
    #[serde(default)]
    pub rounds: RoundSettings,
}

/// Round timing and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoundSettings {
    /// Seconds each phase waits for answers before going on without the
    /// silent members.
    pub phase_timeout_s: f64,
    /// Seconds to wait for the listed participants to connect.
    pub cohort_timeout_s: f64,
    /// Rounds covered by one key set-up.
    pub epoch_rounds: u32,
    /// Largest message accepted or sent, in bytes.
    pub max_message_bytes: usize,
}

impl Default for RoundSettings {
    fn default() -> Self {
        Self {
            phase_timeout_s: 30.0,
            cohort_timeout_s: 120.0,
            epoch_rounds: 16,
            max_message_bytes: 64 << 20,
        }
    }
}

impl RoundSettings {
    /// The phase timeout as a duration.
    pub fn phase_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.phase_timeout_s)
    }

    /// The cohort timeout as a duration.
    pub fn cohort_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cohort_timeout_s)
    }
}

impl CoordinatorConfig {
    /// Reads and checks `coordinator.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (mut config, _): (Self, _) = read_toml(path)?;
        let invalid = invalid(path);
        identity::validate_id(&config.id).map_err(|e| invalid("id", e.to_string()))?;
        for id in config.participants.iter().chain(&config.auditors) {
            identity::validate_id(id).map_err(|e| invalid("participants", e.to_string()))?;
        }
        if config.participants.is_empty() {
            return Err(invalid("participants", "lists nobody".into()));
        }
        let r = &config.rounds;
        if !(r.phase_timeout_s > 0.0 && r.phase_timeout_s.is_finite()) {
            return Err(invalid(
                "rounds.phase_timeout_s",
                "must be a positive number".into(),
            ));
        }
        if !(r.cohort_timeout_s > 0.0 && r.cohort_timeout_s.is_finite()) {
            return Err(invalid(
                "rounds.cohort_timeout_s",
                "must be a positive number".into(),
            ));
        }
        if r.epoch_rounds == 0 {
            return Err(invalid("rounds.epoch_rounds", "must be at least 1".into()));
        }
        let base = base_dir(path);
        config.journal = base.join(&config.journal);
        config.tls = config.tls.relative_to(&base);
        Ok(config)
    }
}

/// `job.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Job identifier; derived from the configuration hash when absent.
    #[serde(default)]
    pub job_id: Option<String>,
    /// Seed of everything random and public in the job (contract key).
    pub seed: u64,
    /// Reference date for every site, ISO `YYYY-MM-DD` (contract key).
    pub as_of: String,
    /// Share of customers held out for evaluation (contract key).
    pub holdout_fraction: f64,
    /// L2 penalty of the propensity model (contract key).
    pub l2: f64,
    /// Who takes part and how many may drop out.
    #[serde(default)]
    pub cohort: CohortSettings,
    /// A job that securely sums a named vector each round; without it the
    /// job is the joint segmentation.
    pub secure_sum: Option<SecureSumJob>,
    /// Settings of the joint segmentation.
    #[serde(default)]
    pub segmentation: SegmentationSettings,
    /// Settings of the propensity model.
    #[serde(default)]
    pub propensity: PropensitySettings,
    /// Differential privacy for every release of the job; off without it.
    pub privacy: Option<PrivacySettings>,
}

/// `[privacy]` of `job.toml`: the job's whole budget and the per-customer
/// bounds every release is clipped to.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// ε of the whole job.
    pub epsilon: f64,
    /// δ of the whole job.
    pub delta: f64,
    /// Upper bounds of R, F, M, L, T per customer in original units (days,
    /// purchases, money, days, interactions); lower bounds are 0. Tighter
    /// bounds mean less noise for the same ε and more clipping.
    #[serde(default = "default_privacy_clip")]
    pub clip: [f64; 5],
}

/// Per-customer bounds under DP: three years of recency, 100 purchases,
/// 20 000 spent, five years of tenure, 50 interactions.
fn default_privacy_clip() -> [f64; 5] {
    [1095.0, 100.0, 20_000.0, 1825.0, 50.0]
}

/// How the propensity model is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Federated Newton steps: one secure sum of gradient, Hessian and loss
    /// per step, with step halving.
    Newton,
    /// FedProx: local gradient epochs at each site, averaged; for models too
    /// large for a Hessian.
    Fedprox,
}

/// `[propensity]` of `job.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PropensitySettings {
    /// Fit the model at all.
    pub enabled: bool,
    /// Add one indicator column per segment (the first is the reference).
    pub segment_features: bool,
    /// `newton` or `fedprox`.
    pub optimizer: Optimizer,
    /// Most Newton steps, or FedProx rounds.
    pub max_iterations: u32,
    /// Newton stops when half the squared Newton decrement is below this;
    /// FedProx when no coefficient moves more than this.
    pub tolerance: f64,
    /// Bins of the holdout score histograms (AUC resolution).
    pub score_bins: u32,
    /// FedProx: local epochs per round.
    pub local_epochs: u32,
    /// FedProx: local gradient step size.
    pub learning_rate: f64,
    /// FedProx: proximal weight.
    pub mu: f64,
}

impl Default for PropensitySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            segment_features: true,
            optimizer: Optimizer::Newton,
            max_iterations: 25,
            tolerance: 1e-10,
            score_bins: 1000,
            local_epochs: 5,
            learning_rate: 1.0,
            mu: 0.01,
        }
    }
}

/// `[segmentation]` of `job.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentationSettings {
    /// Smallest number of segments tried.
    pub k_min: u32,
    /// Largest number of segments tried; with k_min < k_max, k is chosen by
    /// the Calinski-Harabasz index.
    pub k_max: u32,
    /// Seeded random starts per k; the lowest inertia wins.
    pub restarts: u32,
    /// Most Lloyd steps per run.
    pub max_iterations: u32,
    /// A run has converged when no centroid coordinate moves more than this
    /// (clustering-space units).
    pub tolerance: f64,
    /// Smallest segment that may be released; smaller ones are merged into
    /// the others. Also the smallest histogram bin used.
    pub min_segment_size: u64,
    /// AHP judgments, upper triangle of the R, F, M, L, T comparison matrix
    /// in row order (R:F, R:M, R:L, R:T, F:M, F:L, F:T, M:L, M:T, L:T).
    pub ahp_judgments: Vec<f64>,
    /// Interactions of one kind that make a customer a frequent inquirer or
    /// searcher.
    pub frequent_interactions: u32,
}

impl Default for SegmentationSettings {
    fn default() -> Self {
        Self {
            k_min: 5,
            k_max: 5,
            restarts: 4,
            max_iterations: 50,
            tolerance: 1e-6,
            min_segment_size: 20,
            ahp_judgments: crate::ahp::DEFAULT_JUDGMENTS.to_vec(),
            frequent_interactions: 3,
        }
    }
}

/// Cohort settings of a job.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CohortSettings {
    /// Fewest participants the job starts with (default: all listed).
    pub min_participants: Option<u32>,
    /// Shamir threshold (default: a majority of each member's share holders).
    pub threshold: Option<u32>,
    /// Neighbours per member (default: complete up to 32, else ≈ 3·log2 n).
    pub neighbours: Option<u32>,
}

/// Sum a vector that each participant maps by name, for several rounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureSumJob {
    /// Name the participants map to a local file in their `[vectors]`.
    pub vector: String,
    /// Entries of the vector.
    pub length: u32,
    /// Consecutive rounds to sum it in.
    pub rounds: u32,
    /// Fixed-point fractional bits.
    #[serde(default = "default_frac_bits")]
    pub frac_bits: u32,
    /// Clip range, lower bound.
    pub lo: f64,
    /// Clip range, upper bound.
    pub hi: f64,
}

fn default_frac_bits() -> u32 {
    16
}

/// A loaded job: its settings, canonical text and hash.
#[derive(Debug, Clone)]
pub struct Job {
    /// The settings.
    pub config: JobConfig,
    /// The job identifier.
    pub id: String,
    /// The file's text, exactly as hashed.
    pub text: String,
    /// SHA-256 of the text, hex.
    pub config_hash: String,
}

impl Job {
    /// Reads and checks `job.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (config, text): (JobConfig, _) = read_toml(path)?;
        let invalid = invalid(path);
        let date = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(&config.as_of, &date)
            .map_err(|e| invalid("as_of", format!("not an ISO date: {e}")))?;
        if !(0.0..1.0).contains(&config.holdout_fraction) {
            return Err(invalid("holdout_fraction", "must be in [0, 1)".into()));
        }
        if !(config.l2 >= 0.0 && config.l2.is_finite()) {
            return Err(invalid("l2", "must be a non-negative number".into()));
        }
        let seg = &config.segmentation;
        if seg.k_min < 2 || seg.k_max < seg.k_min || seg.k_max > 50 {
            return Err(invalid(
                "segmentation.k_max",
                "need 2 <= k_min <= k_max <= 50".into(),
            ));
        }
        if seg.restarts == 0 || seg.restarts > 100 {
            return Err(invalid("segmentation.restarts", "must be 1 to 100".into()));
        }
        if seg.max_iterations == 0 {
            return Err(invalid(
                "segmentation.max_iterations",
                "must be at least 1".into(),
            ));
        }
        if !(seg.tolerance >= 0.0 && seg.tolerance.is_finite()) {
            return Err(invalid(
                "segmentation.tolerance",
                "must be a non-negative number".into(),
            ));
        }
        let prop = &config.propensity;
        if prop.max_iterations == 0 || prop.max_iterations > 1000 {
            return Err(invalid(
                "propensity.max_iterations",
                "must be 1 to 1000".into(),
            ));
        }
        if !(prop.tolerance > 0.0 && prop.tolerance.is_finite()) {
            return Err(invalid(
                "propensity.tolerance",
                "must be a positive number".into(),
            ));
        }
        if !(10..=100_000).contains(&prop.score_bins) {
            return Err(invalid(
                "propensity.score_bins",
                "must be 10 to 100000".into(),
            ));
        }
        if !(prop.learning_rate > 0.0 && prop.mu >= 0.0 && prop.local_epochs > 0) {
            return Err(invalid(
                "propensity.learning_rate",
                "need learning_rate > 0, mu >= 0 and local_epochs >= 1".into(),
            ));
        }
        if let Some(privacy) = &config.privacy {
            if !(privacy.epsilon > 0.0 && privacy.epsilon.is_finite()) {
                return Err(invalid(
                    "privacy.epsilon",
                    "must be a positive number".into(),
                ));
            }
            if !(privacy.delta > 0.0 && privacy.delta < 1.0) {
                return Err(invalid("privacy.delta", "must lie in (0, 1)".into()));
            }
            if let Some(j) = privacy
                .clip
                .iter()
                .position(|c| !(*c > 0.0 && c.is_finite()))
            {
                return Err(invalid(
                    "privacy.clip",
                    format!("bound {} of R, F, M, L, T must be positive", j + 1),
                ));
            }
            if config.propensity.enabled && prop.optimizer != Optimizer::Newton {
                return Err(invalid(
                    "propensity.optimizer",
                    "a local-epochs model update has no per-customer bound; use newton under [privacy]"
                        .into(),
                ));
            }
            if config.secure_sum.is_some() {
                return Err(invalid(
                    "privacy",
                    "a [secure_sum] vector has no per-customer bound".into(),
                ));
            }
        }
        crate::ahp::weights(fedseg_common::features::DIM, &seg.ahp_judgments)
            .map_err(|e| invalid("segmentation.ahp_judgments", e.to_string()))?;
        if config
            .secure_sum
            .as_ref()
            .is_some_and(|sum| sum.length == 0 || sum.rounds == 0)
        {
            return Err(invalid(
                "secure_sum",
                "length and rounds must be positive".into(),
            ));
        }
        let config_hash = hex::encode(Sha256::digest(text.as_bytes()));
        let id = match &config.job_id {
            Some(id) => {
                identity::validate_id(id).map_err(|e| invalid("job_id", e.to_string()))?;
                id.clone()
            }
            None => format!("job-{}", &config_hash[..12]),
        };
        Ok(Self {
            config,
            id,
            text,
            config_hash,
        })
    }

    /// The public seed every party derives the neighbour graph from.
    pub fn graph_seed(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"fedseg/graph-seed/v1");
        hasher.update(self.config.seed.to_le_bytes());
        hasher.update(self.config_hash.as_bytes());
        hasher.finalize().into()
    }
}
