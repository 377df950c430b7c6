//! Pausing a site: while a marker file exists beside the site's ledger
//! (`<ledger>.paused`), the running node stays connected but declines new
//! offers ("paused by the site"), so the data team can refresh the tables
//! between jobs without leaving the consortium. A job already running
//! continues. The marker is read on every offer, so `fedseg-participant
//! pause` and `resume` take effect at once on a running node, and a paused
//! site stays paused across restarts until resumed.

use std::path::{Path, PathBuf};

/// The reason a paused site declines with.
pub const PAUSED: &str = "paused by the site";

/// The marker file of the site whose ledger is `ledger`.
pub fn marker(ledger: &Path) -> PathBuf {
    let mut name = ledger.file_name().unwrap_or_default().to_os_string();
    name.push(".paused");
    ledger.with_file_name(name)
}

/// Whether the site is paused.
pub fn is_paused(ledger: &Path) -> bool {
    marker(ledger).exists()
}

/// Pauses the site (the marker holds when, for whoever looks).
pub fn pause(ledger: &Path) -> std::io::Result<PathBuf> {
    let path = marker(ledger);
    let now = time::OffsetDateTime::now_utc();
    std::fs::write(&path, format!("paused at {now}\n"))?;
    Ok(path)
}

/// Resumes the site; whether it was paused.
pub fn resume(ledger: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(marker(ledger)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_toggle_the_marker_beside_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.log");
        assert_eq!(marker(&ledger), dir.path().join("ledger.log.paused"));
        assert!(!is_paused(&ledger));
        pause(&ledger).unwrap();
        assert!(is_paused(&ledger));
        assert!(resume(&ledger).unwrap());
        assert!(!is_paused(&ledger));
        assert!(!resume(&ledger).unwrap());
    }
}
