//! One saga's timeline, merged from the two services' read APIs (pure functions).
//!
//! Sources: the fare's registration in the payment-service (which stands in for the
//! `FareRequested` itself, which no service re-emits), and the events each service emitted
//! (`emitted[].event`, from its outbox). Events are de-duplicated on `event_id` and ordered by
//! cause first, then by `occurred_at`: an event never appears before the event that caused
//! it, even when clocks or the millisecond resolution say otherwise.

use std::collections::HashSet;

use events_schema::{timestamp, Event};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::detail::describe;
use crate::money::format_raw;
use crate::services::list_items;

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// `occurred_at` of the event (for the request: when the payment-service received it).
    #[serde(serialize_with = "serialize_time")]
    pub occurred_at: Option<OffsetDateTime>,
    /// Who wrote it: `rider`, `payment` or `accounting`.
    pub service: String,
    /// The envelope's `event_type`.
    pub event_type: String,
    /// The envelope's `event_id`.
    pub event_id: String,
    /// The envelope's `causation_id`, when known.
    pub causation_id: Option<String>,
    /// The key detail, as [`describe`] writes it.
    pub detail: String,
    /// False while the event is still in the service's outbox, not yet on its topic.
    pub published: bool,
    /// The full event JSON (`null` for the request, which only its topic holds).
    pub event: Value,
}

/// As events write it: `2026-11-27T08:00:00.123Z`, or `null`.
fn serialize_time<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&timestamp::format(*t)),
        None => s.serialize_none(),
    }
}

/// Every event of the fare from both services' views, de-duplicated and in causal order.
/// `accounting` is `None` when the accounting-service has not heard of the fare.
pub fn merge(payment: &Value, accounting: Option<&Value>) -> Vec<Entry> {
    let mut entries = Vec::new();
    entries.extend(request_entry(payment));
    entries.extend(emitted_entries(payment, "payment"));
    if let Some(accounting) = accounting {
        entries.extend(emitted_entries(accounting, "accounting"));
    }
    order(dedupe(entries))
}

/// The first occurrence of each `event_id`, in input order.
pub fn dedupe(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|e| seen.insert(e.event_id.clone()))
        .collect()
}

