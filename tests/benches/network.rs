//! One secure-sum round over loopback gRPC with mutual TLS, against a plain
//! (unmasked) sum over the same server, sessions and message sizes.
//!
//! Secure: the real coordinator server and round engine, and n real
//! participant nodes (tasks sharing this process). An 11-round job on one key
//! epoch: round 0 carries the key set-up, rounds 1-10 are steady state.
//! Plain: the same server and sessions; bench-only clients answer each mask
//! request with their unmasked encoded vector, and the bench sums them. The
//! real participant has no such mode.
//!
//! Durability is included: the coordinator fsyncs its journal once per
//! released round, on the real disk. The simulated banks' egress ledgers go
//! to tmpfs, standing for each bank's own disk, so a hundred banks' fsyncs do
//! not queue on the one disk of this machine.
//!
//! Run: `cargo bench -p fedseg-tests --bench network` (prints a table).

use std::path::Path;
use std::time::{Duration, Instant};

use fedseg_common::fixed_point::{ClipRange, FixedPointEncoder};
use fedseg_common::proto::coordinator_client::CoordinatorClient;
use fedseg_common::proto::{
    self, CoordinatorMessage, ParticipantMessage, coordinator_message, participant_message,
};
use fedseg_common::wire;
use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_coordinator::engine::{Engine, HubTransport};
use fedseg_coordinator::job::vector_sums;
use fedseg_coordinator::journal::JournalWriter;
use fedseg_coordinator::service::Event;
use fedseg_coordinator::{demo, server};
use fedseg_participant::config::ParticipantConfig;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

const ROUNDS: u32 = 11;

struct Measured {
    first_s: f64,
    steady_s: f64,
    messages_out_per_participant: f64,
    bytes_out_per_participant: f64,
    bytes_in: f64,
}

