//! What `fares status` prints: the human report (heading, timeline table, status line,
//! gateway operations, ledger) and the `--json` object. Pure functions of the services'
//! answers.

use events_schema::{timestamp, FareId};
use serde::Serialize;
use serde_json::Value;

use crate::money::format_raw;
use crate::services::{list_items, list_total, truncated_total};
use crate::timeline::{self, Entry};

/// The `--json` object, keys in this order.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    fare_id: &'a FareId,
    /// The payment-service's fare status, e.g. `collected`.
    status: Option<&'a Value>,
    /// The `FareCollected` / `FareCollectionFailed` event, once there is one.
    outcome: Option<&'a Value>,
    /// `{status, since, idle_secs, waiting_for}` when the fare is stuck (no progress for
    /// the payment-service's `STUCK_AFTER`), else null.
    stuck: Option<&'a Value>,
    timeline: &'a [Entry],
    /// The payment-service's view, as it answered.
    payment: &'a Value,
    /// The accounting-service's view, as it answered; `null` when it has not seen the fare.
    accounting: Option<&'a Value>,
}

/// The `--json` object.
pub fn json_report<'a>(
    fare_id: &'a FareId,
    payment: &'a Value,
    accounting: Option<&'a Value>,
    timeline: &'a [Entry],
) -> Report<'a> {
    Report {
        fare_id,
        status: payment.pointer("/fare/status"),
        outcome: timeline::outcome(timeline).map(|e| &e.event),
        stuck: payment.get("stuck").filter(|stuck| stuck.is_object()),
        timeline,
        payment,
        accounting,
    }
}

/// What the accounting-service said about the fare.
#[derive(Debug, Clone, Copy)]
pub enum Accounting<'a> {
    /// Its view of the fare.
    View(&'a Value),
    /// 404: it has not seen the fare (no `Charged` reached it).
    NotSeen,
    /// It could not be asked; its events are missing from the timeline.
    Unreachable,
}

impl<'a> Accounting<'a> {
    /// From the read API's answer (`None` for 404).
    pub fn answered(view: Option<&'a Value>) -> Self {
        view.map_or(Accounting::NotSeen, Accounting::View)
    }
}

/// The human report: heading, timeline table, status line, gateway operations, ledger.
pub fn render(
    fare_id: &FareId,
    payment: &Value,
    accounting: Accounting<'_>,
    timeline: &[Entry],
) -> String {
    let fare = payment.get("fare").unwrap_or(&Value::Null);
    let accounting_view = match accounting {
        Accounting::View(view) => Some(view),
        Accounting::NotSeen | Accounting::Unreachable => None,
    };
    let views = [
        ("payment-service", Some(payment)),
        ("accounting-service", accounting_view),
    ];
    let mut out = format!("fare {fare_id}{}\n\n", who_and_how_much(fare));
    out.push_str(&table(timeline));
    for (service, view) in views {
        out.push_str(
            &view
                .map(|v| incomplete_note(service, v))
                .unwrap_or_default(),
        );
    }
    out.push_str(&format!("\nstatus: {}\n", status_line(fare)));
    out.push_str(&stuck_line(payment));
    out.push_str(&gateway_operations(payment));
    out.push_str(&format!("ledger: {}\n", ledger_line(accounting)));
    for (service, view) in views {
        out.push_str(&view.map(|v| dead_letters(service, v)).unwrap_or_default());
    }
    out
}

/// A note under the timeline when a service listed only the first of its events for the fare.
fn incomplete_note(service: &str, view: &Value) -> String {
    let Some(total) = truncated_total(view, "emitted") else {
        return String::new();
    };
    format!(
        "(incomplete: the {service} listed the first {} of the {total} events it emitted for this fare)\n",
        list_items(view, "emitted").len()
    )
}

/// How many lines of dead letters the report shows per service.
const DEAD_LETTERS_SHOWN: usize = 3;

