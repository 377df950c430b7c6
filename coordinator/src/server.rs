//! Starts the coordinator's gRPC server: mutual TLS with the consortium CA,
//! admission of every call (health included) by the caller's certificate,
//! message size limits, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use fedseg_common::identity::Role;
use fedseg_common::mtls::TlsError;
use fedseg_common::proto::JobStatusResponse;
use fedseg_common::proto::audit_server::AuditServer;
use fedseg_common::proto::coordinator_server::CoordinatorServer;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tracing::info;

use crate::audit::AuditService;
use crate::config::CoordinatorConfig;
use crate::jobs::{Cancel, JobQueue, JobsService};
use crate::journal::JournalWriter;
use crate::service::{Admission, CoordinatorService, Event, Hub};
use crate::tls_accept::{self, AcceptError};
use fedseg_common::proto::jobs_server::JobsServer;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// TLS material is missing or wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS settings could not be built.
    #[error(transparent)]
    Accept(#[from] AcceptError),
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Error.
        source: std::io::Error,
    },
    /// The job service cannot start.
    #[error(transparent)]
    Jobs(#[from] crate::jobs::QueueError),
    /// The TLS settings were refused.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A running server.
pub struct Running {
    /// The engine's end of the participants' events.
    pub events: UnboundedReceiver<Event>,
    /// Connected participants.
    pub hub: Arc<Hub>,
    /// What `JobStatus` reports.
    pub status: Arc<Mutex<JobStatusResponse>>,
    /// The bound address.
    pub addr: SocketAddr,
    /// Where `/metrics` and `/healthz` are served, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Resolves when the server has stopped.
    pub task: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The job service's queue and the cancellations for its scheduler,
    /// when the server offers the job service.
    pub jobs: Option<(Arc<JobQueue>, UnboundedReceiver<Cancel>)>,
}

const EVERY_MEMBER: &[Role] = &[Role::Participant, Role::Auditor];
const PARTICIPANTS: &[Role] = &[Role::Participant];
const AUDITORS: &[Role] = &[Role::Auditor];
const ANALYSTS: &[Role] = &[Role::Analyst];

/// Binds `config.listen` and serves until `shutdown` resolves.
pub async fn start(
    config: &CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServerError> {
    start_with(config, shutdown, None).await
}

/// [`start`], offering the job service over the queue `journal` holds
/// when one is given (`serve`).
pub async fn start_with(
    config: &CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    journal: Option<&JournalWriter>,
) -> Result<Running, ServerError> {
    let tls = Arc::new(tls_accept::server_config(&config.tls)?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let (hub, events) = Hub::new();
    let admission = Admission::new(config, hub.metrics.clone());
    let status = Arc::new(Mutex::new(JobStatusResponse::default()));
    let limit = config.rounds.max_message_bytes;
    let coordinator = CoordinatorServer::new(CoordinatorService::new(
        hub.clone(),
        admission.clone(),
        status.clone(),
        config.rounds.hello_timeout(),
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<CoordinatorServer<CoordinatorService>>()
        .await;
    // TLS is done by `tls_accept`; a vanished peer's connection is closed
    // when it leaves a keep-alive ping unanswered.
    let keepalive = config.rounds.keepalive();
    let router = Server::builder()
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .add_service(InterceptedService::new(
            coordinator,
            admission.interceptor(PARTICIPANTS),
        ))
        .add_service(InterceptedService::new(
            health,
            admission.interceptor(EVERY_MEMBER),
        ))
        .add_service(InterceptedService::new(
            AuditServer::new(AuditService::new(config.journal.clone()))
                .max_encoding_message_size(limit),
            admission.interceptor(AUDITORS),
        ));
    let jobs = journal
        .map(|journal| JobQueue::new(config, journal, hub.metrics.clone()))
        .transpose()?;
    let router = router.add_optional_service(jobs.as_ref().map(|(queue, _)| {
        InterceptedService::new(
            JobsServer::new(JobsService::new(queue.clone(), limit))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            admission.interceptor(ANALYSTS),
        )
    }));
    let metrics_addr = match config.metrics_listen {
        None => None,
        Some(wanted) => {
            let bound = crate::metrics::serve(wanted, hub.metrics.clone(), std::future::pending())
                .await
                .map_err(|source| ServerError::Bind {
                    addr: wanted,
                    source,
                })?;
            Some(bound)
        }
    };
    info!(%addr, "coordinator listening (mutual TLS)");
    // Participants' sessions are endless streams: close them, or a graceful
    // shutdown would wait for them forever.
    let closing = hub.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close_all();
    };
    let incoming = tls_accept::incoming(
        listener,
        tls,
        config.rounds.hello_timeout(),
        hub.metrics.clone(),
    );
    let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
    Ok(Running {
        events,
        hub,
        status,
        addr,
        metrics_addr,
        task,
        jobs,
    })
}
