//! The compensations (SPEC §4 rows 4 and 6): release the pre-authorisation after a failed
//! capture, refund the charge after a failed ledger update. Both are retried until they
//! succeed (forward recovery); a refund the gateway keeps refusing past its budget emits
//! `RefundFailed` and leaves the fare for an operator — never silently dropped
//! (see [`crate::refund`]).

use events_schema::{Compensation, Event, EventData, PreAuthReleased};
use sqlx::PgConnection;
use transactional_messaging::{outbox, Consumed, Disposition, HandleError};

use crate::fare::{self, FareStatus};
use crate::gateway::{Operation, PaymentGateway};
use crate::refund;
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

/// `AccountUpdateFailed` → refund the charge → `PaymentRefunded`. A refund the gateway
/// refuses is not retried here, holding up every fare behind it: the fare waits in
/// `refunding` and [`crate::refund`] tries again with backoff until it succeeds, or emits
/// `RefundFailed` once the budget is spent.
pub async fn on_account_update_failed<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    message: &Consumed,
    event: &Event,
) -> Result<Disposition, HandleError> {
    let Some(mut fare) = begin_step(&mut *conn, message, event, FareStatus::Charged).await? else {
        return Ok(Disposition::Ignored);
    };
    if let EventData::AccountUpdateFailed(failed) = &event.data {
        fare.failure_reason = Some(format!("ledger update failed: {}", failed.reason));
    }
    fare.status = FareStatus::Refunding;
    fare.compensation_cause = Some(event.event_id.as_uuid());
    refund::attempt(saga, conn, &mut fare).await?;
    Ok(Disposition::Processed)
}
