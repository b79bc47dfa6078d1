//! Invariant 1: every fare requested on `fare-requests` ends in exactly one outcome on
//! `fare-outcomes` (distinct event ids), and no outcome is published for a fare nobody
//! requested. A fare without an outcome yet is in flight while its latest activity (its
//! messages' broker timestamps, its row's `updated_at`) is younger than `--stuck-after`, and
//! stuck after that.

use std::collections::BTreeMap;
use std::time::Duration;

use events_schema::EventType;

use super::{Evidence, OutcomeCounts, Stuck, Trail, Violation};

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
                let last_update = registered
                    .map(|fare| (fare.updated_at.unix_timestamp_nanos() / 1_000_000) as i64);
                let last_activity = trail.last_seen_ms.max(last_update).unwrap_or(0);
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
