//! `job.toml` (design.md, "Command-line contract"): one typed definition
//! that the coordinator loads and every participant reads from the offer it
//! receives, with the checks both apply. Unknown keys are refused.

use serde::Deserialize;

/// Most fractional bits of a secure-sum vector (an f64 carries 52).
pub const MAX_FRAC_BITS: u32 = 52;

/// Largest ε a job may declare: far beyond any meaningful protection, and
/// small enough for the accountant's arithmetic.
pub const MAX_EPSILON: f64 = 100.0;

/// The AHP judgments that reproduce the seed's weights (R 43.8%, F 23.7%,
/// M 18.6%, L 9.1%, T 4.8%): upper triangle of the R, F, M, L, T comparison
/// matrix in row order.
pub const DEFAULT_AHP_JUDGMENTS: [f64; 10] = [2.0, 3.0, 4.0, 8.0, 1.0, 3.0, 6.0, 2.0, 4.0, 2.0];

/// `job.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Job identifier; derived from the configuration hash when absent.
    #[serde(default)]
    pub job_id: Option<String>,
    /// What the job is for, in the analyst's words: shown to every site
    /// with the offer and journaled. Required of a job an analyst submits;
    /// optional in a job file run by the operator (older files have none).
    #[serde(default)]
    pub purpose: Option<String>,
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
    /// A vertical job (design.md, "Vertical joint modelling contract"):
    /// a label holder and its feature partners, who share customers.
    pub vertical: Option<VerticalSettings>,
    /// A campaign evaluation (`[campaign]`): the plan the sites drew their
    /// contact lists from, and the outcomes they recorded since.
    pub campaign: Option<crate::campaign::CampaignSettings>,
    /// The series a segmentation job belongs to: its segments are matched
    /// to the previous job's of the series, and migration is measured.
    #[serde(default)]
    pub series: Option<String>,
}

/// What a job computes from a site's data: the vocabulary of site
/// policies (`participant.toml`'s `[policy] kinds`) and of the job service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// The joint segmentation (standardisation, AHP, k-means).
    Segmentation,
    /// The propensity model fitted after a segmentation.
    Propensity,
    /// A named vector summed round after round (`[secure_sum]`).
    SecureSum,
    /// A vertical job: PSI and a joint model with feature partners.
    Vertical,
    /// A campaign's measured uplift: treated and control customers and
    /// their conversions, per segment and score decile (`[campaign]`).
    CampaignEvaluation,
}

impl JobKind {
    /// Every kind, in the order shown.
    pub const ALL: [JobKind; 5] = [
        JobKind::Segmentation,
        JobKind::Propensity,
        JobKind::SecureSum,
        JobKind::Vertical,
        JobKind::CampaignEvaluation,
    ];

    /// The name used in configuration files and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Segmentation => "segmentation",
            JobKind::Propensity => "propensity",
            JobKind::SecureSum => "secure-sum",
            JobKind::Vertical => "vertical",
            JobKind::CampaignEvaluation => "campaign-evaluation",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `purpose` accepted, in characters.
pub const MAX_PURPOSE_CHARS: usize = 2000;

/// `[vertical]` of `job.toml` (contract keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerticalSettings {
    /// The bank with the canonical tables and the label.
    pub label_holder: String,
    /// Feature partners, in party order (party 1, 2, ...).
    pub partners: Vec<String>,
    /// Smallest intersection released; below it the job stops.
    #[serde(default = "default_min_overlap")]
    pub min_overlap: u64,
    /// Release the intersection size only, nothing else.
    #[serde(default)]
    pub overlap_only: bool,
    /// Joint scoring instead of training: the id of the vertical job whose
    /// model blocks (each party's `output/<id>/vertical_model.json`) score
    /// the customers of a fresh intersection; the label holder writes
    /// `scores.csv`, nothing else is released but the count scored.
    #[serde(default)]
    pub score_with: Option<String>,
}

fn default_min_overlap() -> u64 {
    1000
}

impl VerticalSettings {
    /// The parties in party order: the label holder, then the partners.
    pub fn parties(&self) -> Vec<String> {
        std::iter::once(self.label_holder.clone())
            .chain(self.partners.iter().cloned())
            .collect()
    }
}

/// `[privacy]` of `job.toml`: the job's whole budget and the per-customer
/// bounds every release is clipped to.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
            ahp_judgments: DEFAULT_AHP_JUDGMENTS.to_vec(),
            frequent_interactions: 3,
        }
    }
}

/// Cohort settings of a job.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CohortSettings {
    /// Fewest participants the job starts with (default: all listed).
    pub min_participants: Option<u32>,
    /// Shamir threshold (default: a majority of each member's share holders).
    pub threshold: Option<u32>,
    /// Neighbours per member (default: complete up to 32, else ≈ 3·log2 n).
    pub neighbours: Option<u32>,
    /// Most cohort members assumed to collude with a malicious coordinator,
    /// c (default: the largest c below n/3 and below the threshold).
    pub collusion: Option<u32>,
    /// Signatures of distinct survivors a round's survivor set needs before
    /// any share is revealed (default and least: (n + c)/2 + 1).
    pub quorum: Option<u32>,
}

