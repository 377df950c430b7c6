//! The job service of a long-running `serve`: analysts (certificate role
//! `analyst`, listed in `coordinator.toml`) submit signed jobs, follow them,
//! cancel them and fetch their results; the [`scheduler`] runs them one at
//! a time in submission order. The journal is the queue's log: a job is
//! queued when its `job_queued` record is on disk, and a restarted
//! coordinator resumes the job that was running and runs the rest.
//!
//! Jobs run one at a time because every job of a consortium this size
//! needs the same participants, and one engine owns their sessions; a job
//! waits for its cohort to connect before it starts.

mod rpc;
pub mod scheduler;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fedseg_common::journal::Entry;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::config::{CoordinatorConfig, Job, Submission};
use crate::journal::{JournalWriteError, JournalWriter};
use crate::metrics::Metrics;
pub use rpc::JobsService;
use view::{JobView, State};

/// Why the job service refused a request.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The submitted job is not valid (the message names the key).
    #[error("{0}")]
    Invalid(String),
    /// The signature does not hold.
    #[error(transparent)]
    Signature(#[from] fedseg_common::submission::SubmissionError),
    /// A job with this identifier exists.
    #[error("job {0} exists in the journal; give the new one another job_id")]
    Exists(String),
    /// No such job.
    #[error("no job {0}")]
    NotFound(String),
    /// The job is over, or the caller may not touch it.
    #[error("{0}")]
    Refused(String),
    /// The journal could not be written.
    #[error(transparent)]
    Journal(#[from] JournalWriteError),
}

/// A cancellation the scheduler carries out for the job it runs.
pub struct Cancel {
    job_id: String,
    by: String,
    reason: String,
    done: oneshot::Sender<()>,
}

/// The queue, as the job service and the scheduler share it.
pub struct JobQueue {
    config: CoordinatorConfig,
    ca_der: Vec<u8>,
    results: PathBuf,
    metrics: Arc<Metrics>,
    /// The service's journal handle and the running job, under one lock:
    /// starting a job and cancelling a queued one exclude each other.
    state: Mutex<QueueState>,
    wake: Notify,
    cancels: mpsc::UnboundedSender<Cancel>,
}

struct QueueState {
    journal: JournalWriter,
    running: Option<String>,
}

impl JobQueue {
    /// The queue of the journal `journal` shares; results go under
    /// `config.results`. Returns the receiving end of the scheduler's
    /// cancellations.
    pub fn new(
        config: &CoordinatorConfig,
        journal: &JournalWriter,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Cancel>), QueueError> {
        let ca_der = config
            .tls
            .ca_pem()
            .map_err(|e| QueueError::Invalid(e.to_string()))
            .and_then(|pem| {
                fedseg_common::certs::pem_to_der(&pem)
                    .map_err(|e| QueueError::Invalid(format!("the CA certificate: {e}")))
            })?;
        let (cancels, receiver) = mpsc::unbounded_channel();
        let queue = Arc::new(Self {
            config: config.clone(),
            ca_der,
            results: config.results_dir(),
            metrics,
            state: Mutex::new(QueueState {
                journal: journal.share(),
                running: None,
            }),
            wake: Notify::new(),
            cancels,
        });
        queue.count_queued();
        Ok((queue, receiver))
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every job the journal holds.
    pub fn jobs(&self) -> Vec<JobView> {
        view::jobs(&self.lock().journal.records())
    }

    /// One job.
    pub fn job(&self, job_id: &str) -> Result<JobView, QueueError> {
        self.jobs()
            .into_iter()
            .find(|j| j.job_id == job_id)
            .ok_or_else(|| QueueError::NotFound(job_id.to_string()))
    }

    /// Where a job's result files are.
    pub fn result_dir(&self, job_id: &str) -> PathBuf {
        self.results.join(job_id)
    }

    /// Queues `text`, signed by the analyst whose certificate (DER) is
    /// `certificate`: the job's identifier and the jobs ahead of it.
    pub fn submit(
        &self,
        text: String,
        certificate: &[u8],
        signature: &[u8],
    ) -> Result<(String, u32), QueueError> {
        let analyst = fedseg_common::submission::verify(
            certificate,
            signature,
            &text,
            &self.ca_der,
            fedseg_common::certs::unix_now(),
        )?;
        let origin = Path::new("the submitted job");
        let job = Job::from_text(text, origin).map_err(|e| QueueError::Invalid(e.to_string()))?;
        job.check_cohort(origin, &self.config)
            .map_err(|e| QueueError::Invalid(e.to_string()))?;
        let Some(purpose) = job.config.purpose.clone() else {
            return Err(QueueError::Invalid(
                "the submitted job: key `purpose`: a submitted job must state its purpose".into(),
            ));
        };
        let mut state = self.lock();
        let jobs = view::jobs(&state.journal.records());
        if jobs.iter().any(|j| j.job_id == job.id) {
            return Err(QueueError::Exists(job.id));
        }
        let ahead = jobs.iter().filter(|j| j.pending()).count() as u32;
        state.journal.append(Entry::JobQueued {
            job_id: job.id.clone(),
            analyst: analyst.clone(),
            purpose,
            config_hash: hex::encode(Sha256::digest(job.text.as_bytes())),
            config: job.text.clone(),
            certificate: hex::encode(certificate),
            signature: hex::encode(signature),
        })?;
        drop(state);
        tracing::info!(job = %job.id, %analyst, ahead, "job queued");
        self.count_queued();
        self.wake.notify_one();
        Ok((job.id, ahead))
    }

    /// Cancels `job_id` for analyst `by`: a queued job at once, the running
    /// one by its scheduler, which stops it before journaling the
    /// cancellation, so nothing of it is released after that record.
    pub async fn cancel(&self, job_id: &str, by: &str, reason: &str) -> Result<(), QueueError> {
        let job = self.job(job_id)?;
        if !job.pending() {
            return Err(QueueError::Refused(format!(
                "job {job_id} is {} and not on the queue",
                job.state.as_str()
            )));
        }
        if job.analyst != by {
            return Err(QueueError::Refused(format!(
                "job {job_id} was submitted by {}; only they may cancel it",
                job.analyst
            )));
        }
        let running = {
            let mut state = self.lock();
            if state.running.as_deref() == Some(job_id) {
                let (done, finished) = oneshot::channel();
                let _ = self.cancels.send(Cancel {
                    job_id: job_id.to_string(),
                    by: by.to_string(),
                    reason: reason.to_string(),
                    done,
                });
                Some(finished)
            } else {
                cancelled(&mut state.journal, job_id, by, reason)?;
                None
            }
        };
        match running {
            Some(finished) => {
                let _ = finished.await;
            }
            None => self.metrics.job_ended("cancelled", None),
        }
        self.count_queued();
        Ok(())
    }

    /// The next job to run (the first pending one), marked running.
    fn start_next(&self) -> Option<(JobView, Job)> {
        let mut state = self.lock();
        let next = view::jobs(&state.journal.records())
            .into_iter()
            .find(JobView::pending)?;
        let origin = PathBuf::from(format!("job {} of the journal", next.job_id));
        let mut job = match Job::from_text(next.config.clone(), &origin) {
            Ok(job) => job,
            Err(e) => {
                // Checked at submission; a journal that says otherwise ends
                // the job rather than blocking the queue.
                let _ = state.journal.append(Entry::JobFinished {
                    job_id: next.job_id.clone(),
                    success: false,
                    reason: e.to_string(),
                });
                return None;
            }
        };
        let (certificate, signature) = next.signed.clone().unwrap_or_default();
        job.submission = Some(Submission {
            analyst: next.analyst.clone(),
            certificate,
            signature,
        });
        state.running = Some(job.id.clone());
        Some((next, job))
    }

    fn stopped(&self) {
        self.lock().running = None;
        self.count_queued();
    }

    fn count_queued(&self) {
        let waiting = self
            .jobs()
            .iter()
            .filter(|j| j.pending() && j.state == State::Queued)
            .count();
        self.metrics.jobs_queued.set(waiting as i64);
    }
}

/// Journals that `job_id` was cancelled and, with that, ended.
fn cancelled(
    journal: &mut JournalWriter,
    job_id: &str,
    by: &str,
    reason: &str,
) -> Result<(), JournalWriteError> {
    journal.append(Entry::JobCancelled {
        job_id: job_id.to_string(),
        by: by.to_string(),
        reason: reason.to_string(),
    })?;
    journal.append(Entry::JobFinished {
        job_id: job_id.to_string(),
        success: false,
        reason: format!("cancelled by {by}: {reason}"),
    })
}
