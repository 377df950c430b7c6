//! The `fedseg.v1.Jobs` gRPC service: the analyst's side of the queue.
//! Admission (role `analyst`, listed) is the server's interceptor; the
//! submitter's identity is its TLS certificate, and its signature must be
//! that certificate's.

use std::sync::Arc;

use fedseg_common::identity::member_of;
use fedseg_common::proto::jobs_server::Jobs;
use fedseg_common::proto::{
    CancelJobRequest, JobResultRequest, JobResultResponse, ListQueueRequest, ListQueueResponse,
    QueuedJob, ResultFile, ShowJobRequest, SubmitJobRequest, SubmitJobResponse,
};
use tonic::{Request, Response, Status};

use super::view::State;
use super::{JobQueue, QueueError};

/// The service, over the shared queue.
pub struct JobsService {
    queue: Arc<JobQueue>,
    /// Most bytes of result files one answer carries.
    limit: usize,
}

impl JobsService {
    /// A service over `queue`, answers at most `limit` bytes.
    pub fn new(queue: Arc<JobQueue>, limit: usize) -> Self {
        Self { queue, limit }
    }
}

fn status(error: QueueError) -> Status {
    match error {
        QueueError::Invalid(_) => Status::invalid_argument(error.to_string()),
        QueueError::Signature(_) => Status::permission_denied(error.to_string()),
        QueueError::Exists(_) => Status::already_exists(error.to_string()),
        QueueError::NotFound(_) => Status::not_found(error.to_string()),
        QueueError::Refused(_) => Status::failed_precondition(error.to_string()),
        QueueError::Journal(_) => Status::internal(error.to_string()),
    }
}

/// The caller's certificate (DER) and identity.
fn caller<T>(request: &Request<T>) -> Result<(Vec<u8>, String), Status> {
    let der = request
        .peer_certs()
        .and_then(|certs| certs.first().map(|c| c.to_vec()))
        .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
    let member = member_of(&der).map_err(|e| Status::unauthenticated(e.to_string()))?;
    Ok((der, member.id))
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn submit(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        let (certificate, _) = caller(&request)?;
        let body = request.into_inner();
        let (job_id, position) = self
            .queue
            .submit(body.config, &certificate, &body.signature)
            .map_err(status)?;
        Ok(Response::new(SubmitJobResponse { job_id, position }))
    }

    async fn list(
        &self,
        request: Request<ListQueueRequest>,
    ) -> Result<Response<ListQueueResponse>, Status> {
        let all = request.into_inner().all;
        let jobs = self
            .queue
            .jobs()
            .iter()
            .filter(|j| all || j.pending())
            .map(|j| j.to_proto())
            .collect();
        Ok(Response::new(ListQueueResponse { jobs }))
    }

    async fn show(&self, request: Request<ShowJobRequest>) -> Result<Response<QueuedJob>, Status> {
        let job = self
            .queue
            .job(&request.into_inner().job_id)
            .map_err(status)?;
        Ok(Response::new(job.to_proto()))
    }

    async fn cancel(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<QueuedJob>, Status> {
        let (_, by) = caller(&request)?;
        let body = request.into_inner();
        let reason = if body.reason.trim().is_empty() {
            "no reason given".to_string()
        } else {
            body.reason
        };
        self.queue
            .cancel(&body.job_id, &by, &reason)
            .await
            .map_err(status)?;
        let job = self.queue.job(&body.job_id).map_err(status)?;
        Ok(Response::new(job.to_proto()))
    }

    async fn result(
        &self,
        request: Request<JobResultRequest>,
    ) -> Result<Response<JobResultResponse>, Status> {
        let job_id = request.into_inner().job_id;
        let job = self.queue.job(&job_id).map_err(status)?;
        if job.state != State::Finished {
            return Err(Status::failed_precondition(format!(
                "job {job_id} is {}: only a finished job has a result",
                job.state.as_str()
            )));
        }
        let dir = self.queue.result_dir(&job_id);
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            Status::not_found(format!(
                "job {job_id}'s results are not on this coordinator: {e}"
            ))
        })?;
        let mut files = Vec::new();
        let mut total = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let content = std::fs::read(&path)
                .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
            total += content.len();
            if total > self.limit {
                return Err(Status::resource_exhausted(format!(
                    "job {job_id}'s results exceed {} bytes",
                    self.limit
                )));
            }
            files.push(ResultFile {
                name: entry.file_name().to_string_lossy().into_owned(),
                content,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(JobResultResponse { files }))
    }
}
