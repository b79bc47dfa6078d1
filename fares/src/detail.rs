//! One line of "key detail" per event type: amounts, gateway references, reasons and
//! compensations — what an operator reads in a timeline or an outcome line.

use events_schema::{Compensation, EventData, FareCollectionFailed};

use crate::money::format_amount;

/// The detail of one event's data, e.g. `20.00 USD held (authorisation auth_1)`.
pub fn describe(data: &EventData) -> String {
    match data {
        EventData::FareRequested(d) => format!(
            "customer {} asks for {}",
            d.customer_id,
            format_amount(d.amount_minor, d.currency)
        ),
        EventData::FareRejected(d) => format!("rejected: {}", d.reasons.join("; ")),
        EventData::PreAuthorised(d) => format!(
            "{} held (authorisation {})",
            format_amount(d.amount_minor, d.currency),
            d.authorisation_id
        ),
        EventData::PreAuthFailed(d) => format!(
            "{} declined: {}",
            format_amount(d.amount_minor, d.currency),
            d.reason
        ),
        EventData::Charged(d) => format!(
            "{} captured (charge {})",
            format_amount(d.amount_minor, d.currency),
            d.charge_id
        ),
        EventData::ChargeFailed(d) => format!(
            "{} not captured: {} (authorisation {})",
            format_amount(d.amount_minor, d.currency),
            d.reason,
            d.authorisation_id
        ),
        EventData::PreAuthReleased(d) => format!(
            "compensation: {} hold released (authorisation {})",
            format_amount(d.amount_minor, d.currency),
            d.authorisation_id
        ),
        EventData::PaymentRefunded(d) => format!(
            "compensation: {} refunded (refund {}, {})",
            format_amount(d.amount_minor, d.currency),
            d.refund_id,
            attempts(d.attempts)
        ),
        EventData::RefundFailed(d) => format!(
            "{} NOT refunded after {}: {} (charge {})",
            format_amount(d.amount_minor, d.currency),
            attempts(d.attempts),
            d.reason,
            d.charge_id
        ),
        EventData::ReleaseFailed(d) => format!(
            "{} hold NOT released after {}: {} (authorisation {})",
            format_amount(d.amount_minor, d.currency),
            attempts(d.attempts),
            d.reason,
            d.authorisation_id
        ),
        EventData::AccountUpdated(d) => format!(
            "{} credited to customer {} (ledger entry {}, balance {})",
            format_amount(d.amount_minor, d.currency),
            d.customer_id,
            d.ledger_entry_id,
            format_amount(d.balance_minor, d.currency)
        ),
        EventData::AccountUpdateFailed(d) => format!(
            "{} not credited: {}",
            format_amount(d.amount_minor, d.currency),
            d.reason
        ),
        EventData::FareCollected(d) => format!(
            "{} collected from customer {}",
            format_amount(d.amount_minor, d.currency),
            d.customer_id
        ),
        EventData::FareCollectionFailed(d) => describe_failure(d),
    }
}

/// `card declined — compensations: pre_auth_released`, with the amount when known and a
/// `NEEDS ATTENTION` prefix when an operator must act.
pub fn describe_failure(d: &FareCollectionFailed) -> String {
    let mut text = String::new();
    if d.needs_attention {
        text.push_str("NEEDS ATTENTION: ");
    }
    if let (Some(amount), Some(currency)) = (d.amount_minor, d.currency) {
        text.push_str(&format!(
            "{} not collected: ",
            format_amount(amount, currency)
        ));
    }
    text.push_str(&d.reason);
    text.push_str(" — compensations: ");
    text.push_str(&compensations(&d.compensations));
    text
}

