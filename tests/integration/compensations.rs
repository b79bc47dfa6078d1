//! The compensations (SPEC §4): a release or refund the gateway refuses is retried off the
//! consumer's path, with backoff, within a budget of time — it holds up no other fare, it is
//! attempted once per due time whatever the number of instances, and when its budget is spent
//! the fare ends `needs_attention` (`ReleaseFailed` / `RefundFailed`). Only a refusal gives a
//! compensation up: one the gateway did not answer is asked again, past the budget too.

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

/// A refund the gateway does not answer (every call a transient fault) is not given up when its
/// budget is spent: the gateway may have made it. It is asked again, past the budget, and the
/// fare ends refunded once the gateway answers — not `needs_attention` with its money returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_gateway_does_not_answer_is_asked_again_past_its_budget() -> anyhow::Result<()>
{
    let mut env = TestEnv::new().await?;
    let fare_id = "wr_unanswered_refund";
    // Charged first, with a gateway that answers, and accounting-service not running yet.
    env.start_payment_with(env.payment_config()).await?;
    env.wait_until_healthy().await?;
    env.request_fare(fare_id, "7_fail_credit", 2500).await?;
    env.recorder
        .wait_for("the charge", TIMEOUT, |_| {
            env.recorder
                .event_types_for(fare_id)
                .contains(&Charged)
                .then_some(())
        })
        .await?;
    env.stop_services().await?;

    // Now every gateway call fails before the gateway does anything; the credit is refused and
    // the refund starts, with the tests' budget of one second.
    let mut silent = env.payment_config();
    silent.faults.rate = 1.0;
    silent.stuck_after = Duration::from_secs(1);
    env.start_payment_with(silent).await?;
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    let admin = env.database.admin_pool().await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, unanswered, given_up, past_budget): (String, i64, i64, bool) = sqlx::query_as(
            "SELECT f.status, \
                   (SELECT count(*) FROM payment.compensation_attempts a \
                    WHERE a.fare_id = f.fare_id AND a.outcome = 'unanswered'), \
                   (SELECT count(*) FROM payment.compensation_attempts a \
                    WHERE a.fare_id = f.fare_id AND a.outcome = 'given_up'), \
                   COALESCE(f.compensation_deadline < now() - interval '2 seconds', false) \
                 FROM payment.fares f WHERE f.fare_id = $1",
        )
        .bind(fare_id)
        .fetch_one(&admin)
        .await?;
        assert_eq!(given_up, 0, "given up on silence");
        assert!(
            ["charged", "refunding"].contains(&status.as_str()),
            "{fare_id} is {status} while the gateway does not answer"
        );
        // Attempts made after the budget was spent, and the fare still waits for the answer.
        if past_budget && unanswered >= 3 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no unanswered refund attempts past the budget within {TIMEOUT:?} ({status}, {unanswered})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let types = env.recorder.event_types_for(fare_id);
    assert!(
        !types.contains(&RefundFailed) && !types.contains(&FareCollectionFailed),
        "{types:?}"
    );
    // Its attempts go on, but past its budget they are not progress: operators see it stuck.
    let url = env
        .service_url("payment-service", "/fares?stuck=true")
        .expect("running");
    let page: serde_json::Value = reqwest::get(url).await?.json().await?;
    let listed = page["fares"]
        .as_array()
        .and_then(|fares| fares.iter().find(|f| f["fare_id"] == fare_id))
        .unwrap_or_else(|| panic!("{fare_id} is not listed stuck: {page}"));
    assert_eq!(listed["status"], "refunding", "{listed}");
    assert!(
        listed["waiting_for"]
            .as_str()
            .is_some_and(|w| w.contains("does not answer")),
        "{listed}"
    );
    env.stop_services().await?;

    // The gateway answers again: the next attempt refunds, and the fare ends refunded.
    env.start_services().await?;
    let outcome = env.recorder.outcome_of(fare_id, TIMEOUT).await?;
    let EventData::FareCollectionFailed(failed) = &outcome.data else {
        panic!("not failed: {outcome:?}")
    };
    assert!(!failed.needs_attention, "{failed:?}");
    assert_eq!(
        env.recorder.event_types_for(fare_id),
        [
            PreAuthorised,
            Charged,
            AccountUpdateFailed,
            PaymentRefunded,
            FareCollectionFailed
        ]
    );
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment.gateway_operations \
         WHERE fare_id = $1 AND operation = 'refund' AND approved",
    )
    .bind(fare_id)
    .fetch_one(&admin)
    .await?;
    assert_eq!(refunds, 1);
    admin.close().await;
    let fares =
        std::collections::BTreeMap::from([(fare_id.to_owned(), "7_fail_credit".to_owned())]);
    env.assert_invariants(&fares).await?;
    env.teardown().await
}
