//! Invariant 4: no pre-authorisation is still held once the fare is terminal — an approved
//! `pre_authorise` needs an approved `capture` or `release`. The flagged exception: a fare in
//! `needs_attention` whose release failed past its budget (`ReleaseFailed`), listed for an
//! operator.
//!
//! A hold for a fare payment-service has not registered is a violation only once it is older
//! than `--stuck-after`: the gateway records the pre-authorisation outside the service's
//! transaction, which commits the fare a moment later — or rolls back and registers it when
//! the request is delivered again.

use std::collections::HashMap;
use std::time::Duration;

use super::{is_terminal, Violation};
use crate::audit::state::State;
use crate::money::format_raw;

/// The violations, and the fares whose release failed (fare → what to do).
pub fn no_hold_outlives_its_fare(
    state: &State,
    stuck_after: Duration,
) -> (Vec<Violation>, HashMap<String, String>) {
    let mut violations = Vec::new();
    let mut releases_failed = HashMap::new();
    let mut fares: Vec<_> = state.approved.iter().collect();
    fares.sort_by(|a, b| a.0.cmp(b.0));
    for (fare_id, operations) in fares {
        let Some(hold) = operations.get("pre_authorise") else {
            continue;
        };
        if operations.contains_key("capture") || operations.contains_key("release") {
            continue;
        }
        let authorisation = hold.reference.as_deref().unwrap_or("(no reference)");
        match state.fares.get(fare_id) {
            Some(fare) if fare.status == "needs_attention" => {
                releases_failed.insert(
                    fare_id.clone(),
                    format!(
                        "release failed: the hold {authorisation} of {} is still on the card — \
                         release it by hand",
                        format_raw(hold.amount_minor, fare.currency.as_deref().unwrap_or(""))
                    ),
                );
            }
            Some(fare) if is_terminal(&fare.status) => violations.push(Violation::new(
                4,
                Some(fare_id),
                format!(
                    "pre-authorisation {authorisation} still held though the fare is {}",
                    fare.status
                ),
            )),
            Some(_) => {}
            None => {
                let age = state
                    .taken_at
                    .zip(hold.latest_at)
                    .map(|(now, at)| Duration::try_from(now - at).unwrap_or_default());
                if age.is_none_or(|age| age >= stuck_after) {
                    violations.push(Violation::new(
                        4,
                        Some(fare_id),
                        format!(
                            "pre-authorisation {authorisation} held for a fare payment-service \
                             never registered"
                        ),
                    ));
                }
            }
        }
    }
    (violations, releases_failed)
}