/// The secure sums' parameters of a cohort, from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolParams {
    /// Neighbours per member.
    pub neighbours: u32,
    /// Shamir threshold t.
    pub threshold: u32,
    /// Colluding members tolerated, c.
    pub collusion: u32,
    /// Signatures a survivor set needs.
    pub quorum: u32,
}

impl CohortSettings {
    /// The parameters for a cohort of `n` (at least 2), or the key at fault:
    /// t must exceed c (c colluders hold c shares of every secret they
    /// neighbour) and the quorum must exceed (n + c)/2 (so that two survivor
    /// sets of one round cannot both be confirmed) without exceeding n.
    pub fn protocol(&self, n: u32) -> Result<ProtocolParams, Fault> {
        let neighbours = self
            .neighbours
            .unwrap_or_else(|| crate::secagg::NeighbourGraph::default_degree(n));
        let degree = neighbours + neighbours % 2;
        let holders = if degree >= n.saturating_sub(1) {
            n
        } else {
            degree + 1
        };
        let threshold = self.threshold.unwrap_or(holders / 2 + 1);
        let collusion = self
            .collusion
            .unwrap_or_else(|| (n.div_ceil(3).saturating_sub(1)).min(threshold.saturating_sub(1)));
        let bad = |key: &str, why: String| Err((key.to_string(), why));
        if collusion >= threshold {
            return bad(
                "cohort.collusion",
                format!(
                    "{collusion} colluders need a threshold above {collusion}, not {threshold}:                      they would hold enough shares to rebuild a member's secrets"
                ),
            );
        }
        let least = crate::secagg::signing::min_quorum(n, collusion);
        let quorum = self.quorum.unwrap_or(least);
        if quorum < least || quorum > n {
            return bad(
                "cohort.quorum",
                format!(
                    "must be within {least}..={n} for {n} members and {collusion} colluders:                      (n + c)/2 or fewer signatures let a coordinator and its colluders                      confirm two survivor sets of one round"
                ),
            );
        }
        Ok(ProtocolParams {
            neighbours,
            threshold,
            collusion,
            quorum,
        })
    }
}

/// Sum a vector that each participant maps by name, for several rounds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

/// A key of `job.toml` at fault, and why.
pub type Fault = (String, String);

fn fault(key: &str, why: String) -> Result<(), Fault> {
    Err((key.to_string(), why))
}

impl JobConfig {
    /// Parses a job's TOML text (unknown keys refused).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// What this job computes from a site's data, in [`JobKind::ALL`]
    /// order: a site's policy must allow every one of them.
    pub fn kinds(&self) -> Vec<JobKind> {
        if self.vertical.is_some() {
            vec![JobKind::Vertical]
        } else if self.campaign.is_some() {
            vec![JobKind::CampaignEvaluation]
        } else if self.secure_sum.is_some() {
            vec![JobKind::SecureSum]
        } else if self.propensity.enabled {
            vec![JobKind::Segmentation, JobKind::Propensity]
        } else {
            vec![JobKind::Segmentation]
        }
    }

