//! `FareRequested` → register the fare and pre-authorise the card (SPEC §4 rows 1–2), or
//! register the rejection.
//!
//! - A message that is not JSON or has no valid `fare_id` has no saga to answer: the consumer
//!   loop dead-letters it before it gets here.
//! - A second request for a known `fare_id` never starts a second saga (SPEC §6.6): identical
//!   (same data) → ignored, different → dead-lettered as a conflicting duplicate.
//! - Every other request with a valid, unknown `fare_id` ends in exactly one outcome, whatever
//!   else is wrong with it: a malformed envelope field, invalid data, an oversized message, or
//!   an `event_id` that already names another event (SPEC §3; that message is also
//!   dead-lettered, with the reason) are the problems of a rejection.
//!
//! A valid request registers the fare `pre_authorising` and asks for the pre-authorisation,
//! which the gateway answers outside any transaction; the answer is recorded by
//! [`on_answer`]. A request whose registration was cut short (a crash before the answer was
//! recorded) finds its fare `pre_authorising` when it is redelivered, and asks again — the
//! gateway answers a repeated call with its first answer.
//!
//! The Kafka key of a request is not checked: riders' apps and kcat users may leave it out.
//! A request keyed otherwise may land on another partition than the fare's other requests, so
//! duplicates may be processed at the same time by two instances: the fare's row (primary key
//! `fare_id`) serialises them, and the loser retries and finds the fare registered.

use std::collections::HashMap;

use events_schema::{
    derived_event_id, Compensation, Event, EventData, EventId, EventType, FareCollectionFailed,
    FareRejected, PreAuthFailed, PreAuthorised, ReceivedFareRequest, Topic,
};
use time::OffsetDateTime;
use transactional_messaging::inbox::{Delivery, InboxRecord, Incoming, Known};
use transactional_messaging::kafka::MAX_MESSAGE_BYTES;
use transactional_messaging::{
    dead_letter, Consumed, Disposition, FareResult, HandleError, Progress,
};
use uuid::Uuid;

use crate::batch::Batch;
use crate::compensation;
use crate::fare::{Fare, FareStatus};
use crate::gateway::{GatewayRequest, Operation};
use crate::saga::{Reply, Skip};

/// The reason on a conflicting duplicate's dead letter.
pub const CONFLICTING_DUPLICATE: &str = "conflicting duplicate";

/// The requests of one batch: what the inbox knows of their ids, and the ids seen in the
/// batch so far (two requests of one batch under the same id are one too many).
#[derive(Debug, Default)]
pub struct RequestIds {
    pub known: HashMap<Uuid, Known>,
    pub seen: HashMap<Uuid, Known>,
}

/// A request, read as received.
pub fn on_request(
    batch: &mut Batch<'_>,
    message: &Consumed,
    ids: &mut RequestIds,
) -> Result<Progress<GatewayRequest>, HandleError> {
    let mut request = ReceivedFareRequest::parse(&message.payload)
        .map_err(|error| HandleError::Permanent(error.reason()))?;
    let fingerprint = fingerprint(&request);
    if let Some(known) = batch.take(request.fare_id.as_str()) {
        return Ok(on_known_fare(known, &request, fingerprint));
    }

    let mut problems = match &request.request {
        Ok(_) => Vec::new(),
        Err(problems) => problems.clone(),
    };
    if message.payload.len() > MAX_MESSAGE_BYTES {
        problems.push(format!(
            "the message is {} bytes long; at most {MAX_MESSAGE_BYTES} are accepted",
            message.payload.len()
        ));
    }
    let incoming = Incoming {
        event_id: request.event_id,
        event_type: EventType::FareRequested,
        fare_id: &request.fare_id,
        fingerprint,
    };
    let id = request.event_id.as_uuid();
    let delivery = ids
        .known
        .get(&id)
        .or_else(|| ids.seen.get(&id))
        .map(|known| known.delivery_of(incoming));
    if let Some(Delivery::Conflict(reason)) = delivery {
        batch.send(dead_letter::dead_letter(
            message,
            Topic::PaymentDlq,
            crate::SERVICE_NAME,
            &reason,
        ));
        problems.push(format!(
            "event_id {} already names another event; a new request needs a new event_id (or none)",
            request.event_id
        ));
        // The saga cannot go by an id that belongs to another: it goes by the one a request
        // without an event_id would get.
        let own = EventId::from_uuid(fingerprint);
        (
            request.event_id,
            request.causation_id,
            request.correlation_id,
        ) = (own, own, own);
    }
    let record = InboxRecord {
        event_id: request.event_id.as_uuid(),
        event_type: EventType::FareRequested.as_str().to_owned(),
        fare_id: request.fare_id.as_str().to_owned(),
        fingerprint,
        source_topic: message.topic.clone(),
        source_partition: message.partition,
        source_offset: message.offset,
        trace: message.trace.clone(),
    };
    ids.seen.insert(
        record.event_id,
        Known {
            event_type: record.event_type.clone(),
            fare_id: record.fare_id.clone(),
            fingerprint: Some(fingerprint),
        },
    );
    batch.record(record);
    Ok(match &request.request {
        Ok(valid) if problems.is_empty() => {
            let mut fare = new_fare(&request, fingerprint, FareStatus::PreAuthorising);
            fare.customer_id = Some(valid.customer_id.as_str().to_owned());
            fare.amount_minor = Some(valid.amount_minor);
            fare.currency = Some(valid.currency.as_str().to_owned());
            let call = pre_authorisation(&fare, &request)?;
            batch.register(fare);
            Progress::Call(call)
        }
        _ => reject(batch, &request, &problems, fingerprint),
    })
}

