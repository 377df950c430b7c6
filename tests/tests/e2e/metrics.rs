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
