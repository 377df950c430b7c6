//! `participant.toml`, as a documented struct. Unknown keys are refused and
//! errors name the key at fault; relative paths are taken from the file's
//! directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use fedseg_common::config::ConfigError;
use fedseg_common::config::{base_dir, invalid, read_toml};
use fedseg_common::identity;
use fedseg_common::mtls::TlsFiles;
use serde::Deserialize;

use crate::database;
use crate::rfmlt::{
    self, BadRowPolicy, ColumnNames, DataError, Features, MaxBadRows, OnBadRow, Tables,
};

/// `participant.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantConfig {
    /// This site's identity, as in its certificate.
    pub id: String,
    /// The coordinator's URL, `https://host:port`. The participant only
    /// ever connects out to it.
    pub coordinator: String,
    /// The coordinator's identity, checked against its certificate.
    pub coordinator_id: String,
    /// The egress ledger file (contract key).
    pub ledger: PathBuf,
    /// CA certificate, own certificate and key.
    pub tls: TlsFiles,
    /// Named local vectors a secure-sum job may ask for: name → text file
    /// of numbers separated by whitespace or commas.
    #[serde(default)]
    pub vectors: BTreeMap<String, PathBuf>,
    /// Reconnection back-off.
    #[serde(default)]
    pub reconnect: ReconnectSettings,
    /// This site's canonical tables (contract keys).
    pub data: Option<DataConfig>,
    /// A Prometheus text file of what this site sent, rewritten after every
    /// message (for node_exporter's textfile collector); off when absent.
    pub metrics_file: Option<PathBuf>,
    /// Directory for this site's local results (its customers' segments
    /// and a copy of each job's result); never sent anywhere.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// The most privacy loss this site accepts. Without it the site takes
    /// part in any job, with or without differential privacy; with it, only
    /// in jobs whose declared budget fits.
    pub privacy: Option<PrivacyPolicy>,
}

/// A site's privacy policy: (ε, δ) it accepts per job and per rolling
/// period, the period's spend read from its own ledger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPolicy {
    /// Largest ε of one job.
    pub max_epsilon_per_job: f64,
    /// Largest δ of one job; also the δ at which the period is counted.
    #[serde(default = "default_max_delta")]
    pub max_delta: f64,
    /// Largest ε over every job of the last `period_days`, if limited.
    pub max_epsilon_per_period: Option<f64>,
    /// Length of the rolling period in days.
    #[serde(default = "default_period_days")]
    pub period_days: u32,
}

fn default_max_delta() -> f64 {
    1e-6
}

fn default_period_days() -> u32 {
    30
}

fn default_output() -> PathBuf {
    PathBuf::from("out")
}

/// `[data]`: where the three canonical tables are, and the bank's own
/// column names where they differ from the canonical ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Transactions table: CSV, or Parquet when the name ends in `.parquet`.
    pub transactions: PathBuf,
    /// Interactions table (CSV or Parquet).
    pub interactions: PathBuf,
    /// Customers table (CSV or Parquet).
    pub customers: PathBuf,
    /// `[data.columns.<table>]`: canonical column → the bank's header.
    #[serde(default)]
    pub columns: ColumnNames,
    /// A PostgreSQL connection string (`host=… user=… dbname=…`). When set,
    /// `transactions`, `interactions` and `customers` are SQL queries run
    /// there, each yielding the table's canonical columns.
    pub postgres: Option<String>,
    /// `"fail"` (default): the first bad row stops the site; `"skip"`: bad
    /// rows are left out and counted per table and reason.
    #[serde(default)]
    pub on_bad_row: OnBadRow,
    /// With `on_bad_row = "skip"`, the most bad rows one table may have: a
    /// whole number, or a fraction of the table's rows below 1 (`0.001`).
    /// Past it the site declines the job.
    #[serde(default)]
    pub max_bad_rows: MaxBadRows,
}

impl DataConfig {
    /// Every consenting customer's features as of `as_of`, from the files
    /// or from the bank's database.
    pub fn features(&self, as_of: time::Date) -> Result<Features, DataError> {
        let policy = self.policy();
        let Some(connection) = &self.postgres else {
            return rfmlt::compute_with(&self.tables(), as_of, &policy);
        };
        let source = database::Source {
            connection: connection.clone(),
            transactions: self.transactions.to_string_lossy().into_owned(),
            interactions: self.interactions.to_string_lossy().into_owned(),
            customers: self.customers.to_string_lossy().into_owned(),
        };
        let query = database::features(&source, as_of, &policy);
        match tokio::runtime::Handle::try_current() {
            // Inside the node's runtime: wait here without stalling it.
            Ok(handle) => tokio::task::block_in_place(|| handle.block_on(query)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DataError::Read {
                    path: "postgres".into(),
                    reason: e.to_string(),
                })?
                .block_on(query),
        }
    }

