//! The demo consortium's `result.json`, pinned byte for byte: the default
//! demo job on three synthetic banks of 600 customers in all (fixed seeds)
//! must give exactly the committed file. Rounds, survivors, released sums
//! and every derived number are deterministic without differential privacy
//! (masks cancel exactly, the sums are fixed-point), and `result.json` holds
//! no timings (those are in `rounds.json`), so any difference is a change of
//! behaviour.
//!
//! After an intended change of the result, `FEDSEG_BLESS=1 cargo test -p
//! fedseg-tests --test e2e golden` rewrites the file; the diff is then
//! reviewed like code.

use std::fs;
use std::path::Path;

use fedseg_tests::Consortium;

const GOLDEN: &str = "golden/demo-3-sites-600-customers.result.json";

#[test]
fn the_demo_job_on_the_demo_data_gives_the_pinned_result_json() {
    // A generous phase deadline: a slow machine must not drop anyone, or
    // the survivors (and so the result) would differ.
    let c = Consortium::with_customers(3, 600, 60.0, 16);
    let _participants = c.run_job();
    let got = fs::read_to_string(c.path().join("out/result.json")).expect("result.json written");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("FEDSEG_BLESS").is_some() {
        fs::write(&path, &got).unwrap();
    }
    let want = fs::read_to_string(&path).expect("the golden file (FEDSEG_BLESS=1 writes it)");
    if got != want {
        let (line, (w, g)) = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .find(|(_, (w, g))| w != g)
            .unwrap_or((
                want.lines().count().min(got.lines().count()),
                ("<end>", "<end>"),
            ));
        panic!(
            "result.json differs from {GOLDEN} first at line {}:\n  want: {w}\n  got:  {g}",
            line + 1
        );
    }
}
