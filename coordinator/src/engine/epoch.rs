//! A key set-up: every present member advertises its keys, then shares its
//! round secrets with its neighbours through the coordinator; the epoch
//! then covers a block of rounds.

use fedseg_common::journal::Entry;
use fedseg_common::proto::coordinator_message;
use fedseg_common::secagg::Phase;
use fedseg_common::secagg::coordinator::{self as role, Epoch};
use tracing::info;

use super::{Engine, EngineError};

impl Engine<'_> {
    /// Sets up key epoch `number` for `rounds` rounds from `first_round`,
    /// with every member present.
    pub(super) async fn set_up_epoch(
        &mut self,
        number: u32,
        first_round: u64,
        rounds: u32,
    ) -> Result<Epoch, EngineError> {
        // A hung member heard from since rejoins here; one still silent
        // stays out, so it costs the job one phase deadline, not one per
        // key set-up.
        self.hung.retain(|_, heard| !*heard);
        let invited: Vec<u32> = self.present().into_iter().collect();
        let (start, mut keys) = role::start_epoch(
            self.params.clone(),
            number,
            first_round,
            rounds,
            invited.clone(),
        )?;
        info!(
            epoch = number,
            first_round,
            rounds,
            members = invited.len(),
            "key set-up"
        );
        let request = coordinator_message::Body::EpochStart((&start).into());
        self.ask(
            Phase::AdvertiseKeys,
            first_round,
            &mut keys,
            &invited,
            request,
        )
        .await?;
        let (roster, mut shares) = keys.close()?;
        self.journal.append(Entry::MemberCertificates {
            job_id: self.job.id.clone(),
            epoch: number,
            certificates: roster
                .keys
                .iter()
                .map(|(m, k)| {
                    (
                        self.cohort[*m as usize].clone(),
                        hex::encode(&k.certificate),
                    )
                })
                .collect(),
        })?;
        let members: Vec<u32> = shares.members().collect();
        let request = coordinator_message::Body::EpochRoster((&roster).into());
        self.ask(
            Phase::ShareKeys,
            first_round,
            &mut shares,
            &members,
            request,
        )
        .await?;
        let (deliveries, epoch) = shares.close()?;
        self.journal.append(Entry::KeySetupDone {
            job_id: self.job.id.clone(),
            epoch: number,
            first_round,
            rounds,
            members: self.names(epoch.members()),
        })?;
        for (m, delivery) in &deliveries {
            self.send(
                *m,
                coordinator_message::Body::ShareDelivery(delivery.into()),
            )
            .await;
        }
        Ok(epoch)
    }
}
