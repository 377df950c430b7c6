//! The analyst's side of the job service: `analyst.toml` (who the analyst
//! is, where the coordinator is) and the calls of the service, with the
//! analyst's signature made here, from its own key. Used by
//! `fedseg-coordinator job ...` and by `fedseg-participant score --joint`
//! (a bank's analyst asking for a joint scoring job).

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, base_dir, check_connecting_member, read_toml};
use crate::keys::{KeyError, SigningKey};
use crate::mtls::{TlsError, TlsFiles};
use crate::proto::jobs_client::JobsClient;
use crate::proto::{
    CancelJobRequest, JobResultRequest, ListQueueRequest, QueuedJob, ShowJobRequest,
    SubmitJobRequest, SubmitJobResponse,
};
use crate::secagg::signing::Credential;
use serde::Deserialize;
use thiserror::Error;
use tonic::transport::Channel;

/// Why an analyst's command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `analyst.toml` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS material is missing or wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The analyst's key cannot sign.
    #[error("{path}: {error}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        error: KeyError,
    },
    /// Connecting failed.
    #[error("connecting to the coordinator: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The coordinator refused the call.
    #[error("the coordinator refused: {}", .0.message())]
    Status(#[from] tonic::Status),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// `analyst.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalystConfig {
    /// The analyst's identity, as in its certificate.
    pub id: String,
    /// The coordinator's URL, `https://host:port`.
    pub coordinator: String,
    /// The coordinator's identity, checked against its certificate.
    pub coordinator_id: String,
    /// CA certificate, the analyst's certificate and key.
    pub tls: TlsFiles,
}

impl AnalystConfig {
    /// Reads and checks `analyst.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (mut config, _): (Self, _) = read_toml(path)?;
        check_connecting_member(
            path,
            &config.id,
            &config.coordinator_id,
            &config.coordinator,
        )?;
        config.tls = config.tls.relative_to(&base_dir(path));
        Ok(config)
    }
}

/// A connection to the job service as one analyst.
pub struct Analyst {
    config: AnalystConfig,
    client: JobsClient<Channel>,
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Analyst {
    /// Connects over mutual TLS with the analyst's certificate.
    pub async fn connect(config: AnalystConfig) -> Result<Self, ClientError> {
        let tls = config.tls.client_config(&config.coordinator_id)?;
        let channel = crate::mtls::connect(&config.coordinator, tls).await?;
        let client = JobsClient::new(channel).max_decoding_message_size(256 << 20);
        Ok(Self { config, client })
    }

    /// Signs and submits the job file `job`.
    pub async fn submit(&mut self, job: &Path) -> Result<SubmitJobResponse, ClientError> {
        let text = String::from_utf8_lossy(&read(job)?).into_owned();
        self.submit_text(text).await
    }

    /// Signs and submits a job's text.
    pub async fn submit_text(&mut self, text: String) -> Result<SubmitJobResponse, ClientError> {
        let tls = &self.config.tls;
        let key_error = |error| ClientError::Key {
            path: tls.key.clone(),
            error,
        };
        let key_pem = String::from_utf8_lossy(&read(&tls.key)?).into_owned();
        let key = SigningKey::from_pkcs8_pem(&key_pem).map_err(key_error)?;
        let certificate =
            crate::certs::pem_to_der(&read(&tls.cert)?).map_err(|e| ClientError::Key {
                path: tls.cert.clone(),
                error: KeyError::Unsupported(format!(": {e}")),
            })?;
        let credential = Credential::new(key, certificate).map_err(key_error)?;
        let signature = crate::submission::sign(&credential, &text).to_vec();
        let request = SubmitJobRequest {
            config: text,
            signature,
        };
        Ok(self.client.submit(request).await?.into_inner())
    }

    /// The queue (`all`: every job the journal holds).
    pub async fn list(&mut self, all: bool) -> Result<Vec<QueuedJob>, ClientError> {
        let request = ListQueueRequest { all };
        Ok(self.client.list(request).await?.into_inner().jobs)
    }

    /// One job.
    pub async fn show(&mut self, job_id: &str) -> Result<QueuedJob, ClientError> {
        let request = ShowJobRequest {
            job_id: job_id.to_string(),
        };
        Ok(self.client.show(request).await?.into_inner())
    }

    /// Cancels a job this analyst submitted.
    pub async fn cancel(&mut self, job_id: &str, reason: &str) -> Result<QueuedJob, ClientError> {
        let request = CancelJobRequest {
            job_id: job_id.to_string(),
            reason: reason.to_string(),
        };
        Ok(self.client.cancel(request).await?.into_inner())
    }

    /// Writes a finished job's result files under `out`; their paths.
    pub async fn result(&mut self, job_id: &str, out: &Path) -> Result<Vec<PathBuf>, ClientError> {
        let request = JobResultRequest {
            job_id: job_id.to_string(),
        };
        let files = self.client.result(request).await?.into_inner().files;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClientError::Io { path, source }
        };
        std::fs::create_dir_all(out).map_err(io(out))?;
        let mut written = Vec::new();
        for file in files {
            // Names come from the coordinator: keep them to one plain
            // component under `out`.
            let Some(name) = Path::new(&file.name).file_name() else {
                continue;
            };
            let path = out.join(name);
            std::fs::write(&path, &file.content).map_err(io(&path))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A job as `job list` shows it: one line.
pub fn line(job: &QueuedJob) -> String {
    let analyst = if job.analyst.is_empty() {
        "(operator)"
    } else {
        &job.analyst
    };
    format!(
        "{:<24} {:<10} {:<14} {:<24} {:>4} {:>6.3}  {}",
        job.job_id,
        job.state,
        analyst,
        job.kinds.join(","),
        job.rounds_released,
        job.epsilon_spent,
        job.purpose
    )
}

/// The header of [`line`]s.
pub const LIST_HEADER: &str = "JOB                      STATE      ANALYST        KINDS                    ROUNDS    EPS  PURPOSE";

/// A job as `job show` prints it: `key: value` lines.
pub fn details(job: &QueuedJob) -> String {
    let mut out = String::new();
    let mut put = |key: &str, value: String| {
        if !value.is_empty() {
            out.push_str(&format!("{key}: {value}\n"));
        }
    };
    put("job", job.job_id.clone());
    put("state", job.state.clone());
    put("analyst", job.analyst.clone());
    put("purpose", job.purpose.clone());
    put("kinds", job.kinds.join(", "));
    put("config_hash", job.config_hash.clone());
    put("phase", job.phase.clone());
    put(
        "rounds",
        format!(
            "{} released, {} aborted",
            job.rounds_released, job.rounds_aborted
        ),
    );
    put("cohort", job.cohort.join(", "));
    let mut declined: Vec<_> = job.declined.iter().collect();
    declined.sort();
    for (site, reason) in declined {
        put(&format!("declined {site}"), reason.clone());
    }
    put("reason", job.reason.clone());
    if job.epsilon_spent > 0.0 {
        put("epsilon_spent", format!("{:.4}", job.epsilon_spent));
    }
    out
}
