//! Helpers for the end-to-end tests in `tests/`: they build a consortium on
//! disk with the real `demo --init-only` command and run the real fedseg
//! binaries as separate processes over mutual TLS on loopback.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod postgres;
pub use postgres::Postgres;

/// Path of a workspace binary (`fedseg-coordinator`, `fedseg-participant`),
/// built first with the same cargo and profile as the tests, so a test never
/// runs a stale binary.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "fedseg-coordinator",
                "-p",
                "fedseg-participant",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // Variables cargo sets for a running test would otherwise reach build
        // scripts that watch them (ring's watches CARGO_MANIFEST_DIR) and make
        // this build and the normal one keep invalidating each other.
        for (name, _) in std::env::vars() {
            let set_for_tests = name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_EXE_")
                || matches!(
                    name.as_str(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                );
            if set_for_tests {
                command.env_remove(name);
            }
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the fedseg binaries failed");
    });
    // The test executable lives in target/<profile>/deps.
    let mut path = std::env::current_exe().expect("test executable path");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    path.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process whose stderr goes to a log file; killed (SIGKILL) when
/// dropped.
pub struct Process {
    child: Child,
    /// Where its log goes.
    pub log: PathBuf,
}

/// Starts `command` with its stderr going to `log`.
pub fn spawn(mut command: Command, log: PathBuf) -> Process {
    let file = fs::File::create(&log).unwrap();
    let child = command.stdout(Stdio::null()).stderr(file).spawn().unwrap();
    Process { child, log }
}

impl Process {
    /// Whether the log contains `needle` within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(needle)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Panics, showing the log, unless it contains `needle` within `secs`.
    pub fn expect_log(&self, needle: &str, secs: u64) {
        assert!(
            self.wait_for_log(needle, Duration::from_secs(secs)),
            "{needle:?} never appeared in:\n{}",
            self.log_text()
        );
    }

    /// Panics, showing the log, unless the process exits successfully by
    /// itself within `secs`.
    pub fn expect_success(&mut self, secs: u64) {
        let status = self.wait(Duration::from_secs(secs));
        assert!(
            status.success(),
            "exited with {status}:\n{}",
            self.log_text()
        );
    }