/// `pre_auth_released, payment_refunded`, or `none`.
pub fn compensations(list: &[Compensation]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(|c| match c {
            Compensation::PreAuthReleased => "pre_auth_released",
            Compensation::PaymentRefunded => "payment_refunded",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{n} attempts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_schema::*;

    fn customer() -> CustomerId {
        CustomerId::parse("3").unwrap()
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn describes_every_event_type() {
        let cases: Vec<(EventData, &str)> = vec![
            (
                FareRequested {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    payment_token: "tok_visa".into(),
                }
                .into(),
                "customer 3 asks for 20.00 USD",
            ),
            (
                FareRejected {
                    reasons: vec!["data.amount_minor must be…".into(), "data.currency…".into()],
                }
                .into(),
                "rejected: data.amount_minor must be…; data.currency…",
            ),
            (
                PreAuthorised {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    authorisation_id: "auth_1".into(),
                }
                .into(),
                "20.00 USD held (authorisation auth_1)",
            ),
            (
                PreAuthFailed {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    reason: "card declined".into(),
                }
                .into(),
                "20.00 USD declined: card declined",
            ),
            (
                Charged {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    authorisation_id: "auth_1".into(),
                    charge_id: "ch_1".into(),
                }
                .into(),
                "20.00 USD captured (charge ch_1)",
            ),
            (
                ChargeFailed {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    authorisation_id: "auth_1".into(),
                    reason: "capture declined".into(),
                }
                .into(),
                "20.00 USD not captured: capture declined (authorisation auth_1)",
            ),
            (
                PreAuthReleased {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    authorisation_id: "auth_1".into(),
                }
                .into(),
                "compensation: 20.00 USD hold released (authorisation auth_1)",
            ),
            (
                PaymentRefunded {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    charge_id: "ch_1".into(),
                    refund_id: "re_1".into(),
                    attempts: 1,
                }
                .into(),
                "compensation: 20.00 USD refunded (refund re_1, 1 attempt)",
            ),
            (
                RefundFailed {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    charge_id: "ch_1".into(),
                    attempts: 5,
                    reason: "gateway refused".into(),
                }
                .into(),
                "20.00 USD NOT refunded after 5 attempts: gateway refused (charge ch_1)",
            ),
            (
                ReleaseFailed {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    authorisation_id: "auth_1".into(),
                    attempts: 9,
                    reason: "release refused".into(),
                }
                .into(),
                "20.00 USD hold NOT released after 9 attempts: release refused (authorisation auth_1)",
            ),
            (
                AccountUpdated {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    ledger_entry_id: 17,
                    balance_minor: 4000,
                }
                .into(),
                "20.00 USD credited to customer 3 (ledger entry 17, balance 40.00 USD)",
            ),
            (
                AccountUpdateFailed {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                    reason: "account closed".into(),
                }
                .into(),
                "20.00 USD not credited: account closed",
            ),
            (
                FareCollected {
                    customer_id: customer(),
                    amount_minor: 2000,
                    currency: usd(),
                }
                .into(),
                "20.00 USD collected from customer 3",
            ),
            (
                FareCollectionFailed {
                    customer_id: Some(customer()),
                    amount_minor: Some(2000),
                    currency: Some(usd()),
                    reason: "capture declined".into(),
                    compensations: vec![Compensation::PreAuthReleased],
                    needs_attention: false,
                }
                .into(),
                "20.00 USD not collected: capture declined — compensations: pre_auth_released",
            ),
        ];
        let covered: std::collections::HashSet<EventType> =
            cases.iter().map(|(d, _)| d.event_type()).collect();
        assert_eq!(
            covered.len(),
            EventType::ALL.len(),
            "every event type has a case"
        );
        for (data, expected) in cases {
            assert_eq!(describe(&data), expected, "{}", data.event_type());
        }
    }

    #[test]
    fn failure_without_amount_and_needing_attention() {
        let rejected = FareCollectionFailed {
            customer_id: None,
            amount_minor: None,
            currency: None,
            reason: "invalid request".into(),
            compensations: vec![],
            needs_attention: false,
        };
        assert_eq!(
            describe_failure(&rejected),
            "invalid request — compensations: none"
        );
        let stuck = FareCollectionFailed {
            customer_id: Some(customer()),
            amount_minor: Some(500),
            currency: Some(Currency::parse("JPY").unwrap()),
            reason: "refund failed".into(),
            compensations: vec![],
            needs_attention: true,
        };
        assert_eq!(
            describe_failure(&stuck),
            "NEEDS ATTENTION: 500 JPY not collected: refund failed — compensations: none"
        );
        assert_eq!(
            compensations(&[Compensation::PreAuthReleased, Compensation::PaymentRefunded]),
            "pre_auth_released, payment_refunded"
        );
    }
}
