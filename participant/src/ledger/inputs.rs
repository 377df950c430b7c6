//! A bank's own check of the journal's signed inputs: every release the
//! journal says counts this site's input must carry this site's signature,
//! made with its own key, on the digest of the masked input its ledger says
//! it sent for that round. The journal's verifier checks each signature
//! against the certificate the journal holds; this check needs neither the
//! journal's certificates nor its `signed_inputs` flag, so a coordinator
//! that rewrote its journal without them (re-signing every record) is
//! caught by every bank whose input it counted.

use std::collections::{BTreeMap, BTreeSet};

use fedseg_common::journal::{Entry, SignedInputRecord, VerifiedJournal};
use fedseg_common::keys::VerifyingKey;
use fedseg_common::secagg::Phase;
use fedseg_common::secagg::signing::{self, Signature};

use super::LedgerEntry;

/// The releases with `site`'s input whose journal record lacks `site`'s
/// valid signature (with `key`) on a masked input the ledger holds for that
/// round. Rounds whose ledger line records no signed digest (sent before
/// inputs were signed) are not checked.
pub fn inputs_unsigned(
    site: &str,
    key: &VerifyingKey,
    ledger: &[LedgerEntry],
    journal: &VerifiedJournal,
) -> Vec<String> {
    let mut sent: BTreeMap<(&str, u64), BTreeSet<&str>> = BTreeMap::new();
    for line in ledger
        .iter()
        .filter(|l| l.kind == Phase::MaskedInput.name())
    {
        if let (Some(round), Some(digest)) = (line.round, &line.input_sha256) {
            sent.entry((&line.job_id, round))
                .or_default()
                .insert(digest);
        }
    }
    let mut confirmed: BTreeMap<(&str, u64), Option<&SignedInputRecord>> = BTreeMap::new();
    let mut problems = Vec::new();
    for record in &journal.records {
        match &record.entry {
            Entry::SurvivorsConfirmed {
                job_id,
                round,
                inputs,
                ..
            } => {
                confirmed.insert((job_id, *round), inputs.get(site));
            }
            Entry::AggregateReleased {
                job_id,
                round,
                survivors,
                ..
            } if survivors.iter().any(|s| s == site) => {
                let Some(digests) = sent.get(&(job_id.as_str(), *round)) else {
                    continue;
                };
                let signed = confirmed.get(&(job_id.as_str(), *round)).copied().flatten();
                if let Err(why) = check(key, (job_id, *round), digests, signed) {
                    problems.push(format!(
                        "journal record {}: round {round} of {job_id} was released with \
                         {site}'s input, {why}",
                        record.sequence
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}

fn check(
    key: &VerifyingKey,
    (job_id, round): (&str, u64),
    sent: &BTreeSet<&str>,
    signed: Option<&SignedInputRecord>,
) -> Result<(), &'static str> {
    let signed = signed.ok_or("but the journal holds no signature of it on that input")?;
    if !sent.contains(signed.digest.as_str()) {
        return Err("but the input digest the journal holds is not one the ledger says it sent");
    }
    let digest: [u8; 32] = hex::decode(&signed.digest)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("but the journal's input digest is not 32 bytes")?;
    let signature: Signature = hex::decode(&signed.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("but the journal's input signature is not 64 bytes")?;
    key.verify(&signing::input_message(job_id, round, &digest), &signature)
        .map_err(|_| "but the signature on its input is not its own")
}
