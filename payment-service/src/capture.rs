//! `PreAuthorised` → capture the pre-authorised amount (SPEC §4 row 3): `Charged` or
//! `ChargeFailed`.

use events_schema::{ChargeFailed, Charged, Event, EventData};
use sqlx::PgConnection;
use transactional_messaging::{outbox, Disposition, HandleError};

use crate::fare::{self, FareStatus};
use crate::gateway::{Operation, PaymentGateway};
use crate::saga::{begin_step, Saga};

pub async fn on_pre_authorised<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Disposition, HandleError> {
    let Some(mut fare) = begin_step(&mut *conn, event, FareStatus::PreAuthorised).await? else {
        return Ok(Disposition::Ignored);
    };
    let charge = fare.charge()?;
    let authorisation_id = fare.authorisation_id.clone().unwrap_or_default();
    let call = charge.gateway_call(&fare.fare_id, &authorisation_id);
    let data = match saga.call_gateway(Operation::Capture, &call).await? {
        Ok(charge_id) => {
            fare.status = FareStatus::Charged;
            fare.charge_id = Some(charge_id.clone());
            EventData::Charged(Charged {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                authorisation_id,
                charge_id,
            })
        }
        Err(reason) => {
            fare.status = FareStatus::ChargeFailed;
            fare.failure_reason = Some(format!("capture declined: {reason}"));
            EventData::ChargeFailed(ChargeFailed {
                customer_id: charge.customer_id,
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                authorisation_id,
                reason,
            })
        }
    };
    fare::save(&mut *conn, &fare).await?;
    outbox::enqueue_events(conn, &[Event::caused_by(event, data)]).await?;
    Ok(Disposition::Processed)
}
