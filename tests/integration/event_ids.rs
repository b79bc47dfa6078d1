//! SPEC §3: an `event_id` names one event. A message that reuses a known `event_id` for another
//! fare or with other content is a conflicting duplicate — dead-lettered with the reason, and,
//! for a request with a valid, unknown fare_id, answered with an outcome (SPEC §4). Nothing is
//! acknowledged and dropped in silence.

use std::time::Duration;

use events_schema::{Event, EventData, EventType, FareId, Topic};
use tests::env::minimal_request;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

fn with_event_id(fare_id: &str, amount_minor: i64, event_id: &str) -> String {
    let mut request: serde_json::Value =
        serde_json::from_str(&minimal_request(fare_id, "3", amount_minor)).unwrap();
    request["event_id"] = serde_json::json!(event_id);
    request.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_id_is_dead_lettered_and_never_dropped() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let reused = uuid::Uuid::now_v7().to_string();
    let first = with_event_id("wr_first", 2000, &reused);
    env.publish(Topic::FareRequests, Some("wr_first"), first.as_bytes())
        .await?;
    env.recorder.outcome_of("wr_first", TIMEOUT).await?;

    // Another fare under the same event_id, as when an example file is replayed with another
    // fare id: the new fare gets an outcome, and the message is in the DLQ with the reason.
    let other_fare = with_event_id("wr_second", 2000, &reused);
    env.publish(
        Topic::FareRequests,
        Some("wr_second"),
        other_fare.as_bytes(),
    )
    .await?;
    let outcome = env.recorder.outcome_of("wr_second", TIMEOUT).await?;
    let EventData::FareCollectionFailed(failed) = &outcome.data else {
        panic!("{outcome:?}")
    };
    assert!(
        failed.reason.contains("already names another event"),
        "{}",
        failed.reason
    );
    assert_ne!(
        outcome.correlation_id.to_string(),
        reused,
        "the rejected saga does not go by the other fare's id"
    );

    // An event of the saga, replayed under its own id for another fare.
    let pre_authorised = env
        .recorder
        .events_for("wr_first")
        .into_iter()
        .find(|e| e.event_type() == EventType::PreAuthorised)
        .expect("wr_first was pre-authorised");
    let forged = Event {
        fare_id: FareId::parse("wr_third")?,
        ..pre_authorised
    }
    .encode();
    env.publish(Topic::PaymentEvents, Some("wr_third"), &forged)
        .await?;

    let letters = env
        .recorder
        .wait_for("both messages dead-lettered", TIMEOUT, |records| {
            let letters: Vec<_> = records
                .iter()
                .filter(|r| r.topic == Topic::PaymentDlq)
                .cloned()
                .collect();
            (letters.len() >= 2).then_some(letters)
        })
        .await?;
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.headers["dlq.error"].as_str())
        .collect();
    for (payload, fare) in [
        (other_fare.as_bytes(), "wr_second"),
        (forged.as_slice(), "wr_third"),
    ] {
        let letter = letters
            .iter()
            .find(|l| l.payload == payload)
            .unwrap_or_else(|| panic!("the message of {fare} is in the DLQ: {reasons:?}"));
        let reason = &letter.headers["dlq.error"];
        assert!(
            reason.starts_with("conflicting duplicate") && reason.contains("wr_first"),
            "{reason}"
        );
    }
    assert_eq!(
        env.recorder.event_types_for("wr_third"),
        vec![EventType::PreAuthorised],
        "no saga for the forged event"
    );
    env.teardown().await
}
