//! What every step of the payment side of the saga shares: the gateway, the retry policy, and
//! the preamble of reacting to an event (lock the fare, check it is at the expected step).

use std::time::Duration;

use events_schema::{Event, FareId};
use sqlx::PgConnection;
use transactional_messaging::retry::Backoff;
use transactional_messaging::HandleError;

use crate::fare::{self, Fare, FareStatus};
use crate::gateway::{GatewayCall, GatewayError, Operation, PaymentGateway};

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            gateway_attempts: 8,
            gateway_backoff: Backoff::new(Duration::from_millis(20), Duration::from_secs(2)),
            compensation_budget: Duration::from_secs(6 * 60 * 60),
            compensation_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
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

/// The preamble of every reaction to an event (the consumer loop has recorded it in the
/// inbox): lock its fare and check the saga is at `expected`. `None` means there is nothing to
/// do: the fare has moved past that step (a duplicate under another id).
pub async fn begin_step(
    conn: &mut PgConnection,
    event: &Event,
    expected: FareStatus,
) -> Result<Option<Fare>, HandleError> {
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
