//! The participant's metrics, for a site's monitoring: messages and bytes
//! sent by kind (which also counts tasks done and failed), and the ledger's
//! size. A participant never opens a port, so instead of serving them it
//! rewrites a Prometheus text file after every message (the textfile format
//! node_exporter and most agents collect), atomically.

use std::path::{Path, PathBuf};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Counters of what left the site, written to `path`.
pub struct SiteMetrics {
    path: PathBuf,
    registry: Registry,
    messages: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    ledger_entries: Gauge,
}

impl SiteMetrics {
    /// Metrics written to `path`, starting from `entries` ledger lines.
    pub fn new(path: &Path, entries: u64) -> Self {
        let mut registry = Registry::with_prefix("fedseg_participant");
        let messages = Family::<Labels, Counter>::default();
        registry.register(
            "messages_sent",
            "Messages sent to the coordinator since start, by kind (masked-input: tasks done; task-failed: tasks refused)",
            messages.clone(),
        );
        let bytes = Family::<Labels, Counter>::default();
        registry.register(
            "bytes_sent",
            "Protobuf bytes sent to the coordinator since start, by kind",
            bytes.clone(),
        );
        let ledger_entries = Gauge::default();
        ledger_entries.set(entries as i64);
        registry.register(
            "ledger_entries",
            "Lines in the egress ledger",
            ledger_entries.clone(),
        );
        Self {
            path: path.to_path_buf(),
            registry,
            messages,
            bytes,
            ledger_entries,
        }
    }

    /// Counts one sent message and rewrites the file.
    pub fn sent(&self, kind: &str, bytes: u64, entries: u64) -> std::io::Result<()> {
        let labels = vec![("kind".to_string(), kind.to_string())];
        self.messages.get_or_create(&labels).inc();
        self.bytes.get_or_create(&labels).inc_by(bytes);
        self.ledger_entries.set(entries as i64);
        self.write()
    }

    /// Writes the file (through a temporary file and a rename, so a reader
    /// never sees half of it).
    pub fn write(&self) -> std::io::Result<()> {
        let mut text = String::new();
        encode(&mut text, &self.registry).map_err(std::io::Error::other)?;
        let temporary = self.path.with_extension("prom.tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path)
    }
}
