//! Invariant 6: a second `FareRequested` with the same `fare_id` never starts a second saga.
//! An identical one is ignored; a different one — a request on `fare-requests` for a registered
//! fare whose fingerprint differs from the registered one — must be in payment-service's DLQ
//! once consumed. And the fare's saga starts once: its first steps (`PreAuthorised`,
//! `PreAuthFailed`, `FareRejected`, from SPEC §4's table) are not of two kinds. (Two of one
//! kind are invariant 2's.)

use std::collections::BTreeMap;

use events_schema::choreography::{Service, STEPS};
use events_schema::{EventType, Topic};

use super::{dlq_of, was_consumed, DeadLetters, Evidence, Trail, Violation};

pub fn a_second_request_never_starts_a_second_saga(
    evidence: &Evidence<'_>,
    trails: &BTreeMap<String, Trail>,
    dead_letters: &DeadLetters,
) -> Vec<Violation> {
    let mut violations = conflicting_requests_are_dead_lettered(evidence, dead_letters);
    violations.extend(sagas_start_once(trails));
    violations
}

fn conflicting_requests_are_dead_lettered(
    evidence: &Evidence<'_>,
    dead_letters: &DeadLetters,
) -> Vec<Violation> {
    let source = evidence.names.name(Topic::FareRequests);
    let dlq = dlq_of(Service::Payment);
    let mut violations = Vec::new();
    for request in &evidence.topics.requests {
        let Some((fare_id, fingerprint)) = &request.fare else {
            continue;
        };
        let position = request.envelope.position;
        let conflicting = evidence
            .state
            .fares
            .get(fare_id)
            .is_some_and(|fare| fare.request_fingerprint != *fingerprint);
        if conflicting
            && was_consumed(
                evidence.committed,
                Service::Payment,
                Topic::FareRequests,
                position,
            )
            && !dead_letters.hold(dlq, &source, position, request.envelope.digest)
        {
            violations.push(Violation::new(
                6,
                Some(fare_id),
                format!(
                    "a second, different request at {} {position} was consumed but is not in {dlq}",
                    Topic::FareRequests
                ),
            ));
        }
    }
    violations
}

/// The first events of a saga: what SPEC §4's `FareRequested` step emits before an outcome.
fn saga_starts() -> Vec<EventType> {
    STEPS
        .iter()
        .filter(|step| step.on == EventType::FareRequested)
        .flat_map(|step| step.emits.iter().copied())
        .filter(|event_type| !event_type.is_outcome())
        .collect()
}

fn sagas_start_once(trails: &BTreeMap<String, Trail>) -> Vec<Violation> {
    let starts = saga_starts();
    let mut violations = Vec::new();
    for (fare_id, trail) in trails {
        let started: Vec<String> = starts
            .iter()
            .filter_map(|t| trail.events.get(t).map(|ids| (t, ids)))
            .flat_map(|(t, ids)| ids.iter().map(move |id| format!("{t} {id}")))
            .collect();
        let kinds = starts
            .iter()
            .filter(|t| trail.events.contains_key(t))
            .count();
        if kinds > 1 {
            violations.push(Violation::new(
                6,
                Some(fare_id),
                format!("its saga started more than once: {}", started.join(", ")),
            ));
        }
    }
    violations
}
