//! The payment-service's reaction to each message of its topics (`fare-requests`,
//! `payment-events`, `accounting-events`): dispatch to the step of SPEC §4 it triggers.

use std::sync::Arc;

use events_schema::{Event, EventData, Topic, TopicNames};
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

pub struct PaymentHandler<G> {
    saga: Arc<Saga<G>>,
    names: TopicNames,
}

impl<G> PaymentHandler<G> {
    pub fn new(saga: Arc<Saga<G>>, names: TopicNames) -> Self {
        PaymentHandler { saga, names }
    }
}

impl<G: PaymentGateway> Handler for PaymentHandler<G> {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Consumed,
    ) -> Result<Disposition, HandleError> {
        match self.names.topic_of(&message.topic) {
            Some(Topic::FareRequests) => {
                registration::on_fare_requested(&self.saga, conn, message).await
            }
            Some(Topic::PaymentEvents | Topic::AccountingEvents) => {
                let event = Event::decode(&message.payload)
                    .map_err(|error| HandleError::Permanent(error.reason()))?;
                on_event(&self.saga, conn, message, &event).await
            }
            _ => Ok(Disposition::Ignored),
        }
    }
}

async fn on_event<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    message: &Consumed,
    event: &Event,
) -> Result<Disposition, HandleError> {
    match &event.data {
        EventData::PreAuthorised(_) => capture::on_pre_authorised(saga, conn, message, event).await,
        EventData::ChargeFailed(_) => {
            compensation::on_charge_failed(saga, conn, message, event).await
        }
        EventData::AccountUpdateFailed(_) => {
            compensation::on_account_update_failed(saga, conn, message, event).await
        }
        EventData::AccountUpdated(_) => outcome::on_account_updated(conn, message, event).await,
        EventData::PreAuthFailed(_)
        | EventData::PreAuthReleased(_)
        | EventData::PaymentRefunded(_)
        | EventData::RefundFailed(_) => outcome::on_saga_failed(conn, message, event).await,
        // Events the payment-service emits and nobody here reacts to (`Charged` is the
        // accounting-service's), or events of other topics.
        _ => Ok(Disposition::Ignored),
    }
}
