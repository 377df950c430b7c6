//! One secure sum: a key epoch set up when none covers the round, masked
//! inputs collected from the members present, the survivors' unmasking
//! shares collected, the sum released and its privacy accounted; or the
//! round aborted, journaled and told to every member present.

use fedseg_common::secagg::Phase;
use std::time::Instant;

use fedseg_common::fixed_point::FixedPointEncoder;
use fedseg_common::journal::{Entry, SignedInputRecord};
use fedseg_common::privacy;
use fedseg_common::proto::{self, coordinator_message};
use tracing::{info, warn};

use super::{Engine, EngineError, RoundRecord};

impl Engine<'_> {
    /// One secure sum of `computation` over the members present: the
    /// released (decoded) sum, or an aborted round when too few members
    /// answered. A job resumed from the journal first gets back, in order,
    /// the rounds the journal holds, so a deterministic job retraces its
    /// steps without asking anyone again.
    pub async fn secure_sum(
        &mut self,
        purpose: &str,
        computation: &proto::Computation,
        encoder: &FixedPointEncoder,
        length: u32,
    ) -> Result<&RoundRecord, EngineError> {
        if let Some(mut done) = self.replay.pop_front() {
            done.purpose = purpose.to_string();
            match done.rho {
                Some(rho) => self.privacy_spent += rho,
                // The coordinator stopped between journaling the release
                // and its privacy: account for it now.
                None if done.sum.is_some() => self.spend_privacy(&mut done, computation, length)?,
                None => {}
            }
            self.rounds.push(done);
            return Ok(self.rounds.last().expect("pushed"));
        }
        let round = self.next_round;
        self.next_round += 1;
        let started = Instant::now();
        let traffic_before = self.transport.traffic();
        let mut record = RoundRecord::new(round, "aborted");
        record.purpose = purpose.to_string();
        let result = self
            .run_round(round, computation, encoder, length, &mut record)
            .await;
        match result {
            Ok(()) => {}
            Err(EngineError::Protocol(e)) => {
                warn!(round, code = e.code(), %e, "round aborted, nothing released");
                record.reason = Some(e.to_string());
                self.journal.append(Entry::RoundAborted {
                    job_id: self.job.id.clone(),
                    round,
                    reason: e.to_string(),
                })?;
                let aborted = coordinator_message::Body::RoundAborted(proto::RoundAborted {
                    round,
                    reason: e.to_string(),
                });
                self.broadcast(self.present(), aborted).await;
            }
            Err(other) => return Err(other),
        }
        record.duration_s = started.elapsed().as_secs_f64();
        record.traffic = self.transport.traffic() - traffic_before;
        self.transport
            .metrics()
            .round(record.outcome, record.dropped.len());
        self.rounds.push(record);
        Ok(self.rounds.last().expect("pushed"))
    }

    async fn run_round(
        &mut self,
        round: u64,
        computation: &proto::Computation,
        encoder: &FixedPointEncoder,
        length: u32,
        record: &mut RoundRecord,
    ) -> Result<(), EngineError> {
        if self.epoch.as_ref().is_none_or(|e| !e.start().covers(round)) {
            self.epoch = None;
            let number = self.next_epoch;
            self.next_epoch += 1;
            let epoch = self
                .set_up_epoch(number, round, self.settings.epoch_rounds)
                .await?;
            self.epoch = Some(epoch);
        }
        let present = self.present();
        let state = self.epoch.as_mut().expect("set up above");
        record.epoch = Some(state.start().epoch);
        let members: Vec<u32> = state
            .members()
            .iter()
            .copied()
            .filter(|m| present.contains(m))
            .collect();
        let (request, mut inputs) = state.open_round(round, members.clone(), length as usize)?;
        let epoch_number = state.start().epoch;
        self.journal.append(Entry::RoundOpened {
            job_id: self.job.id.clone(),
            round,
            epoch: epoch_number,
            members: self.names(&members),
        })?;
        let mut wire_request = proto::MaskRequest {
            round,
            members: request.members.clone(),
            length,
            computation: Some(computation.clone()),
        };
        wire_request.members.sort_unstable();
        let request = coordinator_message::Body::MaskRequest(wire_request);
        self.ask(Phase::MaskedInput, round, &mut inputs, &members, request)
            .await?;
        let (set, mut confirm) = inputs.close()?;
        let survivors = set.survivors.clone();
        record.survivors = self.names(&survivors);
        record.dropped = self.names(
            &members
                .iter()
                .copied()
                .filter(|m| survivors.binary_search(m).is_err())
                .collect::<Vec<_>>(),
        );
        let request = coordinator_message::Body::SurvivorSet((&set).into());
        self.ask(
            Phase::ConfirmSurvivors,
            round,
            &mut confirm,
            &survivors,
            request,
        )
        .await?;
        let signatures = confirm
            .signatures()
            .iter()
            .map(|(m, s)| (self.cohort[*m as usize].clone(), hex::encode(s)))
            .collect();
        let inputs = confirm
            .signed_inputs()
            .iter()
            .map(|(m, s)| {
                let signed = SignedInputRecord {
                    digest: hex::encode(s.digest),
                    signature: hex::encode(s.signature),
                };
                (self.cohort[*m as usize].clone(), signed)
            })
            .collect();
        let (unmask_request, mut unmask) = confirm.close()?;
        self.journal.append(Entry::SurvivorsConfirmed {
            job_id: self.job.id.clone(),
            round,
            survivors: record.survivors.clone(),
            signatures,
            inputs,
        })?;
        let request = coordinator_message::Body::UnmaskRequest((&unmask_request).into());
        self.ask(Phase::Unmask, round, &mut unmask, &survivors, request)
            .await?;
        let state = self.epoch.as_mut().expect("set up above");
        let words = unmask.finish(state)?;
        let decoded = encoder.decode(&words);
        info!(
            round,
            purpose = %record.purpose,
            survivors = record.survivors.len(),
            dropped = record.dropped.len(),
            "round released"
        );
        self.journal.append(Entry::AggregateReleased {
            job_id: self.job.id.clone(),
            round,
            survivors: record.survivors.clone(),
            values: decoded.clone(),
        })?;
        record.outcome = "released";
        record.sum = Some(decoded);
        self.spend_privacy(record, computation, length)
    }

    /// Accounts and journals the privacy a released round of a noisy
    /// computation spent; only the survivors' noise is in its sum.
    fn spend_privacy(
        &mut self,
        record: &mut RoundRecord,
        computation: &proto::Computation,
        length: u32,
    ) -> Result<(), EngineError> {
        let Some(noise) = &computation.noise else {
            return Ok(());
        };
        let bounds = privacy::customer_bounds(computation, length as usize)?;
        let contributors = record.survivors.len() as u32;
        let rho = bounds.rho(noise.step, noise.variance, contributors);
        let count_noise_sd = noise.step * (noise.variance as f64 * f64::from(contributors)).sqrt();
        self.privacy_spent += rho;
        self.journal.append(Entry::PrivacySpent {
            job_id: self.job.id.clone(),
            round: record.round,
            sensitivity: bounds.sensitivity(noise.step),
            variance: noise.variance,
            contributors,
            rho,
            total_rho: self.privacy_spent,
            count_noise_sd,
        })?;
        record.rho = Some(rho);
        record.count_noise_sd = Some(count_noise_sd);
        Ok(())
    }
}
