//! Synthetic canonical data for one bank (`fedseg-participant synth`, and
//! every site of `fedseg-coordinator demo`), so a consortium can be tried
//! without real customers. Customers follow a few
//! distinct behaviours (champions, loyal, new, dormant, browsers who never
//! buy, occasional buyers) in proportions set by a profile; amounts are
//! log-normal (heavy-tailed), purchases peak in November and December, some
//! customers refuse marketing, a few rows fall after the reference date,
//! and the `converted` label is drawn from a logistic model of the
//! customer's own behaviour, so the propensity model has something to find.

use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::ChaCha20Rng;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal, Poisson};
use thiserror::Error;
use time::{Date, Duration};

mod partner;
pub use partner::{PartnerWritten, write_partner};

/// Why synthetic data could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The profile name is not known.
    #[error("unknown profile {0:?}; known: {known}", known = PROFILES.join(", "))]
    UnknownProfile(String),
    /// Writing failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Profile names `synth --profile` accepts.
pub const PROFILES: [&str; 3] = ["retail", "fintech", "private"];

/// The last day of the synthetic history before the reference date; the
/// demo's jobs use the day after as `as_of`.
pub const HISTORY_END: Date = time::macros::date!(2026 - 10 - 31);

/// Days of history.
const HISTORY_DAYS: i64 = 3 * 365;

/// Rows dated after the reference date fall in this many days.
const LATE_DAYS: i64 = 20;

#[derive(Clone, Copy)]
struct Behaviour {
    /// Mean purchases over the customer's active span.
    purchases: f64,
    /// Log-normal location and shape of amounts.
    amount_mu: f64,
    amount_sigma: f64,
    /// Mean interactions, and weights of inquiry, save, search, other.
    interactions: f64,
    kinds: [f64; 4],
    /// Active span, as fractions of the history: activity stops this long
    /// before its end (dormant customers) ...
    quiet_before_end: (f64, f64),
    /// ... and the relationship began at most this long before its end.
    joined_within: f64,
}

const BEHAVIOURS: [Behaviour; 6] = [
    // Champions.
    Behaviour {
        purchases: 40.0,
        amount_mu: 4.6,
        amount_sigma: 0.9,
        interactions: 6.0,
        kinds: [0.2, 0.3, 0.2, 0.3],
        quiet_before_end: (0.0, 0.02),
        joined_within: 2.0,
    },
    // Loyal.
    Behaviour {
        purchases: 15.0,
        amount_mu: 3.8,
        amount_sigma: 0.8,
        interactions: 4.0,
        kinds: [0.25, 0.25, 0.25, 0.25],
        quiet_before_end: (0.0, 0.08),
        joined_within: 2.0,
    },
    // New.
    Behaviour {
        purchases: 3.0,
        amount_mu: 3.5,
        amount_sigma: 0.7,
        interactions: 8.0,
        kinds: [0.4, 0.2, 0.3, 0.1],
        quiet_before_end: (0.0, 0.02),
        joined_within: 0.15,
    },
    // Dormant.
    Behaviour {
        purchases: 5.0,
        amount_mu: 3.6,
        amount_sigma: 0.8,
        interactions: 1.0,
        kinds: [0.3, 0.1, 0.2, 0.4],
        quiet_before_end: (0.35, 0.8),
        joined_within: 2.0,
    },
    // Browsers: many inquiries and searches, almost never a purchase.
    Behaviour {
        purchases: 0.2,
        amount_mu: 3.0,
        amount_sigma: 0.6,
        interactions: 15.0,
        kinds: [0.45, 0.15, 0.35, 0.05],
        quiet_before_end: (0.0, 0.1),
        joined_within: 1.0,
    },
    // Occasional.
    Behaviour {
        purchases: 2.0,
        amount_mu: 3.0,
        amount_sigma: 0.7,
        interactions: 2.0,
        kinds: [0.25, 0.25, 0.25, 0.25],
        quiet_before_end: (0.0, 0.5),
        joined_within: 2.0,
    },
];

/// Behaviour weights and the share refusing marketing, per profile.
fn profile(name: &str) -> Result<([f64; 6], f64), SynthError> {
    match name {
        "retail" => Ok(([0.10, 0.20, 0.15, 0.20, 0.15, 0.20], 0.08)),
        "fintech" => Ok(([0.05, 0.10, 0.30, 0.10, 0.30, 0.15], 0.12)),
        "private" => Ok(([0.25, 0.30, 0.05, 0.20, 0.05, 0.15], 0.05)),
        other => Err(SynthError::UnknownProfile(other.to_string())),
    }
}

/// Relative purchase intensity per month (January first): a year-end peak.
const SEASON: [f64; 12] = [0.8, 0.7, 0.9, 0.9, 1.0, 1.0, 0.9, 0.9, 1.0, 1.1, 1.5, 1.8];

/// What `synth` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Customer rows.
    pub customers: u64,
    /// Transaction rows.
    pub transactions: u64,
    /// Interaction rows.
    pub interactions: u64,
}