fn consortium(dir: &Path, n: usize, d: usize) -> (CoordinatorConfig, Job) {
    let port = fedseg_tests::free_port();
    demo::init(dir, n, 50 * n as u64, &format!("127.0.0.1:{port}")).unwrap();
    for (i, site) in demo::site_ids(n).iter().enumerate() {
        let values: Vec<String> = (0..d).map(|j| format!("{}", (i * 31 + j) % 1000)).collect();
        std::fs::write(
            dir.join("sites").join(site).join("demo.txt"),
            values.join("\n"),
        )
        .unwrap();
    }
    let job = format!(
        "seed = 1\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n[secure_sum]\nvector = \"demo\"\n\
         length = {d}\nrounds = {ROUNDS}\nfrac_bits = 16\nlo = -1000000.0\nhi = 1000000.0\n"
    );
    std::fs::write(dir.join("job.toml"), job).unwrap();
    // Each bank syncs its ledger on its own disk; here they would all queue
    // on one, so their ledgers go to tmpfs (the coordinator's journal stays
    // on the real disk).
    let ledgers = Path::new("/dev/shm").join(format!("fedseg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&ledgers).unwrap();
    for site in demo::site_ids(n) {
        let file = dir.join("sites").join(&site).join("participant.toml");
        let ledger = ledgers.join(format!(
            "{site}-{}.log",
            dir.file_name().unwrap().to_string_lossy()
        ));
        let text = std::fs::read_to_string(&file).unwrap().replace(
            "ledger = \"ledger.log\"",
            &format!("ledger = {:?}", ledger.display().to_string()),
        );
        std::fs::write(&file, text).unwrap();
    }
    let mut config = CoordinatorConfig::load(&dir.join("coordinator.toml")).unwrap();
    config.rounds.epoch_rounds = ROUNDS;
    config.rounds.phase_timeout_s = 120.0;
    (config, Job::load(&dir.join("job.toml")).unwrap())
}

/// The real coordinator server, and the sender that stops it.
async fn start_server(config: &CoordinatorConfig) -> (server::Running, oneshot::Sender<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let running = server::start(config, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    (running, stop)
}

/// A site's participant.toml.
fn site_config(dir: &Path, site: &str) -> ParticipantConfig {
    ParticipantConfig::load(&dir.join("sites").join(site).join("participant.toml")).unwrap()
}

async fn secure(n: usize, d: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (config, job) = consortium(dir.path(), n, d);
    let (mut running, stop) = start_server(&config).await;
    let (quit, quitting) = watch::channel(false);
    for site in demo::site_ids(n) {
        let participant = site_config(dir.path(), &site);
        let mut quitting = quitting.clone();
        tokio::spawn(async move {
            let _ = fedseg_participant::node::run(participant, async move {
                let _ = quitting.changed().await;
            })
            .await;
        });
    }
    let mut journal = JournalWriter::for_coordinator(&config).unwrap();
    let sessions = HubTransport::new(running.hub.clone(), &mut running.events);
    let engine = Engine::start(
        sessions,
        config.rounds.clone(),
        &config.participants,
        &job,
        &mut journal,
        None,
    )
    .await
    .unwrap();
    let report = vector_sums::run(engine).await.unwrap();
    running.hub.close_all();
    let _ = quit.send(true);
    let _ = stop.send(());
    let rounds = &report.rounds;
    assert!(rounds.iter().all(|r| r.outcome == "released"));
    let steady = &rounds[1..];
    let per = |f: &dyn Fn(&fedseg_coordinator::engine::RoundRecord) -> f64| {
        steady.iter().map(f).sum::<f64>() / steady.len() as f64
    };
    Measured {
        first_s: rounds[0].duration_s,
        steady_s: per(&|r| r.duration_s),
        messages_out_per_participant: per(&|r| r.traffic.messages_out as f64) / n as f64,
        bytes_out_per_participant: per(&|r| r.traffic.bytes_out as f64) / n as f64,
        bytes_in: per(&|r| r.traffic.bytes_in as f64),
    }
}

/// A bench-only client: answers every mask request with its unmasked vector.
async fn plain_client(config: ParticipantConfig) {
    let tls = config.tls.client_config(&config.coordinator_id).unwrap();
    let channel = Endpoint::from_shared(config.coordinator.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CoordinatorClient::new(channel)
        .max_decoding_message_size(1 << 30)
        .max_encoding_message_size(1 << 30);
    let (tx, rx) = mpsc::channel(4);
    let hello = proto::Hello {
        protocol_version: fedseg_common::PROTOCOL_VERSION,
        software: "plain-bench".into(),
        resumable_jobs: vec![],
    };
    tx.send(ParticipantMessage {
        body: Some(participant_message::Body::Hello(hello)),
    })
    .await
    .unwrap();
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let encoder = FixedPointEncoder::new(16, vec![ClipRange::new(-1e6, 1e6)]).unwrap();
    while let Ok(Some(message)) = inbound.message().await {
        if let Some(coordinator_message::Body::MaskRequest(request)) = message.body {
            // The same local work as the real participant: read, parse, encode.
            let text = std::fs::read_to_string(&config.vectors["demo"]).unwrap();
            let values: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
            let words = encoder.encode(&values).unwrap().words;
            let input = proto::MaskedInput {
                round: request.round,
                words: wire::words_to_bytes(&words),
                ..Default::default()
            };
            let body = participant_message::Body::MaskedInput(input);
            if tx
                .send(ParticipantMessage { body: Some(body) })
                .await
                .is_err()
            {
                break;
            }
        }
    }
}

async fn plain(n: usize, d: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = consortium(dir.path(), n, d);
    let (mut running, stop) = start_server(&config).await;
    for site in demo::site_ids(n) {
        let participant = site_config(dir.path(), &site);
        tokio::spawn(plain_client(participant));
    }
    while running.hub.connected().len() < n {
        running.events.recv().await.unwrap();
    }
    let mut durations = Vec::new();
    let mut traffic = Vec::new();
    for round in 0..ROUNDS as u64 {
        let started = Instant::now();
        let before = running.hub.traffic();
        let request = proto::MaskRequest {
            round,
            members: vec![],
            length: d as u32,
            computation: None,
        };
        for site in demo::site_ids(n) {
            let message = CoordinatorMessage {
                job_id: "plain".into(),
                body: Some(coordinator_message::Body::MaskRequest(request.clone())),
            };
            running.hub.send(&site, message).await;
        }
        let mut sum = vec![0u64; d];
        let mut answered = 0;
        while answered < n {
            if let Some(Event::Message(
                _,
                ParticipantMessage {
                    body: Some(participant_message::Body::MaskedInput(input)),
                },
            )) = running.events.recv().await
            {
                for (s, w) in sum
                    .iter_mut()
                    .zip(wire::bytes_to_words(&input.words).unwrap())
                {
                    *s = s.wrapping_add(w);
                }
                answered += 1;
            }
        }
        std::hint::black_box(&sum);
        durations.push(started.elapsed().as_secs_f64());
        traffic.push(running.hub.traffic() - before);
    }
    running.hub.close_all();
    let _ = stop.send(());
    let steady = 1..ROUNDS as usize;
    let mean = |f: &dyn Fn(usize) -> f64| steady.clone().map(f).sum::<f64>() / steady.len() as f64;
    Measured {
        first_s: durations[0],
        steady_s: mean(&|i| durations[i]),
        messages_out_per_participant: mean(&|i| traffic[i].messages_out as f64) / n as f64,
        bytes_out_per_participant: mean(&|i| traffic[i].bytes_out as f64) / n as f64,
        bytes_in: mean(&|i| traffic[i].bytes_in as f64),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only: Option<usize> = std::env::var("FEDSEG_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok());
    println!(
        "| n | d | secure round 0 (with key set-up) s | secure steady round s | plain round s | secure ÷ plain | round trips per round (secure, plain) | bytes in per participant per round (secure, plain) | coordinator bytes out per participant (secure, plain) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in [5usize, 20, 100] {
        if only.is_some_and(|max| n > max) {
            continue;
        }
        for d in [1_000usize, 100_000] {
            let s = runtime.block_on(secure(n, d));
            std::thread::sleep(Duration::from_millis(200));
            let p = runtime.block_on(plain(n, d));
            println!(
                "| {n} | {d} | {:.4} | {:.4} | {:.4} | {:.2} | {:.0}, {:.0} | {:.0}, {:.0} | {:.0}, {:.0} |",
                s.first_s,
                s.steady_s,
                p.steady_s,
                s.steady_s / p.steady_s,
                s.messages_out_per_participant,
                p.messages_out_per_participant,
                s.bytes_in / n as f64,
                p.bytes_in / n as f64,
                s.bytes_out_per_participant,
                p.bytes_out_per_participant,
            );
        }
    }
}