/// A request for a fare already registered.
fn on_known_fare(known: Fare, request: &ReceivedFareRequest, fingerprint: Uuid) -> Skip {
    if known.request_fingerprint != fingerprint {
        return Progress::Done(Disposition::DeadLettered(format!(
            "{CONFLICTING_DUPLICATE}: fare {} was already requested with different data (event {})",
            request.fare_id, known.request_event_id
        )));
    }
    if known.status == FareStatus::PreAuthorising {
        // Its registration was cut short, or is under way elsewhere: the gateway gives the
        // same answer to the same call.
        if let Ok(call) = pre_authorisation(&known, request) {
            return Progress::Call(call);
        }
    }
    tracing::info!(fare_id = %request.fare_id, event_id = %request.event_id, "identical duplicate request ignored");
    Progress::Done(Disposition::Ignored)
}

/// The gateway's answer to a fare's pre-authorisation; none within the answer timeout
/// releases the hold it may have placed ([`compensation::on_pre_authorisation_unanswered`]).
pub fn on_answer(batch: &mut Batch<'_>, request: &GatewayRequest, reply: &Reply) -> Skip {
    let Some(mut fare) = batch.take(request.fare_id.as_str()) else {
        return Progress::Done(Disposition::DeadLettered(format!(
            "unknown fare {}",
            request.fare_id
        )));
    };
    if fare.status != FareStatus::PreAuthorising {
        // Another delivery of the request recorded the answer first.
        return Progress::Done(Disposition::Ignored);
    }
    let answer = match reply {
        Reply::Answered(answer) => answer,
        Reply::Unanswered(after) => {
            return compensation::on_pre_authorisation_unanswered(batch, fare, *after)
        }
    };
    let data = match answer {
        Ok(authorisation_id) => {
            fare.status = FareStatus::PreAuthorised;
            fare.authorisation_id = Some(authorisation_id.clone());
            EventData::PreAuthorised(PreAuthorised {
                customer_id: request.customer_id.clone(),
                amount_minor: request.amount_minor,
                currency: request.currency,
                authorisation_id: authorisation_id.clone(),
            })
        }
        Err(reason) => {
            fare.status = FareStatus::PreAuthFailed;
            fare.failure_reason = Some(format!("pre-authorisation declined: {reason}"));
            EventData::PreAuthFailed(PreAuthFailed {
                customer_id: request.customer_id.clone(),
                amount_minor: request.amount_minor,
                currency: request.currency,
                reason: reason.clone(),
            })
        }
    };
    batch.emit(&Event::follow_up(
        fare.fare_id.clone(),
        EventId::from_uuid(fare.request_event_id),
        EventId::from_uuid(fare.correlation_id),
        data,
    ));
    batch.save(fare);
    Progress::Done(Disposition::Processed)
}

