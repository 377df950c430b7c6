//! A coordinator that equivocates on a round's survivor set, over the
//! network: the real coordinator server with the test as its round engine
//! (driving the protocol's own coordinator states honestly through key
//! set-up and masking), five real `fedseg-participant` processes, and one of
//! them (bank-e) colluding: the adversary holds its signing key.
//!
//! It tells banks a and b "bank-b survived" (to collect shares of b's self
//! mask) and banks c and d "bank-b dropped" (to collect shares of b's round
//! mask key), and signs both sets with the colluder's key. Neither set has
//! the quorum of four signatures (n = 5, c = 1), so no honest bank reveals
//! any share; what the adversary ends up holding of bank-b's secrets is the
//! colluder's one share of each kind, below the threshold of three, so it
//! cannot remove bank-b's masks from its masked vector.

use std::collections::BTreeMap;
use std::time::Duration;

use fedseg_common::keys::{FixedSigner, SigningKey};
use fedseg_common::proto::{
    self, CoordinatorMessage, FaultKind, coordinator_message::Body as Down,
    participant_message::Body as Up,
};
use fedseg_common::secagg::coordinator as role;
use fedseg_common::secagg::messages::{ToCoordinator, UnmaskRequest};
use fedseg_common::secagg::{JobParams, signing};
use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_coordinator::server;
use fedseg_coordinator::service::{Event, Hub};
use fedseg_tests::Consortium;

use crate::playing_coordinator::next_message;
use tokio::sync::mpsc::UnboundedReceiver;

/// The adversary: the server's sessions and the job.
struct Adversary<'a> {
    hub: std::sync::Arc<Hub>,
    events: &'a mut UnboundedReceiver<Event>,
    job: &'a Job,
    cohort: Vec<String>,
}

impl Adversary<'_> {
    async fn send(&self, member: usize, body: Down) {
        let message = CoordinatorMessage {
            job_id: self.job.id.clone(),
            body: Some(body),
        };
        assert!(self.hub.send(&self.cohort[member], message).await);
    }

    /// One answer from each of `members`, by cohort index.
    async fn answers(&mut self, members: &[usize]) -> BTreeMap<usize, Up> {
        let mut answers = BTreeMap::new();
        while answers.len() < members.len() {
            let (id, body) = next_message(self.events).await;
            let m = self.cohort.iter().position(|s| *s == id).unwrap();
            if members.contains(&m) {
                answers.insert(m, body);
            }
        }
        answers
    }

    /// Offers the job and runs key set-up and round 0's masking honestly;
    /// returns the survivors' masked inputs and their signing state.
    async fn mask_round_zero(&mut self, params: JobParams) -> role::ConfirmCollection {
        let all: Vec<usize> = (0..self.cohort.len()).collect();
        for &m in &all {
            let offer = proto::JobOffer {
                job_version: 1,
                config_hash: self.job.config_hash.clone(),
                config: self.job.text.clone(),
                cohort: self.cohort.clone(),
                index: m as u32,
                threshold: params.threshold,
                neighbours: params.graph.neighbours(0).len() as u32,
                graph_seed: self.job.graph_seed().to_vec(),
                quorum: params.quorum,
                ..Default::default()
            };
            self.send(m, Down::JobOffer(offer)).await;
        }
        for (_, answer) in self.answers(&all).await {
            assert!(matches!(answer, Up::JobAnswer(a) if a.accept));
        }
        let members: Vec<u32> = (0..self.cohort.len() as u32).collect();
        let params = std::sync::Arc::new(params);
        let (start, mut keys) = role::start_epoch(params, 0, 0, 1, members.clone()).unwrap();
        for &m in &all {
            self.send(m, Down::EpochStart((&start).into())).await;
        }
        for (m, answer) in self.answers(&all).await {
            let Up::KeyAdvertisement(k) = answer else {
                panic!("{answer:?}")
            };
            keys.handle(m as u32, ToCoordinator::Keys(k.try_into().unwrap()))
                .unwrap();
        }
        let (roster, mut shares) = keys.close().unwrap();
        for &m in &all {
            self.send(m, Down::EpochRoster((&roster).into())).await;
        }
        for (m, answer) in self.answers(&all).await {
            let Up::ShareBundle(b) = answer else {
                panic!("{answer:?}")
            };
            shares
                .handle(m as u32, ToCoordinator::Shares(b.into()))
                .unwrap();
        }
        let (deliveries, mut epoch) = shares.close().unwrap();
        for (m, delivery) in &deliveries {
            self.send(*m as usize, Down::ShareDelivery(delivery.into()))
                .await;
        }
        let (request, mut inputs) = epoch.open_round(0, members, 2).unwrap();
        let sum = self.job.config.secure_sum.clone().unwrap();
        let wire = proto::MaskRequest {
            round: 0,
            members: request.members.clone(),
            length: 2,
            computation: Some(proto::Computation {
                encoding: Some(proto::Encoding {
                    frac_bits: sum.frac_bits,
                    ranges: vec![proto::ClipRange {
                        lo: sum.lo,
                        hi: sum.hi,
                    }],
                    units: vec![],
                }),
                noise: None,
                kind: Some(proto::computation::Kind::VectorFile(proto::VectorFile {
                    name: sum.vector,
                })),
            }),
        };
        for &m in &all {
            self.send(m, Down::MaskRequest(wire.clone())).await;
        }
        for (m, answer) in self.answers(&all).await {
            let Up::MaskedInput(input) = answer else {
                panic!("{answer:?}")
            };
            inputs
                .handle(m as u32, ToCoordinator::Masked(input.try_into().unwrap()))
                .unwrap();
        }
        inputs.close().unwrap().1
    }
}

