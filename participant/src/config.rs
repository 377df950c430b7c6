//! `participant.toml`, as a documented struct. Unknown keys are refused and
//! errors name the key at fault; relative paths are taken from the file's
//! directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use fedseg_common::config::ConfigError;
use fedseg_common::config::{base_dir, check_connecting_member, invalid, read_toml};
use fedseg_common::mtls::TlsFiles;
use serde::Deserialize;

use crate::database;
use crate::partner::{self, FeatureColumn, FeatureTable, PartnerRows};
use crate::policy::SitePolicy;
use crate::rfmlt::{
    self, BadRowPolicy, ColumnNames, DAYS_AFTER_AS_OF, DataError, EARLIEST_DATE, Features,
    MaxBadRows, OnBadRow, Tables,
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
    /// in jobs whose declared budget fits. Written as `[policy.privacy]` (or,
    /// as before `[policy]` existed, a top-level `[privacy]`); after
    /// [`ParticipantConfig::load`] it is here either way.
    pub privacy: Option<PrivacyPolicy>,
    /// `[policy]`: which jobs this site takes part in (`policy.rs`).
    pub policy: Option<SitePolicy>,
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

/// `[data]`: where the three canonical tables are (a bank), or a feature
/// table (a feature partner of vertical jobs), or both; and the site's own
/// column names where they differ from the canonical ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Transactions table: CSV, or Parquet when the name ends in `.parquet`.
    pub transactions: Option<PathBuf>,
    /// Interactions table (CSV or Parquet).
    pub interactions: Option<PathBuf>,
    /// Customers table (CSV or Parquet).
    pub customers: Option<PathBuf>,
    /// A feature partner's table: `customer_id` and the offered columns.
    pub features: Option<PathBuf>,
    /// A campaign's outcomes table (CSV or Parquet, or a query with
    /// `postgres`): `customer_id`, `contacted`, `converted_after`
    /// (booleans), read by campaign evaluation jobs under the same bad-row
    /// policy.
    pub outcomes: Option<PathBuf>,
    /// `[data.feature_columns]`: the columns this site offers, each with
    /// `clip = [lo, hi]` and an optional `transform = "log1p"`.
    #[serde(default)]
    pub feature_columns: BTreeMap<String, FeatureColumn>,
    /// The feature table's own consent column (booleans), if it has one.
    pub features_consent: Option<String>,
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
    /// The earliest plausible date of any row (default 1900-01-01); an
    /// earlier one is a bad date.
    #[serde(default, with = "iso_date")]
    pub earliest_date: Option<time::Date>,
    /// Rows dated more than this many days after the job's `as_of` are bad
    /// dates (default 366).
    #[serde(default = "default_days_after_as_of")]
    pub days_after_as_of: u32,
}

fn default_days_after_as_of() -> u32 {
    DAYS_AFTER_AS_OF
}

/// An optional ISO date in TOML text.
mod iso_date {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<time::Date>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        crate::rfmlt::parse_date(&text)
            .filter(|_| text.len() == 10)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an ISO date")))
    }
}

impl DataConfig {
    /// Every consenting customer's features as of `as_of`, from the files
    /// or from the bank's database.
    pub fn features(&self, as_of: time::Date) -> Result<Features, DataError> {
        let policy = self.policy();
        let Some(tables) = self.tables() else {
            return Err(DataError::Read {
                path: "participant.toml".into(),
                reason: "this site holds no canonical tables ([data] transactions, interactions, customers)".into(),
            });
        };
        let Some(connection) = &self.postgres else {
            return rfmlt::compute_with(&tables, as_of, &policy);
        };
        let text = |p: &PathBuf| p.to_string_lossy().into_owned();
        let source = database::Source {
            connection: connection.clone(),
            transactions: text(&tables.transactions),
            interactions: text(&tables.interactions),
            customers: text(&tables.customers),
        };
        block_on(database::features(&source, as_of, &policy))
    }

    /// The feature partner's consenting customers and offered values.
    pub fn partner_rows(&self) -> Result<PartnerRows, DataError> {
        let table = self.feature_table().ok_or_else(|| DataError::Read {
            path: "participant.toml".into(),
            reason: "this site offers no feature table ([data] features)".into(),
        })?;
        match &self.postgres {
            None => partner::read(&table, &self.policy()),
            Some(connection) => {
                block_on(database::partner_rows(connection, &table, &self.policy()))
            }
        }
    }

    /// The campaign outcomes table, from the file or the bank's database.
    pub fn outcomes_table(&self) -> Result<crate::outcomes::Outcomes, DataError> {
        let source = self.outcomes.as_ref().ok_or_else(|| DataError::Read {
            path: "participant.toml".into(),
            reason: "names no [data] outcomes table".into(),
        })?;
        match &self.postgres {
            None => crate::outcomes::read_file(source, &self.policy()),
            Some(connection) => block_on(crate::outcomes::read_sql(
                connection,
                &source.to_string_lossy(),
                &self.policy(),
            )),
        }
    }

    /// The bad-row policy of `on_bad_row`, `max_bad_rows`,
    /// `earliest_date` and `days_after_as_of`.
    pub fn policy(&self) -> BadRowPolicy {
        BadRowPolicy {
            on_bad_row: self.on_bad_row,
            max_bad_rows: self.max_bad_rows,
            earliest_date: self.earliest_date.unwrap_or(EARLIEST_DATE),
            days_after_as_of: self.days_after_as_of,
        }
    }