/// The pre-authorisation of a registered fare, on the request's card.
fn pre_authorisation(
    fare: &Fare,
    request: &ReceivedFareRequest,
) -> Result<GatewayRequest, HandleError> {
    let token = request
        .request
        .as_ref()
        .map(|valid| valid.payment_token.clone())
        .map_err(|_| HandleError::Permanent("an invalid request has no card".to_owned()))?;
    Ok(fare
        .charge()?
        .request(Operation::PreAuthorise, &fare.fare_id, Some(token), None))
}

/// An invalid request: registered as rejected, with `FareRejected` then `FareCollectionFailed`.
fn reject(
    batch: &mut Batch<'_>,
    request: &ReceivedFareRequest,
    problems: &[String],
    fingerprint: Uuid,
) -> Skip {
    let mut fare = new_fare(request, fingerprint, FareStatus::Rejected);
    let reason = format!("request rejected: {}", problems.join("; "));
    fare.failure_reason = Some(reason.clone());
    // An invalid request has no complete `FareRequested` event to be caused by; the rejection
    // carries the request's ids all the same.
    let rejected = Event::follow_up(
        request.fare_id.clone(),
        request.event_id,
        request.correlation_id,
        EventData::FareRejected(FareRejected {
            reasons: problems.to_vec(),
        }),
    );
    let outcome = Event::caused_by(
        &rejected,
        EventData::FareCollectionFailed(FareCollectionFailed {
            customer_id: None,
            amount_minor: None,
            currency: None,
            reason,
            compensations: Vec::<Compensation>::new(),
            needs_attention: false,
        }),
    );
    batch.emit(&rejected);
    batch.emit_outcome(&outcome, FareResult::Rejected, &fare);
    batch.register(fare);
    Progress::Done(Disposition::Processed)
}

fn new_fare(request: &ReceivedFareRequest, fingerprint: Uuid, status: FareStatus) -> Fare {
    let now = OffsetDateTime::now_utc();
    Fare {
        fare_id: request.fare_id.clone(),
        request_event_id: request.event_id.as_uuid(),
        correlation_id: request.correlation_id.as_uuid(),
        request_fingerprint: fingerprint,
        customer_id: None,
        amount_minor: None,
        currency: None,
        status,
        authorisation_id: None,
        charge_id: None,
        refund_id: None,
        failure_reason: None,
        compensations: Vec::new(),
        compensation_attempts: 0,
        next_compensation_at: None,
        compensation_deadline: None,
        compensation_claimed_at: None,
        compensation_cause: None,
        created_at: now,
        updated_at: now,
    }
}

