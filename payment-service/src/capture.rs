//! `PreAuthorised` → capture the pre-authorised amount (SPEC §4 row 3): `Charged` or
//! `ChargeFailed`. The capture is asked of the gateway outside any transaction; its answer is
//! recorded by [`on_answer`], if the fare is still waiting for it.

use events_schema::{ChargeFailed, Charged, Event, EventData};
use transactional_messaging::{Disposition, HandleError, Progress};

use crate::batch::Batch;
use crate::fare::FareStatus;
use crate::gateway::{GatewayRequest, Operation};
use crate::saga::{fare_at, Reply, Skip};

/// `PreAuthorised`: ask for the capture.
pub fn on_pre_authorised(batch: &mut Batch<'_>, event: &Event) -> Result<Skip, HandleError> {
    let fare = match fare_at(batch, event, FareStatus::PreAuthorised) {
        Ok(fare) => fare,
        Err(done) => return Ok(Progress::Done(done)),
    };
    let call = fare.charge()?.request(
        Operation::Capture,
        &fare.fare_id,
        None,
        fare.authorisation_id.clone(),
    );
    Ok(Progress::Call(call))
}

/// The gateway's answer to the capture asked for on `event`. A capture left unanswered past
/// the answer timeout fails the charge like a decline: the hold is then released, and the
/// gateway refuses that release if the capture did happen (the fare then needs attention).
pub fn on_answer(
    batch: &mut Batch<'_>,
    event: &Event,
    request: &GatewayRequest,
    reply: &Reply,
) -> Skip {
    let mut fare = match fare_at(batch, event, FareStatus::PreAuthorised) {
        Ok(fare) => fare,
        Err(done) => return Progress::Done(done),
    };
    let authorisation_id = request.reference.clone().unwrap_or_default();
    let answer = match reply {
        Reply::Answered(answer) => answer.clone(),
        Reply::Unanswered(after) => Err(format!(
            "no answer from the gateway within {}",
            humantime::format_duration(*after)
        )),
    };
    let data = match answer {
        Ok(charge_id) => {
            fare.status = FareStatus::Charged;
            fare.charge_id = Some(charge_id.clone());
            EventData::Charged(Charged {
                customer_id: request.customer_id.clone(),
                amount_minor: request.amount_minor,
                currency: request.currency,
                authorisation_id,
                charge_id,
            })
        }
        Err(reason) => {
            fare.status = FareStatus::ChargeFailed;
            fare.failure_reason = Some(format!("capture declined: {reason}"));
            EventData::ChargeFailed(ChargeFailed {
                customer_id: request.customer_id.clone(),
                amount_minor: request.amount_minor,
                currency: request.currency,
                authorisation_id,
                reason,
            })
        }
    };
    batch.emit(&Event::caused_by(event, data));
    batch.save(fare);
    Progress::Done(Disposition::Processed)
}
