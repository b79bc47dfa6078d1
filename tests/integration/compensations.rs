//! The compensations (SPEC §4): a release or refund the gateway refuses is retried off the
//! consumer's path, with backoff, within a budget of time — it holds up no other fare, it is
//! attempted once per due time whatever the number of instances, and when its budget is spent
//! the fare ends `needs_attention` (`ReleaseFailed` / `RefundFailed`).

use std::time::Duration;

use events_schema::{EventData, EventType};
use tests::TestEnv;
use transactional_messaging::retry::Backoff;

use EventType::*;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_refused_past_its_budget_needs_attention_and_holds_up_no_other_fare(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    config.retry.compensation_budget = Duration::from_secs(3);
    config.retry.compensation_backoff =
        Backoff::new(Duration::from_millis(200), Duration::from_millis(400));
    env.start_payment_with(config).await?;
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    env.request_fare("wr_stuck_hold", "9_fail_charge_fail_release", 2000)
        .await?;
    env.recorder
        .wait_for("the capture to fail", TIMEOUT, |_| {
            env.recorder
                .event_types_for("wr_stuck_hold")
                .contains(&ChargeFailed)
                .then_some(())
        })
        .await?;
    // While the release is refused again and again, other fares go through.
    for i in 0..5 {
        env.request_fare(&format!("wr_meanwhile_{i}"), "3", 500)
            .await?;
    }
    for i in 0..5 {
        let outcome = env
            .recorder
            .outcome_of(&format!("wr_meanwhile_{i}"), TIMEOUT)
            .await?;
        assert_eq!(outcome.event_type(), FareCollected);
    }
    assert!(
        !env.recorder
            .event_types_for("wr_stuck_hold")
            .contains(&FareCollectionFailed),
        "the other fares completed while the release was still being retried"
    );
    let outcome = env.recorder.outcome_of("wr_stuck_hold", TIMEOUT).await?;
    let EventData::FareCollectionFailed(failed) = &outcome.data else {
        panic!("not failed: {outcome:?}")
    };
    assert!(failed.needs_attention, "{failed:?}");
    assert!(
        failed.reason.contains("release failed"),
        "{}",
        failed.reason
    );
    let events = tests::recorder::causal_order(env.recorder.events_for("wr_stuck_hold"));
    let types: Vec<EventType> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            PreAuthorised,
            ChargeFailed,
            ReleaseFailed,
            FareCollectionFailed
        ]
    );
    let EventData::ReleaseFailed(release) = &events[2].data else {
        unreachable!()
    };
    assert!(release.attempts >= 3, "retried with backoff: {release:?}");
    let refusing = events[2].occurred_at - events[1].occurred_at;
    assert!(
        refusing >= Duration::from_secs(3),
        "given up after its budget, not before: {refusing}"
    );
    // Operators find it through the read API.
    let url = env
        .service_url("payment-service", "/fares?status=needs_attention")
        .expect("running");
    let body: serde_json::Value = reqwest::get(url).await?.json().await?;
    assert_eq!(body["fare_ids"], serde_json::json!(["wr_stuck_hold"]));
    env.teardown().await
}

/// Two instances look for due compensations; each due attempt is made by one of them, and no
/// two attempts of a fare ever run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_make_each_compensation_attempt_once() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    config.retry.compensation_budget = Duration::from_secs(4);
    config.retry.compensation_backoff =
        Backoff::new(Duration::from_millis(400), Duration::from_millis(400));
    // Each attempt takes 0.4 s: long enough for the other instance to look for due attempts
    // (every 0.25 s) while it is under way.
    config.faults.latency = Duration::from_millis(400);
    for _ in 0..2 {
        env.start_payment_with(config.clone()).await?;
    }
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    env.request_fare("wr_refused", "9_fail_credit_fail_refund", 2000)
        .await?;
    let outcome = env.recorder.outcome_of("wr_refused", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), FareCollectionFailed);
    let events = tests::recorder::causal_order(env.recorder.events_for("wr_refused"));
    let refund = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::RefundFailed(refund) => Some(refund.clone()),
            _ => None,
        })
        .expect("RefundFailed");
    // Every attempt is recorded with when it was claimed and when it ended: one at a time.
    let admin = env.database.admin_pool().await?;
    let attempts: Vec<(i32, time::OffsetDateTime, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT attempt, started_at, finished_at FROM payment.compensation_attempts \
         WHERE fare_id = 'wr_refused' ORDER BY attempt",
    )
    .fetch_all(&admin)
    .await?;
    admin.close().await;
    assert_eq!(attempts.len(), refund.attempts as usize, "{attempts:?}");
    assert!(attempts.len() >= 2, "{attempts:?}");
    for pair in attempts.windows(2) {
        let ((first, _, first_end), (next, next_start, _)) = (pair[0], pair[1]);
        assert!(
            next_start >= first_end,
            "attempt {next} began at {next_start}, before attempt {first} ended at {first_end}"
        );
    }
    env.teardown().await
}
