//! The coordinator's plain-HTTP observability endpoint: `/metrics` parses
//! as Prometheus text and follows the participants' sessions; `/healthz`
//! answers for probes that hold no consortium certificate.

use std::time::{Duration, Instant};

use fedseg_tests::{Consortium, http_get as get};

fn connected(body: &str) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == "fedseg_participants_connected")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{other:?}"),
        })
}

#[test]
fn metrics_parse_and_follow_the_sessions() {
    let c = Consortium::new(3, 5.0, 16);
    let port = c.enable_metrics();
    let _coordinator = c.serve();
    let (head, body) = get(port, "/healthz");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    assert_eq!(connected(&get(port, "/metrics").1), Some(0.0));

    let _participants: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (head, body) = get(port, "/metrics");
        assert!(head.contains("openmetrics-text"), "{head}");
        assert!(
            body.contains("# TYPE fedseg_session_bytes counter"),
            "{body}"
        );
        if connected(&body) == Some(3.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw 3 sessions:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(get(port, "/nothing").0.starts_with("HTTP/1.1 404"));
}

/// A sample's value (counters, gauges and histogram counts alike).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("{name} {label:?} missing"));
    match &found.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(buckets) => {
            buckets.iter().map(|b| b.count).fold(0.0, f64::max)
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_vertical_job_s_phases_steps_and_relayed_bytes_are_scraped() {
    let c = Consortium::vertical(500, 20.0);
    let port = c.enable_metrics();
    let _serve = fedseg_tests::spawn(c.coordinator_with_job("serve"), c.path().join("serve.log"));
    let _parties: Vec<_> = c.sites.iter().map(|s| c.run_participant(s, None)).collect();
    let result = c.path().join("out/result.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !result.exists() {
        assert!(Instant::now() < deadline, "the vertical job did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let steps = c.result()["vertical"]["steps"].as_u64().unwrap();
    let body = get(port, "/metrics").1;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    for phase in ["psi", "model"] {
        let label = Some(("phase", phase));
        assert_eq!(
            sample(
                &scrape,
                "fedseg_vertical_phase_duration_seconds_count",
                label
            ),
            1.0,
            "{body}"
        );
        assert!(sample(&scrape, "fedseg_vertical_relayed_bytes_total", label) > 500.0 * 16.0);
    }
    assert_eq!(
        sample(&scrape, "fedseg_vertical_newton_steps_total", None),
        steps as f64
    );
    assert!(sample(&scrape, "fedseg_vertical_dealt_bytes_total", None) > 0.0);
}