/// Causes before effects; among events whose causes are all placed, the earliest
/// `occurred_at` first (unknown times last), then input order.
pub fn order(entries: Vec<Entry>) -> Vec<Entry> {
    let ids: HashSet<&str> = entries.iter().map(|e| e.event_id.as_str()).collect();
    let waits_for = |e: &Entry| -> Option<String> {
        e.causation_id
            .as_deref()
            .filter(|cause| *cause != e.event_id && ids.contains(cause))
            .map(str::to_owned)
    };
    let causes: Vec<Option<String>> = entries.iter().map(waits_for).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut remaining: Vec<usize> = (0..entries.len()).collect();
    let mut order = Vec::with_capacity(entries.len());
    while !remaining.is_empty() {
        let ready = |i: &&usize| causes[**i].as_ref().is_none_or(|c| placed.contains(c));
        let key = |i: &&usize| {
            let t = entries[**i].occurred_at;
            (t.is_none(), t, **i)
        };
        // A cycle of causes cannot happen with real events; fall back to time order then.
        let next = remaining
            .iter()
            .filter(ready)
            .min_by_key(key)
            .or_else(|| remaining.iter().min_by_key(key))
            .copied()
            .expect("remaining is not empty");
        remaining.retain(|i| *i != next);
        placed.insert(entries[next].event_id.clone());
        order.push(next);
    }
    let mut slots: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The request, rebuilt from the payment-service's registration of the fare.
fn request_entry(payment: &Value) -> Option<Entry> {
    let fare = payment.get("fare")?;
    let event_id = fare.get("request_event_id")?.as_str()?.to_owned();
    let received = list_items(payment, "consumed")
        .iter()
        .find(|c| c.get("event_id").and_then(Value::as_str) == Some(event_id.as_str()))
        .and_then(|c| c.get("processed_at"))
        .or_else(|| fare.get("created_at"))
        .and_then(Value::as_str)
        .and_then(|t| timestamp::parse(t).ok());
    let customer = fare.get("customer_id").and_then(Value::as_str);
    let amount = fare.get("amount_minor").and_then(Value::as_i64);
    let currency = fare.get("currency").and_then(Value::as_str);
    let detail = match (customer, amount, currency) {
        (Some(customer), Some(amount), Some(currency)) => {
            format!(
                "customer {customer} asks for {}",
                format_raw(amount, currency)
            )
        }
        _ => "an invalid request (see FareRejected)".to_owned(),
    };
    Some(Entry {
        occurred_at: received,
        service: "rider".to_owned(),
        event_type: "FareRequested".to_owned(),
        event_id,
        causation_id: None,
        detail,
        published: true,
        event: Value::Null,
    })
}

/// The service's `emitted` list as entries.
fn emitted_entries(view: &Value, service: &str) -> Vec<Entry> {
    list_items(view, "emitted")
        .iter()
        .map(|item| emitted_entry(item, service))
        .collect()
}

fn emitted_entry(item: &Value, service: &str) -> Entry {
    let event = item.get("event").cloned().unwrap_or(Value::Null);
    let published = item.get("published_at").is_some_and(|p| !p.is_null());
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match Event::from_value(event.clone()) {
        Ok(decoded) => Entry {
            occurred_at: Some(decoded.occurred_at),
            service: service.to_owned(),
            event_type: decoded.event_type().as_str().to_owned(),
            event_id: decoded.event_id.to_string(),
            causation_id: Some(decoded.causation_id.to_string()),
            detail: describe(&decoded.data),
            published,
            event,
        },
        Err(error) => Entry {
            occurred_at: text(&event, "occurred_at").and_then(|t| timestamp::parse(&t).ok()),
            service: service.to_owned(),
            event_type: text(&event, "event_type").unwrap_or_else(|| "?".to_owned()),
            event_id: text(item, "event_id")
                .or_else(|| text(&event, "event_id"))
                .unwrap_or_default(),
            causation_id: text(&event, "causation_id"),
            detail: format!("(this build cannot read the event: {error})"),
            published,
            event,
        },
    }
}

/// The terminal outcome (`FareCollected` / `FareCollectionFailed`) in `timeline`, if any.
pub fn outcome(timeline: &[Entry]) -> Option<&Entry> {
    timeline.iter().find(|e| {
        matches!(
            e.event_type.as_str(),
            "FareCollected" | "FareCollectionFailed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_schema::*;
    use serde_json::json;
    use time::macros::datetime;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn customer() -> CustomerId {
        CustomerId::parse("3").unwrap()
    }

    fn request() -> Event {
        let mut e = Event::start_saga(
            FareId::parse("wr_1").unwrap(),
            FareRequested {
                customer_id: customer(),
                amount_minor: 2000,
                currency: usd(),
                payment_token: "tok_visa".into(),
            }
            .into(),
        );
        e.occurred_at = datetime!(2026-11-27 08:00:00.000 UTC);
        e
    }

    fn next(cause: &Event, data: impl Into<EventData>, at: OffsetDateTime) -> Event {
        let mut e = Event::caused_by(cause, data.into());
        e.occurred_at = at;
        e
    }

    /// A read API's bounded list of `events`.
    fn emitted(events: &[&Event]) -> Value {
        let items: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({"event_id": e.event_id.to_string(), "topic": "x", "event": e.to_value(),
                       "created_at": "2026-11-27T08:00:00Z", "published_at": "2026-11-27T08:00:01Z"})
            })
            .collect();
        json!({"total": items.len(), "truncated": false, "items": items})
    }

    /// A collected saga; the accounting event carries the same millisecond as FareCollected.
    fn collected() -> (Event, Event, Event, Event, Event) {
        let req = request();
        let pre = next(
            &req,
            PreAuthorised {
                customer_id: customer(),
                amount_minor: 2000,
                currency: usd(),
                authorisation_id: "auth_1".into(),
            },
            datetime!(2026-11-27 08:00:00.010 UTC),
        );
        let charged = next(
            &pre,
            Charged {
                customer_id: customer(),
                amount_minor: 2000,
                currency: usd(),
                authorisation_id: "auth_1".into(),
                charge_id: "ch_1".into(),
            },
            datetime!(2026-11-27 08:00:00.020 UTC),
        );
        let updated = next(
            &charged,
            AccountUpdated {
                customer_id: customer(),
                amount_minor: 2000,
                currency: usd(),
                ledger_entry_id: 7,
                balance_minor: 2000,
            },
            datetime!(2026-11-27 08:00:00.030 UTC),
        );
        let done = next(
            &updated,
            FareCollected {
                customer_id: customer(),
                amount_minor: 2000,
                currency: usd(),
            },
            // The payment-service's clock runs a little behind the accounting-service's.
            datetime!(2026-11-27 08:00:00.029 UTC),
        );
        (req, pre, charged, updated, done)
    }

    fn payment_view(req: &Event, emitted_events: &[&Event]) -> Value {
        json!({
            "service": "payment-service",
            "fare": {"fare_id": "wr_1", "request_event_id": req.event_id.to_string(),
                     "customer_id": "3", "amount_minor": 2000, "currency": "USD",
                     "status": "collected", "created_at": "2026-11-27T08:00:00.050Z"},
            // The inbox time is after the first emitted event's occurred_at.
            "consumed": {"total": 1, "truncated": false,
                         "items": [{"event_id": req.event_id.to_string(), "event_type": "FareRequested",
                                    "processed_at": "2026-11-27T08:00:00.050Z"}]},
            "emitted": emitted(emitted_events),
            "dead_letters": {"total": 0, "truncated": false, "items": []},
            "gateway_operations": {"total": 0, "truncated": false, "items": []},
        })
    }

    #[test]
    fn merges_both_services_in_causal_order() {
        let (req, pre, charged, updated, done) = collected();
        // Accounting's view repeats the payment event it consumed; it must appear once.
        let payment = payment_view(&req, &[&pre, &charged, &done]);
        let accounting = json!({"service": "accounting-service", "fare_id": "wr_1",
                                "emitted": emitted(&[&updated, &charged])});
        let timeline = merge(&payment, Some(&accounting));
        let types: Vec<&str> = timeline.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "FareRequested",
                "PreAuthorised",
                "Charged",
                "AccountUpdated",
                "FareCollected"
            ]
        );
        let services: Vec<&str> = timeline.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(
            services,
            ["rider", "payment", "payment", "accounting", "payment"]
        );
        assert_eq!(timeline[0].event_id, req.event_id.to_string());
        assert_eq!(timeline[0].detail, "customer 3 asks for 20.00 USD");
        assert_eq!(
            timeline[0].occurred_at,
            Some(datetime!(2026-11-27 08:00:00.050 UTC))
        );
        assert_eq!(
            timeline[3].detail,
            "20.00 USD credited to customer 3 (ledger entry 7, balance 20.00 USD)"
        );
        assert!(timeline.iter().all(|e| e.published));
        assert_eq!(outcome(&timeline).unwrap().event_type, "FareCollected");
    }

    #[test]
    fn without_accounting_and_with_an_unpublished_event() {
        let (req, pre, ..) = collected();
        let mut payment = payment_view(&req, &[&pre]);
        payment["emitted"]["items"][0]["published_at"] = Value::Null;
        let timeline = merge(&payment, None);
        assert_eq!(timeline.len(), 2);
        assert!(!timeline[1].published);
        assert!(outcome(&timeline).is_none());
    }

    #[test]
    fn dedupe_keeps_the_first_of_each_event_id() {
        let entry = |id: &str, service: &str| Entry {
            occurred_at: None,
            service: service.into(),
            event_type: "Charged".into(),
            event_id: id.into(),
            causation_id: None,
            detail: String::new(),
            published: true,
            event: Value::Null,
        };
        let kept = dedupe(vec![
            entry("a", "payment"),
            entry("b", "payment"),
            entry("a", "accounting"),
        ]);
        let kept: Vec<(&str, &str)> = kept
            .iter()
            .map(|e| (e.event_id.as_str(), e.service.as_str()))
            .collect();
        assert_eq!(kept, [("a", "payment"), ("b", "payment")]);
    }

    #[test]
    fn order_is_by_time_among_independent_events_and_unknown_times_last() {
        let entry = |id: &str, cause: Option<&str>, at: Option<OffsetDateTime>| Entry {
            occurred_at: at,
            service: "payment".into(),
            event_type: "X".into(),
            event_id: id.into(),
            causation_id: cause.map(str::to_owned),
            detail: String::new(),
            published: true,
            event: Value::Null,
        };
        let ordered = order(vec![
            entry("late", None, Some(datetime!(2026-11-27 09:00 UTC))),
            entry("unknown", None, None),
            entry(
                "effect",
                Some("early"),
                Some(datetime!(2026-11-27 07:00 UTC)),
            ),
            entry(
                "early",
                Some("early"),
                Some(datetime!(2026-11-27 08:00 UTC)),
            ),
            entry(
                "orphan",
                Some("not-here"),
                Some(datetime!(2026-11-27 08:30 UTC)),
            ),
        ]);
        let ids: Vec<&str> = ordered.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["early", "effect", "orphan", "late", "unknown"]);
    }

    #[test]
    fn an_unreadable_event_is_shown_not_dropped() {
        let (req, ..) = collected();
        let mut payment = payment_view(&req, &[]);
        payment["emitted"] = json!([{"event_id": "e-1", "topic": "payment-events",
            "event": {"event_type": "Charged", "occurred_at": "2026-11-27T08:00:01Z"},
            "published_at": null}]);
        let timeline = merge(&payment, None);
        assert_eq!(timeline.len(), 2);
        assert_eq!(timeline[1].event_id, "e-1");
        assert_eq!(timeline[1].event_type, "Charged");
        assert!(
            timeline[1].detail.contains("cannot read"),
            "{}",
            timeline[1].detail
        );
    }

    #[test]
    fn a_rejected_request_has_no_amount() {
        let payment = json!({"fare": {"request_event_id": "r-1", "customer_id": null,
            "amount_minor": null, "currency": null, "created_at": "2026-11-27T08:00:00Z"}});
        let timeline = merge(&payment, None);
        assert_eq!(timeline[0].detail, "an invalid request (see FareRejected)");
        assert_eq!(
            timeline[0].occurred_at,
            Some(datetime!(2026-11-27 08:00 UTC))
        );
    }
}
