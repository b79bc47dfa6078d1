//! Invariant 1: every fare requested on `fare-requests` ends in exactly one outcome on
//! `fare-outcomes` (distinct event ids), and no outcome is published for a fare nobody
//! requested. A fare without an outcome yet is in flight while its latest activity is younger
//! than `--stuck-after`, and stuck after that. Its activity: its messages' broker timestamps,
//! its row's `updated_at` and, while a compensation is retried (which moves no message and
//! changes no status until it succeeds or is given up), the compensation's deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use events_schema::EventType;

use super::{Evidence, OutcomeCounts, Stuck, Trail, Violation};
use crate::audit::state::FareRow;

/// The statuses in which payment-service retries a compensation off the consumer's path.
const COMPENSATING: [&str; 2] = ["releasing", "refunding"];

/// What invariant 1 found, and the counts of the summary.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub fares: usize,
    pub outcomes: OutcomeCounts,
    pub in_flight: usize,
    pub stuck: Vec<Stuck>,
    pub violations: Vec<Violation>,
}

pub fn fares_have_one_outcome(
    evidence: &Evidence<'_>,
    trails: &BTreeMap<String, Trail>,
) -> Lifecycle {
    let mut found = Lifecycle::default();
    for (fare_id, trail) in trails {
        let registered = evidence.state.fares.get(fare_id);
        if !trail.requested {
            if registered.is_none() {
                for (event_id, (event_type, _)) in &trail.outcomes {
                    found.violations.push(Violation::new(
                        1,
                        Some(fare_id),
                        format!("{event_type} {event_id} for a fare never requested"),
                    ));
                }
            }
            continue;
        }
        found.fares += 1;
        match trail.outcomes.len() {
            0 => {
                let last_activity = last_activity(trail, registered);
                let idle = Duration::from_millis(
                    evidence.now_ms.saturating_sub(last_activity).max(0) as u64,
                );
                if idle < evidence.stuck_after {
                    found.in_flight += 1;
                    continue;
                }
                let status = registered.map_or("not registered", |fare| fare.status.as_str());
                let idle = Duration::from_secs(idle.as_secs());
                found.violations.push(Violation::new(
                    1,
                    Some(fare_id),
                    format!(
                        "no outcome, idle for {} (status {status})",
                        humantime::format_duration(idle)
                    ),
                ));
                found.stuck.push(Stuck {
                    fare_id: fare_id.clone(),
                    status: status.to_owned(),
                    idle_secs: idle.as_secs(),
                    waiting_for: None,
                });
            }
            1 => {}
            n => {
                let listed: Vec<String> = trail
                    .outcomes
                    .iter()
                    .map(|(id, (event_type, _))| format!("{event_type} {id}"))
                    .collect();
                found.violations.push(Violation::new(
                    1,
                    Some(fare_id),
                    format!("{n} distinct outcomes: {}", listed.join(", ")),
                ));
            }
        }
        count_outcome(&mut found.outcomes, trail);
    }
    found
}

/// When the fare was last active, in milliseconds since the epoch (0 when never).
fn last_activity(trail: &Trail, registered: Option<&FareRow>) -> i64 {
    let millis = |at: time::OffsetDateTime| (at.unix_timestamp_nanos() / 1_000_000) as i64;
    let compensating_until = registered
        .filter(|fare| COMPENSATING.contains(&fare.status.as_str()))
        .and_then(|fare| fare.compensation_deadline)
        .map(millis);
    // A compensation is in flight until its deadline; the attempts the gateway does not answer
    // go on past it (updating the row), and are not progress.
    let updated = registered
        .filter(|_| compensating_until.is_none())
        .map(|fare| millis(fare.updated_at));
    [trail.last_seen_ms, updated, compensating_until]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
}

/// Counts a fare with an outcome: collected if one says so, else by `needs_attention`.
fn count_outcome(counts: &mut OutcomeCounts, trail: &Trail) {
    let outcomes = || trail.outcomes.values();
    if trail.outcomes.is_empty() {
        return;
    }
    if outcomes().any(|(t, _)| *t == EventType::FareCollected) {
        counts.collected += 1;
    } else if outcomes().any(|(_, needs_attention)| *needs_attention) {
        counts.needs_attention += 1;
    } else {
        counts.failed += 1;
    }
}
