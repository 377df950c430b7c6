//! `journal show`: the journal as a table a compliance officer can read, or
//! as JSON lines for tools.

use std::fmt::Write;

use fedseg_common::journal::{Entry, Record};

fn time(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_ms.to_string())
}

/// One journal entry as (job, round, what happened). The match names every
/// kind, so a new kind cannot be left out of `journal show`.
fn summary(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::JobQueued { .. } | Entry::JobCancelled { .. } => queue_event(entry),
        Entry::JournalOpened { .. }
        | Entry::JobSubmitted { .. }
        | Entry::CohortFixed { .. }
        | Entry::JobResumed { .. }
        | Entry::PrivacyBudget { .. }
        | Entry::ParticipantDeclined { .. }
        | Entry::JobFinished { .. } => job_event(entry),
        Entry::KeySetupDone { .. }
        | Entry::PhaseCompleted { .. }
        | Entry::AggregateReleased { .. }
        | Entry::RoundOpened { .. }
        | Entry::RoundAborted { .. }
        | Entry::PrivacySpent { .. } => round_event(entry),
        Entry::VerticalMessage { .. }
        | Entry::VerticalBatch { .. }
        | Entry::VerticalThreatModel { .. }
        | Entry::IntersectionDone { .. } => vertical_event(entry),
        Entry::MemberCertificates { .. }
        | Entry::SurvivorsConfirmed { .. }
        | Entry::FaultReported { .. } => signed_event(entry),
    }
}

/// The job service's queue: who asked for a job and why, who cancelled it.
fn queue_event(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::JobQueued {
            job_id,
            analyst,
            purpose,
            config_hash,
            ..
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "queued by analyst {analyst} (signed), config {}: {purpose}",
                &config_hash[..12.min(config_hash.len())]
            ),
        ),
        Entry::JobCancelled { job_id, by, reason } => (
            job_id.clone(),
            String::new(),
            format!("cancelled by {by}: {reason}"),
        ),
        other => (String::new(), String::new(), format!("{other:?}")),
    }
}

/// A vertical job's relayed messages and its intersection.
fn vertical_event(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::VerticalMessage {
            job_id,
            step,
            from,
            to,
            bytes,
            sha256,
        } => {
            let to = if to.is_empty() { "coordinator" } else { to };
            (
                job_id.clone(),
                String::new(),
                format!(
                    "{step}: {from} -> {to}, {bytes} bytes, sha256 {}",
                    &sha256[..16.min(sha256.len())]
                ),
            )
        }
        Entry::VerticalBatch {
            job_id,
            step,
            from,
            messages,
            bytes,
            sha256,
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "{step}: {from}, {messages} messages, {bytes} bytes, sha256 {}",
                &sha256[..16.min(sha256.len())]
            ),
        ),
        Entry::VerticalThreatModel {
            job_id,
            parties,
            dealer,
            assumption,
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "threat model: {assumption} (parties {}; dealer {dealer})",
                parties.join(", ")
            ),
        ),
        Entry::IntersectionDone {
            job_id,
            set_sizes,
            intersection,
        } => {
            let sizes: Vec<String> = set_sizes.iter().map(|(p, n)| format!("{p} {n}")).collect();
            let outcome = intersection.map_or("below min_overlap".to_string(), |n| n.to_string());
            (
                job_id.clone(),
                String::new(),
                format!("intersection {outcome} (sets: {})", sizes.join(", ")),
            )
        }
        other => (String::new(), String::new(), format!("{other:?}")),
    }
}

/// What the members signed, and what they refused.
fn signed_event(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::MemberCertificates {
            job_id,
            epoch,
            certificates,
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "epoch {epoch} keys signed under the certificates of {}",
                certificates.keys().cloned().collect::<Vec<_>>().join(",")
            ),
        ),
        Entry::SurvivorsConfirmed {
            job_id,
            round,
            survivors,
            signatures,
            inputs,
        } => (
            job_id.clone(),
            round.to_string(),
            format!(
                "survivors {} signed by {}{}",
                list(survivors),
                signatures.keys().cloned().collect::<Vec<_>>().join(","),
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!("; inputs signed by {}", inputs.len())
                }
            ),
        ),
        Entry::FaultReported {
            job_id,
            round,
            participant,
            fault,
            reason,
        } => (
            job_id.clone(),
            round.to_string(),
            if fault == "participant" {
                format!("{participant} at fault (found by the coordinator): {reason}")
            } else {
                format!("{participant} refused, at fault: {fault}: {reason}")
            },
        ),
        other => round_event(other),
    }
}

fn list(v: &[String]) -> String {
    v.join(",")
}

