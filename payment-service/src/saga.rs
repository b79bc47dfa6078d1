//! What every step of the payment side of the saga shares: the gateway, the retry policy, and
//! the preamble of reacting to an event (inbox, lock the fare, check it is at the expected
//! step).

use std::time::Duration;

use events_schema::{Event, FareId};
use sqlx::PgConnection;
use transactional_messaging::retry::Backoff;
use transactional_messaging::{inbox, Consumed, HandleError};

use crate::fare::{self, Fare, FareStatus};
use crate::gateway::{GatewayCall, GatewayError, Operation, PaymentGateway};

/// How hard the service tries before giving up on a gateway call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per gateway call against transient faults, before the whole message is retried
    /// later (`GATEWAY_MAX_ATTEMPTS`, default 8).
    pub gateway_attempts: u32,
    /// Backoff between those attempts (`GATEWAY_RETRY_BASE_MS`, default 20 ms, capped at 2 s).
    pub gateway_backoff: Backoff,
    /// Refund attempts the gateway may refuse before the fare needs attention
    /// (`REFUND_MAX_ATTEMPTS`, default 5).
    pub refund_attempts: u32,
    /// Backoff between refused refund attempts (`COMPENSATION_RETRY_BASE_MS`, default 100 ms,
    /// capped at 5 s).
    pub compensation_backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            gateway_attempts: 8,
            gateway_backoff: Backoff::new(Duration::from_millis(20), Duration::from_secs(2)),
            refund_attempts: 5,
            compensation_backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// The payment side of the saga.
#[derive(Debug)]
pub struct Saga<G> {
    pub gateway: G,
    pub policy: RetryPolicy,
}

/// A gateway answer once transient faults are retried away.
pub type Answer = Result<String, String>;

impl<G: PaymentGateway> Saga<G> {
    /// Calls the gateway, repeating the call (same idempotency key) on transient faults.
    /// `Ok(Ok(reference))` approved, `Ok(Err(reason))` declined; `Err` when transient faults
    /// outlast the budget — the message is then retried later and the outcome does not change.
    pub async fn call_gateway(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
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

/// The preamble of every reaction to an event: record it in the inbox, then lock its fare and
/// check the saga is at `expected`. `None` means there is nothing to do: the event was
/// processed before, or the fare has moved past that step (a duplicate under another id).
pub async fn begin_step(
    conn: &mut PgConnection,
    message: &Consumed,
    event: &Event,
    expected: FareStatus,
) -> Result<Option<Fare>, HandleError> {
    if !inbox::record_first_delivery(
        &mut *conn,
        event.event_id,
        event.event_type(),
        &event.fare_id,
        message,
    )
    .await?
    {
        return Ok(None);
    }
    let fare = fare::find_for_update(&mut *conn, &event.fare_id)
        .await?
        .ok_or_else(|| unknown_fare(&event.fare_id))?;
    if fare.status != expected {
        tracing::info!(
            fare_id = %event.fare_id,
            event_id = %event.event_id,
            event_type = event.event_type().as_str(),
            status = fare.status.as_str(),
            "event does not apply at this step; ignored"
        );
        return Ok(None);
    }
    Ok(Some(fare))
}

fn unknown_fare(fare_id: &FareId) -> HandleError {
    HandleError::Permanent(format!("unknown fare {fare_id}"))
}
