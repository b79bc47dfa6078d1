//! Invariant 3: money. For every fare whose saga is over, what the gateway captured minus what
//! it refunded equals the fare's amount in the customer's ledger (0 when not credited). No
//! operation moved money twice (two approved operations of one kind for one fare, whatever
//! their idempotency keys), and every approved capture and refund is of the fare's amount.
//!
//! The flagged exception: a fare in `needs_attention` that was captured, not credited and not
//! refunded (its refund failed past its budget, `RefundFailed`) — listed for an operator, not a
//! violation. Fares still in flight are not held to the sum yet.

use std::collections::{BTreeSet, HashMap};

use super::{is_terminal, Violation};
use crate::audit::state::{Approved, State};

/// The violations, and the fares whose refund failed (fare → what to do).
pub fn money_adds_up(state: &State) -> (Vec<Violation>, HashMap<String, String>) {
    let mut violations = Vec::new();
    let mut refunds_failed = HashMap::new();
    let fares: BTreeSet<&String> = state
        .fares
        .keys()
        .chain(state.approved.keys())
        .chain(state.ledger.keys())
        .collect();
    let none = Approved::default();
    for fare_id in fares {
        let operations = state.approved.get(fare_id);
        let approved = |operation: &str| {
            operations
                .and_then(|ops| ops.get(operation))
                .unwrap_or(&none)
        };
        let (captured, refunded) = (approved("capture"), approved("refund"));
        let ledger = state.ledger.get(fare_id).copied().unwrap_or(0);
        let mut problem = |text: String| violations.push(Violation::new(3, Some(fare_id), text));
        for (operation, done) in operations.into_iter().flatten() {
            if done.count > 1 {
                problem(format!(
                    "money moved twice: {} approved {operation} operations",
                    done.count
                ));
            }
        }
        let Some(fare) = state.fares.get(fare_id) else {
            if captured.count + refunded.count > 0 || ledger != 0 {
                problem(format!(
                    "money moved for a fare payment-service never registered: captured {}, \
                     refunded {}, ledger {ledger}",
                    captured.amount_minor, refunded.amount_minor
                ));
            }
            continue;
        };
        let currency = fare.currency.as_deref().unwrap_or("");
        if let Some(amount) = fare.amount_minor {
            for (operation, done) in [("capture", captured), ("refund", refunded)] {
                let odd = [done.min_amount, done.max_amount]
                    .into_iter()
                    .flatten()
                    .find(|a| *a != amount);
                if let Some(odd) = odd {
                    problem(format!(
                        "an approved {operation} of {odd} {currency} for a fare of {amount} {currency}"
                    ));
                }
            }
            if ledger != 0 && ledger != amount {
                problem(format!(
                    "the ledger holds {ledger} {currency} for a fare of {amount} {currency}"
                ));
            }
        }
        if !is_terminal(&fare.status) {
            continue;
        }
        let net = captured.amount_minor - refunded.amount_minor;
        if fare.status == "needs_attention"
            && captured.count > 0
            && refunded.count == 0
            && ledger == 0
        {
            refunds_failed.insert(
                fare_id.clone(),
                format!(
                    "refund failed: charged {} {currency}, not credited, not refunded — refund it by hand",
                    captured.amount_minor
                ),
            );
        } else if net != ledger {
            problem(format!(
                "captured {} − refunded {} = {net} {currency}, but the ledger holds {ledger} (status {})",
                captured.amount_minor, refunded.amount_minor, fare.status
            ));
        }
    }
    (violations, refunds_failed)
}