/// The dead letters a service wrote for messages keyed with the fare's id (bad or conflicting
/// requests, say): how many, and the first few with their source and reason. Nothing when
/// there are none.
fn dead_letters(service: &str, view: &Value) -> String {
    let total = list_total(view, "dead_letters");
    if total == 0 {
        return String::new();
    }
    let letters = list_items(view, "dead_letters");
    let mut out = format!("dead letters in the {service}'s DLQ under this fare id: {total}");
    if letters.len() > DEAD_LETTERS_SHOWN || i64::try_from(letters.len()) != Ok(total) {
        out.push_str(&format!(
            ", the first {}",
            letters.len().min(DEAD_LETTERS_SHOWN)
        ));
    }
    out.push_str(":\n");
    for letter in letters.iter().take(DEAD_LETTERS_SHOWN) {
        let headers = letter.get("headers").unwrap_or(&Value::Null);
        out.push_str(&format!(
            "  {}  from {} partition {} offset {}: {}\n",
            text(letter, "created_at")
                .map(short_time)
                .unwrap_or_else(|| "?".to_owned()),
            text(headers, "dlq.source.topic").unwrap_or("?"),
            text(headers, "dlq.source.partition").unwrap_or("?"),
            text(headers, "dlq.source.offset").unwrap_or("?"),
            text(headers, "dlq.error").unwrap_or("no reason recorded"),
        ));
    }
    out
}

/// ` — customer 3, 20.00 USD`, or nothing for a request too invalid to have them.
fn who_and_how_much(fare: &Value) -> String {
    match (text(fare, "customer_id"), money(fare, "amount_minor")) {
        (Some(customer), Some(amount)) => format!(" — customer {customer}, {amount}"),
        _ => String::new(),
    }
}

/// The timeline as aligned columns.
fn table(timeline: &[Entry]) -> String {
    let rows: Vec<[String; 4]> = timeline
        .iter()
        .map(|e| {
            let mut detail = e.detail.clone();
            if !e.published {
                detail.push_str(" [in the outbox, not yet published]");
            }
            [
                e.occurred_at
                    .map(timestamp::format)
                    .unwrap_or_else(|| "?".to_owned()),
                e.service.clone(),
                e.event_type.clone(),
                detail,
            ]
        })
        .collect();
    let header = ["TIME", "SERVICE", "EVENT", "DETAIL"].map(str::to_owned);
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for row in [&header].into_iter().chain(&rows) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            row[0], row[1], row[2], row[3]
        ));
    }
    out
}

/// The warning under the status line of a stuck fare: for how long, and what it waits for.
fn stuck_line(payment: &Value) -> String {
    let Some(stuck) = payment.get("stuck").filter(|stuck| stuck.is_object()) else {
        return String::new();
    };
    let idle = stuck.get("idle_secs").and_then(Value::as_u64).unwrap_or(0);
    format!(
        "STUCK: no progress for {} (since {}); waiting for {}\n",
        humantime::format_duration(std::time::Duration::from_secs(idle)),
        text(stuck, "since").unwrap_or("unknown"),
        text(stuck, "waiting_for").unwrap_or("unknown")
    )
}

/// `collected: 20.00 USD`, `failed: <reason> — compensations: pre_auth_released`,
/// `NEEDS ATTENTION: …`, `rejected: …`, or `in progress: <status> (no outcome yet)`.
pub fn status_line(fare: &Value) -> String {
    let status = text(fare, "status").unwrap_or("unknown");
    let reason = text(fare, "failure_reason").unwrap_or("no reason recorded");
    let compensations = fare
        .get("compensations")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .filter(|list| !list.is_empty())
        .map(|list| list.join(", "))
        .unwrap_or_else(|| "none".to_owned());
    match status {
        "collected" => match money(fare, "amount_minor") {
            Some(amount) => format!("collected: {amount}"),
            None => "collected".to_owned(),
        },
        "failed" => format!("failed: {reason} — compensations: {compensations}"),
        "rejected" => format!("rejected: {reason}"),
        "needs_attention" => format!("NEEDS ATTENTION: {reason} — compensations: {compensations}"),
        "refunding" | "releasing" => format!(
            "in progress: {status} ({reason}); {} attempt(s) refused or unanswered so far, next attempt at {}, given up if still refused at {}",
            fare.get("compensation_attempts").and_then(Value::as_i64).unwrap_or(0),
            text(fare, "next_compensation_at").unwrap_or("unknown"),
            text(fare, "compensation_deadline").unwrap_or("unknown")
        ),
        other => format!("in progress: {other} (no outcome yet)"),
    }
}