    /// The canonical tables as the feature computation reads them, if the
    /// site holds them.
    pub fn tables(&self) -> Option<Tables> {
        Some(Tables {
            transactions: self.transactions.clone()?,
            interactions: self.interactions.clone()?,
            customers: self.customers.clone()?,
            columns: self.columns.clone(),
        })
    }

    /// The feature table, if the site offers one.
    pub fn feature_table(&self) -> Option<FeatureTable> {
        Some(FeatureTable {
            path: self.features.clone()?,
            columns: self.feature_columns.clone(),
            consent: self.features_consent.clone(),
            names: self.columns.features.clone(),
        })
    }

    /// Checks the keys together; the key at fault and why.
    fn check(&self) -> Result<(), (String, String)> {
        let fault = |key: &str, why: &str| Err((key.to_string(), why.to_string()));
        let canonical = [&self.transactions, &self.interactions, &self.customers];
        let held = canonical.iter().filter(|t| t.is_some()).count();
        if held != 0 && held != 3 {
            return fault(
                "data",
                "transactions, interactions and customers go together",
            );
        }
        if held == 0 && self.features.is_none() {
            return fault(
                "data",
                "needs the canonical tables (transactions, interactions, customers) or a feature table (features)",
            );
        }
        if self.features.is_some() == self.feature_columns.is_empty() {
            return fault(
                "data.feature_columns",
                "a feature table and its offered columns go together",
            );
        }
        for (name, column) in &self.feature_columns {
            if name == "customer_id" || name.is_empty() {
                return fault(&format!("data.feature_columns.{name}"), "not a column name");
            }
            if let Some(problem) = column.problem() {
                return fault(&format!("data.feature_columns.{name}"), problem);
            }
        }
        if !self.max_bad_rows.is_valid() {
            return fault(
                "data.max_bad_rows",
                "must be a whole number of rows or a fraction in [0, 1)",
            );
        }
        if self.on_bad_row == OnBadRow::Fail && self.max_bad_rows != MaxBadRows::default() {
            return fault("data.max_bad_rows", "needs on_bad_row = \"skip\"");
        }
        if self.postgres.is_some() {
            if self.columns != ColumnNames::default() {
                return fault(
                    "data.columns",
                    "with `postgres` the queries name the columns",
                );
            }
        } else if let Some(unknown) = self.columns.unknown(
            &self
                .feature_columns
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            self.features_consent.as_deref(),
        ) {
            return fault(
                &format!("data.columns.{unknown}"),
                "not a canonical column of that table",
            );
        }
        Ok(())
    }

    /// Paths relative to the config file's directory (not queries).
    fn relative_to(&mut self, base: &Path) {
        if self.postgres.is_some() {
            return;
        }
        for file in [
            &mut self.transactions,
            &mut self.interactions,
            &mut self.customers,
            &mut self.features,
            &mut self.outcomes,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
    }
}

/// Runs a database future to its end, inside the node's runtime or not.
fn block_on<T>(
    query: impl std::future::Future<Output = Result<T, DataError>>,
) -> Result<T, DataError> {
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

/// Checks a privacy policy written under `table`; the key at fault and why.
fn check_privacy(policy: &PrivacyPolicy, table: &str) -> Result<(), (String, String)> {
    let positive = |key: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err((
                format!("{table}.{key}"),
                format!("must be a positive number, got {value}"),
            ))
        }
    };
    positive("max_epsilon_per_job", policy.max_epsilon_per_job)?;
    if let Some(period) = policy.max_epsilon_per_period {
        positive("max_epsilon_per_period", period)?;
    }
    if !(policy.max_delta > 0.0 && policy.max_delta < 1.0) {
        return Err((
            format!("{table}.max_delta"),
            format!("must lie in (0, 1), got {}", policy.max_delta),
        ));
    }
    if policy.period_days == 0 {
        return Err((format!("{table}.period_days"), "must be at least 1".into()));
    }
    Ok(())
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
        check_connecting_member(
            path,
            &config.id,
            &config.coordinator_id,
            &config.coordinator,
        )?;
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
        if let Some(data) = &mut config.data {
            data.check().map_err(|(key, why)| invalid(&key, why))?;
            data.relative_to(&base);
        }
        // Where the privacy limits were written, for the errors.
        let mut table = "privacy";
        if let Some(policy) = &mut config.policy {
            policy.check().map_err(|(key, why)| invalid(&key, why))?;
            if let Some(privacy) = policy.privacy.take() {
                if config.privacy.is_some() {
                    return Err(invalid(
                        "policy.privacy",
                        "the top-level [privacy] says the same; keep one of them".into(),
                    ));
                }
                config.privacy = Some(privacy);
                table = "policy.privacy";
            }
        }
        if let Some(privacy) = &config.privacy {
            check_privacy(privacy, table).map_err(|(key, why)| invalid(&key, why))?;
        }
        config.output = base.join(&config.output);
        if let Some(file) = &mut config.metrics_file {
            *file = base.join(&*file);
        }
        Ok(config)
    }
}
