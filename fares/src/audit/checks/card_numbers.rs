//! Invariant 7: no raw card number (SPEC §3's definition, `events_schema::card`) in any message
//! on `payment-events`, `accounting-events`, `fare-outcomes` or either DLQ (key, payload,
//! header values), in any table of either schema, in a read-API answer or a log line given
//! with `--logs`. `fare-requests` is written by riders and is not scanned: the services must
//! not repeat what it holds.

use super::{Evidence, Violation};

pub fn no_card_number_anywhere(evidence: &Evidence<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for found in &evidence.topics.card_numbers {
        violations.push(Violation::new(
            7,
            found.fare_id.as_deref(),
            format!(
                "a raw card number in the {} of the message at {} {}",
                found.places.join(", "),
                evidence.names.name(found.topic),
                found.position
            ),
        ));
    }
    for found in evidence.tables {
        violations.push(Violation::new(
            7,
            found.fare_id.as_deref(),
            format!("a raw card number in {}.{}", found.table, found.column),
        ));
    }
    for (service, fare_id) in &evidence.read_apis.card_numbers {
        violations.push(Violation::new(
            7,
            Some(fare_id),
            format!("a raw card number in the {service} read API's answer to GET /fares/{fare_id}"),
        ));
    }
    for found in evidence.logs {
        violations.push(Violation::new(
            7,
            None,
            format!(
                "a raw card number in {} line {}",
                found.file.display(),
                found.line
            ),
        ));
    }
    violations
}
