//! Prometheus metrics of the coordinator and the plain-HTTP endpoint that
//! serves them (`GET /metrics`) beside a liveness check (`GET /healthz`),
//! for scrapers and orchestrator probes that cannot present a consortium
//! client certificate. Nothing sensitive is exposed: counts, durations and
//! byte totals only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{info, warn};

type Labels = Vec<(String, String)>;

fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of the coordinator.
pub struct Metrics {
    registry: Mutex<Registry>,
    rounds: Family<Labels, Counter>,
    phase_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    dropouts: Counter,
    rejected: Family<Labels, Counter>,
    rejected_connections: Family<Labels, Counter>,
    jobs: Family<Labels, Counter>,
    job_seconds: Histogram,
    /// Participants with an open session.
    pub connected: Gauge,
    /// Jobs of the job service waiting to run.
    pub jobs_queued: Gauge,
    /// Protobuf bytes received from participants.
    pub bytes_in: Counter,
    /// Protobuf bytes sent to participants.
    pub bytes_out: Counter,
    /// Messages received from participants.
    pub messages_in: Counter,
    /// Messages sent to participants.
    pub messages_out: Counter,
    vertical: VerticalMetrics,
}

/// A vertical job's phases: the private set intersection (`psi`) and the
/// joint model (`model`).
struct VerticalMetrics {
    seconds: Family<Labels, Histogram, fn() -> Histogram>,
    steps: Counter,
    relayed: Family<Labels, Counter>,
    dealt: Counter,
}

impl VerticalMetrics {
    fn register(registry: &mut Registry) -> Self {
        let seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            vertical_histogram as fn() -> Histogram,
        );
        registry.register(
            "vertical_phase_duration_seconds",
            "Wall time of a vertical job's phases: psi (the private set \
             intersection), model (the joint model on secret shares)",
            seconds.clone(),
        );
        let steps = Counter::default();
        registry.register(
            "vertical_newton_steps",
            "Newton steps of vertical jobs' joint models",
            steps.clone(),
        );
        let relayed = Family::<Labels, Counter>::default();
        registry.register(
            "vertical_relayed_bytes",
            "Sealed bytes relayed between the parties of vertical jobs, by phase",
            relayed.clone(),
        );
        let dealt = Counter::default();
        registry.register(
            "vertical_dealt_bytes",
            "Bytes of correlated randomness the coordinator dealt to computing parties",
            dealt.clone(),
        );
        Self {
            seconds,
            steps,
            relayed,
            dealt,
        }
    }
}

/// Vertical phases run from seconds to tens of minutes.
fn vertical_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fedseg");
        let rounds = Family::<Labels, Counter>::default();
        registry.register("rounds", "Secure-sum rounds by outcome", rounds.clone());
        let phase_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            histogram as fn() -> Histogram,
        );
        registry.register(
            "phase_duration_seconds",
            "Wall time of each protocol phase",
            phase_seconds.clone(),
        );
        let dropouts = Counter::default();
        registry.register(
            "dropouts",
            "Members asked for a masked input that did not send one",
            dropouts.clone(),
        );
        let rejected = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_messages",
            "Participant messages refused, by reason",
            rejected.clone(),
        );
        let rejected_connections = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_connections",
            "Connections, calls and sessions refused, by reason: tls_handshake, \
             bad_certificate, handshake_timeout, silent_after_handshake, \
             closed_after_handshake, not_admitted, no_hello, duplicate_session",
            rejected_connections.clone(),
        );
        let connected = Gauge::default();
        registry.register(
            "participants_connected",
            "Participants with an open session",
            connected.clone(),
        );
        let bytes = Family::<Labels, Counter>::default();
        registry.register(
            "session_bytes",
            "Protobuf bytes on participant sessions, by direction",
            bytes.clone(),
        );
        let messages = Family::<Labels, Counter>::default();
        registry.register(
            "session_messages",
            "Messages on participant sessions, by direction",
            messages.clone(),
        );
        let jobs = Family::<Labels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs of the job service that ended, by outcome (finished, failed, cancelled)",
            jobs.clone(),
        );
        // Buckets from one second to about nine hours.
        let job_seconds = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        registry.register(
            "job_duration_seconds",
            "Wall time of each job the job service ran, start to end",
            job_seconds.clone(),
        );
        let jobs_queued = Gauge::default();
        registry.register(
            "jobs_queued",
            "Jobs of the job service waiting to run",
            jobs_queued.clone(),
        );
        // One statement per counter: the family's lock guard lives until
        // the end of its statement, and the next insertion needs the lock.
        let direction = |d: &str| vec![("direction".to_string(), d.to_string())];
        let bytes_in = bytes.get_or_create(&direction("in")).clone();
        let bytes_out = bytes.get_or_create(&direction("out")).clone();
        let messages_in = messages.get_or_create(&direction("in")).clone();
        let messages_out = messages.get_or_create(&direction("out")).clone();
        let vertical = VerticalMetrics::register(&mut registry);
        Self {
            vertical,
            bytes_in,
            bytes_out,
            messages_in,
            messages_out,
            registry: Mutex::new(registry),
            rounds,
            phase_seconds,
            dropouts,
            rejected,
            rejected_connections,
            connected,
            jobs,
            job_seconds,
            jobs_queued,
        }
    }
}

