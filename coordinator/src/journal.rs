//! Appending to the coordinator's journal (format in
//! `fedseg_common::journal`). Each record is signed with the coordinator's
//! key from the PKI (ECDSA P-256 or Ed25519) and reaches the disk (fsync) before the effect it
//! records becomes visible to anyone.
//!
//! One process appends through any number of handles ([`JournalWriter::share`]):
//! the running job's engine and the job service, which journals submissions
//! and cancellations while a job runs. Each append takes the file's lock
//! for the write alone, so records keep one order and one hash chain.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fedseg_common::journal::{self, Entry, JournalError, Record};
use fedseg_common::keys::{KeyError, SigningKey};
use thiserror::Error;

use crate::config::CoordinatorConfig;

/// Why the journal cannot be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JournalWriteError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The coordinator's key is not a usable PKCS#8 PEM key.
    #[error("{path}: {error}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        error: KeyError,
    },
    /// The journal was opened to retrace a finished job: nothing may be
    /// appended.
    #[error("{path}: opened read-only to retrace a finished job; nothing is appended")]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },
    /// The existing journal is damaged or signed by another key; the
    /// coordinator refuses to append to it.
    #[error("existing journal {path}: {error}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The first bad record.
        error: JournalError,
    },
}

/// Environment variable for crash tests: `KIND:N` makes the coordinator
/// SIGKILL itself right after the N-th record of that kind (e.g.
/// `aggregate_released:1`) reaches the disk.
pub const CRASH_AFTER_ENV: &str = "FEDSEG_FAULT_CRASH_AFTER";

/// Whether a record's effect becomes visible outside the coordinator, so it
/// must be on disk before that happens. Round-opened and phase-completed
/// records describe steps whose only outcome is a later release or abort;
/// they are written in order and synced with that record; so are a vertical
/// job's relayed messages, synced with the job's next synced record. (A
/// killed process loses nothing written; only a machine crash can lose an
/// unsynced tail.)
fn must_sync(entry: &Entry) -> bool {
    !matches!(
        entry,
        Entry::RoundOpened { .. }
            | Entry::PhaseCompleted { .. }
            | Entry::VerticalMessage { .. }
            | Entry::VerticalBatch { .. }
    )
}

/// The open journal: a handle on the file every handle appends to.
pub struct JournalWriter {
    path: PathBuf,
    core: Arc<Mutex<Core>>,
    /// The bytes of the record this handle appended last.
    last_written: Vec<u8>,
    /// Whether this handle refuses appending from now on.
    read_only: bool,
}

/// What every handle shares: the file, the key, and the chain so far.
struct Core {
    file: File,
    key: SigningKey,
    next_sequence: u64,
    prev_hash: [u8; 32],
    records: Vec<Record>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalWriteError + '_ {
    move |source| JournalWriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}

impl JournalWriter {
    /// Opens the journal `config` names, signed with its coordinator's key.
    pub fn for_coordinator(config: &CoordinatorConfig) -> Result<Self, JournalWriteError> {
        Self::open(
            &config.journal,
            &config.tls.key,
            &config.tls.cert,
            &config.id,
        )
    }

