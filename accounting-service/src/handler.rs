//! The accounting-service's reaction to `payment-events`: only `Charged` concerns it.

use events_schema::{Event, EventData, Topic};
use sqlx::PgConnection;
use transactional_messaging::{Consumed, Disposition, HandleError, Handler};

use crate::credit;

/// The topics the accounting-service consumes.
pub const SUBSCRIBED: [Topic; 1] = [Topic::PaymentEvents];

#[derive(Debug, Default)]
pub struct AccountingHandler;

impl Handler for AccountingHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Consumed,
    ) -> Result<Disposition, HandleError> {
        let event = Event::decode(&message.payload)
            .map_err(|error| HandleError::Permanent(error.reason()))?;
        match &event.data {
            EventData::Charged(charged) => credit::on_charged(conn, message, &event, charged).await,
            _ => Ok(Disposition::Ignored),
        }
    }
}
