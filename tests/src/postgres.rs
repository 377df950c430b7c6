//! A throwaway PostgreSQL server for the tests of a bank reading its own
//! database.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A throwaway PostgreSQL server from the system's packages (Debian's
/// `postgresql`), listening only on a Unix socket in a temporary directory.
/// When the tests run as root, the server runs as the `postgres` user, as
/// PostgreSQL refuses root.
pub struct Postgres {
    dir: tempfile::TempDir,
    server: Child,
    /// The port number in the socket's name.
    pub port: u16,
}

impl Postgres {
    /// The server binaries' directory, if PostgreSQL is installed.
    pub fn bin_dir() -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        found.sort();
        found.pop()
    }

    fn as_server_user(bin: &Path, program: &str) -> Command {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if is_root {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(bin.join(program));
            command
        } else {
            Command::new(bin.join(program))
        }
    }

    /// Initialises and starts a server; `None` if PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let bin = Self::bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let status = Self::as_server_user(&bin, "initdb")
            .args(["-A", "trust", "-U", "fedseg", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let server = Self::as_server_user(&bin, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=", "-k"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let socket = dir.path().join(format!(".s.PGSQL.{port}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let postgres = Self { dir, server, port };
        // The socket appears a moment before connections are accepted.
        while !postgres.psql("SELECT 1").status.success() {
            assert!(
                Instant::now() < deadline,
                "postgres does not accept connections"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(postgres)
    }

    /// A libpq connection string for the `postgres` database.
    pub fn connection(&self) -> String {
        format!(
            "host={} port={} user=fedseg dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Runs `sql` (psql commands allowed) with psql.
    pub fn psql(&self, sql: &str) -> std::process::Output {
        let bin = Self::bin_dir().expect("installed");
        let psql = if bin.join("psql").exists() {
            bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        Command::new(psql)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "fedseg",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