    /// Opens `path` for appending, signing with the key in `key_pem`. A new
    /// journal opens with the coordinator's certificate (`cert_pem`); an
    /// existing one is checked from its first record to its last first.
    pub fn open(
        path: &Path,
        key_pem: &Path,
        cert_pem: &Path,
        coordinator: &str,
    ) -> Result<Self, JournalWriteError> {
        let key_text = std::fs::read_to_string(key_pem).map_err(io(key_pem))?;
        let key =
            SigningKey::from_pkcs8_pem(&key_text).map_err(|error| JournalWriteError::Key {
                path: key_pem.to_path_buf(),
                error,
            })?;
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(path)(e)),
        };
        let records = journal::read_own(&existing, &key.verifying_key()).map_err(|error| {
            JournalWriteError::Damaged {
                path: path.to_path_buf(),
                error,
            }
        })?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let empty = records.is_empty();
        let mut writer = Self {
            path: path.to_path_buf(),
            core: Arc::new(Mutex::new(Core {
                file,
                key,
                next_sequence: records.len() as u64,
                prev_hash: records.last().map_or([0u8; 32], |r| r.hash),
                records,
            })),
            last_written: Vec::new(),
            read_only: false,
        };
        if empty {
            let certificate = std::fs::read_to_string(cert_pem).map_err(io(cert_pem))?;
            writer.append(Entry::JournalOpened {
                coordinator: coordinator.to_string(),
                certificate,
            })?;
        }
        Ok(writer)
    }

    /// Appends `entry`. Records whose effect reaches anyone outside the
    /// coordinator are on disk (fsync) before this returns; the others are
    /// written in order and reach the disk with the next such record.
    pub fn append(&mut self, entry: Entry) -> Result<(), JournalWriteError> {
        if self.read_only {
            return Err(JournalWriteError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let mut core = self.lock();
        let unix_ms = now_ms();
        let bytes = journal::encode_record(
            &core.key,
            core.next_sequence,
            unix_ms,
            &core.prev_hash,
            &entry,
        );
        core.file.write_all(&bytes).map_err(io(&self.path))?;
        if must_sync(&entry) {
            core.file.sync_data().map_err(io(&self.path))?;
        }
        let hash = journal::record_hash(&bytes);
        let sequence = core.next_sequence;
        core.records.push(Record {
            sequence,
            unix_ms,
            hash,
            entry,
        });
        core.next_sequence += 1;
        core.prev_hash = hash;
        crash_if_planned(&core.records);
        drop(core);
        self.last_written = bytes;
        Ok(())
    }

    /// Another handle on the same journal, appending to the same chain
    /// (writable, whatever this one is).
    pub fn share(&self) -> Self {
        Self {
            path: self.path.clone(),
            core: self.core.clone(),
            last_written: Vec::new(),
            read_only: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while appending leaves at worst a record written and not
        // remembered; the file stays the truth a restart reads.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The exact bytes of record `sequence`, read back from the file.
    pub fn record_bytes(&self, sequence: u64) -> Result<Option<Vec<u8>>, JournalWriteError> {
        let bytes = std::fs::read(&self.path).map_err(io(&self.path))?;
        Ok(journal::record_bytes(&bytes, sequence).map(<[u8]>::to_vec))
    }

    /// Refuses every append from now on (a finished job is retraced from
    /// the journal without writing to it).
    pub fn make_read_only(&mut self) {
        self.read_only = true;
    }

    /// Whether appends are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The exact bytes of the record this process appended last (empty
    /// before its first append).
    pub fn last_written(&self) -> &[u8] {
        &self.last_written
    }

    /// Every record, including those written before this process started
    /// and those other handles appended: a copy, so that no caller holds
    /// the journal's lock (a held lock and an append on the same thread
    /// would wait for each other forever).
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }
}

/// The crash tests' fault injection ([`CRASH_AFTER_ENV`]), after `records`
/// grew by one.
fn crash_if_planned(records: &[Record]) {
    let Ok(plan) = std::env::var(CRASH_AFTER_ENV) else {
        return;
    };
    let Some((kind, n)) = plan.split_once(':') else {
        return;
    };
    let Some(last) = records.last() else {
        return;
    };
    let kind_of = |r: &Record| {
        serde_json::to_value(&r.entry)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_string))
    };
    if kind_of(last).as_deref() != Some(kind) {
        return;
    }
    let count = records
        .iter()
        .filter(|r| kind_of(r).as_deref() == Some(kind))
        .count();
    if n.parse() == Ok(count) {
        tracing::warn!(kind, count, "fault injection: killing the coordinator");
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(std::process::id().to_string())
            .status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
