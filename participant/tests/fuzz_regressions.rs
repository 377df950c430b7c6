//! Replays every input the fuzzers keep: each target's seed corpus
//! (`fuzz/corpus/<target>/`) and every input that once crashed or hung it
//! (`fuzz/regressions/<target>/`), through the very functions the AFL
//! binaries call (`fuzz/src/lib.rs`, included here). A decoder that panics
//! again, or takes more than `SLOW` on one input, fails its target's test
//! naming the file. See RELIABILITY.md, "Fuzzing".

#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest one input may take in a debug build before it counts as a hang.
const SLOW: Duration = Duration::from_secs(20);

/// The targets share the fixed site and vector file: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn replay(name: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_, target) = fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target of that name");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus = inputs(&root.join("corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ holds no seed");
    let regressions = inputs(&root.join("regressions").join(name));
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let bytes = std::fs::read(path).expect("kept input");
        let start = Instant::now();
        if catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err() {
            failures.push(format!("{}: panicked", path.display()));
        } else if start.elapsed() > SLOW {
            failures.push(format!("{}: took {:?}", path.display(), start.elapsed()));
        }
    }
    fuzz::remove_scratch();
    assert!(failures.is_empty(), "{name}: {failures:#?}");
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        #[test]
        fn every_target_is_replayed() {
            let replayed = [$(stringify!($name)),*];
            for (name, _) in fuzz::TARGETS {
                assert!(replayed.contains(&name), "{name} is not replayed");
            }
        }
    };
}

targets!(
    journal,
    ledger,
    tables_csv,
    tables_parquet,
    wire,
    identity,
    config,
    result_json,
    vector
);