    /// The reference date.
    pub fn as_of_date(&self) -> Option<time::Date> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(&self.as_of, &format).ok()
    }

    /// Checks every value's range; the key at fault and why. (The AHP
    /// judgments' consistency is the coordinator's to check.)
    pub fn check(&self) -> Result<(), Fault> {
        if self.as_of_date().is_none() {
            return fault("as_of", format!("{:?} is not an ISO date", self.as_of));
        }
        if let Some(purpose) = &self.purpose
            && (purpose.trim().is_empty() || purpose.chars().count() > MAX_PURPOSE_CHARS)
        {
            return fault(
                "purpose",
                format!("must be 1 to {MAX_PURPOSE_CHARS} characters of text"),
            );
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return fault("holdout_fraction", "must be in [0, 1)".into());
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return fault("l2", "must be a non-negative number".into());
        }
        let seg = &self.segmentation;
        if seg.k_min < 2 || seg.k_max < seg.k_min || seg.k_max > 50 {
            return fault(
                "segmentation.k_max",
                "need 2 <= k_min <= k_max <= 50".into(),
            );
        }
        if seg.restarts == 0 || seg.restarts > 100 {
            return fault("segmentation.restarts", "must be 1 to 100".into());
        }
        if seg.max_iterations == 0 {
            return fault("segmentation.max_iterations", "must be at least 1".into());
        }
        if !(seg.tolerance >= 0.0 && seg.tolerance.is_finite()) {
            return fault(
                "segmentation.tolerance",
                "must be a non-negative number".into(),
            );
        }
        let prop = &self.propensity;
        if prop.max_iterations == 0 || prop.max_iterations > 1000 {
            return fault("propensity.max_iterations", "must be 1 to 1000".into());
        }
        if !(prop.tolerance > 0.0 && prop.tolerance.is_finite()) {
            return fault("propensity.tolerance", "must be a positive number".into());
        }
        if !(10..=100_000).contains(&prop.score_bins) {
            return fault("propensity.score_bins", "must be 10 to 100000".into());
        }
        if !(prop.learning_rate > 0.0 && prop.mu >= 0.0 && prop.local_epochs > 0) {
            return fault(
                "propensity.learning_rate",
                "need learning_rate > 0, mu >= 0 and local_epochs >= 1".into(),
            );
        }
        let cohort = &self.cohort;
        if cohort.min_participants.is_some_and(|n| n < 2) {
            return fault(
                "cohort.min_participants",
                "must be at least 2 (a sum of one site is that site's vector)".into(),
            );
        }
        if cohort.threshold.is_some_and(|t| t < 2) {
            return fault(
                "cohort.threshold",
                "must be at least 2 (one share would reveal a secret)".into(),
            );
        }
        if cohort.neighbours == Some(0) {
            return fault("cohort.neighbours", "must be at least 1".into());
        }
        if let Some(sum) = &self.secure_sum {
            if !(sum.lo.is_finite() && sum.hi.is_finite() && sum.lo < sum.hi) {
                return fault("secure_sum.lo", "need finite lo < hi".into());
            }
            if sum.frac_bits > MAX_FRAC_BITS {
                return fault(
                    "secure_sum.frac_bits",
                    format!("must be at most {MAX_FRAC_BITS}"),
                );
            }
        }
        if let Some(vertical) = &self.vertical {
            self.check_vertical(vertical)?;
        }
        if let Some(series) = &self.series {
            if !crate::campaign::is_plain_name(series) {
                return fault(
                    "series",
                    "must be 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
                        .into(),
                );
            }
            if self.secure_sum.is_some() || self.vertical.is_some() || self.campaign.is_some() {
                return fault(
                    "series",
                    "only a segmentation job belongs to a series".into(),
                );
            }
        }
        if let Some(campaign) = &self.campaign {
            campaign.check()?;
            if self.secure_sum.is_some() || self.vertical.is_some() {
                return fault(
                    "campaign",
                    "a campaign evaluation has no [secure_sum] and no [vertical] section".into(),
                );
            }
        }
        if let Some(privacy) = &self.privacy {
            if privacy.epsilon > MAX_EPSILON {
                return fault(
                    "privacy.epsilon",
                    format!("must be at most {MAX_EPSILON} (beyond it nothing is protected)"),
                );
            }
            if !(privacy.epsilon > 0.0 && privacy.epsilon.is_finite()) {
                return fault("privacy.epsilon", "must be a positive number".into());
            }
            if !(privacy.delta > 0.0 && privacy.delta < 1.0) {
                return fault("privacy.delta", "must lie in (0, 1)".into());
            }
            if let Some(j) = privacy
                .clip
                .iter()
                .position(|c| !(*c > 0.0 && c.is_finite()))
            {
                return fault(
                    "privacy.clip",
                    format!("bound {} of R, F, M, L, T must be positive", j + 1),
                );
            }
            if self.propensity.enabled && prop.optimizer != Optimizer::Newton {
                return fault(
                    "propensity.optimizer",
                    "a local-epochs model update has no per-customer bound; use newton under [privacy]"
                        .into(),
                );
            }
            if self.secure_sum.is_some() {
                return fault(
                    "privacy",
                    "a [secure_sum] vector has no per-customer bound".into(),
                );
            }
        }
        Ok(())
    }
}

impl JobConfig {
    fn check_vertical(&self, vertical: &VerticalSettings) -> Result<(), Fault> {
        let parties = vertical.parties();
        if vertical.partners.is_empty() {
            return fault("vertical.partners", "name at least one partner".into());
        }
        if parties.len() > crate::psi::MAX_PARTIES as usize {
            return fault(
                "vertical.partners",
                format!("at most {} partners", crate::psi::MAX_PARTIES - 1),
            );
        }
        if let Some(p) = parties.iter().position(|p| p.trim().is_empty()) {
            let key = if p == 0 {
                "vertical.label_holder"
            } else {
                "vertical.partners"
            };
            return fault(key, "an identity must not be empty".into());
        }
        let distinct: std::collections::BTreeSet<&String> = parties.iter().collect();
        if distinct.len() != parties.len() {
            return fault(
                "vertical.partners",
                "each party may appear once (the label holder is not a partner)".into(),
            );
        }
        if self.secure_sum.is_some() || self.privacy.is_some() {
            return fault(
                "vertical",
                "a vertical job has no [secure_sum] and no [privacy] section".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
