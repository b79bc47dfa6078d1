//! Invariant 5: every message a service consumed — below its consumer group's committed
//! offset — was processed or is in that service's DLQ; none vanishes.
//!
//! - A request on `fare-requests` was processed when `payment.fares` has its fare with its
//!   fingerprint. (A known fare with another fingerprint is invariant 6's.)
//! - An event the service reacts to (SPEC §4, `choreography::reacts`) was processed when the
//!   service's inbox has its `event_id` for the same fare and content (fingerprint).
//! - An event the service does not react to needs nothing; nor does a message whose
//!   `event_type` header names such a type (the services skip it unread, as the header says).
//! - A message no service can process (empty, oversized, not an event, keyed by another fare)
//!   needs a dead letter.
//!
//! A dead letter counts when it names the message's exact position and holds its bytes (card
//! numbers masked), on the DLQ topic or still in the outbox. Dead letters naming positions no
//! longer kept (retention) are fine. So is an event consumed longer ago than the services'
//! `RETENTION` (`--retention`): its inbox row may have been pruned, and nothing else shows it
//! was processed.

use events_schema::choreography::{self, Service};
use events_schema::Topic;

use super::{dlq_of, was_consumed, DeadLetters, Evidence, Violation};
use crate::audit::messages::{shown, Envelope, EventMessage};
use crate::audit::topics::consumed_topics;

pub fn every_consumed_message_is_processed_or_dead_lettered(
    evidence: &Evidence<'_>,
    dead_letters: &DeadLetters,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for service in Service::ALL {
        for topic in consumed_topics(service) {
            let mut missing = |envelope: &Envelope, fare_id: Option<&str>, what: String| {
                let source = evidence.names.name(topic);
                if !dead_letters.hold(dlq_of(service), &source, envelope.position, envelope.digest)
                {
                    violations.push(Violation::new(
                        5,
                        fare_id,
                        format!(
                            "{} consumed {what} at {topic} {} but neither processed it nor \
                             dead-lettered it to {}",
                            service.name(),
                            envelope.position,
                            dlq_of(service)
                        ),
                    ));
                }
            };
            if topic == Topic::FareRequests {
                for request in &evidence.topics.requests {
                    if !was_consumed(
                        evidence.committed,
                        service,
                        topic,
                        request.envelope.position,
                    ) {
                        continue;
                    }
                    match (&request.fare, &request.envelope.unprocessable) {
                        (_, Some(reason)) => missing(
                            &request.envelope,
                            request.fare_id(),
                            format!("an unreadable request ({})", shown(reason)),
                        ),
                        (Some((fare_id, _)), None)
                            if !evidence.state.fares.contains_key(fare_id) =>
                        {
                            missing(
                                &request.envelope,
                                Some(fare_id),
                                "a request it never registered".to_owned(),
                            )
                        }
                        _ => {}
                    }
                }
                continue;
            }
            for (_, message) in evidence.topics.events.iter().filter(|(t, _)| *t == topic) {
                if !was_consumed(
                    evidence.committed,
                    service,
                    topic,
                    message.envelope.position,
                ) {
                    continue;
                }
                if let Some(what) = unprocessed(evidence, service, message) {
                    missing(&message.envelope, message.fare_id(), what);
                }
            }
        }
    }
    violations
}

/// What `message` is, when `service` left no trace of processing it; `None` when it did, or
/// has nothing to do with it.
fn unprocessed(
    evidence: &Evidence<'_>,
    service: Service,
    message: &EventMessage,
) -> Option<String> {
    if message
        .event_type_header
        .is_some_and(|event_type| !choreography::reacts(service, event_type))
    {
        return None;
    }
    if let Some(reason) = &message.envelope.unprocessable {
        return Some(format!("an unprocessable message ({})", shown(reason)));
    }
    let event = message.event.as_ref()?;
    if !choreography::reacts(service, event.event_type) {
        return None;
    }
    let recorded = evidence
        .state
        .inbox
        .get(&service)
        .and_then(|inbox| inbox.get(&event.event_id))
        .is_some_and(|row| {
            row.fare_id == event.fare_id
                && row.event_type == event.event_type.as_str()
                && row.fingerprint.is_none_or(|f| f == event.fingerprint)
        });
    let pruned = message.envelope.timestamp_ms.is_some_and(|timestamp| {
        timestamp < evidence.now_ms - evidence.retention.as_millis() as i64
    });
    (!recorded && !pruned).then(|| format!("{} {}", event.event_type, event.event_id))
}
