//! The payment-service's reactions (SPEC §4), a batch at a time: its fares locked in one
//! statement, each message given to its step, what they changed written in a few statements.
//! A request on `fare-requests`, read as received, goes to registration; every other event it
//! reacts to (the consumer loop has decoded it, checked its key and its inbox record) goes to
//! its step. The pre-authorisation and the capture are gateway calls, made outside any
//! transaction: their step asks for them, and records their answer in a later batch.

use std::sync::Arc;

use events_schema::{Event, EventData, Topic};
use sqlx::PgConnection;
use transactional_messaging::{Disposition, HandleError, Handler, Input, Messages, Progress};

use crate::batch::Batch;
use crate::gateway::{GatewayRequest, Operation, PaymentGateway};
use crate::registration::{self, RequestIds};
use crate::saga::{Reply, Saga, Skip};
use crate::{capture, compensation, outcome};

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
    type Call = GatewayRequest;
    type Answer = Reply;

    async fn handle(
        &self,
        conn: &mut PgConnection,
        inputs: &[Input<'_, GatewayRequest, Reply>],
        messages: &mut Messages,
    ) -> Result<Vec<Progress<GatewayRequest>>, HandleError> {
        let fares: Vec<String> = inputs.iter().filter_map(fare_of).collect();
        let mut ids = RequestIds {
            known: std::mem::take(&mut messages.known_raw),
            seen: Default::default(),
        };
        let mut batch = Batch::lock(&mut *conn, &fares, messages).await?;
        let mut progress = Vec::with_capacity(inputs.len());
        for input in inputs {
            progress.push(match input {
                Input::Raw(message) => registration::on_request(&mut batch, message, &mut ids)?,
                Input::Event(_, event) => on_event(&mut batch, event)?,
                Input::Answer {
                    event,
                    call,
                    answer,
                    ..
                } => on_answer(&mut batch, *event, call, answer),
            });
        }
        batch
            .write(conn, self.saga.policy.compensation_budget)
            .await?;
        Ok(progress)
    }

    async fn call(&self, call: &GatewayRequest) -> Reply {
        self.saga.reply(call).await
    }
}

/// The fare an input is about.
fn fare_of(input: &Input<'_, GatewayRequest, Reply>) -> Option<String> {
    match input {
        Input::Raw(message) => events_schema::ReceivedFareRequest::parse(&message.payload)
            .ok()
            .map(|request| request.fare_id.as_str().to_owned()),
        Input::Event(_, event) => Some(event.fare_id.as_str().to_owned()),
        Input::Answer { call, .. } => Some(call.fare_id.as_str().to_owned()),
    }
}

fn on_event(batch: &mut Batch<'_>, event: &Event) -> Result<Skip, HandleError> {
    match &event.data {
        EventData::PreAuthorised(_) => capture::on_pre_authorised(batch, event),
        EventData::ChargeFailed(_) => Ok(compensation::on_charge_failed(batch, event)),
        EventData::AccountUpdateFailed(_) => {
            Ok(compensation::on_account_update_failed(batch, event))
        }
        EventData::AccountUpdated(_) => outcome::on_account_updated(batch, event),
        EventData::PreAuthFailed(_)
        | EventData::PreAuthReleased(_)
        | EventData::PaymentRefunded(_)
        | EventData::RefundFailed(_)
        | EventData::ReleaseFailed(_) => outcome::on_saga_failed(batch, event),
        other => Ok(Progress::Done(Disposition::DeadLettered(format!(
            "payment-service has no step for {}",
            other.event_type()
        )))),
    }
}

fn on_answer(
    batch: &mut Batch<'_>,
    event: Option<&Event>,
    call: &GatewayRequest,
    reply: &Reply,
) -> Skip {
    match (call.operation, event) {
        (Operation::PreAuthorise, _) => registration::on_answer(batch, call, reply),
        (Operation::Capture, Some(event)) => capture::on_answer(batch, event, call, reply),
        (operation, _) => Progress::Done(Disposition::DeadLettered(format!(
            "no step awaits the answer to a {}",
            operation.as_str()
        ))),
    }
}
