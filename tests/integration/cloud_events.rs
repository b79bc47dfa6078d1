//! CloudEvents binary-mode headers (README "CloudEvents"): every event a service publishes, and
//! every request `fares request` sends, carries `ce_*` headers that repeat its JSON envelope;
//! dead letters carry none.

use std::time::Duration;

use events_schema::Topic;
use tests::processes::binary;
use tests::recorder::Recorded;
use tests::TestEnv;
use tokio::process::Command;

const FARES: usize = 12;
const TIMEOUT: Duration = Duration::from_secs(90);

/// Checks `record`'s `ce_*` headers against its envelope; `source` is the expected `ce_source`.
fn assert_cloud_event(record: &Recorded, source: &str) {
    let envelope: serde_json::Value =
        serde_json::from_slice(&record.payload).expect("an event's value is JSON");
    let header = |name: &str| {
        record
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing on {:?} {:?}", record.topic, record.headers))
            .as_str()
    };
    let where_ = format!("{:?} offset {}", record.topic, record.offset);
    assert_eq!(header("ce_specversion"), "1.0", "{where_}");
    assert_eq!(header("ce_id"), envelope["event_id"], "{where_}");
    assert_eq!(header("ce_type"), envelope["event_type"], "{where_}");
    assert_eq!(header("ce_time"), envelope["occurred_at"], "{where_}");
    assert_eq!(header("ce_subject"), envelope["fare_id"], "{where_}");
    assert_eq!(
        Some(header("ce_subject")),
        record.key.as_deref(),
        "{where_}"
    );
    assert_eq!(header("ce_source"), source, "{where_}");
    assert_eq!(header("content-type"), "application/json", "{where_}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_event_carries_headers_that_repeat_its_envelope() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    // Every path of the saga: happy, declines, compensations.
    env.publish_mixed_fares("wr_ce", FARES).await?;
    // A dead letter: a message with no saga.
    env.publish(Topic::PaymentEvents, Some("wr_ce_poison"), b"not an event")
        .await?;
    let payment = env
        .service_url("payment-service", "")
        .expect("payment runs");
    let requested = Command::new(binary("fares")?)
        .args(["request", "--fare-id", "wr_ce_cli", "--customer", "3"])
        .args(["--amount", "12.50"])
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .env("PAYMENT_URL", payment)
        .output()
        .await?;
    assert_eq!(requested.status.code(), Some(0), "{requested:?}");
    env.wait_for_outcomes(FARES + 1, TIMEOUT).await?;
    let records = env
        .recorder
        .wait_for("the dead letter", TIMEOUT, |records| {
            records
                .iter()
                .any(|r| r.topic == Topic::PaymentDlq)
                .then(|| records.to_vec())
        })
        .await?;

    let mut checked = 0;
    for record in &records {
        match record.topic {
            Topic::FareRequests if record.key.as_deref() == Some("wr_ce_cli") => {
                assert_cloud_event(record, "/wildrydes/fares-cli")
            }
            // The other requests were published bare, as kcat would; the poison by the test.
            Topic::FareRequests => continue,
            _ if record.key.as_deref() == Some("wr_ce_poison") => continue,
            Topic::PaymentDlq | Topic::AccountingDlq => {
                let ce: Vec<_> = record
                    .headers
                    .keys()
                    .filter(|k| k.starts_with("ce_"))
                    .collect();
                assert!(ce.is_empty(), "a dead letter with {ce:?}");
                continue;
            }
            topic => {
                let writer = topic.writer().expect("a service writes it");
                assert_cloud_event(record, &format!("/wildrydes/{writer}"))
            }
        }
        checked += 1;
    }
    // A request, and per fare at least its outcome, a payment event and an accounting event
    // for the happy ones: far more than the fares themselves.
    assert!(checked > 3 * FARES, "only {checked} events checked");
    for topic in [
        Topic::PaymentEvents,
        Topic::AccountingEvents,
        Topic::FareOutcomes,
    ] {
        assert!(
            records.iter().any(|r| r.topic == topic),
            "nothing on {topic:?}"
        );
    }
    env.teardown().await
}
