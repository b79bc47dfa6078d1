//! The compensator: makes the attempts of every pending compensation (release, refund), off
//! the consumer's path (SPEC §4).
//!
//! Each pass claims the fares whose attempt is due (a lease keeps any other instance off them),
//! calls the gateway for each — outside any transaction, with the fare's idempotency key, so a
//! repeated call never moves money twice — and records each outcome in one transaction with
//! the event it causes:
//! - approved: `PreAuthReleased` / `PaymentRefunded`;
//! - refused with budget left: the next attempt is scheduled with capped exponential backoff;
//! - refused with the budget spent (`compensation_deadline`, database clock): `ReleaseFailed` /
//!   `RefundFailed`, and the fare will end `needs_attention`;
//! - unanswered (transient faults outlasted the call's retries, or the gateway's answer was
//!   lost): the next attempt is scheduled as for a refusal, budget spent or not. The gateway
//!   may have made the release or refund: only its answer to a repeated call (same
//!   idempotency key) tells, so giving up on silence could flag a fare whose money was in fact
//!   returned (SPEC §5: transient faults never change the outcome).
//!
//! Each attempt is traced as a `compensate <operation>` span in the fare's trace: its parent is
//! the span that processed the event that started the compensation (kept in the inbox), so a
//! refund made minutes later, by another instance or after a restart, is still in the trace.
//!
//! A pass starts when a consumed message committed (a compensation may have been started) and
//! at least every [`POLL`] (attempts come due).

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_schema::{
    Compensation, Event, EventData, EventId, PaymentRefunded, PreAuthReleased, RefundFailed,
    ReleaseFailed,
};
use futures::future::join_all;
use sqlx::PgPool;
use transactional_messaging::crash_point::{self, CrashPoint};
use transactional_messaging::inbox;
use transactional_messaging::outbox::{self, OutboxRow};
use transactional_messaging::retry::Backoff;
use transactional_messaging::trace::{self, Attribute};
use transactional_messaging::{CommitWatch, HandleError, Handoff, Stopping};

use crate::compensation::{pending_in, CompensationSteps};
use crate::fare::{self, Fare};
use crate::gateway::{self, Operation, PaymentGateway};
use crate::saga::{Answer, Saga};

/// How often the compensator looks for attempts that came due.
const POLL: Duration = Duration::from_millis(250);
/// A commit wakes the compensator (it may have started a compensation), but not more often than
/// this: under load batches commit hundreds of times a second.
const WAKE_AT_MOST_EVERY: Duration = Duration::from_millis(50);
/// How many attempts one pass makes at most (concurrently; each records its outcome on a
/// connection of the service's pool).
const BATCH: i64 = 8;

