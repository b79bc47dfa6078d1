//! One test per row of SPEC §5: the failure marker at the end of `customer_id` decides the
//! saga's path; each test checks the exact events on the topics, their envelopes, and the rows
//! each service owns.

use std::time::Duration;

use events_schema::{Compensation, EventData, EventType, ReceivedFareRequest};
use sqlx::PgPool;
use tests::env::minimal_request;
use tests::TestEnv;

use EventType::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// What one fare left behind in both schemas.
#[derive(Debug, PartialEq)]
struct Rows {
    payment_status: String,
    compensations: Vec<String>,
    /// approved gateway operations, in order
    gateway: Vec<String>,
    ledger_amount: Option<i64>,
    credit_failed: bool,
}

async fn rows(admin: &PgPool, fare_id: &str) -> anyhow::Result<Rows> {
    let (payment_status, compensations): (String, Vec<String>) =
        sqlx::query_as("SELECT status, compensations FROM payment.fares WHERE fare_id = $1")
            .bind(fare_id)
            .fetch_one(admin)
            .await?;
    let gateway = sqlx::query_scalar(
        "SELECT operation FROM payment.gateway_operations WHERE fare_id = $1 AND approved ORDER BY created_at",
    )
    .bind(fare_id)
    .fetch_all(admin)
    .await?;
    let ledger_amount =
        sqlx::query_scalar("SELECT amount_minor FROM accounting.ledger_entries WHERE fare_id = $1")
            .bind(fare_id)
            .fetch_optional(admin)
            .await?;
    let credit_failed = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounting.credit_failures WHERE fare_id = $1)",
    )
    .bind(fare_id)
    .fetch_one(admin)
    .await?;
    Ok(Rows {
        payment_status,
        compensations,
        gateway,
        ledger_amount,
        credit_failed,
    })
}

