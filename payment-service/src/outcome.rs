//! The fare's one terminal outcome on `fare-outcomes` (SPEC §4 rows 7–8): `FareCollected` after
//! the ledger update, `FareCollectionFailed` after a declined pre-authorisation or a completed
//! (or failed) compensation, with the reason and the compensations done.

use events_schema::{Event, EventData, FareCollected, FareCollectionFailed};
use transactional_messaging::{Disposition, FareResult, HandleError, Progress};

use crate::batch::Batch;
use crate::fare::FareStatus;
use crate::saga::{fare_at, Skip};

/// `AccountUpdated` → the fare is collected.
pub fn on_account_updated(batch: &mut Batch<'_>, event: &Event) -> Result<Skip, HandleError> {
    let mut fare = match fare_at(batch, event, FareStatus::Charged) {
        Ok(fare) => fare,
        Err(done) => return Ok(Progress::Done(done)),
    };
    let charge = fare.charge()?;
    fare.status = FareStatus::Collected;
    let data = EventData::FareCollected(FareCollected {
        customer_id: charge.customer_id,
        amount_minor: charge.amount_minor,
        currency: charge.currency,
    });
    batch.emit_outcome(&Event::caused_by(event, data), FareResult::Collected, &fare);
    tracing::debug!(fare_id = %fare.fare_id, "fare collected");
    batch.save(fare);
    Ok(Progress::Done(Disposition::Processed))
}

/// `PreAuthFailed`, `PreAuthReleased`, `PaymentRefunded`, `RefundFailed` or `ReleaseFailed` →
/// the fare failed (and needs attention after a compensation given up).
pub fn on_saga_failed(batch: &mut Batch<'_>, event: &Event) -> Result<Skip, HandleError> {
    let (expected, terminal) = match &event.data {
        EventData::PreAuthFailed(_) => (FareStatus::PreAuthFailed, FareStatus::Failed),
        EventData::PreAuthReleased(_) => (FareStatus::PreAuthReleased, FareStatus::Failed),
        EventData::PaymentRefunded(_) => (FareStatus::Refunded, FareStatus::Failed),
        EventData::RefundFailed(_) => (FareStatus::RefundFailed, FareStatus::NeedsAttention),
        EventData::ReleaseFailed(_) => (FareStatus::ReleaseFailed, FareStatus::NeedsAttention),
        other => {
            return Err(HandleError::Permanent(format!(
                "{} does not end a saga",
                other.event_type()
            )))
        }
    };
    let mut fare = match fare_at(batch, event, expected) {
        Ok(fare) => fare,
        Err(done) => return Ok(Progress::Done(done)),
    };
    let charge = fare.charge()?;
    fare.status = terminal;
    let needs_attention = terminal == FareStatus::NeedsAttention;
    let mut reason = fare
        .failure_reason
        .clone()
        .unwrap_or_else(|| "fare collection failed".to_owned());
    if let Some(what) = needs_attention
        .then(|| attention_needed(&event.data))
        .flatten()
    {
        reason = format!("{reason}; {what}");
        fare.failure_reason = Some(reason.clone());
    }
    let data = EventData::FareCollectionFailed(FareCollectionFailed {
        customer_id: Some(charge.customer_id),
        amount_minor: Some(charge.amount_minor),
        currency: Some(charge.currency),
        reason,
        compensations: fare.compensations.clone(),
        needs_attention,
    });
    let result = match needs_attention {
        true => FareResult::NeedsAttention,
        false => FareResult::Failed,
    };
    batch.emit_outcome(&Event::caused_by(event, data), result, &fare);
    tracing::info!(fare_id = %fare.fare_id, status = fare.status.as_str(), "fare collection failed");
    batch.save(fare);
    Ok(Progress::Done(Disposition::Processed))
}

/// What an operator must do for a fare whose compensation was given up.
fn attention_needed(data: &EventData) -> Option<&'static str> {
    match data {
        EventData::RefundFailed(_) => Some(
            "refund failed after its retry budget: the customer was charged and needs a manual refund",
        ),
        EventData::ReleaseFailed(_) => Some(
            "release failed after its retry budget: the hold stays on the card until it is released by hand or expires",
        ),
        _ => None,
    }
}
