//! A job's end: journaled, then told to every member with the result and
//! the signed `job_finished` record, and kept for the members that were not
//! connected, to be told on their next session; or, for a job retraced from
//! the journal, the journaled end told and kept the same way, with nothing
//! appended.

use fedseg_common::journal::Entry;
use fedseg_common::proto::{self, CoordinatorMessage, coordinator_message};

use super::{Engine, EngineError, JobReport};

impl Engine<'_> {
    /// Journals the job's end and tells every member, with the job's
    /// result when it succeeded.
    pub async fn finish(
        self,
        success: bool,
        reason: &str,
        result_json: String,
    ) -> Result<JobReport, EngineError> {
        if self.journal.is_read_only() {
            return self.retraced(success, reason, result_json).await;
        }
        self.journal.append(Entry::JobFinished {
            job_id: self.job.id.clone(),
            success,
            reason: reason.to_string(),
        })?;
        let record = self.journal.last_written().to_vec();
        self.tell_end(success, reason, result_json, record).await;
        Ok(self.report())
    }

    /// The end of a job retraced from the journal ([`Engine::retrace`]):
    /// its report, when the job's steps used every journaled round and
    /// asked for no other; the journaled end is told to the members.
    async fn retraced(
        self,
        success: bool,
        reason: &str,
        result_json: String,
    ) -> Result<JobReport, EngineError> {
        let failed = |reason: String| EngineError::NotRetraced {
            job: self.job.id.clone(),
            reason,
        };
        if !success {
            return Err(failed(reason.to_string()));
        }
        if !self.replay.is_empty() {
            return Err(failed(format!(
                "{} journaled rounds were left over",
                self.replay.len()
            )));
        }
        let record = match self.end_record {
            Some(sequence) => self.journal.record_bytes(sequence)?.unwrap_or_default(),
            None => Vec::new(),
        };
        self.tell_end(true, "", result_json, record).await;
        Ok(self.report())
    }

    /// Sends the job's end to every member, and keeps it for the next
    /// session of each member it did not reach.
    async fn tell_end(&self, success: bool, reason: &str, result_json: String, record: Vec<u8>) {
        let message = CoordinatorMessage {
            job_id: self.job.id.clone(),
            body: Some(coordinator_message::Body::JobFinished(proto::JobFinished {
                success,
                reason: reason.to_string(),
                result_json,
                journal_record: record,
            })),
        };
        let mut missed = Vec::new();
        for member in &self.cohort {
            if !self.transport.send(member, message.clone()).await {
                missed.push(member.clone());
            }
        }
        if !missed.is_empty() {
            self.transport.keep_for_reconnects(&missed, message);
        }
    }

    pub(super) fn report(self) -> JobReport {
        let (took_part, declined, dropped_out) =
            crate::result::participation(&self.cohort, &self.declined, &self.rounds);
        JobReport {
            job_id: self.job.id.clone(),
            config_hash: self.job.config_hash.clone(),
            cohort: self.cohort.clone(),
            took_part,
            declined,
            dropped_out,
            threshold: self.params.threshold,
            neighbours: self.neighbours(),
            rounds: self.rounds,
            rejected_messages: self.rejected,
        }
    }
}
