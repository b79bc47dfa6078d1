//! `GET /metrics` on both services: what a few fares of mixed markers and one poison message
//! leave in the counters and histograms, the database-derived gauges, the consumer lag — and
//! the text passes `promtool check metrics` (Debian's `prometheus` package).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use events_schema::Topic;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The fares of the test and the result each ends with.
const FARES: [(&str, &str, i64, &str); 5] = [
    ("m_ok", "c1", 1200, "collected"),
    ("m_auth", "c2_fail_auth", 1300, "failed"),
    ("m_credit", "c3_fail_credit", 1400, "failed"),
    (
        "m_attention",
        "c4_fail_credit_fail_refund",
        1500,
        "needs_attention",
    ),
    ("m_invalid", "c5", -100, "rejected"),
];

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

async fn scrape(env: &TestEnv, service: &str) -> anyhow::Result<String> {
    let answer = env.read_api(service, "/metrics").await?;
    anyhow::ensure!(answer.status.is_success(), "{service}: {}", answer.status);
    Ok(answer.body)
}

/// Scrapes `service` until every expected sample has its value, or fails with what differs.
async fn scrape_until(
    env: &TestEnv,
    service: &str,
    expected: &[(&str, f64)],
) -> anyhow::Result<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = scrape(env, service).await?;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(series, value)| sample(&text, series) != Some(*value))
            .map(|(series, value)| {
                format!(
                    "{series}: expected {value}, got {:?}",
                    sample(&text, series)
                )
            })
            .collect();
        if wrong.is_empty() {
            return Ok(text);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{service}'s /metrics after {TIMEOUT:?}:\n{}\n\n{text}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `promtool check metrics` on `text`: fails with how to install it when it is missing.
fn promtool_check(service: &str, text: &str) -> anyhow::Result<()> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => anyhow::bail!(
            "cannot run promtool ({error}): install Debian's prometheus package \
             (`apt-get install -y prometheus`) to check the metrics' format"
        ),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "promtool check metrics rejects {service}'s /metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_messages_outcomes_and_pass_promtool() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    for (fare, customer, amount, _) in FARES {
        env.request_fare(fare, customer, amount).await?;
    }
    env.publish(Topic::FareRequests, Some("m_poison"), b"not a fare request")
        .await?;
    for (fare, ..) in FARES {
        env.recorder.outcome_of(fare, TIMEOUT).await?;
    }

    let requests = "topic=\"fare-requests\"";
    let payment = scrape_until(
        &env,
        "payment-service",
        &[
            (&format!("wildrydes_messages_consumed_total{{event_type=\"FareRequested\",{requests}}}"), 5.0),
            (&format!("wildrydes_messages_processed_total{{event_type=\"FareRequested\",{requests}}}"), 5.0),
            (&format!("wildrydes_messages_consumed_total{{event_type=\"unknown\",{requests}}}"), 1.0),
            (&format!("wildrydes_messages_dead_lettered_total{{event_type=\"unknown\",{requests}}}"), 1.0),
            ("wildrydes_messages_processed_total{event_type=\"AccountUpdated\",topic=\"accounting-events\"}", 1.0),
            ("wildrydes_fare_outcomes_total{result=\"collected\"}", 1.0),
            ("wildrydes_fare_outcomes_total{result=\"failed\"}", 2.0),
            ("wildrydes_fare_outcomes_total{result=\"needs_attention\"}", 1.0),
            ("wildrydes_fare_outcomes_total{result=\"rejected\"}", 1.0),
            ("wildrydes_fare_outcome_duration_seconds_count{result=\"collected\"}", 1.0),
            ("wildrydes_fare_outcome_duration_seconds_count{result=\"failed\"}", 2.0),
            ("wildrydes_step_duration_seconds_count{step=\"FareRequested\"}", 5.0),
            ("wildrydes_fares_needs_attention", 1.0),
            ("wildrydes_compensations_waiting{compensation=\"refund\"}", 0.0),
            ("wildrydes_fares_stuck", 0.0),
            ("wildrydes_outbox_unpublished_messages", 0.0),
            ("wildrydes_metrics_database_up", 1.0),
        ],
    )
    .await?;
    let accounting = scrape_until(
        &env,
        "accounting-service",
        &[
            // Charged for the three fares captured; the other payment-events are not its step.
            ("wildrydes_messages_processed_total{event_type=\"Charged\",topic=\"payment-events\"}", 3.0),
            ("wildrydes_messages_ignored_total{event_type=\"PreAuthorised\",topic=\"payment-events\"}", 3.0),
            ("wildrydes_messages_dead_lettered_total{event_type=\"unknown\",topic=\"payment-events\"}", 0.0),
            ("wildrydes_step_duration_seconds_count{step=\"Charged\"}", 3.0),
            ("wildrydes_metrics_database_up", 1.0),
        ],
    )
    .await?;
    assert!(
        sample(&payment, "wildrydes_batch_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "batches observed:\n{payment}"
    );
    assert!(
        sample(
            &payment,
            "wildrydes_fare_outcome_duration_seconds_sum{result=\"needs_attention\"}"
        )
        .is_some_and(|seconds| seconds > 0.0),
        "a compensation given up takes time:\n{payment}"
    );
    assert!(
        !payment.contains("m_ok") && !accounting.contains("m_ok"),
        "no fare id in a label"
    );

    // The consumer lag comes from librdkafka's statistics (every 5 s): every partition of
    // fare-requests, all done.
    let partitions = Topic::FareRequests.partitions();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = scrape(&env, "payment-service").await?;
        let lags: Vec<Option<f64>> = (0..partitions)
            .map(|p| {
                sample(
                    &text,
                    &format!("wildrydes_consumer_lag_messages{{partition=\"{p}\",{requests}}}"),
                )
            })
            .collect();
        if lags.iter().all(|lag| *lag == Some(0.0)) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "fare-requests lag per partition {lags:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for (service, text) in [
        ("payment-service", &payment),
        ("accounting-service", &accounting),
    ] {
        promtool_check(service, text)?;
    }
    env.teardown().await
}