#[test]
fn a_coordinator_equivocating_on_survivors_over_the_network_gets_no_share() {
    let c = Consortium::new(5, 5.0, 1);
    c.write_job(1, 2, None);
    for (i, site) in c.sites.iter().enumerate() {
        c.write_vector(site, &[(i + 1) as f64, 10.0 * (i + 1) as f64]);
    }
    let config = CoordinatorConfig::load(&c.path().join("coordinator.toml")).unwrap();
    let job = Job::load(&c.path().join("job.toml")).unwrap();
    let protocol = job.config.cohort.protocol(5).unwrap();
    assert_eq!(
        (protocol.threshold, protocol.collusion, protocol.quorum),
        (3, 1, 4)
    );
    let params = JobParams::new(
        job.id.clone(),
        5,
        protocol.threshold,
        protocol.neighbours,
        &job.graph_seed(),
    )
    .and_then(|p| p.with_quorum(protocol.quorum))
    .unwrap();
    // bank-e colludes: the adversary signs with its key.
    let colluder = SigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(c.path().join("pki/bank-e.key")).unwrap(),
    )
    .unwrap();
    let _sites: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answers = runtime.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut running = server::start(&config, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        while running.hub.connected().len() < 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut adversary = Adversary {
            hub: running.hub.clone(),
            events: &mut running.events,
            job: &job,
            cohort: c.sites.clone(),
        };
        let confirm = adversary.mask_round_zero(params).await;
        assert_eq!(confirm.survivors(), &[0, 1, 2, 3, 4]);
        // "bank-b survived" to a and b; "bank-b dropped" to c and d.
        let survived = vec![0, 1, 2, 3, 4];
        let dropped = vec![0, 2, 3, 4];
        let mut requests = Vec::new();
        for (group, set, gone) in [
            (vec![0, 1], &survived, vec![]),
            (vec![2, 3], &dropped, vec![1]),
        ] {
            for &m in &group {
                let body = Down::SurvivorSet(proto::SurvivorSet {
                    round: 0,
                    survivors: set.clone(),
                });
                adversary.send(m, body).await;
            }
            let mut signatures: Vec<(u32, signing::Signature)> = Vec::new();
            for (m, answer) in adversary.answers(&group).await {
                let Up::SurvivorSignature(s) = answer else {
                    panic!("{} refused to sign: {answer:?}", c.sites[m])
                };
                signatures.push((m as u32, s.signature.try_into().unwrap()));
            }
            let message = signing::survivors_message(&job.id, 0, set);
            signatures.push((4, colluder.sign_fixed(&message)));
            let request = UnmaskRequest {
                round: 0,
                survivors: set.clone(),
                dropped: gone,
                signatures,
            };
            requests.push((group, request));
        }
        for (group, request) in &requests {
            for &m in group {
                adversary.send(m, Down::UnmaskRequest(request.into())).await;
            }
        }
        let answers = adversary.answers(&[0, 1, 2, 3]).await;
        running.hub.close_all();
        let _ = stop.send(());
        answers
    });
    // What the adversary holds of bank-b's secrets for round 0: the
    // colluder's own share of each kind, plus whatever honest banks
    // revealed.
    let (mut self_shares, mut key_shares) = (1, 1);
    for (m, answer) in &answers {
        match answer {
            Up::UnmaskResponse(r) => {
                self_shares += r.self_mask_shares.iter().filter(|s| s.owner == 1).count();
                key_shares += r.mask_key_shares.iter().filter(|s| s.owner == 1).count();
            }
            Up::TaskFailed(failed) => {
                assert_eq!(failed.fault(), FaultKind::Coordinator, "{failed:?}");
                assert!(
                    failed.reason.contains("3") && failed.reason.contains("4"),
                    "{}: {failed:?}",
                    c.sites[*m]
                );
            }
            other => panic!("{}: {other:?}", c.sites[*m]),
        }
    }
    assert_eq!(
        (self_shares, key_shares),
        (1, 1),
        "the adversary holds {self_shares} shares of bank-b's self mask and {key_shares} of its \
         mask key (t = 3)"
    );
    // Below the threshold of 3, bank-b's masked vector stays masked. And
    // nothing left any honest bank in an unmasking answer.
    for site in &c.sites[..4] {
        let ledger =
            std::fs::read_to_string(c.path().join("sites").join(site).join("ledger.log")).unwrap();
        assert!(ledger.contains("\"confirm-survivors\""), "{site}: {ledger}");
        assert!(!ledger.contains("\"unmask\""), "{site}: {ledger}");
        assert!(ledger.contains("\"task-failed\""), "{site}: {ledger}");
    }
}
