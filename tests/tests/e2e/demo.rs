//! The one-command demo: `fedseg-coordinator demo --dir DIR` builds a
//! consortium, starts one participant process per bank over mutual TLS,
//! runs segmentation and the propensity model, writes the result and the
//! reports, and stops everything. Run again on replaced data files, it uses
//! them.

use std::fs;
use std::process::Command;

use fedseg_tests::{binary, free_port};
use serde_json::Value;

fn demo(dir: &std::path::Path) -> String {
    let output = Command::new(binary("fedseg-coordinator"))
        .args(["demo", "--sites", "3", "--customers", "900", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    text
}

fn result(dir: &std::path::Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("out/result.json")).unwrap()).unwrap()
}

#[test]
fn the_demo_runs_a_whole_job_and_reports_what_result_json_says() {
    let dir = tempfile::tempdir().unwrap();
    let log = demo(dir.path());
    assert!(log.contains("round released"), "progress is shown");
    assert!(log.contains("report: "));
    let r = result(dir.path());
    let html = fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // Self-contained: nothing to fetch (the SVG namespace is a name only).
    let fetchable = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !fetchable.contains("http://")
            && !fetchable.contains("https://")
            && !fetchable.contains(" src="),
        "the report must open without a network"
    );
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "profile, elbow, ROC and calibration charts"
    );
    let evaluation = &r["propensity"]["evaluation"];
    let key = |k: &str, v: String| format!("data-key=\"{k}\">{v}<");
    assert!(html.contains(&key(
        "auc",
        format!("{:.4}", evaluation["auc"].as_f64().unwrap())
    )));
    assert!(html.contains(&key(
        "log_loss",
        format!("{:.4}", evaluation["log_loss"].as_f64().unwrap())
    )));
    let number = |v: &Value| format!("{}", v.as_f64().unwrap());
    assert!(html.contains(&key("customers", number(&r["standardization"]["count"]))));
    for segment in r["segmentation"]["segments"].as_array().unwrap() {
        assert!(html.contains(&key("size", number(&segment["size"]))));
        assert!(html.contains(segment["name"].as_str().unwrap()));
    }
    for round in r["rounds"].as_array().unwrap() {
        assert!(html.contains(round["purpose"].as_str().unwrap()));
    }
    assert!(html.contains("data-key=\"journal\">verified: "));
    let md = fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains(&format!("AUC {:.4}", evaluation["auc"].as_f64().unwrap())));

    // Replace the smallest bank's files with a bank of 50 customers: the
    // next demo run uses them.
    let before = r["census"]["customers"].as_f64().unwrap()
        + r["census"]["excluded_no_consent"].as_f64().unwrap();
    let status = Command::new(binary("fedseg-participant"))
        .args(["synth", "--customers", "50", "--seed", "3", "--out"])
        .arg(dir.path().join("sites/bank-a"))
        .status()
        .unwrap();
    assert!(status.success());
    demo(dir.path());
    let again = result(dir.path());
    let after = again["census"]["customers"].as_f64().unwrap()
        + again["census"]["excluded_no_consent"].as_f64().unwrap();
    assert_eq!(
        before - after,
        150.0 - 50.0,
        "bank-a held 150 of 900 before"
    );
}

/// Headless Chromium: the system's `chromium`, or `FEDSEG_CHROMIUM`.
fn chromium() -> Option<std::path::PathBuf> {
    std::env::var_os("FEDSEG_CHROMIUM")
        .map(Into::into)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
        })
}

#[test]
fn the_report_opens_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        // CI installs Chromium (.ci/run); elsewhere the check is optional.
        assert!(std::env::var_os("CI").is_none(), "CI must have Chromium");
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let page = dir.path().join("out/report.html");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let dom = String::from_utf8_lossy(&output.stdout);
    // The browser parsed the whole page and its four inline charts.
    assert_eq!(dom.matches("<svg").count(), 4, "{dom}");
    assert!(dom.contains("data-key=\"auc\""));
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") || line.contains("Uncaught")),
            "the page logged an error: {line}"
        );
    }
}

#[test]
fn the_demo_runs_under_differential_privacy_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let output = Command::new(binary("fedseg-coordinator"))
            .args(["demo", "--sites", "3", "--customers", "1500"])
            .args(["--epsilon", "2", "--listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{text}");
    };
    run();
    // Run again: a new job, whose spend the banks count anew.
    let first = result(dir.path())["job_id"].clone();
    run();
    let r = result(dir.path());
    assert_ne!(r["job_id"], first);
    assert_eq!(r["privacy"]["dp"], true);
    assert!(r["privacy"]["epsilon"].as_f64().unwrap() <= 2.0);
    let report = fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(report.contains("Differential privacy: on"), "{report}");
    // A nonsensical budget is refused at start-up, naming the key.
    let output = Command::new(binary("fedseg-coordinator"))
        .args(["demo", "--epsilon=-1", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("privacy.epsilon"));
}
