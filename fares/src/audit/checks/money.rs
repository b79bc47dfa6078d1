//! Invariant 3: money. For every fare whose saga is over, what the gateway captured minus what
//! it refunded equals the fare's amount in the customer's ledger (0 when not credited). No
//! operation moved money twice (two approved operations of one kind for one fare, whatever
//! their idempotency keys), and every approved capture and refund is of the fare's amount.
//!
//! The flagged exception: a fare in `needs_attention` that was captured, not credited and not
//! refunded (its refund failed past its budget, `RefundFailed`) — listed for an operator, not a
//! violation. Fares still in flight are not held to the sum yet.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{is_terminal, Violation};
use crate::audit::state::{Approved, FareRow, State};
use crate::money::format_raw;

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
    let no_operations = BTreeMap::new();
    for fare_id in fares {
        let money = Money {
            operations: state.approved.get(fare_id).unwrap_or(&no_operations),
            ledger: state.ledger.get(fare_id).copied().unwrap_or(0),
        };
        let mut problems = money.moved_twice();
        match state.fares.get(fare_id) {
            None if money.moved() => problems.push(format!(
                "money moved for a fare payment-service never registered: captured {}, \
                 refunded {}, ledger {}",
                money.captured().amount_minor,
                money.refunded().amount_minor,
                money.ledger
            )),
            None => {}
            Some(fare) => {
                problems.extend(money.amounts_differ_from(fare));
                if money.refund_failed(fare) {
                    let charged = format_raw(money.captured().amount_minor, currency(fare));
                    refunds_failed.insert(
                        fare_id.clone(),
                        format!(
                            "refund failed: charged {charged}, not credited, not refunded — \
                             refund it by hand"
                        ),
                    );
                } else if is_terminal(&fare.status) {
                    problems.extend(money.sum_differs_from_ledger(fare));
                }
            }
        }
        violations.extend(
            problems
                .into_iter()
                .map(|problem| Violation::new(3, Some(fare_id), problem)),
        );
    }
    (violations, refunds_failed)
}

/// The money that moved for one fare.
struct Money<'a> {
    /// operation → the approved ones.
    operations: &'a BTreeMap<String, Approved>,
    ledger: i64,
}

const NONE: Approved = Approved {
    count: 0,
    amount_minor: 0,
    min_amount: None,
    max_amount: None,
    reference: None,
    latest_at: None,
};

fn currency(fare: &FareRow) -> &str {
    fare.currency.as_deref().unwrap_or("")
}

impl Money<'_> {
    fn captured(&self) -> &Approved {
        self.operations.get("capture").unwrap_or(&NONE)
    }

    fn refunded(&self) -> &Approved {
        self.operations.get("refund").unwrap_or(&NONE)
    }

    fn moved(&self) -> bool {
        self.captured().count + self.refunded().count > 0 || self.ledger != 0
    }

    /// Two approved operations of one kind: the idempotency key did not hold.
    fn moved_twice(&self) -> Vec<String> {
        self.operations
            .iter()
            .filter(|(_, done)| done.count > 1)
            .map(|(operation, done)| {
                format!(
                    "money moved twice: {} approved {operation} operations",
                    done.count
                )
            })
            .collect()
    }

    /// Approved captures and refunds, and the ledger entry, of another amount than the fare's.
    fn amounts_differ_from(&self, fare: &FareRow) -> Vec<String> {
        let Some(amount) = fare.amount_minor else {
            return Vec::new();
        };
        let shown = |minor| format_raw(minor, currency(fare));
        let mut problems = Vec::new();
        for (operation, done) in [("capture", self.captured()), ("refund", self.refunded())] {
            let odd = [done.min_amount, done.max_amount]
                .into_iter()
                .flatten()
                .find(|a| *a != amount);
            if let Some(odd) = odd {
                problems.push(format!(
                    "an approved {operation} of {} for a fare of {}",
                    shown(odd),
                    shown(amount)
                ));
            }
        }
        if self.ledger != 0 && self.ledger != amount {
            problems.push(format!(
                "the ledger holds {} for a fare of {}",
                shown(self.ledger),
                shown(amount)
            ));
        }
        problems
    }

    /// SPEC §4's flagged exception: charged, not credited, not refunded, needs attention.
    fn refund_failed(&self, fare: &FareRow) -> bool {
        fare.status == "needs_attention"
            && self.captured().count > 0
            && self.refunded().count == 0
            && self.ledger == 0
    }

    /// Captured − refunded ≠ the ledger amount.
    fn sum_differs_from_ledger(&self, fare: &FareRow) -> Option<String> {
        let (captured, refunded) = (self.captured().amount_minor, self.refunded().amount_minor);
        let shown = |minor| format_raw(minor, currency(fare));
        (captured - refunded != self.ledger).then(|| {
            format!(
                "captured {} − refunded {} = {}, but the ledger holds {} (status {})",
                shown(captured),
                shown(refunded),
                shown(captured - refunded),
                shown(self.ledger),
                fare.status
            )
        })
    }
}
