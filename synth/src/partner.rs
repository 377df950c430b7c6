//! A synthetic feature partner (`demo --vertical`): a fintech that knows a
//! share of a bank's customers, by the same join key, plus customers of
//! its own. Its columns carry signal about the bank's `converted` label
//! (customers who convert use the app more and spend more in the wallet),
//! so a joint model has something to add over the bank's own features.

use std::path::Path;

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal, Poisson};

use super::{SynthError, Table};

/// What [`write_partner`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartnerWritten {
    /// Rows of `features.csv`.
    pub rows: u64,
    /// Of them, customers the bank also holds.
    pub shared: u64,
    /// Rows whose `consent_marketing` is false.
    pub refused: u64,
}

/// Share of the partner's customers who refuse marketing.
const REFUSAL: f64 = 0.03;

/// Writes `dir/features.csv` (`customer_id, app_sessions, wallet_spend,
/// consent_marketing`): each customer of the bank's `customers.csv` with
/// probability `share`, then `own` customers only the partner holds,
/// reproducibly from `seed`.
pub fn write_partner(
    dir: &Path,
    bank_customers: &Path,
    share: f64,
    own: u64,
    seed: u64,
) -> Result<PartnerWritten, SynthError> {
    let read_error = |source| SynthError::Write {
        path: bank_customers.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(bank_customers).map_err(read_error)?;
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut table = Table::create(
        dir,
        "features.csv",
        "customer_id,app_sessions,wallet_spend,consent_marketing",
    )?;
    let mut written = PartnerWritten::default();
    // The bank's table is synth's own: `id,consent,converted,since`.
    let bank = text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split(',');
        let id = fields.next()?;
        let converted = fields.nth(1)? == "1";
        Some((id, converted))
    });
    for (id, converted) in bank {
        if rng.random::<f64>() < share {
            row(&mut table, &mut rng, id, converted, &mut written)?;
            written.shared += 1;
        }
    }
    for i in 0..own {
        let converted = rng.random::<f64>() < 0.1;
        row(
            &mut table,
            &mut rng,
            &format!("P{seed:x}-{i:07}"),
            converted,
            &mut written,
        )?;
    }
    table.finish()?;
    Ok(written)
}

fn row(
    table: &mut Table,
    rng: &mut ChaCha20Rng,
    id: &str,
    converted: bool,
    written: &mut PartnerWritten,
) -> Result<(), SynthError> {
    let lift = if converted { 1.0 } else { 0.0 };
    let sessions = Poisson::new(6.0 + 6.0 * lift)
        .expect("positive mean")
        .sample(rng);
    let spend: f64 = LogNormal::new(4.5 + 0.5 * lift, 0.8)
        .expect("valid log-normal")
        .sample(rng);
    let consent = rng.random::<f64>() >= REFUSAL;
    written.refused += u64::from(!consent);
    written.rows += 1;
    table.line(format_args!("{id},{sessions},{spend:.2},{consent}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_shares_about_its_share_of_the_bank_and_adds_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let bank = dir.path().join("bank");
        crate::write(&bank, 2000, 7, "retail").unwrap();
        let partner = dir.path().join("partner");
        let w = write_partner(&partner, &bank.join("customers.csv"), 0.6, 300, 9).unwrap();
        assert_eq!(w.rows, w.shared + 300);
        assert!((1100..1300).contains(&w.shared), "{w:?}");
        let text = std::fs::read_to_string(partner.join("features.csv")).unwrap();
        assert_eq!(text.lines().count() as u64, w.rows + 1);
        // Reproducible.
        let again = dir.path().join("again");
        write_partner(&again, &bank.join("customers.csv"), 0.6, 300, 9).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.join("features.csv")).unwrap(),
            text
        );
    }
}
