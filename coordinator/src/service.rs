//! The coordinator's gRPC surface: participant sessions, admission of every
//! call by the caller's certificate, and the standard health service.
//!
//! A participant opens one `Session` stream and keeps it open; the [`Hub`]
//! holds a sender per connected participant and forwards everything they
//! send to the round engine as [`Event`]s. Identities come only from the
//! verified mTLS certificate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics::Metrics;
use fedseg_common::identity::{Member, Role, member_of};
use fedseg_common::proto::coordinator_server::Coordinator;
use fedseg_common::proto::{
    self, CoordinatorMessage, JobStatusRequest, JobStatusResponse, ParticipantMessage,
    coordinator_message, participant_message,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// Job ends kept for members that reconnect.
pub const KEPT_MESSAGES: usize = 16;

pub use fedseg_common::PROTOCOL_VERSION;

/// Something a participant session did.
#[derive(Debug)]
pub enum Event {
    /// A participant opened a session (possibly replacing an older one).
    Connected(String),
    /// A participant sent a message.
    Message(String, ParticipantMessage),
    /// A participant's session ended.
    Disconnected(String),
}

type Outbox = mpsc::Sender<Result<CoordinatorMessage, Status>>;

/// Connected participants and the engine's event queue.
pub struct Hub {
    links: Mutex<HashMap<String, (u64, Outbox)>>,
    /// The TLS client certificate (DER) of each identity's live session,
    /// so the engine can check that what a member signs with is what it
    /// connected with.
    certificates: Mutex<HashMap<String, Vec<u8>>>,
    /// Messages for members' next sessions (the ends of the last jobs).
    kept: Mutex<VecDeque<(HashSet<String>, CoordinatorMessage)>>,
    events: mpsc::UnboundedSender<Event>,
    next_session: AtomicU64,
    /// The coordinator's metrics, traffic counters included (protobuf
    /// encoded sizes, before TLS and HTTP/2 framing).
    pub metrics: Arc<Metrics>,
}

/// A snapshot of session traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// Bytes received from participants.
    pub bytes_in: u64,
    /// Bytes sent to participants.
    pub bytes_out: u64,
    /// Messages received from participants.
    pub messages_in: u64,
    /// Messages sent to participants.
    pub messages_out: u64,
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, earlier: Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in - earlier.bytes_in,
            bytes_out: self.bytes_out - earlier.bytes_out,
            messages_in: self.messages_in - earlier.messages_in,
            messages_out: self.messages_out - earlier.messages_out,
        }
    }
}

impl Hub {
    /// A hub and the receiving end of its events.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let hub = Arc::new(Self {
            links: Mutex::new(HashMap::new()),
            certificates: Mutex::new(HashMap::new()),
            kept: Mutex::new(VecDeque::new()),
            events,
            next_session: AtomicU64::new(1),
            metrics: Arc::new(Metrics::default()),
        });
        (hub, receiver)
    }

    /// Identities with an open session.
    pub fn connected(&self) -> HashSet<String> {
        self.links
            .lock()
            .expect("hub lock")
            .keys()
            .cloned()
            .collect()
    }

    /// The TLS client certificate (DER) `id`'s session was opened with.
    pub fn session_certificate(&self, id: &str) -> Option<Vec<u8>> {
        self.certificates
            .lock()
            .expect("certificates lock")
            .get(id)
            .cloned()
    }

    /// Sends `message` to `id`; false when it has no open session.
    pub async fn send(&self, id: &str, message: CoordinatorMessage) -> bool {
        let outbox = self
            .links
            .lock()
            .expect("hub lock")
            .get(id)
            .map(|(_, tx)| tx.clone());
        let size = message.encoded_len() as u64;
        let sent = match outbox {
            Some(tx) => tx.send(Ok(message)).await.is_ok(),
            None => false,
        };
        if sent {
            self.metrics.bytes_out.inc_by(size);
            self.metrics.messages_out.inc();
        }
        sent
    }

    /// Session traffic so far.
    pub fn traffic(&self) -> Traffic {
        let m = &self.metrics;
        Traffic {
            bytes_in: m.bytes_in.get(),
            bytes_out: m.bytes_out.get(),
            messages_in: m.messages_in.get(),
            messages_out: m.messages_out.get(),
        }
    }

    /// Keeps `message` for `members`' next sessions (the last
    /// [`KEPT_MESSAGES`] only): a member that was not connected when a job
    /// ended gets its end when it reconnects.
    pub fn keep_for_reconnects(&self, members: &[String], message: CoordinatorMessage) {
        let mut kept = self.kept.lock().expect("kept lock");
        if kept.len() == KEPT_MESSAGES {
            kept.pop_front();
        }
        kept.push_back((members.iter().cloned().collect(), message));
    }

    /// Ends every session (participants see their stream close and will
    /// reconnect to whatever serves next).
    pub fn close_all(&self) {
        self.links.lock().expect("hub lock").clear();
        self.metrics.connected.set(0);
    }

    /// Registers a session of `id`, unless one is live already: a second
    /// session with the same identity is refused (and counted), never
    /// allowed to take over the first. A session whose stream is gone
    /// (its peer left, or missed a keep-alive ping) is replaced.
    fn register(&self, id: &str, outbox: Outbox, certificate: Vec<u8>) -> Result<u64, Status> {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let mut links = self.links.lock().expect("hub lock");
        if links.get(id).is_some_and(|(_, live)| !live.is_closed()) {
            drop(links);
            self.metrics.rejected_connection("duplicate_session");
            warn!(identity = %id, "refused a second session of an identity whose session is live");
            return Err(Status::already_exists(format!(
                "{id} already has a live session with this coordinator"
            )));
        }
        // What this member missed, right after its Welcome.
        for (members, message) in self.kept.lock().expect("kept lock").iter() {
            if members.contains(id) {
                let _ = outbox.try_send(Ok(message.clone()));
            }
        }
        links.insert(id.to_string(), (session, outbox));
        self.certificates
            .lock()
            .expect("certificates lock")
            .insert(id.to_string(), certificate);
        self.metrics.connected.set(links.len() as i64);
        drop(links);
        let _ = self.events.send(Event::Connected(id.to_string()));
        Ok(session)
    }

    fn unregister(&self, id: &str, session: u64) {
        let mut links = self.links.lock().expect("hub lock");
        // A newer session of the same participant stays.
        if links.get(id).is_some_and(|(s, _)| *s == session) {
            links.remove(id);
            self.certificates
                .lock()
                .expect("certificates lock")
                .remove(id);
            self.metrics.connected.set(links.len() as i64);
            drop(links);
            let _ = self.events.send(Event::Disconnected(id.to_string()));
        }
    }
}