impl Metrics {
    /// Counts a finished round.
    pub fn round(&self, outcome: &str, dropped: usize) {
        self.rounds
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
        self.dropouts.inc_by(dropped as u64);
    }

    /// Counts a job's end by `outcome`, with its wall time if it ran.
    pub fn job_ended(&self, outcome: &str, seconds: Option<f64>) {
        self.jobs
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
        if let Some(seconds) = seconds {
            self.job_seconds.observe(seconds);
        }
    }

    /// Records how long a phase took.
    pub fn phase(&self, phase: &str, seconds: f64) {
        self.phase_seconds
            .get_or_create(&vec![("phase".to_string(), phase.to_string())])
            .observe(seconds);
    }

    /// Records a vertical phase (`psi` or `model`): its wall time and the
    /// sealed bytes relayed between the parties.
    pub fn vertical_phase(&self, phase: &str, seconds: f64, relayed_bytes: u64) {
        let label = vec![("phase".to_string(), phase.to_string())];
        self.vertical.seconds.get_or_create(&label).observe(seconds);
        self.vertical
            .relayed
            .get_or_create(&label)
            .inc_by(relayed_bytes);
    }

    /// Counts a joint model's Newton steps and the bytes its dealer sent.
    pub fn vertical_model(&self, steps: u32, dealt_bytes: u64) {
        self.vertical.steps.inc_by(u64::from(steps));
        self.vertical.dealt.inc_by(dealt_bytes);
    }

    /// Counts a refused connection or session.
    pub fn rejected_connection(&self, reason: &str) {
        self.rejected_connections
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// Counts a refused message.
    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// The metrics in the Prometheus (OpenMetrics) text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().expect("metrics lock");
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown` resolves;
/// returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    info!(addr = %bound, "metrics and health on plain HTTP");
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        warn!(%error, "metrics listener");
                        continue;
                    }
                },
                _ = &mut shutdown => return,
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    warn!(%error, "metrics connection");
                }
            });
        }
    });
    Ok(bound)
}

fn respond<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        ("GET", "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_parses_as_prometheus_exposition_with_the_recorded_values() {
        let metrics = Metrics::default();
        metrics.round("released", 0);
        metrics.round("released", 2);
        metrics.round("aborted", 1);
        metrics.phase("unmask", 0.25);
        metrics.rejected("late_message");
        metrics.bytes_in.inc_by(1234);
        metrics.connected.set(3);
        let text = metrics.render();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
            let sample = scrape
                .samples
                .iter()
                .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"));
            match &sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name}: {other:?}"),
            }
        };
        assert_eq!(
            value("fedseg_rounds_total", Some(("outcome", "released"))),
            2.0
        );
        assert_eq!(
            value("fedseg_rounds_total", Some(("outcome", "aborted"))),
            1.0
        );
        assert_eq!(value("fedseg_dropouts_total", None), 3.0);
        assert_eq!(
            value(
                "fedseg_rejected_messages_total",
                Some(("reason", "late_message"))
            ),
            1.0
        );
        assert_eq!(
            value("fedseg_session_bytes_total", Some(("direction", "in"))),
            1234.0
        );
        assert_eq!(value("fedseg_participants_connected", None), 3.0);
        let histogram = scrape
            .samples
            .iter()
            .find(|s| s.metric == "fedseg_phase_duration_seconds")
            .expect("the phase histogram");
        match &histogram.value {
            prometheus_parse::Value::Histogram(buckets) => {
                assert!(
                    buckets
                        .iter()
                        .any(|b| b.less_than >= 0.25 && b.count == 1.0)
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
