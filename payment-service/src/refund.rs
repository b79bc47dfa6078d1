//! Refunding a charge whose ledger update failed, with forward recovery (SPEC §4 row 6).
//!
//! The first attempt is made by the handler of `AccountUpdateFailed`. A refund the gateway
//! refuses does not hold up the consumer: the fare stays `refunding` with its attempt count and
//! the time of its next attempt, and the refund retrier ([`run_retrier`]) tries again with
//! exponential backoff. A refund that succeeds emits `PaymentRefunded`; one still refused after
//! `REFUND_MAX_ATTEMPTS` emits `RefundFailed` and the fare ends `needs_attention`. Each attempt
//! commits in one transaction with its outcome; the gateway call carries the fare's refund
//! idempotency key, so an attempt repeated after a crash never refunds twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use events_schema::{
    Compensation, Event, EventData, EventId, FareId, PaymentRefunded, RefundFailed,
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use transactional_messaging::{outbox, HandleError};

use crate::fare::{self, Fare, FareStatus};
use crate::gateway::{Operation, PaymentGateway};
use crate::saga::Saga;

/// How often the retrier looks for refunds that are due.
const POLL: Duration = Duration::from_millis(100);
/// How many due refunds one retrier pass takes.
const BATCH: i64 = 20;
/// How long an attempt that could not be made (not a refused refund) waits.
const POSTPONE_SECS: i32 = 5;

/// One refund attempt for `fare` (status `refunding`), saved with its outcome in the caller's
/// transaction: `PaymentRefunded`, `RefundFailed` once the budget is spent, or the next attempt
/// scheduled.
pub async fn attempt<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    fare: &mut Fare,
) -> Result<(), HandleError> {
    let charge = fare.charge()?;
    let charge_id = fare.charge_id.clone().unwrap_or_default();
    let call = charge.gateway_call(&fare.fare_id, &charge_id);
    let answer = saga.call_gateway(Operation::Refund, &call).await?;
    fare.compensation_attempts += 1;
    let attempts = u32::try_from(fare.compensation_attempts).unwrap_or(u32::MAX);
    let data = match answer {
        Ok(refund_id) => {
            fare.status = FareStatus::Refunded;
            fare.refund_id = Some(refund_id.clone());
            fare.next_compensation_at = None;
            fare.add_compensation(Compensation::PaymentRefunded);
            Some(EventData::PaymentRefunded(PaymentRefunded {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                charge_id,
                refund_id,
                attempts,
            }))
        }
        Err(reason) if attempts >= saga.policy.refund_attempts => {
            tracing::error!(fare_id = %fare.fare_id, attempts, reason, "refund failed after its retry budget; fare needs attention");
            fare.status = FareStatus::RefundFailed;
            fare.next_compensation_at = None;
            Some(EventData::RefundFailed(RefundFailed {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                charge_id,
                attempts,
                reason,
            }))
        }
        Err(reason) => {
            let delay = saga.policy.compensation_backoff.delay(attempts);
            tracing::warn!(fare_id = %fare.fare_id, attempts, reason, retry_in = ?delay, "refund refused, will retry");
            fare.next_compensation_at = Some(OffsetDateTime::now_utc() + delay);
            None
        }
    };
    fare::save(&mut *conn, fare).await?;
    if let Some(data) = data {
        let cause = fare
            .compensation_cause
            .map(EventId::from_uuid)
            .ok_or_else(|| {
                HandleError::Permanent(format!("fare {} has no compensation cause", fare.fare_id))
            })?;
        let event = Event::follow_up(
            fare.fare_id.clone(),
            cause,
            EventId::from_uuid(fare.correlation_id),
            data,
        );
        outbox::enqueue_events(conn, &[event]).await?;
    }
    Ok(())
}

/// Retries due refunds until `shutdown` completes.
pub async fn run_retrier<G: PaymentGateway>(
    pool: PgPool,
    saga: Arc<Saga<G>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let retried = match retry_due(&pool, &saga).await {
            Ok(retried) => retried,
            Err(error) => {
                tracing::warn!(error = %error, "refund retrier failed; trying again");
                0
            }
        };
        if retried as i64 == BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One pass: an attempt for each due refund, each in its own transaction, so that one fare
/// whose attempt fails (not its refund: e.g. the gateway unreachable) holds up no other; its
/// next attempt is postponed. Returns how many were tried.
async fn retry_due<G: PaymentGateway>(pool: &PgPool, saga: &Saga<G>) -> sqlx::Result<usize> {
    let due = fare::due_refunds(&mut *pool.acquire().await?, BATCH).await?;
    for fare_id in &due {
        if let Err(error) = retry_one(pool, saga, fare_id).await {
            tracing::warn!(%fare_id, %error, "refund attempt could not be made; postponed");
            fare::postpone_refund(&mut *pool.acquire().await?, fare_id, POSTPONE_SECS).await?;
        }
    }
    Ok(due.len())
}

async fn retry_one<G: PaymentGateway>(
    pool: &PgPool,
    saga: &Saga<G>,
    fare_id: &FareId,
) -> Result<(), HandleError> {
    let mut tx = pool.begin().await?;
    match fare::find_for_update(&mut tx, fare_id).await? {
        // Still waiting: another retrier may have taken it meanwhile.
        Some(mut fare) if fare.status == FareStatus::Refunding => {
            attempt(saga, &mut tx, &mut fare).await?;
            tx.commit().await?;
        }
        _ => {}
    }
    Ok(())
}
