//! `demo --init-only`: a complete local consortium on disk (PKI, the
//! coordinator's config, a job, and one directory per site with its
//! participant config and local inputs), ready for `serve`/`run` and one
//! `fedseg-participant run` per site.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use fedseg_common::identity::Role;

use crate::pki::{self, Validity};

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

/// Writes the consortium under `dir`, listening on `listen`.
pub fn init(dir: &Path, sites: usize, listen: &str) -> Result<()> {
    ensure!(sites >= 2, "a consortium needs at least 2 sites");
    ensure!(
        !dir.join("coordinator.toml").exists(),
        "{} already holds a consortium",
        dir.display()
    );
    let pki_dir = dir.join("pki");
    pki::init(&pki_dir, "fedseg demo")?;
    pki::issue(
        &pki_dir,
        COORDINATOR_ID,
        Role::Coordinator,
        Validity::days_from_now(365),
    )?;
    let ids = site_ids(sites);
    for id in &ids {
        pki::issue(
            &pki_dir,
            id,
            Role::Participant,
            Validity::days_from_now(365),
        )?;
    }
    pki::issue(
        &pki_dir,
        "auditor",
        Role::Auditor,
        Validity::days_from_now(365),
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
             auditors = [\"auditor\"]\n\n\
             [tls]\n\
             ca = \"pki/ca.crt\"\n\
             cert = \"pki/{COORDINATOR_ID}.crt\"\n\
             key = \"pki/{COORDINATOR_ID}.key\"\n\n\
             [rounds]\n\
             phase_timeout_s = 10.0\n\
             cohort_timeout_s = 60.0\n\
             epoch_rounds = 16\n"
        ),
    )?;
    write(
        &dir.join("job.toml"),
        "# A job that securely sums each site's vector `demo` for a few rounds.\n\
         seed = 42\n\
         as_of = \"2026-11-01\"\n\
         holdout_fraction = 0.2\n\
         l2 = 1.0\n\n\
         [secure_sum]\n\
         vector = \"demo\"\n\
         length = 4\n\
         rounds = 3\n\
         frac_bits = 16\n\
         lo = -1000000.0\n\
         hi = 1000000.0\n",
    )?;
    for (i, id) in ids.iter().enumerate() {
        let site = dir.join("sites").join(id);
        std::fs::create_dir_all(&site).with_context(|| format!("creating {}", site.display()))?;
        let values: Vec<String> = (0..4).map(|j| format!("{}", (i + 1) * 10 + j)).collect();
        write(&site.join("demo.txt"), &(values.join("\n") + "\n"))?;
        write(
            &site.join("participant.toml"),
            &format!(
                "# Site {id}. Relative paths are relative to this file.\n\
                 id = \"{id}\"\n\
                 coordinator = \"https://{listen}\"\n\
                 coordinator_id = \"{COORDINATOR_ID}\"\n\
                 ledger = \"ledger.log\"\n\n\
                 [tls]\n\
                 ca = \"../../pki/ca.crt\"\n\
                 cert = \"../../pki/{id}.crt\"\n\
                 key = \"../../pki/{id}.key\"\n\n\
                 [vectors]\n\
                 demo = \"demo.txt\"\n"
            ),
        )?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
