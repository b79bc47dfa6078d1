//! The compensations (SPEC §4 rows 4 and 6): release the pre-authorisation after a failed
//! capture, refund the charge after a failed ledger update. Both are retried until they
//! succeed (forward recovery); a refund the gateway keeps refusing past its budget emits
//! `RefundFailed` and leaves the fare for an operator — never silently dropped.

use events_schema::{
    Compensation, Event, EventData, PaymentRefunded, PreAuthReleased, RefundFailed,
};
use sqlx::PgConnection;
use transactional_messaging::{outbox, Consumed, Disposition, HandleError};

use crate::fare::{self, FareStatus};
use crate::gateway::{Operation, PaymentGateway};
use crate::saga::{begin_step, Saga};

/// `ChargeFailed` → release the hold → `PreAuthReleased`.
pub async fn on_charge_failed<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    message: &Consumed,
    event: &Event,
) -> Result<Disposition, HandleError> {
    let Some(mut fare) = begin_step(&mut *conn, message, event, FareStatus::ChargeFailed).await?
    else {
        return Ok(Disposition::Ignored);
    };
    let charge = fare.charge()?;
    let authorisation_id = fare.authorisation_id.clone().unwrap_or_default();
    let call = charge.gateway_call(&fare.fare_id, &authorisation_id);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match saga.call_gateway(Operation::Release, &call).await? {
            Ok(_) => break,
            // A release is never given up: past the budget the message is retried later.
            Err(reason) if attempt >= saga.policy.refund_attempts => {
                return Err(HandleError::Retryable(anyhow::anyhow!(
                    "release of fare {} refused {attempt} times: {reason}",
                    fare.fare_id
                )))
            }
            Err(_) => saga.policy.compensation_backoff.sleep(attempt).await,
        }
    }
    fare.status = FareStatus::PreAuthReleased;
    fare.add_compensation(Compensation::PreAuthReleased);
    fare::save(&mut *conn, &fare).await?;
    let data = EventData::PreAuthReleased(PreAuthReleased {
        customer_id: charge.customer_id,
        amount_minor: charge.amount_minor,
        currency: charge.currency,
        authorisation_id,
    });
    outbox::enqueue_events(conn, &[Event::caused_by(event, data)]).await?;
    Ok(Disposition::Processed)
}

/// `AccountUpdateFailed` → refund the charge → `PaymentRefunded`, or `RefundFailed` once the
/// gateway refused every attempt of the budget.
pub async fn on_account_update_failed<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    message: &Consumed,
    event: &Event,
) -> Result<Disposition, HandleError> {
    let Some(mut fare) = begin_step(&mut *conn, message, event, FareStatus::Charged).await? else {
        return Ok(Disposition::Ignored);
    };
    let charge = fare.charge()?;
    if let EventData::AccountUpdateFailed(failed) = &event.data {
        fare.failure_reason = Some(format!("ledger update failed: {}", failed.reason));
    }
    let charge_id = fare.charge_id.clone().unwrap_or_default();
    let call = charge.gateway_call(&fare.fare_id, &charge_id);
    let mut attempt = 0;
    let refunded = loop {
        attempt += 1;
        match saga.call_gateway(Operation::Refund, &call).await? {
            Ok(refund_id) => break Ok(refund_id),
            Err(reason) if attempt >= saga.policy.refund_attempts => break Err(reason),
            Err(reason) => {
                tracing::warn!(fare_id = %fare.fare_id, attempt, reason, "refund refused, retrying");
                saga.policy.compensation_backoff.sleep(attempt).await;
            }
        }
    };
    let data = match refunded {
        Ok(refund_id) => {
            fare.status = FareStatus::Refunded;
            fare.refund_id = Some(refund_id.clone());
            fare.add_compensation(Compensation::PaymentRefunded);
            EventData::PaymentRefunded(PaymentRefunded {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                charge_id,
                refund_id,
                attempts: attempt,
            })
        }
        Err(reason) => {
            tracing::error!(fare_id = %fare.fare_id, attempts = attempt, reason, "refund failed after its retry budget; fare needs attention");
            fare.status = FareStatus::RefundFailed;
            EventData::RefundFailed(RefundFailed {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                charge_id,
                attempts: attempt,
                reason,
            })
        }
    };
    fare::save(&mut *conn, &fare).await?;
    outbox::enqueue_events(conn, &[Event::caused_by(event, data)]).await?;
    Ok(Disposition::Processed)
}