/// Identifies the request's content: two requests with the same data have the same
/// fingerprint, whatever their envelopes say. It is the id a request sent without `event_id`
/// gets, computed from the fare id and the canonical data.
fn fingerprint(request: &ReceivedFareRequest) -> Uuid {
    derived_event_id(&request.fare_id, &request.raw_data).as_uuid()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use events_schema::Event;
    use transactional_messaging::Messages;

    use super::*;

    fn message(body: &str) -> Consumed {
        Consumed {
            topic: "fare-requests".to_owned(),
            partition: 0,
            offset: 7,
            timestamp: Some(1),
            key: Some("wr_1".to_owned()),
            payload: body.as_bytes().to_vec(),
            event_type: None,
            trace: Default::default(),
        }
    }

    fn request(amount: i64) -> Consumed {
        message(&format!(
            r#"{{"event_type":"FareRequested","fare_id":"wr_1","data":{{"customer_id":"3","amount_minor":{amount},"currency":"USD","payment_token":"tok_visa"}}}}"#
        ))
    }

    /// Runs `on_request` over a batch holding `known` fares.
    fn run(
        known: Vec<Fare>,
        message: &Consumed,
    ) -> (Progress<GatewayRequest>, Vec<Fare>, Vec<Event>) {
        let mut messages = Messages::default();
        let fares = known
            .into_iter()
            .map(|f| (f.fare_id.as_str().to_owned(), f))
            .collect::<HashMap<_, _>>();
        let mut batch = Batch::of(fares, &mut messages);
        let progress = on_request(&mut batch, message, &mut RequestIds::default()).unwrap();
        let registered = batch.written().0.to_vec();
        drop(batch);
        let events = messages
            .outbox
            .iter()
            .filter_map(|m| Event::decode(&m.payload).ok())
            .collect();
        (progress, registered, events)
    }

    #[test]
    fn a_valid_request_registers_the_fare_then_asks_for_the_pre_authorisation() {
        let (progress, registered, events) = run(vec![], &request(2000));
        let Progress::Call(call) = progress else {
            panic!("{progress:?}")
        };
        assert_eq!(call.operation, Operation::PreAuthorise);
        assert_eq!(call.payment_token.as_deref(), Some("tok_visa"));
        assert_eq!(registered.len(), 1);
        assert_eq!(registered[0].status, FareStatus::PreAuthorising);
        assert!(
            events.is_empty(),
            "nothing is said before the gateway answered"
        );
    }

    #[test]
    fn a_known_fare_is_ignored_resumed_or_its_duplicate_dead_lettered() {
        let (_, registered, _) = run(vec![], &request(2000));
        let mut fare = registered[0].clone();
        let resumed = run(vec![fare.clone()], &request(2000)).0;
        assert!(
            matches!(resumed, Progress::Call(_)),
            "a registration cut short asks the gateway again: {resumed:?}"
        );
        fare.status = FareStatus::PreAuthorised;
        let identical = run(vec![fare.clone()], &request(2000)).0;
        assert!(matches!(identical, Progress::Done(Disposition::Ignored)));
        let conflicting = run(vec![fare], &request(2001)).0;
        assert!(
            matches!(&conflicting, Progress::Done(Disposition::DeadLettered(reason)) if reason.starts_with(CONFLICTING_DUPLICATE)),
            "{conflicting:?}"
        );
    }

    #[test]
    fn an_invalid_request_is_rejected_with_its_outcome() {
        let (progress, registered, events) = run(vec![], &request(0));
        assert!(matches!(progress, Progress::Done(Disposition::Processed)));
        assert_eq!(registered[0].status, FareStatus::Rejected);
        let types: Vec<EventType> = events.iter().map(Event::event_type).collect();
        assert_eq!(
            types,
            [EventType::FareRejected, EventType::FareCollectionFailed]
        );
    }

    #[test]
    fn the_answer_is_recorded_once_and_only_for_a_fare_waiting_for_it() {
        let (Progress::Call(call), registered, _) = run(vec![], &request(2000)) else {
            panic!("no call")
        };
        let mut messages = Messages::default();
        let fares = HashMap::from([("wr_1".to_owned(), registered[0].clone())]);
        let mut batch = Batch::of(fares, &mut messages);
        let done = on_answer(&mut batch, &call, &Reply::Answered(Ok("auth_1".to_owned())));
        assert!(matches!(done, Progress::Done(Disposition::Processed)));
        let saved = batch.written().1[0].clone();
        assert_eq!(saved.status, FareStatus::PreAuthorised);
        assert_eq!(saved.authorisation_id.as_deref(), Some("auth_1"));
        drop(batch);
        assert_eq!(messages.outbox.len(), 1, "PreAuthorised");

        let mut messages = Messages::default();
        let mut batch = Batch::of(HashMap::from([("wr_1".to_owned(), saved)]), &mut messages);
        let again = on_answer(&mut batch, &call, &Reply::Answered(Ok("auth_1".to_owned())));
        assert!(matches!(again, Progress::Done(Disposition::Ignored)));
        drop(batch);
        assert!(messages.outbox.is_empty(), "no second PreAuthorised");
    }

    #[test]
    fn an_unanswered_pre_authorisation_releases_the_hold_it_may_have_placed() {
        let (Progress::Call(call), registered, _) = run(vec![], &request(2000)) else {
            panic!("no call")
        };
        let mut messages = Messages::default();
        let fares = HashMap::from([("wr_1".to_owned(), registered[0].clone())]);
        let mut batch = Batch::of(fares, &mut messages);
        let done = on_answer(
            &mut batch,
            &call,
            &Reply::Unanswered(std::time::Duration::from_secs(120)),
        );
        assert!(matches!(done, Progress::Done(Disposition::Processed)));
        let (_, changed, _) = batch.written();
        let saved = changed[0].clone();
        assert_eq!(saved.status, FareStatus::Releasing);
        assert_eq!(saved.compensation_cause, Some(saved.request_event_id));
        assert_eq!(
            saved.failure_reason.as_deref(),
            Some("pre-authorisation unanswered: no answer from the gateway within 2m")
        );
        drop(batch);
        assert!(
            messages.outbox.is_empty(),
            "nothing is said before the release is done"
        );
    }
}