struct Table {
    path: std::path::PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Table {
    fn create(dir: &Path, name: &str, header: &str) -> Result<Self, SynthError> {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).map_err(|source| SynthError::Write {
            path: path.clone(),
            source,
        })?;
        let mut table = Self {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
        };
        table.line(format_args!("{header}"))?;
        Ok(table)
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) -> Result<(), SynthError> {
        self.out
            .write_fmt(args)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| SynthError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn finish(mut self) -> Result<(), SynthError> {
        self.out.flush().map_err(|source| SynthError::Write {
            path: self.path,
            source,
        })
    }
}

/// Writes `customers.csv`, `transactions.csv` and `interactions.csv` for
/// `customers` customers under `dir`, reproducibly from `seed`.
pub fn write(
    dir: &Path,
    customers: u64,
    seed: u64,
    profile_name: &str,
) -> Result<Written, SynthError> {
    let (weights, refusal) = profile(profile_name)?;
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let first_day = HISTORY_END - Duration::days(HISTORY_DAYS - 1);
    // Every date the data can carry, formatted once.
    let dates: Vec<String> = (0..HISTORY_DAYS + LATE_DAYS)
        .map(|d| (first_day + Duration::days(d)).to_string())
        .collect();
    let months: Vec<usize> = (0..HISTORY_DAYS + LATE_DAYS)
        .map(|d| (first_day + Duration::days(d)).month() as usize - 1)
        .collect();
    let season_max = SEASON.iter().copied().fold(0.0, f64::max);
    let total_weight: f64 = weights.iter().sum();

    let mut customer_table = Table::create(
        dir,
        "customers.csv",
        "customer_id,consent_marketing,converted,since",
    )?;
    let mut transactions = Table::create(dir, "transactions.csv", "customer_id,ts,amount")?;
    let mut interactions = Table::create(dir, "interactions.csv", "customer_id,ts,kind")?;
    let mut written = Written::default();
    let kinds = ["inquiry", "save", "search", "other"];
    let mut days = Vec::new();
    for i in 0..customers {
        let id = format!("C{seed:x}-{i:07}");
        let behaviour = BEHAVIOURS[pick(&mut rng, &weights, total_weight)];
        let history = HISTORY_DAYS as f64;
        let joined = rng.random_range(0.0..behaviour.joined_within) * history;
        let since_day = HISTORY_DAYS - 1 - joined as i64;
        let (q0, q1) = behaviour.quiet_before_end;
        let active_end = HISTORY_DAYS - 1 - (rng.random_range(q0..=q1) * history) as i64;
        let active_start = since_day.clamp(0, active_end);
        // Activity that carries on past the history end may spill over the
        // reference date.
        let spill = if behaviour.quiet_before_end.0 == 0.0 {
            LATE_DAYS
        } else {
            0
        };
        let active_span = active_end + spill - active_start;
        let purchases = poisson(&mut rng, behaviour.purchases);
        let amounts = LogNormal::new(behaviour.amount_mu, behaviour.amount_sigma)
            .expect("valid log-normal parameters");
        days.clear();
        while (days.len() as u64) < purchases {
            let day = active_start + rng.random_range(0..=active_span.max(0));
            // Seasonality by rejection.
            if rng.random::<f64>() * season_max <= SEASON[months[day as usize]] {
                days.push(day);
            }
        }
        days.sort_unstable();
        let mut recorded = 0u64;
        let mut last_day = None;
        for &day in &days {
            let amount: f64 = amounts.sample(&mut rng);
            transactions.line(format_args!(
                "{id},{},{:.2}",
                dates[day as usize],
                amount.max(0.01)
            ))?;
            if day < HISTORY_DAYS {
                recorded += 1;
                last_day = Some(day);
            }
        }
        written.transactions += days.len() as u64;
        let touches = poisson(&mut rng, behaviour.interactions);
        let mut inquiries = 0u64;
        for _ in 0..touches {
            let day = active_start + rng.random_range(0..=active_span.max(0));
            let kind = pick(&mut rng, &behaviour.kinds, 1.0);
            inquiries += u64::from(kind == 0);
            interactions.line(format_args!("{id},{},{}", dates[day as usize], kinds[kind]))?;
        }
        written.interactions += touches;
        // The label: more purchases, more recent activity and inquiries
        // raise the odds of converting.
        let recency_years = (HISTORY_DAYS - 1 - last_day.unwrap_or(active_start)) as f64 / 365.0;
        let logit = -3.0 + 0.75 * (recorded as f64).ln_1p() - 1.1 * recency_years
            + 0.25 * (touches as f64).ln_1p()
            + 0.4 * f64::from(inquiries > 0);
        let converted = rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp());
        let consent = rng.random::<f64>() >= refusal;
        // Some banks do not know when older relationships began.
        let since = if since_day < 0 || rng.random::<f64>() < 0.1 {
            ""
        } else {
            &dates[since_day as usize]
        };
        customer_table.line(format_args!(
            "{id},{consent},{},{since}",
            u8::from(converted)
        ))?;
        written.customers += 1;
    }
    customer_table.finish()?;
    transactions.finish()?;
    interactions.finish()?;
    Ok(written)
}

/// An index drawn with probabilities proportional to `weights` (summing to
/// `total`); the last one when rounding leaves the draw past the end.
fn pick(rng: &mut impl Rng, weights: &[f64], total: f64) -> usize {
    let mut left = rng.random::<f64>() * total;
    weights
        .iter()
        .position(|&w| {
            left -= w;
            left < 0.0
        })
        .unwrap_or(weights.len() - 1)
}

fn poisson(rng: &mut impl Rng, mean: f64) -> u64 {
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_is_reproducible() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let written = write(a.path(), 500, 7, "retail").unwrap();
        assert_eq!(write(b.path(), 500, 7, "retail").unwrap(), written);
        for table in ["customers.csv", "transactions.csv", "interactions.csv"] {
            assert_eq!(
                std::fs::read(a.path().join(table)).unwrap(),
                std::fs::read(b.path().join(table)).unwrap()
            );
        }
        assert!(write(b.path(), 1, 1, "nope").is_err());
    }
}