/// Runs one fare for `customer_id` and checks its events are exactly `expected`.
async fn run_fare(
    customer_id: &str,
    expected: &[EventType],
) -> anyhow::Result<(TestEnv, Vec<events_schema::Event>)> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let fare_id = "wr_563";
    env.request_fare(fare_id, customer_id, 2000).await?;
    env.recorder.outcome_of(fare_id, TIMEOUT).await?;
    // Everything before the outcome is published before it; wait for the count to settle.
    let events = env
        .recorder
        .wait_for("the whole saga", TIMEOUT, |_| {
            let types = env.recorder.event_types_for(fare_id);
            (types.len() >= expected.len()).then_some(())
        })
        .await
        .map(|_| tests::recorder::causal_order(env.recorder.events_for(fare_id)))?;
    let types: Vec<EventType> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, expected, "events of {customer_id}");

    // Envelopes: one saga, each event caused by the one before, keyed and versioned.
    let request =
        ReceivedFareRequest::parse(minimal_request(fare_id, customer_id, 2000).as_bytes())?;
    let mut cause = request.event_id;
    for event in &events {
        assert_eq!(event.fare_id.as_str(), fare_id);
        assert_eq!(event.schema_version, 1);
        assert_eq!(
            event.correlation_id,
            request.event_id,
            "{:?} correlation",
            event.event_type()
        );
        if event.event_type() != FareCollectionFailed || events.len() > 2 {
            assert_eq!(
                event.causation_id,
                cause,
                "{:?} causation",
                event.event_type()
            );
        }
        cause = event.event_id;
    }
    for record in env.recorder.snapshot() {
        if let Some(event) = record.event() {
            assert_eq!(
                record.key.as_deref(),
                Some(event.fare_id.as_str()),
                "Kafka key is the fare_id"
            );
            assert_eq!(
                record.topic,
                event.event_type().topic(),
                "topic of {:?}",
                event.event_type()
            );
        }
    }
    Ok((env, events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_customer_id_collects_the_fare() -> anyhow::Result<()> {
    let (env, events) = run_fare(
        "3",
        &[PreAuthorised, Charged, AccountUpdated, FareCollected],
    )
    .await?;
    let EventData::AccountUpdated(updated) = &events[2].data else {
        panic!("not AccountUpdated")
    };
    assert_eq!((updated.amount_minor, updated.balance_minor), (2000, 2000));
    let admin = env.database.admin_pool().await?;
    assert_eq!(
        rows(&admin, "wr_563").await?,
        Rows {
            payment_status: "collected".into(),
            compensations: vec![],
            gateway: vec!["pre_authorise".into(), "capture".into()],
            ledger_amount: Some(2000),
            credit_failed: false,
        }
    );
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_auth_declines_the_pre_authorisation() -> anyhow::Result<()> {
    let (env, events) = run_fare("3_fail_auth", &[PreAuthFailed, FareCollectionFailed]).await?;
    let EventData::FareCollectionFailed(failed) = &events[1].data else {
        panic!("not failed")
    };
    assert!(failed.compensations.is_empty());
    assert!(!failed.needs_attention);
    assert!(failed.reason.contains("declined"), "{}", failed.reason);
    let admin = env.database.admin_pool().await?;
    assert_eq!(
        rows(&admin, "wr_563").await?,
        Rows {
            payment_status: "failed".into(),
            compensations: vec![],
            gateway: vec![],
            ledger_amount: None,
            credit_failed: false,
        }
    );
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_charge_releases_the_pre_authorisation() -> anyhow::Result<()> {
    let (env, events) = run_fare(
        "3_fail_charge",
        &[
            PreAuthorised,
            ChargeFailed,
            PreAuthReleased,
            FareCollectionFailed,
        ],
    )
    .await?;
    let EventData::FareCollectionFailed(failed) = &events[3].data else {
        panic!("not failed")
    };
    assert_eq!(failed.compensations, vec![Compensation::PreAuthReleased]);
    let admin = env.database.admin_pool().await?;
    assert_eq!(
        rows(&admin, "wr_563").await?,
        Rows {
            payment_status: "failed".into(),
            compensations: vec!["pre_auth_released".into()],
            gateway: vec!["pre_authorise".into(), "release".into()],
            ledger_amount: None,
            credit_failed: false,
        }
    );
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_credit_refunds_the_charge() -> anyhow::Result<()> {
    let (env, events) = run_fare(
        "3_fail_credit",
        &[
            PreAuthorised,
            Charged,
            AccountUpdateFailed,
            PaymentRefunded,
            FareCollectionFailed,
        ],
    )
    .await?;
    let EventData::FareCollectionFailed(failed) = &events[4].data else {
        panic!("not failed")
    };
    assert_eq!(failed.compensations, vec![Compensation::PaymentRefunded]);
    assert!(!failed.needs_attention);
    let admin = env.database.admin_pool().await?;
    assert_eq!(
        rows(&admin, "wr_563").await?,
        Rows {
            payment_status: "failed".into(),
            compensations: vec!["payment_refunded".into()],
            gateway: vec!["pre_authorise".into(), "capture".into(), "refund".into()],
            ledger_amount: None,
            credit_failed: true,
        }
    );
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_credit_fail_refund_needs_attention() -> anyhow::Result<()> {
    let (env, events) = run_fare(
        "3_fail_credit_fail_refund",
        &[
            PreAuthorised,
            Charged,
            AccountUpdateFailed,
            RefundFailed,
            FareCollectionFailed,
        ],
    )
    .await?;
    let EventData::RefundFailed(refund) = &events[3].data else {
        panic!("not RefundFailed")
    };
    assert!(refund.attempts >= 2, "retried: {refund:?}");
    let refusing = events[3].occurred_at - events[2].occurred_at;
    assert!(
        refusing >= tests::env::TEST_COMPENSATION_BUDGET,
        "given up only once its budget of time was spent, after {refusing}"
    );
    let EventData::FareCollectionFailed(failed) = &events[4].data else {
        panic!("not failed")
    };
    assert!(failed.needs_attention);
    assert!(failed.compensations.is_empty());
    let admin = env.database.admin_pool().await?;
    assert_eq!(
        rows(&admin, "wr_563").await?,
        Rows {
            payment_status: "needs_attention".into(),
            compensations: vec![],
            gateway: vec!["pre_authorise".into(), "capture".into()],
            ledger_amount: None,
            credit_failed: true,
        }
    );
    // Operators find it through the read API.
    let url = env
        .service_url("payment-service", "/fares?status=needs_attention")
        .expect("running");
    let body: serde_json::Value = reqwest::get(url).await?.json().await?;
    assert_eq!(body["fare_ids"], serde_json::json!(["wr_563"]));
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_being_retried_holds_up_no_other_fare() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    // Each refused refund waits at least a second before the next attempt: the refund cannot
    // end in less than two, ample time for another fare's four steps even on a loaded machine.
    config.retry.compensation_backoff = transactional_messaging::retry::Backoff::new(
        Duration::from_secs(2),
        Duration::from_secs(2),
    );
    env.start_payment_with(config).await?;
    env.start_accounting().await?;
    env.request_fare("wr_slow_refund", "9_fail_credit_fail_refund", 2000)
        .await?;
    env.recorder
        .wait_for("the refund to be refused once", TIMEOUT, |_| {
            env.recorder
                .event_types_for("wr_slow_refund")
                .contains(&AccountUpdateFailed)
                .then_some(())
        })
        .await?;
    env.request_fare("wr_meanwhile", "3", 500).await?;
    let meanwhile = env.recorder.outcome_of("wr_meanwhile", TIMEOUT).await?;
    assert_eq!(meanwhile.event_type(), FareCollected);
    assert!(
        !env.recorder
            .event_types_for("wr_slow_refund")
            .contains(&FareCollectionFailed),
        "the other fare completed while the refund was still being retried"
    );
    let outcome = env.recorder.outcome_of("wr_slow_refund", TIMEOUT).await?;
    let EventData::FareCollectionFailed(failed) = &outcome.data else {
        panic!("not failed")
    };
    assert!(failed.needs_attention);
    let events = tests::recorder::causal_order(env.recorder.events_for("wr_slow_refund"));
    let EventData::RefundFailed(refund) = &events[3].data else {
        panic!("not RefundFailed: {events:?}")
    };
    assert_eq!(
        refund.attempts, 2,
        "one attempt, then one after the 2 s backoff"
    );
    env.teardown().await
}
