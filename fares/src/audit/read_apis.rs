//! The services' read-API answers, scanned for raw card numbers (SPEC §6.7). Only the fares
//! most likely to carry what a rider typed are asked about — those with a dead letter or a
//! rejection — and at most [`MAX_FARES`] of them. A service that cannot be reached is noted
//! as not checked; it is neither a violation nor a reason to stop the audit.

use events_schema::{card, FareId};
use futures::stream::{self, StreamExt};

use super::checks::Stuck;
use crate::services::ReadApi;

/// At most this many fares are asked about, per service.
pub const MAX_FARES: usize = 1000;

/// At most this many stuck fares are asked about (what they wait for).
pub const MAX_STUCK: usize = 100;

/// Requests in flight at once, per service.
const CONCURRENCY: usize = 8;

/// What the scan of the read APIs found.
#[derive(Debug, Default)]
pub struct ReadApiScan {
    /// (service, fare) whose answer holds a raw card number.
    pub card_numbers: Vec<(&'static str, String)>,
    /// What could not be checked, and why.
    pub not_checked: Vec<String>,
}

/// Fills in what each of the first [`MAX_STUCK`] `stuck` fares waits for, from `payment`'s
/// view of it (`stuck.waiting_for`). A fare the service does not count stuck, or a service
/// that does not answer, leaves it unknown: the audit's verdict does not depend on it.
pub async fn waiting_for(payment: &ReadApi, stuck: &mut [Stuck]) {
    let count = stuck.len().min(MAX_STUCK);
    let answers: Vec<Option<String>> = stream::iter(&stuck[..count])
        .map(|fare| async move {
            let fare_id = FareId::parse(&fare.fare_id).ok()?;
            let body = payment.fare_body(&fare_id).await.ok()??;
            let view: serde_json::Value = serde_json::from_str(&body).ok()?;
            view.pointer("/stuck/waiting_for")?
                .as_str()
                .map(str::to_owned)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for (fare, answer) in stuck.iter_mut().zip(answers) {
        fare.waiting_for = answer;
    }
}

/// Asks each API about each of `fares` (the first [`MAX_FARES`]) and scans the answers.
pub async fn scan(apis: &[ReadApi], fares: &[FareId]) -> ReadApiScan {
    let mut scan = ReadApiScan::default();
    let asked = &fares[..fares.len().min(MAX_FARES)];
    if fares.len() > asked.len() {
        scan.not_checked.push(format!(
            "read APIs: only {} of the {} fares with a dead letter or a rejection were asked about",
            asked.len(),
            fares.len()
        ));
    }
    for api in apis {
        // One request first: an unreachable service is noted once, not per fare.
        let Some((first, rest)) = asked.split_first() else {
            break;
        };
        let first_answer = api.fare_body(first).await;
        if let Err(error) = &first_answer {
            scan.not_checked
                .push(format!("read APIs not checked: {}", error_line(error)));
            continue;
        }
        let answers: Vec<(&FareId, anyhow::Result<Option<String>>)> = stream::iter(rest)
            .map(|fare_id| async move { (fare_id, api.fare_body(fare_id).await) })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut failed = 0;
        let mut first_error = None;
        for (fare_id, answer) in std::iter::once((first, first_answer)).chain(answers) {
            match answer {
                Ok(Some(body)) if card::has_card_number(body.as_bytes()) => {
                    scan.card_numbers
                        .push((api.name, fare_id.as_str().to_owned()));
                }
                Ok(_) => {}
                Err(error) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| error_line(&error));
                }
            }
        }
        if let Some(error) = first_error {
            scan.not_checked.push(format!(
                "{} read API: {failed} of {} answers not checked: {error}",
                api.name,
                asked.len()
            ));
        }
    }
    scan
}

/// The error's message and its first cause, on one line.
fn error_line(error: &anyhow::Error) -> String {
    let mut chain = error.chain().map(ToString::to_string);
    let first = chain.next().unwrap_or_default();
    match chain.next() {
        Some(cause) if !first.contains(&cause) => format!("{first} ({cause})"),
        _ => first,
    }
}
