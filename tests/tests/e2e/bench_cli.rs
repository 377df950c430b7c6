//! The `bench secure-sum` command, run as a real process: its one JSON line
//! carries every field of the command-line contract, and it refuses
//! parameters that do not describe a protocol instance.

use std::process::Command;

fn coordinator() -> Command {
    Command::new(fedseg_tests::binary("fedseg-coordinator"))
}

#[test]
fn secure_sum_bench_prints_one_json_line_with_the_contract_fields() {
    let output = coordinator()
        .args([
            "bench",
            "secure-sum",
            "--participants",
            "12",
            "--length",
            "1000",
            "--neighbours",
            "6",
        ])
        .args(["--threshold", "4", "--dropout", "0.25", "--rounds", "3"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in [
        "participants",
        "length",
        "neighbours",
        "threshold",
        "dropout",
        "rounds",
        "wall_s",
        "participant_s_total",
        "participant_s_max",
        "coordinator_s",
        "keystream_s",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["participants"], 12);
    assert_eq!(report["neighbours"], 6);
    assert_eq!(report["rounds"], 3);
    assert_eq!(report["released"], 3);
    assert!(report["keystream_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn secure_sum_bench_refuses_an_impossible_threshold() {
    let output = coordinator()
        .args([
            "bench",
            "secure-sum",
            "--participants",
            "5",
            "--length",
            "10",
            "--neighbours",
            "4",
        ])
        .args(["--threshold", "9", "--dropout", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("threshold 9"));
}