/// Attempts due compensations until `stopping`.
pub async fn run<G: PaymentGateway>(
    pool: PgPool,
    saga: Arc<Saga<G>>,
    relay: Handoff,
    mut committed: CommitWatch,
    stopping: Stopping,
) -> anyhow::Result<()> {
    let stopping = stopping.wait();
    tokio::pin!(stopping);
    loop {
        let pass = tokio::time::Instant::now();
        let attempted = match attempt_due(&pool, &saga, &relay).await {
            Ok(attempted) => attempted,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "compensator pass failed; trying again"
                );
                0
            }
        };
        if attempted as i64 == BATCH {
            continue;
        }
        tokio::select! {
            () = &mut stopping => return Ok(()),
            () = committed.committed() => {
                tokio::time::sleep_until(pass + WAKE_AT_MOST_EVERY).await;
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One pass: claims the due attempts and makes them concurrently. Returns how many.
async fn attempt_due<G: PaymentGateway>(
    pool: &PgPool,
    saga: &Saga<G>,
    relay: &Handoff,
) -> anyhow::Result<usize> {
    let due = fare::claim_due_compensations(
        &mut *pool.acquire().await?,
        BATCH,
        saga.policy.compensation_lease,
    )
    .await?;
    let count = due.len();
    join_all(due.into_iter().map(|fare| async move {
        let fare_id = fare.fare_id.clone();
        match attempt(pool, saga, fare).await {
            Ok(rows) => relay.send(rows),
            // The lease makes the attempt again later; the gateway call is idempotent.
            Err(error) => tracing::warn!(%fare_id, %error, "compensation attempt could not be recorded; it is made again when its lease ends"),
        }
    }))
    .await;
    Ok(count)
}

/// One attempt of `fare`'s pending compensation, and its outcome.
async fn attempt<G: PaymentGateway>(
    pool: &PgPool,
    saga: &Saga<G>,
    claimed: Fare,
) -> Result<Vec<OutboxRow>, HandleError> {
    let Some(compensation) = pending_in(claimed.status) else {
        return Ok(Vec::new());
    };
    let charge = claimed.charge()?;
    let reference = reference_of(&claimed, compensation);
    let request = charge.clone().request(
        compensation.operation(),
        &claimed.fare_id,
        None,
        Some(reference.clone()),
    );
    let span = attempt_span(pool, &claimed, compensation).await;
    let reply = match span
        .in_scope(saga.call_gateway(compensation.operation(), &request.call()))
        .await
    {
        Ok(answer) => AttemptReply::Answered(answer),
        Err(unanswered) => AttemptReply::Unanswered(unanswered.to_string()),
    };
    crash_point::reached(CrashPoint::CompensationAnswered);

    // The gateway has answered: while the database is away, recording the answer is retried
    // (for up to half the lease) instead of being left to the lease, which would keep the fare
    // waiting for minutes once the database is back, and ask the gateway again.
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let recorded = record(
            pool,
            saga,
            &claimed,
            compensation,
            (charge.clone(), reference.clone()),
            reply.clone(),
            &span,
        )
        .await;
        match recorded {
            Err(HandleError::Retryable(error))
                if started.elapsed() < saga.policy.compensation_lease / 2 =>
            {
                tracing::warn!(fare_id = %claimed.fare_id, error = format!("{error:#}"),
                    "cannot record the compensation's answer yet; retrying");
                backoff.sleep(tries).await;
            }
            recorded => {
                if let Err(error) = &recorded {
                    span.fail(|| error.to_string());
                }
                span.end();
                return recorded;
            }
        }
    }
}

/// The span of an attempt of `claimed`'s `compensation`, in the fare's trace: child of the span
/// that processed the event that started the compensation. None when tracing is off or that
/// event was processed without a trace.
async fn attempt_span(pool: &PgPool, claimed: &Fare, compensation: Compensation) -> trace::Span {
    let Some(cause) = claimed.compensation_cause.filter(|_| trace::enabled()) else {
        return trace::Span::none();
    };
    let parent = match pool.acquire().await {
        Ok(mut conn) => inbox::trace_context_of(&mut conn, cause).await,
        Err(error) => Err(error),
    };
    match parent {
        Ok(parent) if !parent.is_empty() => {
            let name = match compensation {
                Compensation::PreAuthReleased => "compensate release",
                Compensation::PaymentRefunded => "compensate refund",
            };
            trace::Span::follow(&parent, name, trace::Kind::Internal, || {
                vec![
                    Attribute::new(
                        trace::attribute::FARE_ID,
                        claimed.fare_id.as_str().to_owned(),
                    ),
                    Attribute::new(
                        "compensation.attempt",
                        i64::from(claimed.compensation_attempts) + 1,
                    ),
                ]
            })
        }
        Ok(_) => trace::Span::none(),
        Err(error) => {
            tracing::debug!(fare_id = %claimed.fare_id, %error, "cannot read the compensation's trace context");
            trace::Span::none()
        }
    }
}

/// What an attempt learned of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AttemptReply {
    Answered(Answer),
    /// Transient faults outlasted the call's retries: the gateway may or may not have acted.
    Unanswered(String),
}

impl AttemptReply {
    /// Whether this reply ends the compensation, given up, once its budget is spent: only a
    /// refusal does. After silence the gateway may have acted; the next attempt asks it.
    fn gives_up_when_overdue(&self) -> bool {
        matches!(self, AttemptReply::Answered(Err(_)))
    }

    /// The attempt's outcome as recorded (a refusal past the budget is `given_up` instead).
    fn attempt_outcome(&self) -> &'static str {
        match self {
            AttemptReply::Answered(Ok(_)) => "approved",
            AttemptReply::Answered(Err(_)) => "refused",
            AttemptReply::Unanswered(_) => "unanswered",
        }
    }
}

