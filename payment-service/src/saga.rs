//! What every step of the payment side of the saga shares: the gateway, the retry policy, and
//! the preamble of reacting to an event (its fare, at the expected step).

use std::time::Duration;

use events_schema::Event;
use transactional_messaging::retry::Backoff;
use transactional_messaging::trace::{self, Attribute};
use transactional_messaging::{Disposition, HandleError, Progress};

use crate::batch::Batch;
use crate::fare::{Fare, FareStatus};
use crate::gateway::{GatewayCall, GatewayError, GatewayRequest, Operation, PaymentGateway};

/// How hard the service tries: against transient gateway faults, and at compensations.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per gateway call against transient faults, before the whole message is retried
    /// later (`GATEWAY_MAX_ATTEMPTS`, default 8).
    pub gateway_attempts: u32,
    /// Backoff between those attempts (`GATEWAY_RETRY_BASE_MS`, default 20 ms, capped at 2 s).
    pub gateway_backoff: Backoff,
    /// How long a compensation (release, refund) the gateway refuses is retried before it is
    /// given up (`ReleaseFailed`, `RefundFailed`) and the fare needs attention
    /// (`COMPENSATION_BUDGET`, default 6h).
    pub compensation_budget: Duration,
    /// Backoff between compensation attempts (`COMPENSATION_RETRY_BASE_MS`, default 1 s, and
    /// `COMPENSATION_RETRY_MAX_MS`, default 5 min).
    pub compensation_backoff: Backoff,
    /// How long a claimed compensation attempt keeps every other attempt (another instance's,
    /// or this one's after a restart) off the fare: longer than any attempt
    /// (`COMPENSATION_LEASE`, default 2 min). A process that dies mid-attempt leaves the
    /// attempt to be made again when the lease has run out.
    pub compensation_lease: Duration,
    /// How long a pre-authorisation or a capture may go unanswered before the step gives up
    /// waiting (`GATEWAY_ANSWER_TIMEOUT`, default 2 min; above `GATEWAY_SLOW_MS`): see
    /// [`Reply::Unanswered`].
    pub answer_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            gateway_attempts: 8,
            gateway_backoff: Backoff::new(Duration::from_millis(20), Duration::from_secs(2)),
            compensation_budget: Duration::from_secs(6 * 60 * 60),
            compensation_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            compensation_lease: Duration::from_secs(120),
            answer_timeout: Duration::from_secs(120),
        }
    }
}

/// The payment side of the saga.
#[derive(Debug)]
pub struct Saga<G> {
    pub gateway: G,
    pub policy: RetryPolicy,
}

/// A gateway answer once transient faults are retried away: `Ok(reference)` approved,
/// `Err(reason)` declined.
pub type Answer = Result<String, String>;

/// What a step learns of its gateway call (a pre-authorisation or a capture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Answered(Answer),
    /// No answer within [`RetryPolicy::answer_timeout`]: the gateway hangs, or is unreachable
    /// all that time. The step stops waiting — a stuck saga must end — and, since the call
    /// may still have been carried out, voids what it may have done: an unanswered
    /// pre-authorisation is released, an unanswered capture fails the charge and releases the
    /// hold (refused by the gateway if the capture did happen: the fare then needs attention).
    Unanswered(Duration),
}

impl<G: PaymentGateway> Saga<G> {
    /// Calls the gateway, repeating the call (same idempotency key) on transient faults.
    /// `Ok(Ok(reference))` approved, `Ok(Err(reason))` declined; `Err` when transient faults
    /// outlast the budget — the message is then retried later and the outcome does not change.
    ///
    /// Traced as a `gateway <operation>` span, child of the work in progress (the message's
    /// `process` span, or a compensation's): never with the payment token.
    pub async fn call_gateway(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
    ) -> Result<Answer, HandleError> {
        let span = trace::Span::child(operation.span_name(), trace::Kind::Client, || {
            vec![
                Attribute::new(trace::attribute::FARE_ID, call.fare_id.as_str().to_owned()),
                Attribute::new("gateway.operation", operation.as_str()),
                Attribute::new("gateway.idempotency_key", call.idempotency_key(operation)),
            ]
        });
        let answer = self.call_gateway_untraced(operation, call, &span).await;
        span.set(|| {
            let result = match &answer {
                Ok(Ok(_)) => "approved",
                Ok(Err(_)) => "declined",
                Err(_) => "unreachable",
            };
            Attribute::new("gateway.result", result)
        });
        if let Err(error) = &answer {
            span.fail(|| error.to_string());
        }
        span.end();
        answer
    }

