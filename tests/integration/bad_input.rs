//! Bad input never blocks a partition and never vanishes (SPEC §6.5): malformed bytes go to
//! the DLQ unchanged with their source in headers; invalid requests are rejected with every
//! problem listed and end in `FareCollectionFailed`.

use std::time::Duration;

use events_schema::{
    Currency, CustomerId, Event, EventData, EventType, FareCollected, FareId, Topic,
};
use tests::{Recorded, TestEnv};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn dead_letter(env: &TestEnv, payload: &[u8]) -> anyhow::Result<Recorded> {
    env.recorder
        .wait_for("a dead letter", TIMEOUT, |records| {
            records
                .iter()
                .find(|r| r.topic == Topic::PaymentDlq && r.payload == payload)
                .cloned()
        })
        .await
}

/// Asserts that `letter` is the message at its `dlq.source.*` position, unchanged.
fn assert_is_the_original(env: &TestEnv, letter: &Recorded, source: Topic) {
    assert_eq!(letter.headers["dlq.source.topic"], env.names.name(source));
    let source_offset: i64 = letter.headers["dlq.source.offset"].parse().unwrap();
    let source_partition: i32 = letter.headers["dlq.source.partition"].parse().unwrap();
    let original = env
        .recorder
        .on_topic(source)
        .into_iter()
        .find(|r| r.partition == source_partition && r.offset == source_offset)
        .expect("the headers point at the original message");
    assert_eq!(
        original.payload, letter.payload,
        "dead letter is the original bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_a_saga_are_dead_lettered_and_a_good_fare_still_completes(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let not_json: &[u8] = b"{\"event_type\": \"FareRequested\", \"fare_id\": ";
    let missing_fare_id = br#"{"event_type":"FareRequested","data":{"customer_id":"3","amount_minor":2000,"currency":"USD","payment_token":"tok_visa"}}"#;
    let bad_fare_id = br#"{"event_type":"FareRequested","fare_id":"wr 3","data":{}}"#;
    for (key, payload) in [
        ("wr_bad_1", not_json),
        ("wr_bad_3", missing_fare_id.as_slice()),
        ("wr_bad_4", bad_fare_id.as_slice()),
    ] {
        env.publish(Topic::FareRequests, Some(key), payload).await?;
    }
    // Garbage on an event topic is dead-lettered by every service that consumes it; so is a
    // well-formed event whose Kafka key is not its fare_id (events are keyed by fare_id).
    env.publish(Topic::PaymentEvents, Some("wr_bad_6"), b"not an event")
        .await?;
    let misrouted = Event::start_saga(
        FareId::parse("wr_bad_7")?,
        EventData::FareCollected(FareCollected {
            customer_id: CustomerId::parse("3")?,
            amount_minor: 2000,
            currency: Currency::parse("USD")?,
        }),
    );
    let misrouted = misrouted.encode();
    env.publish(Topic::AccountingEvents, Some("wr_other"), &misrouted)
        .await?;
    env.request_fare("wr_good", "3", 2000).await?;

    let outcome = env.recorder.outcome_of("wr_good", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);

    for (payload, reason_part) in [
        (not_json, "json"),
        (missing_fare_id.as_slice(), "fare_id"),
        (bad_fare_id.as_slice(), "fare_id"),
    ] {
        let letter = dead_letter(&env, payload).await?;
        let error = &letter.headers["dlq.error"];
        assert!(
            error.to_lowercase().contains(&reason_part.to_lowercase()),
            "reason {error:?} should mention {reason_part:?}"
        );
        assert_is_the_original(&env, &letter, Topic::FareRequests);
    }
    let letter = dead_letter(&env, &misrouted).await?;
    assert!(
        letter.headers["dlq.error"].contains("Kafka key"),
        "{:?}",
        letter.headers
    );
    assert_is_the_original(&env, &letter, Topic::AccountingEvents);
    let garbage = env
        .recorder
        .wait_for(
            "garbage dead-lettered by both services",
            TIMEOUT,
            |records| {
                let letters: Vec<_> = records
                    .iter()
                    .filter(|r| r.payload == b"not an event" && r.topic.is_dlq())
                    .map(|r| r.topic)
                    .collect();
                (letters.contains(&Topic::PaymentDlq) && letters.contains(&Topic::AccountingDlq))
                    .then_some(letters)
            },
        )
        .await?;
    assert_eq!(garbage.len(), 2, "each service dead-letters it once");
    // Nothing else is outcome-worthy: the dead-lettered ones had no valid saga.
    let outcomes = env.recorder.on_topic(Topic::FareOutcomes);
    assert_eq!(outcomes.len(), 1, "only the good fare has an outcome");
    env.teardown().await
}

/// SPEC §4: every request with a valid, unknown fare_id ends in exactly one outcome, whatever
/// else is wrong with it — a malformed envelope field too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_envelope_with_a_valid_fare_id_gets_an_outcome() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let data = serde_json::json!({"customer_id":"3","amount_minor":2000,"currency":"USD","payment_token":"tok_visa"});
    let oversized = serde_json::json!({"customer_id":"3","amount_minor":2000,"currency":"USD","payment_token":"tok_visa","note":"x".repeat(100 * 1024)});
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "wr_env_event_id",
            serde_json::json!({"event_type":"FareRequested","event_id":"not-a-uuid","fare_id":"wr_env_event_id","data":data}),
            "event_id",
        ),
        (
            "wr_env_time",
            serde_json::json!({"event_type":"FareRequested","occurred_at":"yesterday","fare_id":"wr_env_time","data":data}),
            "occurred_at",
        ),
        (
            "wr_env_version",
            serde_json::json!({"event_type":"FareRequested","schema_version":7,"fare_id":"wr_env_version","data":data}),
            "schema_version 7",
        ),
        (
            "wr_env_type",
            serde_json::json!({"event_type":"FareTeleported","fare_id":"wr_env_type","data":data}),
            "FareTeleported",
        ),
        (
            "wr_env_oversized",
            serde_json::json!({"event_type":"FareRequested","fare_id":"wr_env_oversized","data":oversized}),
            "bytes long",
        ),
    ];
    for (fare_id, request, _) in &cases {
        env.publish(
            Topic::FareRequests,
            Some(fare_id),
            request.to_string().as_bytes(),
        )
        .await?;
    }
    for (fare_id, _, problem) in &cases {
        let outcome = env.recorder.outcome_of(fare_id, TIMEOUT).await?;
        let EventData::FareCollectionFailed(failed) = &outcome.data else {
            panic!("{fare_id}: {outcome:?}")
        };
        assert!(
            failed.reason.contains(problem),
            "{fare_id}: {}",
            failed.reason
        );
        assert_eq!(
            env.recorder.event_types_for(fare_id),
            vec![EventType::FareRejected, EventType::FareCollectionFailed],
            "{fare_id}"
        );
    }
    assert!(
        env.recorder.on_topic(Topic::PaymentDlq).is_empty(),
        "none of them is dead-lettered"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_rejected_with_every_problem() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        (
            "wr_zero",
            serde_json::json!({"customer_id":"3","amount_minor":0,"currency":"USD","payment_token":"tok_visa"}),
            vec!["amount"],
        ),
        (
            "wr_negative",
            serde_json::json!({"customer_id":"3","amount_minor":-5,"currency":"USD","payment_token":"tok_visa"}),
            vec!["amount"],
        ),
        (
            "wr_too_much",
            serde_json::json!({"customer_id":"3","amount_minor":1_000_001,"currency":"USD","payment_token":"tok_visa"}),
            vec!["amount"],
        ),
        (
            "wr_currency",
            serde_json::json!({"customer_id":"3","amount_minor":2000,"currency":"XYZ","payment_token":"tok_visa"}),
            vec!["currency"],
        ),
        (
            "wr_customer",
            serde_json::json!({"customer_id":"bad id!","amount_minor":2000,"currency":"USD","payment_token":"tok_visa"}),
            vec!["customer_id"],
        ),
        (
            "wr_missing",
            serde_json::json!({"customer_id":"3"}),
            vec!["amount_minor", "currency", "payment_token"],
        ),
        (
            "wr_card",
            serde_json::json!({"customer_id":"3","amount_minor":2000,"currency":"USD","payment_token":"4111111111111111"}),
            vec!["payment_token"],
        ),
        (
            "wr_many",
            serde_json::json!({"customer_id":"3","amount_minor":0,"currency":"XXX"}),
            vec!["amount", "currency", "payment_token"],
        ),
    ];
    for (fare_id, data, _) in &cases {
        let request =
            serde_json::json!({"event_type":"FareRequested","fare_id":fare_id,"data":data});
        env.publish(
            Topic::FareRequests,
            Some(fare_id),
            request.to_string().as_bytes(),
        )
        .await?;
    }
    for (fare_id, _, expected_problems) in &cases {
        let outcome = env.recorder.outcome_of(fare_id, TIMEOUT).await?;
        assert_eq!(
            outcome.event_type(),
            EventType::FareCollectionFailed,
            "{fare_id}"
        );
        let types = env
            .recorder
            .wait_for("the rejection", TIMEOUT, |_| {
                let types = env.recorder.event_types_for(fare_id);
                (types.len() >= 2).then_some(types)
            })
            .await?;
        assert_eq!(
            types,
            vec![EventType::FareRejected, EventType::FareCollectionFailed],
            "{fare_id}"
        );
        let rejected = env
            .recorder
            .events_for(fare_id)
            .into_iter()
            .find(|e| e.event_type() == EventType::FareRejected)
            .expect("rejected");
        let EventData::FareRejected(rejection) = &rejected.data else {
            unreachable!()
        };
        assert_eq!(
            rejection.reasons.len(),
            expected_problems.len(),
            "{fare_id}: {:?}",
            rejection.reasons
        );
        for (reason, expected) in rejection.reasons.iter().zip(expected_problems) {
            assert!(
                reason.contains(expected),
                "{fare_id}: {reason:?} should mention {expected}"
            );
        }
        assert!(
            rejection
                .reasons
                .iter()
                .all(|r| !r.contains("4111111111111111")),
            "a card number is never echoed"
        );
    }
    // No money moved for any of them.
    let admin = env.database.admin_pool().await?;
    let operations: i64 = sqlx::query_scalar("SELECT count(*) FROM payment.gateway_operations")
        .fetch_one(&admin)
        .await?;
    assert_eq!(operations, 0);
    admin.close().await;
    env.teardown().await
}