/// Records the gateway's `reply` to an attempt of `claimed`'s `compensation` (on `charge` and
/// the hold or capture `reference`), with its event when it ends the compensation.
async fn record<G: PaymentGateway>(
    pool: &PgPool,
    saga: &Saga<G>,
    claimed: &Fare,
    compensation: Compensation,
    (charge, reference): (fare::Charge, String),
    reply: AttemptReply,
    span: &trace::Span,
) -> Result<Vec<OutboxRow>, HandleError> {
    let mut tx = pool.begin().await?;
    let Some(mut fare) = fare::find_for_update(&mut tx, &claimed.fare_id).await? else {
        return Ok(Vec::new());
    };
    if fare.status != compensation.pending() {
        // Recorded meanwhile by an attempt whose lease had run out.
        return Ok(Vec::new());
    }
    fare.compensation_attempts += 1;
    // This attempt began when it was claimed, not when a later claim (a lease run out) did.
    fare.compensation_claimed_at = claimed.compensation_claimed_at;
    let attempts = u32::try_from(fare.compensation_attempts).unwrap_or(u32::MAX);
    let operation = compensation.operation().as_str();
    let overdue =
        reply.gives_up_when_overdue() && fare::compensation_overdue(&mut tx, &fare.fare_id).await?;
    let outcome = reply.attempt_outcome();
    let data = match reply {
        AttemptReply::Answered(Ok(gateway_reference)) => {
            fare::record_compensation_attempt(
                &mut tx,
                &fare,
                operation,
                outcome,
                Some(&gateway_reference),
            )
            .await?;
            fare.status = compensation.done();
            fare.add_compensation(compensation);
            if compensation == Compensation::PaymentRefunded {
                fare.refund_id = Some(gateway_reference.clone());
            }
            fare::schedule_compensation(&mut tx, &fare.fare_id, None).await?;
            Some(done_event(
                compensation,
                charge,
                reference,
                gateway_reference,
                attempts,
            ))
        }
        AttemptReply::Answered(Err(reason)) if overdue => {
            tracing::error!(fare_id = %fare.fare_id, attempts, reason, operation = compensation.operation().as_str(),
                "compensation still refused when its budget was spent; the fare needs attention");
            fare.status = compensation.given_up();
            fare::record_compensation_attempt(&mut tx, &fare, operation, "given_up", Some(&reason))
                .await?;
            fare::schedule_compensation(&mut tx, &fare.fare_id, None).await?;
            Some(given_up_event(
                compensation,
                charge,
                reference,
                attempts,
                reason,
            ))
        }
        // Refused with budget left, or unanswered (budget spent or not: it may have been made).
        AttemptReply::Answered(Err(reason)) | AttemptReply::Unanswered(reason) => {
            let delay = saga.policy.compensation_backoff.delay(attempts);
            tracing::warn!(fare_id = %fare.fare_id, attempts, reason, outcome, retry_in = ?delay,
                operation = compensation.operation().as_str(), "compensation not made, will retry");
            fare::record_compensation_attempt(&mut tx, &fare, operation, outcome, Some(&reason))
                .await?;
            fare::schedule_compensation(&mut tx, &fare.fare_id, Some(delay)).await?;
            None
        }
    };
    fare::save(&mut tx, &fare).await?;
    let mut rows = Vec::new();
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
        let mut messages = outbox::events(&[event]);
        for message in &mut messages {
            span.inject(&mut message.headers);
        }
        rows = outbox::enqueue_many(&mut tx, messages).await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// The gateway reference a compensation acts on: the hold for a release, the capture for a
/// refund. A pre-authorisation never answered has no reference: its release voids it by its
/// idempotency key, which names it instead.
fn reference_of(fare: &Fare, compensation: Compensation) -> String {
    match compensation {
        Compensation::PreAuthReleased => fare
            .authorisation_id
            .clone()
            .unwrap_or_else(|| gateway::idempotency_key(&fare.fare_id, Operation::PreAuthorise)),
        Compensation::PaymentRefunded => fare.charge_id.clone().unwrap_or_default(),
    }
}

fn done_event(
    compensation: Compensation,
    charge: fare::Charge,
    reference: String,
    gateway_reference: String,
    attempts: u32,
) -> EventData {
    match compensation {
        Compensation::PreAuthReleased => EventData::PreAuthReleased(PreAuthReleased {
            customer_id: charge.customer_id,
            amount_minor: charge.amount_minor,
            currency: charge.currency,
            authorisation_id: reference,
        }),
        Compensation::PaymentRefunded => EventData::PaymentRefunded(PaymentRefunded {
            customer_id: charge.customer_id,
            amount_minor: charge.amount_minor,
            currency: charge.currency,
            charge_id: reference,
            refund_id: gateway_reference,
            attempts,
        }),
    }
}

fn given_up_event(
    compensation: Compensation,
    charge: fare::Charge,
    reference: String,
    attempts: u32,
    reason: String,
) -> EventData {
    match compensation {
        Compensation::PreAuthReleased => EventData::ReleaseFailed(ReleaseFailed {
            customer_id: charge.customer_id,
            amount_minor: charge.amount_minor,
            currency: charge.currency,
            authorisation_id: reference,
            attempts,
            reason,
        }),
        Compensation::PaymentRefunded => EventData::RefundFailed(RefundFailed {
            customer_id: charge.customer_id,
            amount_minor: charge.amount_minor,
            currency: charge.currency,
            charge_id: reference,
            attempts,
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_gives_a_compensation_up_once_its_budget_is_spent() {
        assert!(AttemptReply::Answered(Err("refund refused".to_owned())).gives_up_when_overdue());
        assert!(!AttemptReply::Answered(Ok("rf_1".to_owned())).gives_up_when_overdue());
        assert!(!AttemptReply::Unanswered("gateway unavailable".to_owned()).gives_up_when_overdue());
    }
}
