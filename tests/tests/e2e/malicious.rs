//! A coordinator that does not follow the protocol, over the network: the
//! real coordinator server with the test in place of its round engine, and
//! real `fedseg-participant` processes. It hands one bank a roster in which
//! the other banks' encryption keys are its own; the bank refuses, blames
//! the coordinator, and seals no share to anyone.

use std::time::Duration;

use fedseg_common::proto::{
    self, CoordinatorMessage, FaultKind, coordinator_message::Body as Down,
    participant_message::Body as Up,
};
use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_coordinator::server;
use fedseg_tests::Consortium;

use crate::playing_coordinator::next_message;

#[test]
fn a_bank_refuses_a_roster_with_substituted_keys_and_blames_the_coordinator() {
    let c = Consortium::new(3, 5.0, 1);
    c.write_job(1, 2, None);
    for site in &c.sites {
        c.write_vector(site, &[1.0, 2.0]);
    }
    let config = CoordinatorConfig::load(&c.path().join("coordinator.toml")).unwrap();
    let job = Job::load(&c.path().join("job.toml")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _sites: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let (victim, refusal) = runtime.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut running = server::start(&config, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let hub = running.hub.clone();
        let send = |id: String, body: Down| {
            let hub = hub.clone();
            let job_id = job.id.clone();
            async move {
                let message = CoordinatorMessage {
                    job_id,
                    body: Some(body),
                };
                assert!(hub.send(&id, message).await);
            }
        };
        while hub.connected().len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cohort = c.sites.clone();
        for (index, id) in cohort.iter().enumerate() {
            let offer = proto::JobOffer {
                job_version: 1,
                config_hash: job.config_hash.clone(),
                config: job.text.clone(),
                cohort: cohort.clone(),
                index: index as u32,
                threshold: 2,
                neighbours: 2,
                graph_seed: job.graph_seed().to_vec(),
                quorum: 2,
                ..Default::default()
            };
            send(id.clone(), Down::JobOffer(offer)).await;
        }
        let start = proto::EpochStart {
            epoch: 0,
            first_round: 0,
            rounds: 1,
            members: vec![0, 1, 2],
        };
        let mut adverts = vec![None, None, None];
        for id in &cohort {
            send(id.clone(), Down::EpochStart(start.clone())).await;
        }
        while adverts.iter().any(Option::is_none) {
            let (id, body) = next_message(&mut running.events).await;
            if let Up::KeyAdvertisement(k) = body {
                adverts[cohort.iter().position(|s| *s == id).unwrap()] = Some(k);
            }
        }
        // Bank 1's roster: banks 0 and 2 keep their certificates and
        // signatures, but their encryption keys are the coordinator's.
        let victim = 1;
        let keys = adverts
            .into_iter()
            .enumerate()
            .map(|(m, k)| {
                let k = k.unwrap();
                let own = m == victim;
                proto::AdvertisedKeys {
                    participant: m as u32,
                    encryption_key: if own { k.encryption_key } else { vec![9; 32] },
                    mask_keys: k.mask_keys,
                    certificate: k.certificate,
                    signature: k.signature,
                }
            })
            .collect();
        let roster = proto::EpochRoster {
            epoch: 0,
            first_round: 0,
            rounds: 1,
            keys,
        };
        send(cohort[victim].clone(), Down::EpochRoster(roster)).await;
        let answer = loop {
            let (id, body) = next_message(&mut running.events).await;
            if id == cohort[victim] {
                break body;
            }
        };
        running.hub.close_all();
        let _ = stop.send(());
        (cohort[victim].clone(), answer)
    });
    let Up::TaskFailed(failed) = refusal else {
        panic!("{victim} answered a forged roster with {refusal:?}")
    };
    assert_eq!(failed.fault(), FaultKind::Coordinator, "{failed:?}");
    assert!(failed.reason.contains("not its own"), "{failed:?}");
    // Nothing sealed left the bank: its ledger holds no share bundle.
    let ledger =
        std::fs::read_to_string(c.path().join("sites").join(&victim).join("ledger.log")).unwrap();
    assert!(ledger.contains("\"advertise-keys\""), "{ledger}");
    assert!(!ledger.contains("\"share-keys\""), "{ledger}");
    assert!(ledger.contains("\"task-failed\""), "{ledger}");
}
