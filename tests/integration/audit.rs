//! `fares audit` (SPEC §6): clean after a run with every failure marker, and each kind of
//! violation, planted on purpose, named with its invariant and its fare. Exit codes 0 clean,
//! 1 violations, 2 cannot run.

use std::collections::BTreeSet;
use std::time::Duration;

use events_schema::{EventId, FailureMarker, Topic};
use serde_json::Value;
use sqlx::Executor;
use tests::audit::Audited;
use tests::env::minimal_request;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

fn fare_ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["fare_id"].as_str().map(str::to_owned))
        .collect()
}

async fn dead_letters(env: &TestEnv, topic: Topic, count: usize) -> anyhow::Result<()> {
    env.recorder
        .wait_for(
            &format!("{count} dead letters on {topic}"),
            TIMEOUT,
            |records| (records.iter().filter(|r| r.topic == topic).count() >= count).then_some(()),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_every_failure_marker_and_bad_input_is_clean() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let mut fares = env.publish_mixed_fares("wr_clean", 20).await?;
    env.request_fare("wr_hold", "c_fail_charge_fail_release", 700)
        .await?;
    fares.insert("wr_hold".into(), "c_fail_charge_fail_release".into());
    // What riders may send: a card number for a token (rejected), a message that is not JSON
    // and a conflicting duplicate (both dead-lettered). None of it is a violation.
    let mut carded: Value = serde_json::from_str(&minimal_request("wr_card", "3", 500))?;
    carded["data"]["payment_token"] = "4111 1111 1111 1111".into();
    env.publish(
        Topic::FareRequests,
        Some("wr_card"),
        carded.to_string().as_bytes(),
    )
    .await?;
    env.publish(
        Topic::FareRequests,
        Some("wr_poison"),
        b"card 4111111111111111",
    )
    .await?;
    env.publish(
        Topic::FareRequests,
        Some("wr_clean_0"),
        minimal_request("wr_clean_0", "c0", 99_999).as_bytes(),
    )
    .await?;
    env.wait_for_outcomes(fares.len() + 1, TIMEOUT).await?;
    dead_letters(&env, Topic::PaymentDlq, 2).await?;
    env.wait_until_consumed("payment-service", Topic::FareRequests)
        .await?;

    let audited = env.audit(&[]).await?;
    assert_eq!(audited.code, Some(0), "{audited:#?}");
    let report = &audited.report;
    assert_eq!(report["clean"], true);
    assert_eq!(report["violations"], Value::Array(vec![]));
    assert_eq!(report["fares"], fares.len() + 1);
    let markers: Vec<FailureMarker> = fares.values().map(|c| FailureMarker::of_str(c)).collect();
    let count = |wanted: &[FailureMarker]| markers.iter().filter(|m| wanted.contains(m)).count();
    let attention = [
        FailureMarker::FailCreditFailRefund,
        FailureMarker::FailChargeFailRelease,
    ];
    assert_eq!(
        report["outcomes"]["collected"],
        count(&[FailureMarker::None])
    );
    assert_eq!(report["outcomes"]["needs_attention"], count(&attention));
    assert_eq!(
        report["outcomes"]["failed"],
        fares.len() + 1 - count(&[FailureMarker::None]) - count(&attention),
        "every other marker fails, and so does the rejected wr_card"
    );
    assert_eq!(report["in_flight"], 0);
    assert_eq!(report["messages"]["fare-requests"], fares.len() + 3);
    let flagged = fare_ids(&report["needs_attention"]);
    assert_eq!(flagged.len(), count(&attention), "{report:#}");
    assert!(flagged.contains("wr_hold"), "{report:#}");
    let reasons: Vec<&str> = report["needs_attention"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("release failed")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("refund failed")),
        "{reasons:?}"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_outcome_for_a_fare_is_named() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_twice", "3", 1200).await?;
    env.request_fare("wr_once", "3", 1300).await?;
    let mut outcome = env.recorder.outcome_of("wr_twice", TIMEOUT).await?;
    env.recorder.outcome_of("wr_once", TIMEOUT).await?;
    outcome.event_id = EventId::new();
    env.publish(Topic::FareOutcomes, Some("wr_twice"), &outcome.encode())
        .await?;

    let audited = env.audit(&[]).await?;
    assert_eq!(audited.code, Some(1), "{audited:#?}");
    assert_eq!(audited.report["clean"], false);
    assert_eq!(audited.violating(1), ["wr_twice"], "{audited:#?}");
    assert_eq!(audited.violating(2), ["wr_twice"], "{audited:#?}");
    assert!(
        audited.stderr.contains("violations of SPEC §6"),
        "{audited:#?}"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_that_does_not_add_up_and_a_hold_left_are_named() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    for fare_id in ["wr_unledgered", "wr_captured_twice", "wr_held", "wr_fine"] {
        env.request_fare(fare_id, "3", 2500).await?;
    }
    for fare_id in ["wr_unledgered", "wr_captured_twice", "wr_held", "wr_fine"] {
        env.recorder.outcome_of(fare_id, TIMEOUT).await?;
    }
    let admin = env.database.admin_pool().await?;
    admin
        .execute(
            "ALTER TABLE accounting.ledger_entries DISABLE TRIGGER ledger_entries_append_only; \
             DELETE FROM accounting.ledger_entries WHERE fare_id = 'wr_unledgered'; \
             INSERT INTO payment.gateway_operations \
               (idempotency_key, fare_id, operation, approved, reference, amount_minor, currency) \
               SELECT 'wr_captured_twice:capture:again', fare_id, operation, approved, \
                      'ch_again', amount_minor, currency \
               FROM payment.gateway_operations WHERE idempotency_key = 'wr_captured_twice:capture'; \
             DELETE FROM payment.gateway_operations WHERE idempotency_key = 'wr_held:capture';",
        )
        .await?;
    admin.close().await;

    let audited = env.audit(&[]).await?;
    assert_eq!(audited.code, Some(1), "{audited:#?}");
    let money: BTreeSet<String> = audited.violating(3).into_iter().collect();
    assert!(money.contains("wr_unledgered"), "{audited:#?}");
    assert!(money.contains("wr_captured_twice"), "{audited:#?}");
    assert!(
        audited
            .violations(3)
            .iter()
            .any(|v| v["fare_id"] == "wr_captured_twice"
                && v["problem"]
                    .as_str()
                    .unwrap_or("")
                    .contains("money moved twice")),
        "{audited:#?}"
    );
    assert_eq!(audited.violating(4), ["wr_held"], "{audited:#?}");
    assert!(
        !audited.report["violations"].to_string().contains("wr_fine"),
        "{audited:#?}"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_dead_letters_are_named() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_dup", "3", 800).await?;
    env.recorder.outcome_of("wr_dup", TIMEOUT).await?;
    env.publish(Topic::FareRequests, Some("wr_poison"), b"not json")
        .await?;
    env.publish(
        Topic::FareRequests,
        Some("wr_dup"),
        minimal_request("wr_dup", "3", 801).as_bytes(),
    )
    .await?;
    dead_letters(&env, Topic::PaymentDlq, 2).await?;
    env.wait_until_consumed("payment-service", Topic::FareRequests)
        .await?;
    let before = env.audit(&[]).await?;
    assert_eq!(
        before.code,
        Some(0),
        "dead-lettered, all is well: {before:#?}"
    );

    env.recreate_topic(Topic::PaymentDlq).await?;
    let audited = env.audit(&[]).await?;
    assert_eq!(audited.code, Some(1), "{audited:#?}");
    assert_eq!(audited.violating(5), ["wr_poison"], "{audited:#?}");
    assert_eq!(audited.violating(6), ["wr_dup"], "{audited:#?}");
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_on_a_topic_in_a_table_and_in_a_log_are_named() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_ok", "3", 900).await?;
    env.recorder.outcome_of("wr_ok", TIMEOUT).await?;
    env.publish(
        Topic::PaymentEvents,
        Some("wr_card_topic"),
        br#"{"note":"card 4111 1111 1111 1111"}"#,
    )
    .await?;
    let admin = env.database.admin_pool().await?;
    admin
        .execute(
            "INSERT INTO payment.outbox (event_id, topic, message_key, payload, published_at) \
             VALUES (gen_random_uuid(), 'payment-events', 'wr_card_table', \
                     convert_to('{\"pan\":\"4111111111111111\"}', 'UTF8'), now())",
        )
        .await?;
    admin.close().await;
    let log = std::env::temp_dir().join(format!("{}.log", env.database.name));
    std::fs::write(
        &log,
        "INFO fare wr_ok collected\nWARN token 5555 5555 5555 4444\n",
    )?;

    let audited = env.audit(&["--logs", &log.to_string_lossy()]).await;
    std::fs::remove_file(&log)?;
    let audited = audited?;
    assert_eq!(audited.code, Some(1), "{audited:#?}");
    let named: BTreeSet<String> = audited.violating(7).into_iter().collect();
    assert!(named.contains("wr_card_topic"), "{audited:#?}");
    assert!(named.contains("wr_card_table"), "{audited:#?}");
    let problems: Vec<String> = audited
        .violations(7)
        .iter()
        .filter_map(|v| v["problem"].as_str().map(str::to_owned))
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("payment-events") && p.contains("payload")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("payment.outbox.payload")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.ends_with("line 2")),
        "{problems:?}"
    );
    assert!(
        !audited.report.to_string().contains("4111 1111 1111 1111"),
        "the audit must not print a card number itself"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fare_without_outcome_is_in_flight_then_stuck() -> anyhow::Result<()> {
    // The services ran once (their tables exist) and are stopped: the request is never
    // consumed.
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.stop_services().await?;
    env.request_fare("wr_stuck", "3", 1000).await?;
    let in_flight = env.audit(&[]).await?;
    assert_eq!(in_flight.code, Some(0), "{in_flight:#?}");
    assert_eq!(in_flight.report["in_flight"], 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let stuck: Audited = loop {
        let audited = env.audit(&["--stuck-after", "1s"]).await?;
        if audited.code != Some(0) || tokio::time::Instant::now() > deadline {
            break audited;
        }
    };
    assert_eq!(stuck.code, Some(1), "{stuck:#?}");
    assert_eq!(stuck.violating(1), ["wr_stuck"], "{stuck:#?}");
    assert_eq!(
        fare_ids(&stuck.report["stuck"]),
        BTreeSet::from(["wr_stuck".to_owned()])
    );
    assert_eq!(stuck.report["stuck"][0]["status"], "not registered");
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_that_cannot_run_says_why_and_exits_2() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let closed = format!(
        "postgres://wildrydes_auditor:wildrydes_auditor@127.0.0.1:1/{}",
        env.database.name
    );
    let no_database = env
        .audit_with(&[], &[("AUDIT_DATABASE_URL", &closed)])
        .await?;
    assert_eq!(no_database.code, Some(2), "{no_database:#?}");
    assert!(
        no_database
            .stderr
            .contains("cannot connect to PostgreSQL at 127.0.0.1:1")
            && no_database.stderr.contains("AUDIT_DATABASE_URL"),
        "{no_database:#?}"
    );

    let no_kafka = env
        .audit_with(&[], &[("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")])
        .await?;
    assert_eq!(no_kafka.code, Some(2), "{no_kafka:#?}");
    assert!(
        no_kafka
            .stderr
            .contains("cannot reach Kafka at 127.0.0.1:1"),
        "{no_kafka:#?}"
    );

    let bad_duration = env.audit(&["--stuck-after", "soon"]).await?;
    assert_eq!(bad_duration.code, Some(2), "{bad_duration:#?}");
    assert!(
        bad_duration.stderr.contains("--stuck-after"),
        "{bad_duration:#?}"
    );
    env.teardown().await
}
