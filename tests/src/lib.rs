//! Helpers for the end-to-end tests in `tests/`: they run the real fedseg
//! binaries as separate processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of a workspace binary (`fedseg-coordinator`, `fedseg-participant`),
/// built first with the same cargo and profile as the tests, so a test never
/// runs a stale binary.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "fedseg-coordinator",
                "-p",
                "fedseg-participant",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
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
