//! The choreography of SPEC §4 as data: which service reacts to which event, and what it may
//! emit in reply. The services dispatch by it, `fares audit` knows from it which consumed
//! messages a service must have recorded, and the diagrams are generated from it.

use crate::event_type::EventType;

/// One of the saga's two services.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Payment,
    Accounting,
}

impl Service {
    pub const ALL: [Service; 2] = [Service::Payment, Service::Accounting];

    /// The service's name: also its consumer group (plus the topic suffix) and log name.
    pub const fn name(&self) -> &'static str {
        match self {
            Service::Payment => "payment-service",
            Service::Accounting => "accounting-service",
        }
    }
}

/// One row of SPEC §4's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The event that triggers the step.
    pub on: EventType,
    /// The service that takes it.
    pub service: Service,
    /// What it does, in one local transaction with the outgoing event.
    pub does: &'static str,
    /// The events it may emit, in the order they appear in the saga.
    pub emits: &'static [EventType],
}

use EventType::*;

/// SPEC §4, row by row.
pub const STEPS: [Step; 11] = [
    Step {
        on: FareRequested,
        service: Service::Payment,
        does: "registers the fare and pre-authorises the card, or registers the rejection",
        emits: &[
            PreAuthorised,
            PreAuthFailed,
            FareRejected,
            FareCollectionFailed,
        ],
    },
    Step {
        on: PreAuthorised,
        service: Service::Payment,
        does: "captures the pre-authorised amount",
        emits: &[Charged, ChargeFailed],
    },
    Step {
        on: ChargeFailed,
        service: Service::Payment,
        does: "releases the pre-authorisation (compensation, retried within its budget)",
        emits: &[PreAuthReleased, ReleaseFailed],
    },
    Step {
        on: Charged,
        service: Service::Accounting,
        does: "appends a ledger entry to the customer's account",
        emits: &[AccountUpdated, AccountUpdateFailed],
    },
    Step {
        on: AccountUpdateFailed,
        service: Service::Payment,
        does: "refunds the charge (compensation, retried within its budget)",
        emits: &[PaymentRefunded, RefundFailed],
    },
    Step {
        on: AccountUpdated,
        service: Service::Payment,
        does: "marks the fare collected",
        emits: &[FareCollected],
    },
    Step {
        on: PreAuthFailed,
        service: Service::Payment,
        does: "marks the fare failed",
        emits: &[FareCollectionFailed],
    },
    Step {
        on: PreAuthReleased,
        service: Service::Payment,
        does: "marks the fare failed, with the release done",
        emits: &[FareCollectionFailed],
    },
    Step {
        on: PaymentRefunded,
        service: Service::Payment,
        does: "marks the fare failed, with the refund done",
        emits: &[FareCollectionFailed],
    },
    Step {
        on: RefundFailed,
        service: Service::Payment,
        does: "marks the fare needs_attention: charged, not credited, not refunded",
        emits: &[FareCollectionFailed],
    },
    Step {
        on: ReleaseFailed,
        service: Service::Payment,
        does: "marks the fare needs_attention: the hold could not be released",
        emits: &[FareCollectionFailed],
    },
];

/// Whether `service` reacts to events of `event_type` (otherwise it ignores them).
pub fn reacts(service: Service, event_type: EventType) -> bool {
    STEPS
        .iter()
        .any(|step| step.service == service && step.on == event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_but_the_outcomes_triggers_exactly_one_step() {
        for event_type in EventType::ALL {
            let steps = STEPS.iter().filter(|s| s.on == event_type).count();
            let expected = usize::from(!event_type.is_outcome() && event_type != FareRejected);
            assert_eq!(steps, expected, "{event_type}");
        }
    }

    #[test]
    fn every_event_is_emitted_by_a_step_except_the_request() {
        for event_type in EventType::ALL {
            let emitted = STEPS.iter().any(|s| s.emits.contains(&event_type));
            assert_eq!(emitted, event_type != FareRequested, "{event_type}");
        }
    }

    #[test]
    fn accounting_reacts_only_to_charged() {
        let accounting: Vec<EventType> = EventType::ALL
            .into_iter()
            .filter(|t| reacts(Service::Accounting, *t))
            .collect();
        assert_eq!(accounting, [Charged]);
    }
}
