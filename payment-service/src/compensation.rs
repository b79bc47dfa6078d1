//! The compensations (SPEC §4 rows 4 and 6): release the pre-authorisation after a failed
//! capture, refund the charge after a failed ledger update.
//!
//! The consumer only *starts* a compensation: in the batch of `ChargeFailed` or
//! `AccountUpdateFailed`, the fare moves to `releasing` or `refunding`, due at once, to be
//! given up after the compensation budget (`COMPENSATION_BUDGET`, database clock). The
//! attempts themselves are made by the [`compensator`](crate::compensator), off the consumer's
//! path, so that a gateway that keeps refusing one fare's compensation holds up no other fare.

use std::time::Duration;

use events_schema::{Compensation, Event, EventData};
use transactional_messaging::{Disposition, Progress};
use uuid::Uuid;

use crate::batch::Batch;
use crate::fare::{Fare, FareStatus};
use crate::gateway::Operation;
use crate::saga::{fare_at, Skip};

/// What each of the two compensations is made of.
pub trait CompensationSteps {
    /// The status while it is attempted.
    fn pending(&self) -> FareStatus;
    /// The status once it succeeded.
    fn done(&self) -> FareStatus;
    /// The status once its budget was spent.
    fn given_up(&self) -> FareStatus;
    /// The gateway operation it makes.
    fn operation(&self) -> Operation;
}

impl CompensationSteps for Compensation {
    fn pending(&self) -> FareStatus {
        match self {
            Compensation::PreAuthReleased => FareStatus::Releasing,
            Compensation::PaymentRefunded => FareStatus::Refunding,
        }
    }

    fn done(&self) -> FareStatus {
        match self {
            Compensation::PreAuthReleased => FareStatus::PreAuthReleased,
            Compensation::PaymentRefunded => FareStatus::Refunded,
        }
    }

    fn given_up(&self) -> FareStatus {
        match self {
            Compensation::PreAuthReleased => FareStatus::ReleaseFailed,
            Compensation::PaymentRefunded => FareStatus::RefundFailed,
        }
    }

    fn operation(&self) -> Operation {
        match self {
            Compensation::PreAuthReleased => Operation::Release,
            Compensation::PaymentRefunded => Operation::Refund,
        }
    }
}

/// The compensation a fare in `status` is waiting for, if any.
pub fn pending_in(status: FareStatus) -> Option<Compensation> {
    [Compensation::PreAuthReleased, Compensation::PaymentRefunded]
        .into_iter()
        .find(|c| c.pending() == status)
}

/// `ChargeFailed` → release the hold.
pub fn on_charge_failed(batch: &mut Batch<'_>, event: &Event) -> Skip {
    match fare_at(batch, event, FareStatus::ChargeFailed) {
        Ok(fare) => start(
            batch,
            fare,
            Compensation::PreAuthReleased,
            event.event_id.as_uuid(),
        ),
        Err(done) => Progress::Done(done),
    }
}

/// `AccountUpdateFailed` → refund the charge.
pub fn on_account_update_failed(batch: &mut Batch<'_>, event: &Event) -> Skip {
    match fare_at(batch, event, FareStatus::Charged) {
        Ok(mut fare) => {
            if let EventData::AccountUpdateFailed(failed) = &event.data {
                fare.failure_reason = Some(format!("ledger update failed: {}", failed.reason));
            }
            start(
                batch,
                fare,
                Compensation::PaymentRefunded,
                event.event_id.as_uuid(),
            )
        }
        Err(done) => Progress::Done(done),
    }
}

/// A pre-authorisation the gateway left unanswered past the answer timeout → release whatever
/// hold it may have placed: the gateway voids the fare's authorisation (and refuses it if it
/// comes later), then `PreAuthReleased` ends the fare failed. Caused by the request.
pub fn on_pre_authorisation_unanswered(
    batch: &mut Batch<'_>,
    mut fare: Fare,
    after: Duration,
) -> Skip {
    fare.failure_reason = Some(format!(
        "pre-authorisation unanswered: no answer from the gateway within {}",
        humantime::format_duration(after)
    ));
    let cause = fare.request_event_id;
    start(batch, fare, Compensation::PreAuthReleased, cause)
}

fn start(batch: &mut Batch<'_>, mut fare: Fare, compensation: Compensation, cause: Uuid) -> Skip {
    fare.status = compensation.pending();
    fare.compensation_attempts = 0;
    fare.compensation_cause = Some(cause);
    batch.start_compensation(fare);
    Progress::Done(Disposition::Processed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_compensation_has_its_own_states_and_operation() {
        for compensation in [Compensation::PreAuthReleased, Compensation::PaymentRefunded] {
            assert_eq!(pending_in(compensation.pending()), Some(compensation));
            assert_ne!(compensation.done(), compensation.given_up());
            assert!(!compensation.done().is_terminal() && !compensation.given_up().is_terminal());
        }
        assert_eq!(
            Compensation::PreAuthReleased.operation(),
            Operation::Release
        );
        assert_eq!(Compensation::PaymentRefunded.operation(), Operation::Refund);
        assert_eq!(pending_in(FareStatus::Charged), None);
    }
}