/// A job's own events: submitted, its cohort, resumed, privacy budget, a
/// refusal, its end.
fn job_event(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::JournalOpened { coordinator, .. } => (
            String::new(),
            String::new(),
            format!("opened by {coordinator}"),
        ),
        Entry::JobSubmitted {
            job_id,
            config_hash,
            ..
        } => (
            job_id.clone(),
            String::new(),
            format!("config {}", &config_hash[..16.min(config_hash.len())]),
        ),
        Entry::CohortFixed {
            job_id,
            cohort,
            threshold,
            neighbours,
            quorum,
            signed_inputs,
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "cohort {} (t={threshold}, k={neighbours}, quorum={quorum}{})",
                list(cohort),
                if *signed_inputs {
                    ", signed inputs"
                } else {
                    ""
                }
            ),
        ),
        Entry::JobResumed {
            job_id,
            completed,
            next_round,
        } => (
            job_id.clone(),
            next_round.to_string(),
            format!("resumed after {completed} completed rounds"),
        ),
        Entry::PrivacyBudget {
            job_id,
            epsilon,
            delta,
            rho,
            clip,
            planned_releases,
        } => (
            job_id.clone(),
            String::new(),
            format!(
                "privacy budget ε = {epsilon}, δ = {delta:e} (ρ = {rho:.4e}) over {planned_releases} releases; per-customer bounds R, F, M, L, T ≤ {clip:?}"
            ),
        ),
        Entry::ParticipantDeclined {
            job_id,
            participant,
            reason,
        } => (
            job_id.clone(),
            String::new(),
            format!("{participant} declined: {reason}"),
        ),
        Entry::JobFinished {
            job_id,
            success,
            reason,
        } => (
            job_id.clone(),
            String::new(),
            if *success {
                "finished".into()
            } else {
                format!("failed: {reason}")
            },
        ),
        other => round_event(other),
    }
}

/// A key epoch's or a round's events.
fn round_event(entry: &Entry) -> (String, String, String) {
    match entry {
        Entry::KeySetupDone {
            job_id,
            epoch,
            first_round,
            rounds,
            members,
        } => (
            job_id.clone(),
            first_round.to_string(),
            format!(
                "epoch {epoch} keys for rounds {first_round}..{}: {}",
                first_round + *rounds as u64,
                list(members)
            ),
        ),
        Entry::PhaseCompleted {
            job_id,
            round,
            phase,
            answered,
            silent,
        } => {
            let answered: Vec<String> = answered.keys().cloned().collect();
            (
                job_id.clone(),
                round.to_string(),
                format!(
                    "{phase}: answered {} silent [{}]",
                    list(&answered),
                    list(silent)
                ),
            )
        }
        Entry::AggregateReleased {
            job_id,
            round,
            survivors,
            values,
        } => (
            job_id.clone(),
            round.to_string(),
            format!("released {} values from {}", values.len(), list(survivors)),
        ),
        Entry::RoundOpened {
            job_id,
            round,
            epoch,
            members,
        } => (
            job_id.clone(),
            round.to_string(),
            format!("opened with epoch {epoch} keys for {}", list(members)),
        ),
        Entry::RoundAborted {
            job_id,
            round,
            reason,
        } => (
            job_id.clone(),
            round.to_string(),
            format!("aborted: {reason}"),
        ),
        Entry::PrivacySpent {
            job_id,
            round,
            sensitivity,
            variance,
            contributors,
            rho,
            total_rho,
            count_noise_sd,
        } => (
            job_id.clone(),
            round.to_string(),
            format!(
                "privacy spent: ρ = {rho:.4e} (job {total_rho:.4e}); sensitivity {sensitivity:.1} steps, noise variance {variance} steps² from each of {contributors} (sd {count_noise_sd:.2} on a count)"
            ),
        ),
        other => (String::new(), String::new(), format!("{other:?}")),
    }
}

/// Renders records as a table, or as one JSON object per line.
pub fn render(records: &[Record], json: bool) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    if json {
        for r in records {
            let line = serde_json::json!({
                "sequence": r.sequence,
                "time": time(r.unix_ms),
                "hash": hex::encode(r.hash),
                "entry": r.entry,
            });
            writeln!(out, "{line}").expect("writing to a String cannot fail");
        }
        return Ok(out);
    }
    writeln!(
        out,
        "{:>5}  {:<24}  {:<20}  {:<18}  {:>5}  what",
        "seq", "time", "kind", "job", "round"
    )
    .expect("writing to a String cannot fail");
    for r in records {
        let kind = serde_json::to_value(&r.entry)?["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (job, round, what) = summary(&r.entry);
        writeln!(
            out,
            "{:>5}  {:<24}  {:<20}  {:<18}  {:>5}  {what}",
            r.sequence,
            time(r.unix_ms),
            kind,
            job,
            round
        )
        .expect("writing to a String cannot fail");
    }
    Ok(out)
}
