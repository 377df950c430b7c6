//! `demo --init-only`: a complete local consortium on disk (PKI, the
//! coordinator's config, a segmentation job, and one directory per site
//! with its participant config and synthetic canonical tables), ready for
//! `serve`/`run` and one `fedseg-participant run` per site. Sites differ in
//! size (site i holds a share proportional to i + 1) and in the mix of
//! customer behaviours. `demo --vertical` writes a bank and a fintech
//! feature partner that share customers instead.

use std::path::Path;

use fedseg_common::identity::Role;
use thiserror::Error;

use fedseg_synth as synth;

use crate::pki::{self, PkiError, Validity};

/// Why a demo consortium could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Fewer than two sites were asked for.
    #[error("a consortium needs at least 2 sites")]
    TooFewSites,
    /// The directory already holds a consortium.
    #[error("{0} already holds a consortium")]
    Exists(std::path::PathBuf),
    /// The PKI could not be written.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A site's synthetic tables could not be written.
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
    /// A file or directory could not be written.
    #[error("{what} {}", path.display())]
    Write {
        /// `writing` or `creating`.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Identity of the demo coordinator.
pub const COORDINATOR_ID: &str = "coordinator";

/// Site identities for a consortium of `sites`.
pub fn site_ids(sites: usize) -> Vec<String> {
    (0..sites)
        .map(|i| {
            format!("bank-{}", (b'a' + (i % 26) as u8) as char)
                + &if i >= 26 {
                    (i / 26).to_string()
                } else {
                    String::new()
                }
        })
        .collect()
}

/// The job every demo consortium starts with: the joint segmentation, k
/// chosen between 3 and 6. With `(epsilon, run)`, under differential
/// privacy (δ = 1e-6) with one fixed k and a short release plan (21
/// releases), so each release keeps a useful share of the budget; `run`
/// names the job, since every run of it spends the banks' privacy again.
pub fn job(private: Option<(f64, u64)>) -> String {
    let mut text = String::from(
        "# The joint segmentation of the demo consortium (see the README for every key).\n",
    );
    if let Some((_, run)) = private {
        text.push_str(&format!("job_id = \"demo-dp-{run}\"\n"));
    }
    text.push_str(
        "purpose = \"Customer segments and a propensity model for the next campaign\"\n\
         seed = 42\n\
         as_of = \"2026-11-01\"\n\
         holdout_fraction = 0.2\n\
         l2 = 1.0\n\n\
         [segmentation]\n\
         min_segment_size = 20\n",
    );
    text.push_str(&match private {
        None => "k_min = 3\nk_max = 6\nrestarts = 4\n".to_string(),
        Some((epsilon, _)) => format!(
            "k_min = 4\nk_max = 4\nrestarts = 2\nmax_iterations = 10\n\n\
             [propensity]\nmax_iterations = 5\nscore_bins = 50\n\n\
             [privacy]\nepsilon = {epsilon:?}\ndelta = 1e-6\n"
        ),
    });
    text
}

/// How many of `customers` site `i` of `sites` holds: shares 1 : 2 : … : n.
pub fn site_customers(customers: u64, sites: usize, i: usize) -> u64 {
    let total_weight = (sites * (sites + 1) / 2) as u64;
    (customers * (i as u64 + 1) / total_weight).max(1)
}

/// Writes the consortium of `sites` sites and about `customers` customers
/// in all under `dir`, listening on `listen`.
pub fn init(dir: &Path, sites: usize, customers: u64, listen: &str) -> Result<(), DemoError> {
    if sites < 2 {
        return Err(DemoError::TooFewSites);
    }
    let ids = site_ids(sites);
    start(dir, &ids, listen)?;
    write(&dir.join("job.toml"), &job(None))?;
    for (i, id) in ids.iter().enumerate() {
        let site = site_dir(dir, id)?;
        let profile = synth::PROFILES[i % synth::PROFILES.len()];
        synth::write(
            &site,
            site_customers(customers, sites, i),
            1000 + i as u64,
            profile,
        )?;
        let values: Vec<String> = (0..4).map(|j| format!("{}", (i + 1) * 10 + j)).collect();
        write(&site.join("demo.txt"), &(values.join("\n") + "\n"))?;
        let data = format!(
            "{CANONICAL_TABLES}\n\
             # Named vectors for plain secure-sum jobs.\n\
             [vectors]\n\
             demo = \"demo.txt\"\n"
        );
        write(
            &site.join("participant.toml"),
            &participant_toml(id, listen, &data),
        )?;
    }
    Ok(())
}

/// The label holder of `demo --vertical`.
pub const VERTICAL_BANK: &str = "bank-a";

/// The feature partner of `demo --vertical`.
pub const VERTICAL_PARTNER: &str = "fintech-x";

/// The vertical job of `demo --vertical`.
pub fn vertical_job(min_overlap: u64) -> String {
    format!(
        "# A vertical job of the demo consortium: {VERTICAL_BANK} holds the label,\n\
         # {VERTICAL_PARTNER} app and wallet features of many of the same customers.\n\
         purpose = \"What the partner's data adds to the bank's propensity model\"\n\
         seed = 42\n\
         as_of = \"2026-11-01\"\n\
         holdout_fraction = 0.2\n\
         l2 = 1.0\n\n\
         [vertical]\n\
         label_holder = \"{VERTICAL_BANK}\"\n\
         partners = [\"{VERTICAL_PARTNER}\"]\n\
         min_overlap = {min_overlap}\n\
         overlap_only = false\n"
    )
}

/// Writes `demo --vertical`'s consortium under `dir`: a bank with about
/// `customers` customers and its canonical tables, and a fintech partner
/// that knows about 60% of them (and as many again of its own) with
/// `features.csv`.
pub fn init_vertical(dir: &Path, customers: u64, listen: &str) -> Result<(), DemoError> {
    let ids = [VERTICAL_BANK.to_string(), VERTICAL_PARTNER.to_string()];
    start(dir, &ids, listen)?;
    write(
        &dir.join("job.toml"),
        &vertical_job((customers / 10).clamp(10, 1000)),
    )?;
    let bank = site_dir(dir, VERTICAL_BANK)?;
    synth::write(&bank, customers.max(1), 1000, "retail")?;
    write(
        &bank.join("participant.toml"),
        &participant_toml(VERTICAL_BANK, listen, CANONICAL_TABLES),
    )?;
    let partner = site_dir(dir, VERTICAL_PARTNER)?;
    synth::write_partner(
        &partner,
        &bank.join("customers.csv"),
        0.6,
        customers / 2,
        2000,
    )?;
    let data = "[data]\n\
                features = \"features.csv\"\n\
                features_consent = \"consent_marketing\"\n\n\
                # The columns this site offers, each clipped, app sessions log-transformed.\n\
                [data.feature_columns]\n\
                app_sessions = { clip = [0, 500], transform = \"log1p\" }\n\
                wallet_spend = { clip = [0, 100000] }\n";
    write(
        &partner.join("participant.toml"),
        &participant_toml(VERTICAL_PARTNER, listen, data),
    )?;
    Ok(())
}

/// The `[data]` table of a site with the canonical tables.
const CANONICAL_TABLES: &str = "[data]\n\
     transactions = \"transactions.csv\"\n\
     interactions = \"interactions.csv\"\n\
     customers = \"customers.csv\"\n";

/// The demo's analyst, who may submit jobs to a running `serve`.
pub const ANALYST_ID: &str = "analyst";

/// The PKI (CA, coordinator, sites `ids`, an auditor, an analyst) and
/// `coordinator.toml` listing `ids`, under a `dir` without a consortium.
fn start(dir: &Path, ids: &[String], listen: &str) -> Result<(), DemoError> {
    if dir.join("coordinator.toml").exists() {
        return Err(DemoError::Exists(dir.to_path_buf()));
    }
    let pki_dir = dir.join("pki");
    pki::init(&pki_dir, "fedseg demo")?;
    let year = Validity::days_from_now(365);
    pki::issue(&pki_dir, COORDINATOR_ID, Role::Coordinator, year)?;
    for id in ids {
        pki::issue(&pki_dir, id, Role::Participant, year)?;
    }
    pki::issue(&pki_dir, "auditor", Role::Auditor, year)?;
    pki::issue(&pki_dir, ANALYST_ID, Role::Analyst, year)?;
    write(
        &dir.join("analyst.toml"),
        &format!(
            "# The demo analyst, for `fedseg-coordinator job ... --config analyst.toml`\n\
             # against a running `serve`.\n\
             id = \"{ANALYST_ID}\"\n\
             coordinator = \"https://{listen}\"\n\
             coordinator_id = \"{COORDINATOR_ID}\"\n\n\
             [tls]\n\
             ca = \"pki/ca.crt\"\n\
             cert = \"pki/{ANALYST_ID}.crt\"\n\
             key = \"pki/{ANALYST_ID}.key\"\n"
        ),
    )?;
    let listed = ids
        .iter()
        .map(|id| format!("{id:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    write(
        &dir.join("coordinator.toml"),
        &format!(
            "# The demo coordinator. Relative paths are relative to this file.\n\
             listen = \"{listen}\"\n\
             journal = \"journal.log\"\n\
             id = \"{COORDINATOR_ID}\"\n\
             participants = [{listed}]\n\
             auditors = [\"auditor\"]\n\
             analysts = [\"{ANALYST_ID}\"]\n\n\
             [tls]\n\
             ca = \"pki/ca.crt\"\n\
             cert = \"pki/{COORDINATOR_ID}.crt\"\n\
             key = \"pki/{COORDINATOR_ID}.key\"\n\n\
             [rounds]\n\
             phase_timeout_s = 10.0\n\
             cohort_timeout_s = 60.0\n\
             epoch_rounds = 16\n"
        ),
    )
}

/// `participant.toml` of site `id`, with its `[data]` (and more) tables.
fn participant_toml(id: &str, listen: &str, data: &str) -> String {
    format!(
        "# Site {id}. Relative paths are relative to this file.\n\
         id = \"{id}\"\n\
         coordinator = \"https://{listen}\"\n\
         coordinator_id = \"{COORDINATOR_ID}\"\n\
         ledger = \"ledger.log\"\n\n\
         [tls]\n\
         ca = \"../../pki/ca.crt\"\n\
         cert = \"../../pki/{id}.crt\"\n\
         key = \"../../pki/{id}.key\"\n\n\
         {data}"
    )
}

/// Creates `dir/sites/<id>`.
fn site_dir(dir: &Path, id: &str) -> Result<std::path::PathBuf, DemoError> {
    let site = dir.join("sites").join(id);
    std::fs::create_dir_all(&site).map_err(|source| DemoError::Write {
        what: "creating",
        path: site.clone(),
        source,
    })?;
    Ok(site)
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(|source| DemoError::Write {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}
