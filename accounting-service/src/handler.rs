//! The accounting-service's reaction to `payment-events`: only `Charged` concerns it (the
//! consumer loop ignores the rest, and has decoded, checked and recorded these), a batch at a
//! time. It calls nothing outside its database.

use events_schema::Topic;
use sqlx::PgConnection;
use transactional_messaging::{HandleError, Handler, Input, Messages, NoCall, Progress};

use crate::credit;

/// The topics the accounting-service consumes.
pub const SUBSCRIBED: [Topic; 1] = [Topic::PaymentEvents];

#[derive(Debug, Default)]
pub struct AccountingHandler;

impl Handler for AccountingHandler {
    type Call = NoCall;
    type Answer = NoCall;

    async fn handle(
        &self,
        conn: &mut PgConnection,
        inputs: &[Input<'_, NoCall, NoCall>],
        messages: &mut Messages,
    ) -> Result<Vec<Progress<NoCall>>, HandleError> {
        let events: Vec<_> = inputs
            .iter()
            .map(|input| match input {
                Input::Event(_, event) => Ok(*event),
                Input::Raw(message) => Err(HandleError::Permanent(format!(
                    "accounting-service reads no raw messages from {}",
                    message.topic
                ))),
                Input::Answer { call, .. } => match **call {},
            })
            .collect::<Result<_, _>>()?;
        Ok(credit::on_charged(conn, &events, &mut messages.outbox)
            .await?
            .into_iter()
            .map(Progress::Done)
            .collect())
    }

    async fn call(&self, call: &NoCall) -> NoCall {
        match *call {}
    }
}
