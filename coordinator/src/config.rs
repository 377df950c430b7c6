//! `coordinator.toml` and `job.toml`, as documented structs. Unknown keys
//! are refused, and every error names the key at fault. Relative paths are
//! taken from the directory of the file that names them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

pub use fedseg_common::config::ConfigError;
use fedseg_common::config::{base_dir, invalid, read_toml};
use fedseg_common::identity;
pub use fedseg_common::job::{
    CohortSettings, JobConfig, Optimizer, PrivacySettings, PropensitySettings, SecureSumJob,
    SegmentationSettings,
};
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
    /// Analyst identities admitted to the job service (`serve`): they
    /// submit, follow, cancel and fetch jobs.
    #[serde(default)]
    pub analysts: Vec<String>,
    /// Where the job service writes each job's result directory
    /// (`<results>/<job_id>/`); `results/` beside the journal by default.
    #[serde(default)]
    pub results: Option<PathBuf>,
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
    /// Seconds a new connection has to finish its TLS handshake, and then
    /// again to open its session with Hello; it is closed otherwise.
    pub hello_timeout_s: f64,
    /// Seconds between HTTP/2 keep-alive pings on an idle connection; a
    /// connection that leaves a ping unanswered this long is closed, so a
    /// peer that vanished does not keep its session.
    pub keepalive_s: f64,
}

impl Default for RoundSettings {
    fn default() -> Self {
        Self {
            phase_timeout_s: 30.0,
            cohort_timeout_s: 120.0,
            epoch_rounds: 16,
            max_message_bytes: 64 << 20,
            hello_timeout_s: 10.0,
            keepalive_s: 20.0,
        }
    }
}

/// Longest phase or cohort wait accepted: a day. (A larger one is a typo,
/// and `Duration` cannot hold every float.)
pub const MAX_TIMEOUT_S: f64 = 86_400.0;

/// Longest TLS handshake, Hello or keep-alive wait accepted: an hour.
pub const MAX_SESSION_TIMEOUT_S: f64 = 3_600.0;

/// Smallest message size limit that still carries a key set-up.
pub const MIN_MESSAGE_BYTES: usize = 64 << 10;

impl RoundSettings {
    /// Checks every value's range; the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let timeout = |t: f64| t > 0.0 && t <= MAX_TIMEOUT_S;
        if !timeout(self.phase_timeout_s) {
            return Err((
                "phase_timeout_s",
                "must be a number of seconds in (0, 86400]",
            ));
        }
        if !timeout(self.cohort_timeout_s) {
            return Err((
                "cohort_timeout_s",
                "must be a number of seconds in (0, 86400]",
            ));
        }
        let session = |t: f64| t > 0.0 && t <= MAX_SESSION_TIMEOUT_S;
        if !session(self.hello_timeout_s) {
            return Err((
                "hello_timeout_s",
                "must be a number of seconds in (0, 3600]",
            ));
        }
        if !session(self.keepalive_s) {
            return Err(("keepalive_s", "must be a number of seconds in (0, 3600]"));
        }
        if self.epoch_rounds == 0 {
            return Err(("epoch_rounds", "must be at least 1"));
        }
        if self.max_message_bytes < MIN_MESSAGE_BYTES {
            return Err(("max_message_bytes", "must be at least 65536"));
        }
        Ok(())
    }

    /// The phase timeout as a duration.
    pub fn phase_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.phase_timeout_s)
    }

    /// The TLS handshake and Hello timeout as a duration.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.hello_timeout_s)
    }

    /// The keep-alive interval (and ping timeout) as a duration.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs_f64(self.keepalive_s)
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
        for (key, ids) in [
            ("participants", &config.participants),
            ("auditors", &config.auditors),
            ("analysts", &config.analysts),
        ] {
            for id in ids {
                identity::validate_id(id).map_err(|e| invalid(key, e.to_string()))?;
            }
        }
        if config.participants.is_empty() {
            return Err(invalid("participants", "lists nobody".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = config
            .participants
            .iter()
            .find(|id| !seen.insert(id.as_str()))
        {
            return Err(invalid("participants", format!("lists {twice:?} twice")));
        }
        config
            .rounds
            .check()
            .map_err(|(key, why)| invalid(&format!("rounds.{key}"), why.into()))?;
        let base = base_dir(path);
        config.journal = base.join(&config.journal);
        config.results = config.results.map(|r| base.join(r));
        config.tls = config.tls.relative_to(&base);
        Ok(config)
    }

    /// Where the job service writes each job's result directory.
    pub fn results_dir(&self) -> PathBuf {
        self.results
            .clone()
            .unwrap_or_else(|| base_dir(&self.journal).join("results"))
    }
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
    /// The analyst who submitted it to the job service; none for a job the
    /// operator runs from a file.
    pub submission: Option<Submission>,
}

/// Who submitted a job, with the proof every site checks on the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The analyst's identity.
    pub analyst: String,
    /// Its certificate, DER.
    pub certificate: Vec<u8>,
    /// Its signature over the job's text (`fedseg_common::submission`).
    pub signature: Vec<u8>,
}

