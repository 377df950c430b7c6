//! What every journal entry is about, in one place: its job, and the kind
//! byte written in its record's header (which the decoder checks against
//! the payload's tag).

use super::Entry;

impl Entry {
    /// The job the entry belongs to (none for the journal's first record).
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Entry::JournalOpened { .. } => None,
            Entry::JobQueued { job_id, .. }
            | Entry::JobCancelled { job_id, .. }
            | Entry::JobSubmitted { job_id, .. }
            | Entry::JobResumed { job_id, .. }
            | Entry::CohortFixed { job_id, .. }
            | Entry::KeySetupDone { job_id, .. }
            | Entry::RoundOpened { job_id, .. }
            | Entry::PhaseCompleted { job_id, .. }
            | Entry::AggregateReleased { job_id, .. }
            | Entry::RoundAborted { job_id, .. }
            | Entry::PrivacyBudget { job_id, .. }
            | Entry::PrivacySpent { job_id, .. }
            | Entry::ParticipantDeclined { job_id, .. }
            | Entry::MemberCertificates { job_id, .. }
            | Entry::SurvivorsConfirmed { job_id, .. }
            | Entry::FaultReported { job_id, .. }
            | Entry::VerticalMessage { job_id, .. }
            | Entry::IntersectionDone { job_id, .. }
            | Entry::VerticalThreatModel { job_id, .. }
            | Entry::VerticalBatch { job_id, .. }
            | Entry::JobFinished { job_id, .. } => Some(job_id),
        }
    }

    /// The numeric kind written in the record header.
    pub fn kind_code(&self) -> u8 {
        match self {
            Entry::JournalOpened { .. } => 1,
            Entry::JobSubmitted { .. } => 2,
            Entry::CohortFixed { .. } => 3,
            Entry::KeySetupDone { .. } => 4,
            Entry::PhaseCompleted { .. } => 5,
            Entry::AggregateReleased { .. } => 6,
            Entry::RoundAborted { .. } => 7,
            Entry::JobFinished { .. } => 8,
            Entry::JobResumed { .. } => 9,
            Entry::RoundOpened { .. } => 10,
            Entry::ParticipantDeclined { .. } => 11,
            Entry::PrivacySpent { .. } => 12,
            Entry::PrivacyBudget { .. } => 13,
            Entry::MemberCertificates { .. } => 14,
            Entry::SurvivorsConfirmed { .. } => 15,
            Entry::FaultReported { .. } => 16,
            Entry::VerticalMessage { .. } => 17,
            Entry::IntersectionDone { .. } => 18,
            Entry::VerticalThreatModel { .. } => 19,
            Entry::VerticalBatch { .. } => 20,
            Entry::JobQueued { .. } => 25,
            Entry::JobCancelled { .. } => 26,
        }
    }
}