    /// Sends SIGTERM (a polite stop).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "process did not exit; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `fedseg-coordinator pki ARGS --dir DIR`, panicking if it fails.
pub fn pki(dir: &Path, args: &[&str]) {
    let output = Command::new(binary("fedseg-coordinator"))
        .arg("pki")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A consortium written by `fedseg-coordinator demo --init-only`.
pub struct Consortium {
    /// Its directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// Site identities.
    pub sites: Vec<String>,
    /// The coordinator's port.
    pub port: u16,
}

impl Consortium {
    /// A consortium of `sites` sites whose coordinator waits `phase_timeout_s`
    /// per phase and sets up keys every `epoch_rounds` rounds.
    pub fn new(sites: usize, phase_timeout_s: f64, epoch_rounds: u32) -> Self {
        Self::with_customers(sites, 60 * sites as u64, phase_timeout_s, epoch_rounds)
    }

    /// Like [`Consortium::new`], with about `customers` synthetic customers
    /// in all, spread over the sites in shares 1 : 2 : … : n.
    pub fn with_customers(
        sites: usize,
        customers: u64,
        phase_timeout_s: f64,
        epoch_rounds: u32,
    ) -> Self {
        let names = (0..sites)
            .map(|i| format!("bank-{}", (b'a' + i as u8) as char))
            .collect();
        Self::init(
            &["--sites", &sites.to_string()],
            customers,
            phase_timeout_s,
            epoch_rounds,
            names,
        )
    }

    /// `demo --init-only` with `args`, the coordinator's timings set.
    fn init(
        args: &[&str],
        customers: u64,
        phase_timeout_s: f64,
        epoch_rounds: u32,
        sites: Vec<String>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let status = Command::new(binary("fedseg-coordinator"))
            .args(["demo", "--init-only", "--customers", &customers.to_string()])
            .args(args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let config = dir.path().join("coordinator.toml");
        let text = fs::read_to_string(&config)
            .unwrap()
            .replace(
                "phase_timeout_s = 10.0",
                &format!("phase_timeout_s = {phase_timeout_s:?}"),
            )
            .replace(
                "epoch_rounds = 16",
                &format!("epoch_rounds = {epoch_rounds}"),
            );
        fs::write(&config, text).unwrap();
        Self { dir, sites, port }
    }

    /// `demo --vertical --init-only`: bank `bank-a` (the label holder) with
    /// about `customers` customers and partner `fintech-x`, the coordinator
    /// waiting `phase_timeout_s` per step.
    pub fn vertical(customers: u64, phase_timeout_s: f64) -> Self {
        let sites = vec!["bank-a".to_string(), "fintech-x".to_string()];
        Self::init(&["--vertical"], customers, phase_timeout_s, 16, sites)
    }

    /// Adds feature partner `id` (certificate, `participant.toml`,
    /// `features.csv` with the given rows of `customer_id, app_sessions,
    /// wallet_spend, consent_marketing`) to a vertical consortium and to
    /// the coordinator's list (not to the job).
    pub fn add_partner(&mut self, id: &str, rows: &[String]) {
        pki(
            &self.path().join("pki"),
            &["issue", "--id", id, "--role", "participant"],
        );
        let from = self.path().join("sites/fintech-x");
        let site = self.path().join("sites").join(id);
        fs::create_dir_all(&site).unwrap();
        let config = fs::read_to_string(from.join("participant.toml"))
            .unwrap()
            .replace("fintech-x", id);
        fs::write(site.join("participant.toml"), config).unwrap();
        self.write_features(id, rows);
        let coordinator = self.path().join("coordinator.toml");
        let text = fs::read_to_string(&coordinator)
            .unwrap()
            .replace("\"fintech-x\"]", &format!("\"fintech-x\", \"{id}\"]"));
        fs::write(&coordinator, text).unwrap();
        self.sites.push(id.to_string());
    }

    /// Replaces a partner's `features.csv` with `rows` (see
    /// [`Consortium::add_partner`]).
    pub fn write_features(&self, id: &str, rows: &[String]) {
        let text = std::iter::once("customer_id,app_sessions,wallet_spend,consent_marketing")
            .chain(rows.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        fs::write(
            self.path().join("sites").join(id).join("features.csv"),
            text + "\n",
        )
        .unwrap();
    }

    /// The consortium directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `fedseg-coordinator journal verify` of `journal` against the
    /// consortium's CA.
    pub fn verify_journal(&self, journal: &Path) -> std::process::Output {
        Command::new(binary("fedseg-coordinator"))
            .args(["journal", "verify", "--journal"])
            .arg(journal)
            .arg("--ca")
            .arg(self.path().join("pki/ca.crt"))
            .output()
            .unwrap()
    }

    /// `fedseg-participant ledger verify` of `site` against the journal.
    pub fn ledger_verify(&self, site: &str) -> std::process::Output {
        self.verify_ledger(site, &self.path().join("journal.log"))
    }

    /// A gRPC channel to the coordinator over mutual TLS with member
    /// `id`'s certificate from the consortium's PKI.
    pub async fn channel(&self, id: &str) -> tonic::transport::Channel {
        let pki = self.path().join("pki");
        let tls = fedseg_common::mtls::TlsFiles {
            ca: pki.join("ca.crt"),
            cert: pki.join(format!("{id}.crt")),
            key: pki.join(format!("{id}.key")),
        };
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", self.port))
            .unwrap()
            .tls_config(tls.client_config("coordinator").unwrap())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Adds `key = value` lines to coordinator.toml's `[rounds]` table.
    pub fn set_rounds(&self, lines: &str) {
        let config = self.path().join("coordinator.toml");
        let text = fs::read_to_string(&config).unwrap().replacen(
            "[rounds]\n",
            &format!("[rounds]\n{lines}"),
            1,
        );
        fs::write(&config, text).unwrap();
    }

    /// Serves `/metrics` and `/healthz` on a free port; returns the port.
    pub fn enable_metrics(&self) -> u16 {
        let port = free_port();
        let config = self.path().join("coordinator.toml");
        let text = fs::read_to_string(&config).unwrap().replacen(
            "journal = ",
            &format!("metrics_listen = \"127.0.0.1:{port}\"\njournal = "),
            1,
        );
        fs::write(&config, text).unwrap();
        port
    }

    /// `fedseg-participant ledger verify` of `site`'s ledger against
    /// `journal`.
    pub fn verify_ledger(&self, site: &str, journal: &Path) -> std::process::Output {
        Command::new(binary("fedseg-participant"))
            .args(["ledger", "verify", "--config"])
            .arg(
                self.path()
                    .join("sites")
                    .join(site)
                    .join("participant.toml"),
            )
            .arg("--journal")
            .arg(journal)
            .output()
            .unwrap()
    }

    /// Checks that `site`'s ledger verifies against the journal; the
    /// command's output.
    pub fn assert_ledger_verifies(&self, site: &str) -> std::process::Output {
        let out = self.ledger_verify(site);
        assert!(
            out.status.success(),
            "{site}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Replaces the consortium's PKI (`pki/`: CA, coordinator, sites,
    /// auditor) with one whose keys are all of `algorithm` (`ecdsa-p256`
    /// or `ed25519`), made by the real `fedseg-coordinator pki` commands.
    pub fn reissue_pki(&self, algorithm: &str) {
        let dir = self.path().join("pki");
        fs::remove_dir_all(&dir).unwrap();
        let algorithm = ["--algorithm", algorithm];
        pki(
            &dir,
            &[&["init", "--consortium", "fedseg demo"][..], &algorithm].concat(),
        );
        let members = self
            .sites
            .iter()
            .map(|s| (s.as_str(), "participant"))
            .chain([
                ("coordinator", "coordinator"),
                ("auditor", "auditor"),
                ("analyst", "analyst"),
            ]);
        for (id, role) in members {
            pki(
                &dir,
                &[&["issue", "--id", id, "--role", role][..], &algorithm].concat(),
            );
        }
    }

    /// Writes a secure-sum job of `rounds` rounds over vectors of `length`.
    pub fn write_job(&self, rounds: u32, length: u32, threshold: Option<u32>) {
        let mut job = format!(
            "seed = 7\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
             [secure_sum]\nvector = \"demo\"\nlength = {length}\nrounds = {rounds}\n\
             frac_bits = 16\nlo = -1000000.0\nhi = 1000000.0\n"
        );
        if let Some(t) = threshold {
            job.push_str(&format!("\n[cohort]\nthreshold = {t}\n"));
        }
        fs::write(self.path().join("job.toml"), job).unwrap();
    }

    /// Writes a segmentation job of `seed` as of 2026-11-01 with the
    /// `[segmentation]` keys given.
    pub fn write_segmentation_job(&self, seed: u64, segmentation: &str) {
        fs::write(
            self.path().join("job.toml"),
            format!(
                "seed = {seed}\nas_of = \"2026-11-01\"\nholdout_fraction = 0.2\nl2 = 1.0\n\n\
                 [segmentation]\n{segmentation}"
            ),
        )
        .unwrap();
    }

    /// A file of a site's local output of the (only) job it ran.
    pub fn site_output(&self, site: &str, file: &str) -> String {
        let job_dir = fs::read_dir(self.path().join("sites").join(site).join("out"))
            .unwrap()
            .next()
            .expect("the site wrote a job's output")
            .unwrap()
            .path();
        fs::read_to_string(job_dir.join(file)).unwrap()
    }

    /// Writes a site's vector.
    pub fn write_vector(&self, site: &str, values: &[f64]) {
        let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        fs::write(
            self.path().join("sites").join(site).join("demo.txt"),
            text.join("\n"),
        )
        .unwrap();
    }

    /// Starts `fedseg-coordinator run` for job.toml into `out/`.
    pub fn run_coordinator(&self) -> Process {
        self.run_coordinator_with(&[])
    }

    /// `fedseg-coordinator VERB --config coordinator.toml --job job.toml
    /// --out out` in the consortium's directory (`run`, or `serve` with a job).
    pub fn coordinator_with_job(&self, verb: &str) -> Command {
        let mut command = Command::new(binary("fedseg-coordinator"));
        command.current_dir(self.path()).args([
            verb,
            "--config",
            "coordinator.toml",
            "--job",
            "job.toml",
            "--out",
            "out",
        ]);
        command
    }

    /// Starts `fedseg-coordinator run` with extra environment variables.
    pub fn run_coordinator_with(&self, env: &[(&str, &str)]) -> Process {
        let mut command = self.coordinator_with_job("run");
        command.envs(env.iter().copied());
        let n = fs::read_dir(self.path()).unwrap().count();
        spawn(command, self.path().join(format!("coordinator-{n}.log")))
    }

    /// Starts `fedseg-coordinator serve` and waits until it listens.
    pub fn serve(&self) -> Process {
        let mut command = Command::new(binary("fedseg-coordinator"));
        command
            .current_dir(self.path())
            .args(["serve", "--config", "coordinator.toml"]);
        let process = spawn(command, self.path().join("serve.log"));
        process.expect_log("coordinator listening", 30);
        process
    }

    /// Starts `fedseg-participant run` for `site`, optionally stalling at
    /// the first request of `stall_at` (fault injection).
    pub fn run_participant(&self, site: &str, stall_at: Option<&str>) -> Process {
        let mut command = Command::new(binary("fedseg-participant"));
        command.arg("run").arg("--config").arg(
            self.path()
                .join("sites")
                .join(site)
                .join("participant.toml"),
        );
        if let Some(phase) = stall_at {
            command.env("FEDSEG_FAULT_STALL_AT", phase);
        }
        let n = fs::read_dir(self.path()).unwrap().count();
        spawn(command, self.path().join(format!("{site}-{n}.log")))
    }

    /// Starts one participant per site, runs the coordinator's job to its
    /// end and returns the participants, still running.
    pub fn run_job(&self) -> Vec<Process> {
        let mut coordinator = self.run_coordinator();
        let participants: Vec<Process> = self
            .sites
            .iter()
            .map(|s| self.run_participant(s, None))
            .collect();
        coordinator.expect_success(300);
        participants
    }

    /// The journal's records as `journal show --json` prints them.
    pub fn journal_records(&self) -> Vec<serde_json::Value> {
        let shown = Command::new(binary("fedseg-coordinator"))
            .args(["journal", "show", "--json", "--journal"])
            .arg(self.path().join("journal.log"))
            .output()
            .unwrap();
        assert!(shown.status.success(), "journal show failed");
        String::from_utf8_lossy(&shown.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The journal's `participant_declined` records.
    pub fn declines(&self) -> Vec<serde_json::Value> {
        self.journal_records()
            .into_iter()
            .filter(|r| r.to_string().contains("participant_declined"))
            .collect()
    }

    /// Checks that `site` declined the job in words containing `words`, and
    /// that nobody else declined. (The coordinator may offer a job again
    /// while it forms the cohort; the site declines each time.)
    pub fn assert_only_declined(&self, site: &str, words: &str) {
        let declined = self.declines();
        assert!(!declined.is_empty(), "{site} did not decline");
        for d in &declined {
            assert!(d.to_string().contains(site), "{d}");
            assert!(d.to_string().contains(words), "{d}");
        }
    }

    /// The job's result.json.
    pub fn result(&self) -> serde_json::Value {
        let text =
            fs::read_to_string(self.path().join("out/result.json")).expect("result.json written");
        serde_json::from_str(&text).unwrap()
    }
}

/// A plain HTTP GET on loopback: the response's head and body.
pub fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// `fedseg_rejected_connections_total{reason}` as the coordinator's
/// `/metrics` on `port` reports it, once it reaches `want` or after 3 s (a
/// connection is closed a moment before it is counted).
pub fn rejected_connections(port: u16, reason: &str, want: f64) -> f64 {
    let start = Instant::now();
    loop {
        let n = rejected_now(port, reason);
        if n >= want || start.elapsed() > Duration::from_secs(3) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rejected_now(port: u16, reason: &str) -> f64 {
    let body = http_get(port, "/metrics").1;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "fedseg_rejected_connections_total"
                && s.labels.get("reason") == Some(reason)
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{other:?}"),
        })
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// A JSON array of arrays of numbers.
pub fn matrix(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array().expect("an array").iter().map(floats).collect()
}
