//! The payment-service's reactions (SPEC §4): a request on `fare-requests`, read as received,
//! goes to registration; every other event it reacts to (the consumer loop has decoded it,
//! checked its key and recorded it in the inbox) goes to its step.

use std::sync::Arc;

use events_schema::{Event, EventData, Topic};
use sqlx::PgConnection;
use transactional_messaging::{Consumed, Disposition, HandleError, Handler};

use crate::gateway::PaymentGateway;
use crate::saga::Saga;
use crate::{capture, compensation, outcome, registration};

/// The topics the payment-service consumes.
pub const SUBSCRIBED: [Topic; 3] = [
    Topic::FareRequests,
    Topic::PaymentEvents,
    Topic::AccountingEvents,
];

/// Of those, the one whose messages are read as received: requests are typed by hand.
pub const RAW_TOPICS: [Topic; 1] = [Topic::FareRequests];

pub struct PaymentHandler<G> {
    saga: Arc<Saga<G>>,
}

impl<G> PaymentHandler<G> {
    pub fn new(saga: Arc<Saga<G>>) -> Self {
        PaymentHandler { saga }
    }
}

impl<G: PaymentGateway> Handler for PaymentHandler<G> {
    async fn on_raw(
        &self,
        conn: &mut PgConnection,
        message: &Consumed,
    ) -> Result<Disposition, HandleError> {
        registration::on_fare_requested(&self.saga, conn, message).await
    }

    async fn on_event(
        &self,
        conn: &mut PgConnection,
        _message: &Consumed,
        event: &Event,
    ) -> Result<Disposition, HandleError> {
        let saga = &self.saga;
        match &event.data {
            EventData::PreAuthorised(_) => capture::on_pre_authorised(saga, conn, event).await,
            EventData::ChargeFailed(_) => compensation::on_charge_failed(saga, conn, event).await,
            EventData::AccountUpdateFailed(_) => {
                compensation::on_account_update_failed(saga, conn, event).await
            }
            EventData::AccountUpdated(_) => outcome::on_account_updated(conn, event).await,
            EventData::PreAuthFailed(_)
            | EventData::PreAuthReleased(_)
            | EventData::PaymentRefunded(_)
            | EventData::RefundFailed(_)
            | EventData::ReleaseFailed(_) => outcome::on_saga_failed(conn, event).await,
            other => Err(HandleError::Permanent(format!(
                "payment-service has no step for {}",
                other.event_type()
            ))),
        }
    }
}
