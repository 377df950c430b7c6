//! The read-only audit service: auditors list jobs and rounds and read the
//! raw signed journal records, which they can verify offline exactly as
//! `journal verify` does. It reads the journal file on every call, so it
//! serves what is durably written, nothing else.

use fedseg_common::secagg::Phase;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;

use fedseg_common::journal::{self, Entry, Record};
use fedseg_common::proto::audit_server::Audit;
use fedseg_common::proto::{
    JobSummary, JournalRecord, ListJobsRequest, ListJobsResponse, ListRoundsRequest,
    ListRoundsResponse, ReadJournalRequest, RoundSummary,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The `fedseg.v1.Audit` service over one journal file.
pub struct AuditService {
    journal: PathBuf,
}

impl AuditService {
    /// Serves the journal at `journal`.
    pub fn new(journal: PathBuf) -> Self {
        Self { journal }
    }

    fn bytes(&self) -> Result<Vec<u8>, Status> {
        match std::fs::read(&self.journal) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(_) => Err(Status::internal("the journal cannot be read")),
        }
    }

    fn records(&self) -> Result<Vec<Record>, Status> {
        let bytes = self.bytes()?;
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        journal::read(&bytes).map_err(|e| Status::data_loss(format!("journal {e}")))
    }
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<JournalRecord, Status>> + Send>>;

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        // Every job the journal holds, as the job service tells it.
        let jobs = crate::jobs::view::jobs(&self.records()?)
            .iter()
            .map(|job| JobSummary {
                job_id: job.job_id.clone(),
                config_hash: job.config_hash.clone(),
                state: job.state.as_str().into(),
                rounds: job.released + job.aborted,
                details: Some(job.to_proto()),
            })
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn list_rounds(
        &self,
        request: Request<ListRoundsRequest>,
    ) -> Result<Response<ListRoundsResponse>, Status> {
        let wanted = request.into_inner().job_id;
        let mut rounds: BTreeMap<u64, RoundSummary> = BTreeMap::new();
        for record in self.records()? {
            match record.entry {
                Entry::PhaseCompleted {
                    job_id,
                    round,
                    phase,
                    silent,
                    ..
                } if job_id == wanted && phase == Phase::MaskedInput => {
                    let summary = rounds.entry(round).or_insert_with(|| RoundSummary {
                        round,
                        ..Default::default()
                    });
                    summary.dropped = silent;
                }
                Entry::AggregateReleased {
                    job_id,
                    round,
                    survivors,
                    ..
                } if job_id == wanted => {
                    let summary = rounds.entry(round).or_insert_with(|| RoundSummary {
                        round,
                        ..Default::default()
                    });
                    summary.outcome = "released".into();
                    summary.survivors = survivors;
                }
                Entry::RoundAborted { job_id, round, .. } if job_id == wanted => {
                    rounds
                        .entry(round)
                        .or_insert_with(|| RoundSummary {
                            round,
                            ..Default::default()
                        })
                        .outcome = "aborted".into();
                }
                _ => {}
            }
        }
        Ok(Response::new(ListRoundsResponse {
            rounds: rounds.into_values().collect(),
        }))
    }

    type ReadJournalStream = RecordStream;

    async fn read_journal(
        &self,
        request: Request<ReadJournalRequest>,
    ) -> Result<Response<Self::ReadJournalStream>, Status> {
        let from = request.into_inner().from_sequence;
        let bytes = self.bytes()?;
        let mut out = Vec::new();
        let mut at = 0usize;
        let mut sequence = 0u64;
        while at + 4 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let Some(record) = bytes.get(at + 4..at + 4 + len + 64) else {
                break;
            };
            if sequence >= from {
                out.push(Ok(JournalRecord {
                    sequence,
                    body: record[..len].to_vec(),
                    signature: record[len..].to_vec(),
                }));
            }
            at += 4 + len + 64;
            sequence += 1;
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(out))))
    }
}