/// Who may call what: built from `coordinator.toml`.
#[derive(Clone)]
pub struct Admission {
    participants: HashSet<String>,
    auditors: HashSet<String>,
    analysts: HashSet<String>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// Admits the participants, auditors and analysts `config` lists;
    /// refusals are counted in `metrics` (`not_admitted`).
    pub fn new(config: &crate::config::CoordinatorConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let set = |ids: &[String]| ids.iter().cloned().collect();
        Arc::new(Self {
            participants: set(&config.participants),
            auditors: set(&config.auditors),
            analysts: set(&config.analysts),
            metrics,
        })
    }

    /// The caller's verified identity, if the consortium lists it in the
    /// role its certificate states.
    pub fn member<T>(&self, request: &Request<T>) -> Result<Member, Status> {
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let member = member_of(leaf).map_err(|e| Status::unauthenticated(e.to_string()))?;
        let listed = match member.role {
            Role::Participant => self.participants.contains(&member.id),
            Role::Auditor => self.auditors.contains(&member.id),
            Role::Analyst => self.analysts.contains(&member.id),
            Role::Coordinator => false,
        };
        if !listed {
            self.metrics.rejected_connection("not_admitted");
            warn!(identity = %member.id, role = %member.role, "refused an identity not on the consortium list");
            return Err(Status::permission_denied(format!(
                "{} is not admitted",
                member.id
            )));
        }
        Ok(member)
    }

    /// An interceptor admitting listed members in any of `roles`.
    pub fn interceptor(
        self: &Arc<Self>,
        roles: &'static [Role],
    ) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
        let admission = self.clone();
        move |request: Request<()>| {
            let member = admission.member(&request)?;
            if !roles.contains(&member.role) {
                return Err(Status::permission_denied(format!(
                    "role {} may not call this service",
                    member.role
                )));
            }
            Ok(request)
        }
    }
}

/// The `fedseg.v1.Coordinator` service.
pub struct CoordinatorService {
    hub: Arc<Hub>,
    admission: Arc<Admission>,
    status: Arc<Mutex<JobStatusResponse>>,
    hello_timeout: Duration,
}

impl CoordinatorService {
    /// A service feeding `hub`, reporting `status`; a session must start
    /// with Hello within `hello_timeout`.
    pub fn new(
        hub: Arc<Hub>,
        admission: Arc<Admission>,
        status: Arc<Mutex<JobStatusResponse>>,
        hello_timeout: Duration,
    ) -> Self {
        Self {
            hub,
            admission,
            status,
            hello_timeout,
        }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<ParticipantMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let member = self.admission.member(&request)?;
        if member.role != Role::Participant {
            return Err(Status::permission_denied("only participants open sessions"));
        }
        let certificate = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
            .unwrap_or_default();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.hello_timeout, inbound.message()).await;
        let hello = match first {
            Err(_) => {
                self.hub.metrics.rejected_connection("no_hello");
                warn!(identity = %member.id, "closed a session that sent no Hello in time");
                return Err(Status::deadline_exceeded(format!(
                    "no Hello within {:?}",
                    self.hello_timeout
                )));
            }
            Ok(first) => match first? {
                Some(ParticipantMessage {
                    body: Some(participant_message::Body::Hello(h)),
                }) => h,
                _ => return Err(Status::invalid_argument("a session starts with Hello")),
            },
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported (this coordinator speaks {PROTOCOL_VERSION})",
                hello.protocol_version
            )));
        }
        let (tx, rx) = mpsc::channel(64);
        let welcome = CoordinatorMessage {
            job_id: String::new(),
            body: Some(coordinator_message::Body::Welcome(proto::Welcome {
                protocol_version: PROTOCOL_VERSION,
                identity: member.id.clone(),
            })),
        };
        tx.send(Ok(welcome))
            .await
            .map_err(|_| Status::unavailable("session closed"))?;
        let session = self.hub.register(&member.id, tx, certificate)?;
        info!(identity = %member.id, software = %hello.software, "participant connected");
        let hub = self.hub.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        hub.metrics.bytes_in.inc_by(message.encoded_len() as u64);
                        hub.metrics.messages_in.inc();
                        let _ = hub.events.send(Event::Message(member.id.clone(), message));
                    }
                    Ok(None) => break,
                    Err(status) => {
                        warn!(identity = %member.id, code = ?status.code(), "session ended with an error");
                        break;
                    }
                }
            }
            info!(identity = %member.id, "participant disconnected");
            hub.unregister(&member.id, session);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn job_status(
        &self,
        request: Request<JobStatusRequest>,
    ) -> Result<Response<JobStatusResponse>, Status> {
        self.admission.member(&request)?;
        Ok(Response::new(
            self.status.lock().expect("status lock").clone(),
        ))
    }
}
