//! Runs the job service's queue: the first pending job (in the order the
//! journal queued them) once its cohort is connected, to its end or its
//! cancellation, then the next. Every log line of a job carries its id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fedseg_common::proto::{self, CoordinatorMessage, coordinator_message};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{Instrument, error, info, warn};

use super::view::{self, JobView};
use super::{Cancel, JobQueue, cancelled};
use crate::config::Job;
use crate::engine::HubTransport;
use crate::job::{check_out, conclude, run_job};
use crate::journal::JournalWriter;
use crate::service::{Event, Hub};

/// How often a job waiting for its cohort looks again.
const COHORT_POLL: Duration = Duration::from_millis(200);

/// Runs queued jobs forever (the caller stops it with the server).
pub async fn run(
    queue: Arc<JobQueue>,
    hub: Arc<Hub>,
    mut events: UnboundedReceiver<Event>,
    mut journal: JournalWriter,
    mut cancels: UnboundedReceiver<Cancel>,
) {
    loop {
        let Some((view, job)) = queue.start_next() else {
            // A cancellation can only be for a running job; none runs.
            while let Ok(stale) = cancels.try_recv() {
                let _ = stale.done.send(());
            }
            tokio::select! {
                _ = queue.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        };
        let span = tracing::info_span!("job", job = %job.id);
        let mut run = Running {
            queue: &queue,
            hub: &hub,
            events: &mut events,
            journal: &mut journal,
            cancels: &mut cancels,
        };
        run.job(&view, &job).instrument(span).await;
        queue.stopped();
    }
}

struct Running<'a> {
    queue: &'a JobQueue,
    hub: &'a Arc<Hub>,
    events: &'a mut UnboundedReceiver<Event>,
    journal: &'a mut JournalWriter,
    cancels: &'a mut UnboundedReceiver<Cancel>,
}

impl Running<'_> {
    async fn job(&mut self, view: &JobView, job: &Job) {
        let started = Instant::now();
        let config = &self.queue.config;
        info!(analyst = %view.analyst, purpose = %view.purpose, "job starting");
        if let Some(cancel) = self.await_cohort(job).await {
            return self.cancel(job, cancel, started).await;
        }
        // Connections and messages from before this job (the last job's
        // late answers, the sessions that opened meanwhile) mean nothing to
        // it: the engine starts from who is connected now, and would
        // otherwise offer the job again to each of them.
        while self.events.try_recv().is_ok() {}
        let out = self.queue.result_dir(&job.id);
        if let Err(e) = check_out(&out) {
            error!(error = %e, "the job's result directory is not writable; the job fails");
            let _ = self
                .journal
                .append(fedseg_common::journal::Entry::JobFinished {
                    job_id: job.id.clone(),
                    success: false,
                    reason: format!("the coordinator cannot write its results: {e}"),
                });
            self.queue.metrics.job_ended("failed", None);
            return;
        }
        let transport = HubTransport::new(self.hub.clone(), self.events);
        let mut run = Box::pin(run_job(transport, config, job, self.journal));
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break Ok(outcome),
                Some(cancel) = self.cancels.recv() => {
                    if cancel.job_id == job.id {
                        break Err(cancel);
                    }
                    let _ = cancel.done.send(());
                }
            }
        };
        // Dropping the job's future stops it where it waits: no release of
        // it can follow the cancellation journaled below.
        drop(run);
        match outcome {
            Err(cancel) => self.cancel(job, cancel, started).await,
            Ok(outcome) => {
                let seconds = Some(started.elapsed().as_secs_f64());
                match conclude(outcome, self.journal, config, job.id.clone(), &out) {
                    Ok(_) => {
                        info!(out = %out.display(), "job finished");
                        self.queue.metrics.job_ended("finished", seconds);
                    }
                    Err(e) => {
                        warn!(error = %e, "job failed");
                        self.queue.metrics.job_ended("failed", seconds);
                    }
                }
            }
        }
    }

    /// Waits until every party the job lists is connected, at most the
    /// cohort timeout (then the engine decides with whoever is there);
    /// a cancellation of the job ends the wait.
    async fn await_cohort(&mut self, job: &Job) -> Option<Cancel> {
        let listed = listed(job, &self.queue.config.participants);
        let deadline = Instant::now() + self.queue.config.rounds.cohort_timeout();
        loop {
            let connected = self.hub.connected();
            if listed.iter().all(|id| connected.contains(id)) || Instant::now() >= deadline {
                return None;
            }
            tokio::select! {
                Some(cancel) = self.cancels.recv() => {
                    if cancel.job_id == job.id {
                        return Some(cancel);
                    }
                    let _ = cancel.done.send(());
                }
                _ = tokio::time::sleep(COHORT_POLL) => {}
            }
        }
    }

    /// Journals the cancellation and the job's end, tells the members
    /// (and keeps it for those not connected), and answers the analyst.
    async fn cancel(&mut self, job: &Job, cancel: Cancel, started: Instant) {
        match cancelled(self.journal, &job.id, &cancel.by, &cancel.reason) {
            Ok(()) => {
                let record = self.journal.last_written().to_vec();
                let members = view::jobs(&self.journal.records())
                    .into_iter()
                    .find(|j| j.job_id == job.id)
                    .map(|j| j.cohort)
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| listed(job, &self.queue.config.participants));
                let message = CoordinatorMessage {
                    job_id: job.id.clone(),
                    body: Some(coordinator_message::Body::JobFinished(proto::JobFinished {
                        success: false,
                        reason: format!("cancelled by {}: {}", cancel.by, cancel.reason),
                        result_json: String::new(),
                        journal_record: record,
                    })),
                };
                let mut missed = Vec::new();
                for member in &members {
                    if !self.hub.send(member, message.clone()).await {
                        missed.push(member.clone());
                    }
                }
                if !missed.is_empty() {
                    self.hub.keep_for_reconnects(&missed, message);
                }
                info!(by = %cancel.by, reason = %cancel.reason, "job cancelled");
            }
            Err(e) => error!(error = %e, "the cancellation could not be journaled"),
        }
        let seconds = Some(started.elapsed().as_secs_f64());
        self.queue.metrics.job_ended("cancelled", seconds);
        let _ = cancel.done.send(());
    }
}

/// The parties a job asks for: a vertical job's, or every listed
/// participant.
fn listed(job: &Job, participants: &[String]) -> Vec<String> {
    match &job.config.vertical {
        Some(vertical) => vertical.parties(),
        None => participants.to_vec(),
    }
}
