//! The kinds of outcome a benchmark counts, read from the terminal event on `fare-outcomes`.

use events_schema::{Compensation, EventData};
use serde::Serialize;

/// How a fare ended, as its outcome event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// `FareCollected`.
    Collected,
    /// `FareCollectionFailed` with nothing to compensate (pre-authorisation declined, or the
    /// request rejected).
    Failed,
    /// `FareCollectionFailed` after the hold was released.
    FailedReleased,
    /// `FareCollectionFailed` after the charge was refunded.
    FailedRefunded,
    /// `FareCollectionFailed` with `needs_attention`: a compensation was given up.
    NeedsAttention,
}

impl OutcomeKind {
    /// Every kind, in report order.
    pub const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Collected,
        OutcomeKind::Failed,
        OutcomeKind::FailedReleased,
        OutcomeKind::FailedRefunded,
        OutcomeKind::NeedsAttention,
    ];

    /// The name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Collected => "collected",
            OutcomeKind::Failed => "failed",
            OutcomeKind::FailedReleased => "failed_released",
            OutcomeKind::FailedRefunded => "failed_refunded",
            OutcomeKind::NeedsAttention => "needs_attention",
        }
    }

    /// The kind of an outcome event; `None` for an event that is not an outcome.
    pub fn of(data: &EventData) -> Option<OutcomeKind> {
        match data {
            EventData::FareCollected(_) => Some(OutcomeKind::Collected),
            EventData::FareCollectionFailed(failed) if failed.needs_attention => {
                Some(OutcomeKind::NeedsAttention)
            }
            EventData::FareCollectionFailed(failed) => Some(
                if failed
                    .compensations
                    .contains(&Compensation::PaymentRefunded)
                {
                    OutcomeKind::FailedRefunded
                } else if failed
                    .compensations
                    .contains(&Compensation::PreAuthReleased)
                {
                    OutcomeKind::FailedReleased
                } else {
                    OutcomeKind::Failed
                },
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_schema::{Currency, CustomerId, FareCollected, FareCollectionFailed};

    fn failed(compensations: Vec<Compensation>, needs_attention: bool) -> EventData {
        FareCollectionFailed {
            customer_id: None,
            amount_minor: None,
            currency: None,
            reason: "declined".into(),
            compensations,
            needs_attention,
        }
        .into()
    }

    #[test]
    fn each_outcome_has_its_kind() {
        let collected: EventData = FareCollected {
            customer_id: CustomerId::parse("3").unwrap(),
            amount_minor: 2000,
            currency: Currency::parse("USD").unwrap(),
        }
        .into();
        assert_eq!(OutcomeKind::of(&collected), Some(OutcomeKind::Collected));
        assert_eq!(
            OutcomeKind::of(&failed(vec![], false)),
            Some(OutcomeKind::Failed)
        );
        assert_eq!(
            OutcomeKind::of(&failed(vec![Compensation::PreAuthReleased], false)),
            Some(OutcomeKind::FailedReleased)
        );
        assert_eq!(
            OutcomeKind::of(&failed(vec![Compensation::PaymentRefunded], false)),
            Some(OutcomeKind::FailedRefunded)
        );
        assert_eq!(
            OutcomeKind::of(&failed(vec![], true)),
            Some(OutcomeKind::NeedsAttention)
        );
    }
}
