//! `FareRequested` → register the fare and pre-authorise the card (SPEC §4 rows 1–2), or
//! register the rejection. A second request for a known `fare_id` never starts a second saga
//! (SPEC §6.6): identical → ignored, different → dead-lettered as a conflicting duplicate.

use events_schema::{
    derived_event_id, Compensation, Event, EventData, EventType, FareCollectionFailed,
    FareRejected, FareRequested, PreAuthFailed, PreAuthorised, ReceivedFareRequest, Topic,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use transactional_messaging::{dead_letter, inbox, outbox, Consumed, Disposition, HandleError};
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
    let request = ReceivedFareRequest::parse(&message.payload)
        .map_err(|error| HandleError::Permanent(error.reason()))?;
    let first = inbox::record_first_delivery(
        &mut *conn,
        request.event_id,
        EventType::FareRequested,
        &request.fare_id,
        message,
    )
    .await?;
    if !first {
        return Ok(Disposition::Ignored);
    }
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
        dead_letter::enqueue(
            &mut *conn,
            message,
            Topic::PaymentDlq,
            crate::SERVICE_NAME,
            &reason,
        )
        .await?;
        return Ok(Disposition::DeadLettered(reason));
    }
    match &request.request {
        Ok(valid) => register(saga, conn, &request, valid, fingerprint).await,
        Err(problems) => reject(conn, &request, problems, fingerprint).await,
    }
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
    let answer = saga.call_gateway(Operation::PreAuthorise, &call).await?;
    let cause = request
        .to_event()
        .ok_or_else(|| HandleError::Permanent("valid request without an event".to_owned()))?;
    let mut fare = new_fare(request, fingerprint, FareStatus::PreAuthorised);
    fare.customer_id = Some(valid.customer_id.as_str().to_owned());
    fare.amount_minor = Some(valid.amount_minor);
    fare.currency = Some(valid.currency.as_str().to_owned());
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
    fare::insert(&mut *conn, &fare).await?;
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
