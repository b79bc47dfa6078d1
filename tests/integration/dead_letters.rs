//! A dead letter is never lost (SPEC §6.5): a redelivered poison message is dead-lettered once,
//! and a new poison message is dead-lettered even where it sits at the position of an old one —
//! after the topics were recreated with the database kept.

use std::time::Duration;

use events_schema::Topic;
use tests::{Recorded, TestEnv};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn dead_letters(env: &TestEnv, count: usize) -> anyhow::Result<Vec<Recorded>> {
    env.recorder
        .wait_for(&format!("{count} dead letters"), TIMEOUT, |records| {
            let letters: Vec<_> = records
                .iter()
                .filter(|r| r.topic == Topic::PaymentDlq)
                .cloned()
                .collect();
            (letters.len() >= count).then_some(letters)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_at_an_old_position_after_the_topics_are_recreated_is_dead_lettered(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.publish(Topic::FareRequests, Some("wr_poison"), b"first poison")
        .await?;
    let before = dead_letters(&env, 1).await?;
    assert_eq!(before[0].headers["dlq.source.offset"], "0");

    // A broker reset: the topics are gone and come back empty; PostgreSQL keeps everything.
    env.stop_services().await?;
    env.recreate_topics().await?;
    env.start_services().await?;
    // Same key, so same partition, and the first message there: the same position as before.
    env.publish(Topic::FareRequests, Some("wr_poison"), b"second poison")
        .await?;
    env.request_fare("wr_after", "3", 100).await?;
    env.recorder.outcome_of("wr_after", TIMEOUT).await?;
    let after = dead_letters(&env, 1).await?;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].payload, b"second poison");
    assert_eq!(after[0].headers["dlq.source.offset"], "0");
    assert_eq!(
        after[0].headers["dlq.source.partition"],
        before[0].headers["dlq.source.partition"]
    );
    env.teardown().await
}