    async fn call_gateway_untraced(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
        span: &trace::Span,
    ) -> Result<Answer, HandleError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match operation {
                Operation::PreAuthorise => self.gateway.pre_authorise(call).await,
                Operation::Capture => self.gateway.capture(call).await,
                Operation::Release => self.gateway.release(call).await,
                Operation::Refund => self.gateway.refund(call).await,
            };
            match result {
                Ok(reference) => return Ok(Ok(reference)),
                Err(GatewayError::Declined(reason)) => return Ok(Err(reason)),
                Err(GatewayError::Transient(reason)) if attempt < self.policy.gateway_attempts => {
                    span.event("transient fault", || {
                        vec![Attribute::new("gateway.attempt", i64::from(attempt))]
                    });
                    tracing::debug!(fare_id = %call.fare_id, operation = operation.as_str(), attempt, reason, "transient gateway fault, retrying");
                    self.policy.gateway_backoff.sleep(attempt).await;
                }
                Err(GatewayError::Transient(reason)) => {
                    return Err(HandleError::Retryable(anyhow::anyhow!(
                        "gateway {} for fare {} still failing after {attempt} attempts: {reason}",
                        operation.as_str(),
                        call.fare_id
                    )))
                }
            }
        }
    }
}

impl<G: PaymentGateway> Saga<G> {
    /// The gateway's answer to `request` if it comes within the answer timeout.
    pub async fn reply(&self, request: &GatewayRequest) -> Reply {
        let timeout = self.policy.answer_timeout;
        match tokio::time::timeout(timeout, self.answer(request)).await {
            Ok(answer) => Reply::Answered(answer),
            Err(_) => {
                tracing::warn!(fare_id = %request.fare_id, operation = request.operation.as_str(),
                    timeout = %humantime::format_duration(timeout),
                    "the gateway did not answer in time; the step gives up waiting");
                Reply::Unanswered(timeout)
            }
        }
    }

    /// The gateway's answer to `request`: the call is repeated (same idempotency key) for as
    /// long as it takes — it runs outside any transaction, and only its fare waits.
    async fn answer(&self, request: &GatewayRequest) -> Answer {
        let backoff = self.policy.gateway_backoff;
        let mut rounds = 0;
        loop {
            match self.call_gateway(request.operation, &request.call()).await {
                Ok(answer) => return answer,
                Err(error) => {
                    rounds += 1;
                    tracing::warn!(fare_id = %request.fare_id, operation = request.operation.as_str(), %error, "gateway unreachable; trying again");
                    backoff.sleep(rounds).await;
                }
            }
        }
    }
}

/// What a step answers for a message whose fare is not where the step expects it.
pub type Skip = Progress<GatewayRequest>;

/// The preamble of every reaction to an event: its fare, taken out of the batch, when the saga
/// is at `expected`. Otherwise what became of the event: an unknown fare is dead-lettered; a fare past
/// that step (a duplicate under another id) makes the event a no-op.
pub fn fare_at(
    batch: &mut Batch<'_>,
    event: &Event,
    expected: FareStatus,
) -> Result<Fare, Disposition> {
    let Some(fare) = batch.take(event.fare_id.as_str()) else {
        return Err(Disposition::DeadLettered(format!(
            "unknown fare {}",
            event.fare_id
        )));
    };
    if fare.status != expected {
        tracing::info!(
            fare_id = %event.fare_id,
            event_id = %event.event_id,
            event_type = event.event_type().as_str(),
            status = fare.status.as_str(),
            "event does not apply at this step; ignored"
        );
        return Err(Disposition::Ignored);
    }
    Ok(fare)
}
