//! What one batch of messages does to the payment-service's state, gathered by the steps and
//! written at the end in a few statements: the fares registered, the fares changed, the
//! compensations started; and the requests recorded in the inbox and the events emitted, which
//! the consumer loop writes with its own in one statement.

use std::collections::HashMap;
use std::time::Duration;

use events_schema::Event;
use sqlx::PgConnection;
use time::OffsetDateTime;
use transactional_messaging::inbox::InboxRecord;
use transactional_messaging::{
    FareResult, HandleError, Messages, OutboxMessage, OutcomeObservation,
};

use crate::fare::{self, Fare};

pub struct Batch<'a> {
    /// The batch's fares that exist, locked; a step takes its fare out and gives it back.
    fares: HashMap<String, Fare>,
    registered: Vec<Fare>,
    changed: Vec<Fare>,
    compensations: Vec<String>,
    /// The batch's inbox records and outgoing messages, which the consumer loop writes.
    messages: &'a mut Messages,
}

impl<'a> Batch<'a> {
    /// Locks the fares `ids` (those that exist) for the batch.
    pub async fn lock(
        conn: &mut PgConnection,
        ids: &[String],
        messages: &'a mut Messages,
    ) -> Result<Batch<'a>, HandleError> {
        Ok(Batch::of(fare::lock_many(conn, ids).await?, messages))
    }

    /// A batch over `fares` (the ones that exist), adding its inbox records and events to
    /// `messages`.
    pub fn of(fares: HashMap<String, Fare>, messages: &'a mut Messages) -> Batch<'a> {
        Batch {
            fares,
            registered: Vec::new(),
            changed: Vec::new(),
            compensations: Vec::new(),
            messages,
        }
    }

    /// The fares registered and changed so far (for tests).
    #[cfg(test)]
    pub fn written(&self) -> (&[Fare], &[Fare], &[InboxRecord]) {
        (&self.registered, &self.changed, &self.messages.inbox)
    }

    /// The fare, for a step to change and give back with [`Batch::save`].
    pub fn take(&mut self, fare_id: &str) -> Option<Fare> {
        self.fares.remove(fare_id)
    }

    /// A fare registered by this batch.
    pub fn register(&mut self, fare: Fare) {
        self.registered.push(fare);
    }

    /// A fare changed by this batch.
    pub fn save(&mut self, fare: Fare) {
        self.changed.push(fare);
    }

    /// A fare whose compensation starts: due now, given up after the budget.
    pub fn start_compensation(&mut self, fare: Fare) {
        self.compensations.push(fare.fare_id.as_str().to_owned());
        self.changed.push(fare);
    }

    /// A request acted on, for the inbox.
    pub fn record(&mut self, record: InboxRecord) {
        self.messages.inbox.push(record);
    }

    pub fn emit(&mut self, event: &Event) {
        self.messages.outbox.push(OutboxMessage::event(event));
    }

    /// The fare's outcome event, counted in the metrics as `result` once the batch commits,
    /// with the time since its request was consumed: since the fare was registered
    /// (`created_at`, the database's clock in the registration's transaction).
    pub fn emit_outcome(&mut self, event: &Event, result: FareResult, fare: &Fare) {
        let since_request = OffsetDateTime::now_utc() - fare.created_at;
        let observation = OutcomeObservation {
            result,
            since_request: since_request.try_into().unwrap_or_default(),
        };
        self.messages
            .outbox
            .push(OutboxMessage::outcome(event, observation));
    }

    /// A message other than an event (a dead letter).
    pub fn send(&mut self, message: OutboxMessage) {
        self.messages.outbox.push(message);
    }

    /// Writes what the batch did to its fares, in the caller's transaction (the consumer loop
    /// writes its messages).
    pub async fn write(
        self,
        conn: &mut PgConnection,
        compensation_budget: Duration,
    ) -> Result<(), HandleError> {
        fare::insert_many(&mut *conn, &self.registered).await?;
        fare::save_many(&mut *conn, &self.changed).await?;
        fare::start_compensations(&mut *conn, &self.compensations, compensation_budget).await?;
        Ok(())
    }
}
