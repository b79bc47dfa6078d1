//! The accounting-service's reaction to `payment-events`: only `Charged` concerns it (the
//! consumer loop ignores the rest, and has decoded, checked and recorded this one).

use events_schema::{Event, EventData, Topic};
use sqlx::PgConnection;
use transactional_messaging::{Consumed, Disposition, HandleError, Handler};

use crate::credit;

/// The topics the accounting-service consumes.
pub const SUBSCRIBED: [Topic; 1] = [Topic::PaymentEvents];

#[derive(Debug, Default)]
pub struct AccountingHandler;

impl Handler for AccountingHandler {
    async fn on_event(
        &self,
        conn: &mut PgConnection,
        _message: &Consumed,
        event: &Event,
    ) -> Result<Disposition, HandleError> {
        match &event.data {
            EventData::Charged(charged) => credit::on_charged(conn, event, charged).await,
            other => Err(HandleError::Permanent(format!(
                "accounting-service has no step for {}",
                other.event_type()
            ))),
        }
    }
}