impl Job {
    /// Reads and checks `job.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(text, path)
    }

    /// Checks a job's text; errors name `origin` (its file, or where it
    /// came from) and the key at fault.
    pub fn from_text(text: String, origin: &Path) -> Result<Self, ConfigError> {
        let config = JobConfig::parse(&text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = invalid(origin);
        config.check().map_err(|(key, why)| invalid(&key, why))?;
        let seg = &config.segmentation;
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
            submission: None,
        })
    }

    /// Checks the job's `[cohort]` protocol settings against the cohort
    /// `config` lists (a smaller cohort only loosens the bound), refusing at
    /// start-up, naming the key, a quorum or collusion bound that leaves
    /// the secure sum open to a malicious coordinator.
    pub fn check_cohort(&self, path: &Path, config: &CoordinatorConfig) -> Result<(), ConfigError> {
        let listed = config.participants.len().max(2) as u32;
        self.config
            .cohort
            .protocol(listed)
            .map(|_| ())
            .map_err(|(key, why)| invalid(path)(&key, why))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str, participants: &str) -> Result<CoordinatorConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coordinator.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:1\"\njournal = \"journal.log\"\nid = \"coordinator\"\n\
                 participants = [{participants}]\n\
                 [tls]\nca = \"ca.crt\"\ncert = \"c.crt\"\nkey = \"c.key\"\n{extra}"
            ),
        )
        .unwrap();
        CoordinatorConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn out_of_range_settings_fail_at_start_up_naming_the_key() {
        assert!(load("", "\"bank-a\", \"bank-b\"").is_ok());
        for (extra, key) in [
            (
                "[rounds]\nphase_timeout_s = 1e300\n",
                "rounds.phase_timeout_s",
            ),
            (
                "[rounds]\ncohort_timeout_s = -1.0\n",
                "rounds.cohort_timeout_s",
            ),
            (
                "[rounds]\nmax_message_bytes = 0\n",
                "rounds.max_message_bytes",
            ),
            ("[rounds]\nepoch_rounds = 0\n", "rounds.epoch_rounds"),
            (
                "[rounds]\nhello_timeout_s = 0.0\n",
                "rounds.hello_timeout_s",
            ),
            ("[rounds]\nkeepalive_s = 1e9\n", "rounds.keepalive_s"),
        ] {
            let error = load(extra, "\"bank-a\", \"bank-b\"").unwrap_err();
            assert!(error.contains(key), "{key}: {error}");
        }
        let error = load("", "\"bank-a\", \"bank-a\"").unwrap_err();
        assert!(
            error.contains("participants") && error.contains("twice"),
            "{error}"
        );
    }
}