    /// The bad-row policy of `on_bad_row` and `max_bad_rows`.
    pub fn policy(&self) -> BadRowPolicy {
        BadRowPolicy {
            on_bad_row: self.on_bad_row,
            max_bad_rows: self.max_bad_rows,
        }
    }

    /// The tables as the feature computation reads them.
    pub fn tables(&self) -> Tables {
        Tables {
            transactions: self.transactions.clone(),
            interactions: self.interactions.clone(),
            customers: self.customers.clone(),
            columns: self.columns.clone(),
        }
    }
}

/// How the participant retries a lost connection: exponential back-off with
/// full jitter between `initial_ms` and `max_ms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSettings {
    /// First delay ceiling, milliseconds.
    pub initial_ms: u64,
    /// Largest delay ceiling, milliseconds.
    pub max_ms: u64,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        Self {
            initial_ms: 200,
            max_ms: 10_000,
        }
    }
}

impl ParticipantConfig {
    /// Reads and checks `participant.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (mut config, _): (Self, _) = read_toml(path)?;
        let invalid = invalid(path);
        identity::validate_id(&config.id).map_err(|e| invalid("id", e.to_string()))?;
        identity::validate_id(&config.coordinator_id)
            .map_err(|e| invalid("coordinator_id", e.to_string()))?;
        if !config.coordinator.starts_with("https://") {
            return Err(invalid("coordinator", "must be an https:// URL".into()));
        }
        if config.reconnect.initial_ms == 0 || config.reconnect.max_ms < config.reconnect.initial_ms
        {
            return Err(invalid("reconnect", "need 0 < initial_ms <= max_ms".into()));
        }
        let base = base_dir(path);
        config.ledger = base.join(&config.ledger);
        config.tls = config.tls.relative_to(&base);
        for file in config.vectors.values_mut() {
            *file = base.join(&*file);
        }
        if let Some(data) = &config.data {
            if !data.max_bad_rows.is_valid() {
                return Err(invalid(
                    "data.max_bad_rows",
                    "must be a whole number of rows or a fraction in [0, 1)".into(),
                ));
            }
            if data.on_bad_row == OnBadRow::Fail && data.max_bad_rows != MaxBadRows::default() {
                return Err(invalid(
                    "data.max_bad_rows",
                    "needs on_bad_row = \"skip\"".into(),
                ));
            }
        }
        if let Some(data) = &mut config.data
            && data.postgres.is_some()
        {
            if data.columns != ColumnNames::default() {
                return Err(invalid(
                    "data.columns",
                    "with `postgres` the queries name the columns".into(),
                ));
            }
        } else if let Some(data) = &mut config.data {
            if let Some(unknown) = data.columns.unknown() {
                return Err(invalid(
                    &format!("data.columns.{unknown}"),
                    "not a canonical column of that table".into(),
                ));
            }
            for file in [
                &mut data.transactions,
                &mut data.interactions,
                &mut data.customers,
            ] {
                *file = base.join(&*file);
            }
        }
        if let Some(policy) = &config.privacy {
            let positive = |key: &str, value: f64| {
                if value.is_finite() && value > 0.0 {
                    Ok(())
                } else {
                    Err(invalid(
                        key,
                        format!("must be a positive number, got {value}"),
                    ))
                }
            };
            positive("privacy.max_epsilon_per_job", policy.max_epsilon_per_job)?;
            if let Some(period) = policy.max_epsilon_per_period {
                positive("privacy.max_epsilon_per_period", period)?;
            }
            if !(policy.max_delta > 0.0 && policy.max_delta < 1.0) {
                return Err(invalid(
                    "privacy.max_delta",
                    format!("must lie in (0, 1), got {}", policy.max_delta),
                ));
            }
            if policy.period_days == 0 {
                return Err(invalid("privacy.period_days", "must be at least 1".into()));
            }
        }
        config.output = base.join(&config.output);
        if let Some(file) = &mut config.metrics_file {
            *file = base.join(&*file);
        }
        Ok(config)
    }
}
