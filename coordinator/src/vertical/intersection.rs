//! The coordinator's part of the private set intersection over the
//! sessions: it collects the parties' hellos, sends the roster, relays each
//! sealed list chunk by chunk after checking its header and length against
//! the plan (`psi::coordinator::Relaying`), forwards the label holder's
//! verdict, and journals every message it received by size and digest. It
//! holds no key that opens a list. A party that leaves, fails, or makes no
//! progress for a phase timeout stops the run, named.

use std::collections::BTreeMap;
use std::sync::Arc;

use fedseg_common::proto::{self, vertical_down, vertical_up};
use fedseg_common::psi::coordinator::{Gathering, Relaying};
use fedseg_common::psi::{self, PsiError, PsiParams, Step, Verdict, wire};
use tokio::time::Instant as Deadline;
use tracing::info;

use super::{Received, VerticalError, out_of_turn, receive};
use crate::engine::Engine;

/// What the coordinator learned from an intersection.
#[derive(Debug, Clone)]
pub struct Intersection {
    /// Set size of each party, by party index.
    pub set_sizes: Vec<u64>,
    /// The label holder's verdict.
    pub verdict: Verdict,
    /// Sealed bytes relayed, by step name.
    pub relayed_bytes: BTreeMap<String, u64>,
}

/// Runs the intersection among the engine's cohort (party order).
pub async fn intersect(
    engine: &mut Engine<'_>,
    params: Arc<PsiParams>,
) -> Result<Intersection, VerticalError> {
    let parties: Vec<u32> = (0..params.parties).collect();
    for &p in &parties {
        engine
            .send_vertical(p, vertical_down::Body::PsiStart(proto::PsiStart {}))
            .await;
    }
    // Hashing a whole set takes longer than one relay step.
    let hello_wait = engine.phase_timeout() * 4;
    let mut gathering = Gathering::new(params.clone());
    let mut said = 0;
    while said < params.parties {
        let deadline = Deadline::now() + hello_wait;
        let Some(received) = receive(engine, deadline, Step::Hello, None).await? else {
            // The first party without a hello is the one to name.
            return Err(gathering.close().err().map_or(
                VerticalError::Psi(PsiError::Dropped {
                    party: 0,
                    step: Step::Hello,
                }),
                VerticalError::Psi,
            ));
        };
        match received.body {
            vertical_up::Body::PsiHello(hello) => {
                let hello = wire::hello_from_wire(received.from, hello)?;
                gathering.hello(received.from, hello)?;
                said += 1;
            }
            other => return Err(out_of_turn(received.from, &other)),
        }
    }
    let (roster, mut relay) = gathering.close()?;
    info!(sizes = ?roster.set_sizes, "intersection: every party said hello");
    for &p in &parties {
        engine
            .send_vertical(
                p,
                vertical_down::Body::PsiRoster(wire::roster_to_wire(&roster)),
            )
            .await;
    }
    let mut assembler = wire::Assembler::new();
    while !relay.finished() {
        let step = relay.pending().first().map_or(Step::Result, |p| p.0);
        let deadline = Deadline::now() + engine.phase_timeout();
        let Some(received) = receive(engine, deadline, step, None).await? else {
            // Every later message waits on the earliest one still awaited.
            let stalled = relay
                .stalled()
                .unwrap_or(PsiError::Dropped { party: 0, step });
            return Err(VerticalError::Psi(stalled));
        };
        relay_one(engine, &mut relay, &mut assembler, received).await?;
    }
    let view = relay.view().clone();
    Ok(Intersection {
        set_sizes: view.set_sizes,
        verdict: view.verdict.expect("a finished run has a verdict"),
        relayed_bytes: view
            .relayed_bytes
            .iter()
            .map(|(s, b)| (s.to_string(), *b))
            .collect(),
    })
}

/// Relays one received message: a chunk (once its list is whole) or the
/// verdict.
async fn relay_one(
    engine: &mut Engine<'_>,
    relay: &mut Relaying,
    assembler: &mut wire::Assembler,
    received: Received,
) -> Result<(), VerticalError> {
    let from = received.from;
    match received.body {
        vertical_up::Body::PsiChunk(chunk) => {
            let Some(env) = assembler.add(from, chunk)? else {
                return Ok(());
            };
            let env = relay.route(from, env)?;
            let to = env.to;
            for chunk in wire::chunks(env) {
                engine
                    .send_vertical(to, vertical_down::Body::PsiChunk(chunk))
                    .await;
            }
        }
        vertical_up::Body::PsiVerdict(v) if from == psi::LABEL_HOLDER => {
            let verdict = wire::verdict_from_wire(v)?;
            relay.verdict(from, verdict)?;
            info!(?verdict, "intersection: the label holder's verdict");
            for p in 1..relay_parties(relay) {
                engine
                    .send_vertical(
                        p,
                        vertical_down::Body::PsiVerdict(wire::verdict_to_wire(verdict)),
                    )
                    .await;
            }
        }
        other => return Err(out_of_turn(from, &other)),
    }
    Ok(())
}

fn relay_parties(relay: &Relaying) -> u32 {
    relay.view().set_sizes.len() as u32
}