/// The gateway calls, one per line, or nothing when there were none.
fn gateway_operations(payment: &Value) -> String {
    let operations = list_items(payment, "gateway_operations");
    if operations.is_empty() {
        return "gateway: no operations\n".to_owned();
    }
    let mut out = String::from("gateway:\n");
    for op in operations {
        let approved = op.get("approved").and_then(Value::as_bool) == Some(true);
        let outcome = if approved {
            text(op, "reference").map(|r| format!("approved ({r})"))
        } else {
            text(op, "decline_reason").map(|r| format!("DECLINED: {r}"))
        }
        .unwrap_or_else(|| if approved { "approved" } else { "DECLINED" }.to_owned());
        out.push_str(&format!(
            "  {}  {:<14}  {:<14}  {}\n",
            text(op, "created_at")
                .map(short_time)
                .unwrap_or_else(|| "?".to_owned()),
            text(op, "operation").unwrap_or("?"),
            money(op, "amount_minor").unwrap_or_default(),
            outcome
        ));
    }
    if let Some(total) = truncated_total(payment, "gateway_operations") {
        out.push_str(&format!(
            "  … and {} more\n",
            total - i64::try_from(operations.len()).unwrap_or(0)
        ));
    }
    out
}

/// The ledger entry, the refused credit, or why there is neither.
fn ledger_line(accounting: Accounting<'_>) -> String {
    let view = match accounting {
        Accounting::View(view) => view,
        Accounting::NotSeen => {
            return "no entry (the accounting-service has not seen this fare)".to_owned()
        }
        Accounting::Unreachable => {
            return "UNKNOWN — the accounting-service could not be asked; its events are missing above"
                .to_owned()
        }
    };
    let entry = view.get("ledger_entry").filter(|v| !v.is_null());
    let failure = view.get("credit_failure").filter(|v| !v.is_null());
    match (entry, failure) {
        (Some(entry), _) => format!(
            "entry {} — {} credited to customer {}, balance {} ({})",
            entry
                .get("id")
                .map(Value::to_string)
                .unwrap_or_else(|| "?".to_owned()),
            money(entry, "amount_minor").unwrap_or_default(),
            text(entry, "customer_id").unwrap_or("?"),
            entry
                .get("balance_after_minor")
                .and_then(Value::as_i64)
                .zip(text(entry, "currency"))
                .map(|(b, c)| format_raw(b, c))
                .unwrap_or_default(),
            text(entry, "created_at")
                .map(short_time)
                .unwrap_or_default(),
        ),
        (None, Some(failure)) => format!(
            "credit refused — {} ({})",
            text(failure, "reason").unwrap_or("no reason recorded"),
            text(failure, "created_at")
                .map(short_time)
                .unwrap_or_default(),
        ),
        (None, None) => "no entry".to_owned(),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `v[key]` (minor units) with `v.currency`, formatted: `20.00 USD`.
fn money(v: &Value, key: &str) -> Option<String> {
    let amount = v.get(key).and_then(Value::as_i64)?;
    let currency = text(v, "currency")?;
    Some(format_raw(amount, currency))
}

/// A service's RFC 3339 time in the events' format, or as given when it does not parse.
fn short_time(t: &str) -> String {
    timestamp::parse(t)
        .map(timestamp::format)
        .unwrap_or_else(|_| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refund_waiting_for_its_next_attempt() {
        let refunding = json!({"status": "refunding", "failure_reason": "ledger update failed: closed",
            "compensation_deadline": "2026-11-27T14:00:00Z",
            "compensation_attempts": 2, "next_compensation_at": "2026-11-27T09:00:00Z"});
        assert_eq!(
            status_line(&refunding),
            "in progress: refunding (ledger update failed: closed); 2 attempt(s) refused or unanswered so far, \
             next attempt at 2026-11-27T09:00:00Z, given up if still refused at 2026-11-27T14:00:00Z"
        );
    }

    #[test]
    fn a_stuck_fare_says_for_how_long_and_what_it_waits_for() {
        let stuck = json!({"stuck": {"status": "charged", "since": "2026-11-29T05:00:00Z",
            "idle_secs": 420, "waiting_for": "accounting-service's answer to Charged"}});
        assert_eq!(
            stuck_line(&stuck),
            "STUCK: no progress for 7m (since 2026-11-29T05:00:00Z); waiting for \
             accounting-service's answer to Charged\n"
        );
        assert_eq!(stuck_line(&json!({"stuck": null})), "");
    }

    #[test]
    fn status_lines() {
        let collected = json!({"status": "collected", "amount_minor": 2000, "currency": "USD"});
        assert_eq!(status_line(&collected), "collected: 20.00 USD");
        let failed = json!({"status": "failed", "failure_reason": "capture declined",
                            "compensations": ["pre_auth_released"]});
        assert_eq!(
            status_line(&failed),
            "failed: capture declined — compensations: pre_auth_released"
        );
        let declined =
            json!({"status": "failed", "failure_reason": "card declined", "compensations": []});
        assert_eq!(
            status_line(&declined),
            "failed: card declined — compensations: none"
        );
        let stuck = json!({"status": "needs_attention", "failure_reason": "refund failed", "compensations": []});
        assert!(
            status_line(&stuck).starts_with("NEEDS ATTENTION: refund failed — compensations: none")
        );
        let rejected =
            json!({"status": "rejected", "failure_reason": "data.amount_minor must be…"});
        assert_eq!(
            status_line(&rejected),
            "rejected: data.amount_minor must be…"
        );
        let busy = json!({"status": "charged"});
        assert_eq!(status_line(&busy), "in progress: charged (no outcome yet)");
    }

    #[test]
    fn ledger_lines() {
        assert!(ledger_line(Accounting::NotSeen).contains("has not seen this fare"));
        assert!(ledger_line(Accounting::Unreachable).starts_with("UNKNOWN"));
        let credited = json!({"ledger_entry": {"id": 17, "customer_id": "3", "currency": "USD",
            "amount_minor": 2000, "balance_after_minor": 4000, "created_at": "2026-11-27T08:00:00.5Z"},
            "credit_failure": null});
        assert_eq!(
            ledger_line(Accounting::View(&credited)),
            "entry 17 — 20.00 USD credited to customer 3, balance 40.00 USD (2026-11-27T08:00:00.500Z)"
        );
        let refused = json!({"ledger_entry": null, "credit_failure": {"reason": "account closed",
            "created_at": "2026-11-27T08:00:01Z"}});
        assert_eq!(
            ledger_line(Accounting::View(&refused)),
            "credit refused — account closed (2026-11-27T08:00:01.000Z)"
        );
    }

    fn views() -> (Value, Value) {
        let payment = json!({
            "service": "payment-service",
            "fare": {"fare_id": "wr_1", "request_event_id": "r-1", "customer_id": "3_fail_charge",
                     "amount_minor": 2000, "currency": "USD", "status": "failed",
                     "failure_reason": "capture declined", "compensations": ["pre_auth_released"],
                     "created_at": "2026-11-27T08:00:00Z"},
            "consumed": {"items": [], "total": 0, "truncated": false},
            "emitted": {"items": [], "total": 0, "truncated": false},
            "dead_letters": {"items": [], "total": 0, "truncated": false},
            "gateway_operations": {"total": 2, "truncated": false, "items": [
                {"operation": "pre_authorise", "approved": true, "reference": "auth_1",
                 "decline_reason": null, "amount_minor": 2000, "currency": "USD",
                 "created_at": "2026-11-27T08:00:00.010Z"},
                {"operation": "capture", "approved": false, "reference": null,
                 "decline_reason": "capture declined", "amount_minor": 2000, "currency": "USD",
                 "created_at": "2026-11-27T08:00:00.020Z"}]}
        });
        let empty = json!({"items": [], "total": 0, "truncated": false});
        (
            payment,
            json!({"fare_id": "wr_1", "ledger_entry": null, "credit_failure": null,
                   "emitted": empty, "dead_letters": empty}),
        )
    }

    #[test]
    fn truncated_lists_and_dead_letters_are_told() {
        let (mut payment, mut accounting) = views();
        payment["gateway_operations"]["total"] = json!(5);
        payment["gateway_operations"]["truncated"] = json!(true);
        let letter = |offset: u32| {
            json!({"created_at": "2026-11-27T08:00:01Z", "payload": "{}", "headers": {
                "dlq.source.topic": "fare-requests", "dlq.source.partition": "0",
                "dlq.source.offset": offset.to_string(),
                "dlq.error": "conflicting duplicate: fare wr_1 was already requested"}})
        };
        payment["dead_letters"] = json!({"total": 300, "truncated": true,
            "items": (0..100).map(letter).collect::<Vec<_>>()});
        accounting["emitted"] = json!({"total": 120, "truncated": true, "items": []});
        let fare_id = FareId::parse("wr_1").unwrap();
        let timeline = timeline::merge(&payment, Some(&accounting));
        let text = render(&fare_id, &payment, Accounting::View(&accounting), &timeline);
        assert!(
            text.contains("(incomplete: the accounting-service listed the first 0 of the 120 events it emitted for this fare)\n"),
            "{text}"
        );
        assert!(
            text.contains("DECLINED: capture declined\n  … and 3 more\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "dead letters in the payment-service's DLQ under this fare id: 300, the first 3:\n\
                 \x20 2026-11-27T08:00:01.000Z  from fare-requests partition 0 offset 0: conflicting duplicate: fare wr_1 was already requested\n\
                 \x20 2026-11-27T08:00:01.000Z  from fare-requests partition 0 offset 1: conflicting duplicate: fare wr_1 was already requested\n\
                 \x20 2026-11-27T08:00:01.000Z  from fare-requests partition 0 offset 2: conflicting duplicate: fare wr_1 was already requested\n"
            ),
            "{text}"
        );
        let (payment, accounting) = views();
        let text = render(&fare_id, &payment, Accounting::View(&accounting), &timeline);
        assert!(
            !text.contains("incomplete") && !text.contains("dead letters"),
            "{text}"
        );
    }

    #[test]
    fn renders_heading_table_status_gateway_and_ledger() {
        let (payment, accounting) = views();
        let fare_id = FareId::parse("wr_1").unwrap();
        let timeline = timeline::merge(&payment, Some(&accounting));
        let text = render(&fare_id, &payment, Accounting::View(&accounting), &timeline);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "fare wr_1 — customer 3_fail_charge, 20.00 USD");
        assert!(
            lines[2].starts_with("TIME                      SERVICE  EVENT          DETAIL"),
            "{text}"
        );
        assert!(lines[3].starts_with("2026-11-27T08:00:00.000Z  rider    FareRequested  customer 3_fail_charge asks for 20.00 USD"), "{text}");
        assert!(
            text.contains(
                "\nstatus: failed: capture declined — compensations: pre_auth_released\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  2026-11-27T08:00:00.010Z  pre_authorise   20.00 USD       approved (auth_1)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("capture         20.00 USD       DECLINED: capture declined\n"),
            "{text}"
        );
        assert!(text.ends_with("ledger: no entry\n"), "{text}");
    }

    #[test]
    fn json_report_has_the_documented_keys() {
        let (payment, _) = views();
        let fare_id = FareId::parse("wr_1").unwrap();
        let timeline = timeline::merge(&payment, None);
        let report = json_report(&fare_id, &payment, None, &timeline);
        let text = serde_json::to_string(&report).unwrap();
        assert!(
            text.starts_with(
                r#"{"fare_id":"wr_1","status":"failed","outcome":null,"stuck":null,"timeline":["#
            ),
            "{text}"
        );
        let report = serde_json::to_value(&report).unwrap();
        assert_eq!(report["fare_id"], "wr_1");
        assert_eq!(report["status"], "failed");
        assert_eq!(report["outcome"], Value::Null);
        assert_eq!(report["timeline"][0]["event_type"], "FareRequested");
        assert_eq!(
            report["timeline"][0]["occurred_at"],
            "2026-11-27T08:00:00.000Z"
        );
        assert_eq!(report["payment"], payment);
        assert_eq!(report["accounting"], Value::Null);
    }
}
