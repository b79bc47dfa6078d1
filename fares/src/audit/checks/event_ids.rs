//! Invariant 2: per fare and event type, at most one distinct `event_id` on `payment-events`,
//! `accounting-events` and `fare-outcomes` (a redelivered event keeps its id). `FareRequested`
//! is left out: riders may send a request twice.

use std::collections::BTreeMap;

use super::{Trail, Violation};

pub fn one_event_id_per_fare_and_type(trails: &BTreeMap<String, Trail>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (fare_id, trail) in trails {
        for (event_type, ids) in &trail.events {
            if ids.len() > 1 {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                violations.push(Violation::new(
                    2,
                    Some(fare_id),
                    format!(
                        "{} distinct {event_type} events: {}",
                        ids.len(),
                        ids.join(", ")
                    ),
                ));
            }
        }
    }
    violations
}
