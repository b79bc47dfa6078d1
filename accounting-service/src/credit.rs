//! `Charged` → append a ledger entry to the customer's account → `AccountUpdated`, or
//! `AccountUpdateFailed` when the account cannot be updated (SPEC §4 row 5; the `_fail_credit`
//! markers of SPEC §5 are a business failure, not a crash or a retry loop).

use events_schema::{AccountUpdateFailed, AccountUpdated, Charged, Event, EventData};
use sqlx::PgConnection;
use transactional_messaging::{outbox, Disposition, HandleError};

use crate::ledger::{self, Credit};

pub async fn on_charged(
    conn: &mut PgConnection,
    event: &Event,
    charged: &Charged,
) -> Result<Disposition, HandleError> {
    if ledger::already_settled(&mut *conn, &event.fare_id).await? {
        return Ok(Disposition::Ignored);
    }
    let credit = Credit {
        fare_id: &event.fare_id,
        customer_id: &charged.customer_id,
        amount_minor: charged.amount_minor,
        currency: charged.currency,
        charge_event_id: event.event_id,
    };
    let data = if charged.customer_id.failure_marker().fails_credit() {
        let reason = "the customer account is closed".to_owned();
        ledger::record_failure(&mut *conn, &credit, &reason).await?;
        EventData::AccountUpdateFailed(AccountUpdateFailed {
            customer_id: charged.customer_id.clone(),
            amount_minor: charged.amount_minor,
            currency: charged.currency,
            reason,
        })
    } else {
        let entry = ledger::credit(&mut *conn, &credit).await?;
        EventData::AccountUpdated(AccountUpdated {
            customer_id: charged.customer_id.clone(),
            amount_minor: charged.amount_minor,
            currency: charged.currency,
            ledger_entry_id: entry.id,
            balance_minor: entry.balance_after_minor,
        })
    };
    outbox::enqueue_events(conn, &[Event::caused_by(event, data)]).await?;
    Ok(Disposition::Processed)
}
