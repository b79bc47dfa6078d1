//! `FareRequested` → register the fare and pre-authorise the card (SPEC §4 rows 1–2), or
//! register the rejection.
//!
//! - A message that is not JSON or has no valid `fare_id` has no saga to answer: dead letter.
//! - A second request for a known `fare_id` never starts a second saga (SPEC §6.6): identical
//!   (same data) → ignored, different → dead-lettered as a conflicting duplicate.
//! - Every other request with a valid, unknown `fare_id` ends in exactly one outcome, whatever
//!   else is wrong with it: a malformed envelope field, invalid data, an oversized message, or
//!   an `event_id` that already names another event (SPEC §3; that message is also
//!   dead-lettered, with the reason) are the problems of a rejection.
//!
//! The Kafka key of a request is not checked: riders' apps and kcat users may leave it out.
//! A request keyed otherwise may land on another partition than the fare's other requests, so
//! duplicates may be processed at the same time by two instances: the fare's row (primary key
//! `fare_id`) serialises them, and the loser retries and finds the fare registered.

use events_schema::{
    derived_event_id, Compensation, Event, EventData, EventId, EventType, FareCollectionFailed,
    FareRejected, FareRequested, PreAuthFailed, PreAuthorised, ReceivedFareRequest, Topic,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use transactional_messaging::inbox::{self, Delivery, Incoming};
use transactional_messaging::kafka::MAX_MESSAGE_BYTES;
use transactional_messaging::{dead_letter, outbox, Consumed, Disposition, HandleError};
use uuid::Uuid;

use crate::fare::{self, Fare, FareStatus};
use crate::gateway::{GatewayCall, Operation, PaymentGateway};
use crate::saga::Saga;

/// The reason on a conflicting duplicate's dead letter.
pub const CONFLICTING_DUPLICATE: &str = "conflicting duplicate";

pub async fn on_fare_requested<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    message: &Consumed,
) -> Result<Disposition, HandleError> {
    let mut request = ReceivedFareRequest::parse(&message.payload)
        .map_err(|error| HandleError::Permanent(error.reason()))?;
    let fingerprint = fingerprint(&request);
    if let Some(known) = fare::find_for_update(&mut *conn, &request.fare_id).await? {
        if known.request_fingerprint == fingerprint {
            tracing::info!(fare_id = %request.fare_id, event_id = %request.event_id, "identical duplicate request ignored");
            return Ok(Disposition::Ignored);
        }
        let reason = format!(
            "{CONFLICTING_DUPLICATE}: fare {} was already requested with different data (event {})",
            request.fare_id, known.request_event_id
        );
        return dead_lettered(conn, message, reason).await;
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
    match inbox::record(&mut *conn, incoming, message).await? {
        Delivery::First => {}
        // The same request is being registered by a concurrent transaction, now committed.
        Delivery::Redelivery => return Ok(Disposition::Ignored),
        Delivery::Conflict(reason) => {
            dead_letter::enqueue(
                &mut *conn,
                message,
                Topic::PaymentDlq,
                crate::SERVICE_NAME,
                &reason,
            )
            .await?;
            problems.push(format!(
                "event_id {} already names another event; a new request needs a new event_id (or none)",
                request.event_id
            ));
            // The saga cannot go by an id that belongs to another: it goes by the one a
            // request without an event_id would get.
            let own = EventId::from_uuid(fingerprint);
            (
                request.event_id,
                request.causation_id,
                request.correlation_id,
            ) = (own, own, own);
        }
    }
    match &request.request {
        Ok(valid) if problems.is_empty() => {
            register(saga, conn, &request, valid, fingerprint).await
        }
        _ => reject(conn, &request, &problems, fingerprint).await,
    }
}

async fn dead_lettered(
    conn: &mut PgConnection,
    message: &Consumed,
    reason: String,
) -> Result<Disposition, HandleError> {
    dead_letter::enqueue(
        conn,
        message,
        Topic::PaymentDlq,
        crate::SERVICE_NAME,
        &reason,
    )
    .await?;
    Ok(Disposition::DeadLettered(reason))
}

async fn register<G: PaymentGateway>(
    saga: &Saga<G>,
    conn: &mut PgConnection,
    request: &ReceivedFareRequest,
    valid: &FareRequested,
    fingerprint: Uuid,
) -> Result<Disposition, HandleError> {
    let call = GatewayCall {
        fare_id: &request.fare_id,
        customer_id: &valid.customer_id,
        amount_minor: valid.amount_minor,
        currency: valid.currency,
        payment_token: Some(&valid.payment_token),
        reference: None,
    };
    let cause = request
        .to_event()
        .ok_or_else(|| HandleError::Permanent("valid request without an event".to_owned()))?;
    let mut fare = new_fare(request, fingerprint, FareStatus::PreAuthorised);
    fare.customer_id = Some(valid.customer_id.as_str().to_owned());
    fare.amount_minor = Some(valid.amount_minor);
    fare.currency = Some(valid.currency.as_str().to_owned());
    // The fare is registered before the gateway is called: a concurrent request for the same
    // fare waits on this row (and then finds it), so it never calls the gateway with its data.
    fare::insert(&mut *conn, &fare).await?;
    let answer = saga.call_gateway(Operation::PreAuthorise, &call).await?;
    let data = match answer {
        Ok(authorisation_id) => {
            fare.authorisation_id = Some(authorisation_id.clone());
            EventData::PreAuthorised(PreAuthorised {
                customer_id: valid.customer_id.clone(),
                amount_minor: valid.amount_minor,
                currency: valid.currency,
                authorisation_id,
            })
        }
        Err(reason) => {
            fare.status = FareStatus::PreAuthFailed;
            fare.failure_reason = Some(format!("pre-authorisation declined: {reason}"));
            EventData::PreAuthFailed(PreAuthFailed {
                customer_id: valid.customer_id.clone(),
                amount_minor: valid.amount_minor,
                currency: valid.currency,
                reason,
            })
        }
    };
    fare::save(&mut *conn, &fare).await?;
    outbox::enqueue_events(conn, &[Event::caused_by(&cause, data)]).await?;
    Ok(Disposition::Processed)
}

/// An invalid request: registered as rejected, with `FareRejected` then `FareCollectionFailed`.
async fn reject(
    conn: &mut PgConnection,
    request: &ReceivedFareRequest,
    problems: &[String],
    fingerprint: Uuid,
) -> Result<Disposition, HandleError> {
    let mut fare = new_fare(request, fingerprint, FareStatus::Rejected);
    let reason = format!("request rejected: {}", problems.join("; "));
    fare.failure_reason = Some(reason.clone());
    fare::insert(&mut *conn, &fare).await?;
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
    outbox::enqueue_events(conn, &[rejected, outcome]).await?;
    Ok(Disposition::Processed)
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
