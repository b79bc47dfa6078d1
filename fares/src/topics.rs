//! `fares topics ensure|list`: the SPEC §2 topics, created idempotently with the partition
//! counts and retention of [`events_schema::Topic`].

use anyhow::Context;
use events_schema::Topic;
use transactional_messaging::kafka::ensure_topics;

use crate::broker::Kafka;
use crate::exit;

/// Creates every topic that does not exist, then lists them all.
pub async fn ensure(kafka: &Kafka) -> anyhow::Result<()> {
    // Fails fast, with the remedy, when Kafka is down (topic creation would wait much longer).
    kafka.partitions(Vec::new()).await?;
    ensure_topics(
        kafka.bootstrap(),
        &kafka.names,
        kafka.settings.replication_factor,
    )
    .await
    .with_context(|| {
        format!(
            "cannot create the topics on Kafka at {} (KAFKA_REPLICATION_FACTOR={}: it must not exceed the number of brokers)",
            kafka.bootstrap(),
            kafka.settings.replication_factor
        )
    })?;
    // A new topic can take a moment to appear in the metadata of every broker.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut found = fetch(kafka).await?;
    while found.iter().any(|(_, p)| p.is_none()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        found = fetch(kafka).await?;
    }
    let missing = print_topics(&found);
    if missing > 0 {
        anyhow::bail!(
            "{missing} topic(s) still missing right after creation on Kafka at {} — check the broker's log",
            kafka.bootstrap()
        );
    }
    eprintln!("topics ready on Kafka at {}", kafka.bootstrap());
    Ok(())
}

/// Lists the topics; a missing one makes the answer negative (exit code 1).
pub async fn list(kafka: &Kafka) -> anyhow::Result<()> {
    let missing = print_topics(&fetch(kafka).await?);
    if missing > 0 {
        return Err(exit::negative(format!(
            "{missing} of {} topics missing on Kafka at {} — create them with `fares topics ensure`",
            Topic::ALL.len(),
            kafka.bootstrap()
        )));
    }
    Ok(())
}

/// Each SPEC topic's configured name and partition count (`None`: missing), in SPEC order.
async fn fetch(kafka: &Kafka) -> anyhow::Result<Vec<(String, Option<usize>)>> {
    let names: Vec<String> = Topic::ALL.iter().map(|t| kafka.topic(*t)).collect();
    kafka.partitions(names).await
}

/// Prints one line per topic of `found` (from [`fetch`]); returns how many are missing.
fn print_topics(found: &[(String, Option<usize>)]) -> usize {
    let width = found.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut missing = 0;
    for (topic, (name, partitions)) in Topic::ALL.iter().zip(found) {
        println!("{}", topic_line(*topic, name, *partitions, width));
        if partitions.is_none() {
            missing += 1;
        }
    }
    missing
}

/// `fare-requests  6 partitions  retention 7 days`, noting a partition count other than the
/// SPEC's and a missing topic.
fn topic_line(topic: Topic, name: &str, partitions: Option<usize>, width: usize) -> String {
    let retention_days = topic.retention_ms() / (24 * 60 * 60 * 1000);
    match partitions {
        None => format!("{name:<width$}  MISSING"),
        Some(n) => {
            let count = format!("{n} partition{}", if n == 1 { "" } else { "s" });
            let mut line = format!("{name:<width$}  {count:<13}  retention {retention_days} days");
            if n != topic.partitions() as usize {
                line.push_str(&format!(
                    "  (expected {} — created before with another count?)",
                    topic.partitions()
                ));
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_partitions_retention_and_problems() {
        assert_eq!(
            topic_line(Topic::FareRequests, "fare-requests", Some(6), 15),
            "fare-requests    6 partitions   retention 7 days"
        );
        assert_eq!(
            topic_line(Topic::PaymentDlq, "payment-service.dlq", Some(1), 0),
            "payment-service.dlq  1 partition    retention 30 days"
        );
        assert!(topic_line(Topic::FareOutcomes, "fare-outcomes", Some(3), 0).contains("expected 6"));
        assert_eq!(
            topic_line(Topic::FareOutcomes, "fare-outcomes", None, 0),
            "fare-outcomes  MISSING"
        );
    }
}
