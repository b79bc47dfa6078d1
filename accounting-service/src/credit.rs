//! `Charged` → append a ledger entry to the customer's account → `AccountUpdated`, or
//! `AccountUpdateFailed` when the account cannot be updated (SPEC §4 row 5; the `_fail_credit`
//! markers of SPEC §5 are a business failure, not a crash or a retry loop). A batch of credits
//! costs a handful of statements, whatever its size.

use events_schema::{AccountUpdateFailed, AccountUpdated, Event, EventData};
use sqlx::PgConnection;
use transactional_messaging::{Disposition, HandleError, OutboxMessage};

use crate::ledger::{self, Credit};

/// Why a `_fail_credit` customer's account refuses the credit.
const ACCOUNT_CLOSED: &str = "the customer account is closed";

/// The `Charged` events of a batch (of distinct fares), in order: one disposition each.
pub async fn on_charged(
    conn: &mut PgConnection,
    events: &[&Event],
    outbox: &mut Vec<OutboxMessage>,
) -> Result<Vec<Disposition>, HandleError> {
    let fares: Vec<String> = events
        .iter()
        .map(|e| e.fare_id.as_str().to_owned())
        .collect();
    let settled = ledger::settled(&mut *conn, &fares).await?;
    let mut credits = Vec::new();
    let mut refused = Vec::new();
    let mut dispositions = Vec::with_capacity(events.len());
    for event in events {
        let EventData::Charged(charged) = &event.data else {
            dispositions.push(Disposition::DeadLettered(format!(
                "accounting-service has no step for {}",
                event.event_type()
            )));
            continue;
        };
        if settled.contains(event.fare_id.as_str()) {
            dispositions.push(Disposition::Ignored);
            continue;
        }
        let credit = Credit {
            fare_id: event.fare_id.clone(),
            customer_id: charged.customer_id.clone(),
            amount_minor: charged.amount_minor,
            currency: charged.currency,
            charge_event_id: event.event_id,
        };
        if charged.customer_id.failure_marker().fails_credit() {
            refused.push(((*event).clone(), credit));
        } else {
            credits.push(((*event).clone(), credit));
        }
        dispositions.push(Disposition::Processed);
    }
    let to_credit: Vec<Credit> = credits.iter().map(|(_, c)| c.clone()).collect();
    let entries = ledger::credit_many(&mut *conn, &to_credit).await?;
    for ((event, credit), entry) in credits.iter().zip(entries) {
        let data = EventData::AccountUpdated(AccountUpdated {
            customer_id: credit.customer_id.clone(),
            amount_minor: credit.amount_minor,
            currency: credit.currency,
            ledger_entry_id: entry.id,
            balance_minor: entry.balance_after_minor,
        });
        outbox.push(OutboxMessage::event(&Event::caused_by(event, data)));
    }
    let to_refuse: Vec<Credit> = refused.iter().map(|(_, c)| c.clone()).collect();
    ledger::record_failures(conn, &to_refuse, ACCOUNT_CLOSED).await?;
    for (event, credit) in &refused {
        let data = EventData::AccountUpdateFailed(AccountUpdateFailed {
            customer_id: credit.customer_id.clone(),
            amount_minor: credit.amount_minor,
            currency: credit.currency,
            reason: ACCOUNT_CLOSED.to_owned(),
        });
        outbox.push(OutboxMessage::event(&Event::caused_by(event, data)));
    }
    Ok(dispositions)
}
