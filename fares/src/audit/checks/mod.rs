//! The checks of SPEC §6's invariants, one module per invariant. Each is a pure function of
//! what the audit read ([`Evidence`]): the topics, the consumer groups' committed offsets, the
//! services' state and the card-number scans of tables, read APIs and logs. Each violation
//! names the invariant, the fare and what is wrong.

mod card_numbers;
mod consumed;
mod duplicates;
mod event_ids;
mod holds;
mod money;
mod outcomes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use events_schema::choreography::Service;
use events_schema::{EventType, Topic, TopicNames};
use uuid::Uuid;

use super::logs::CardNumberInLog;
use super::messages::{shown, Digest, Position};
use super::read_apis::ReadApiScan;
use super::state::State;
use super::tables::CardNumberInTable;
use super::topics::{Committed, TopicFacts};

/// The statuses of `payment.fares` in which a fare's saga is over.
pub const TERMINAL: [&str; 4] = ["rejected", "collected", "failed", "needs_attention"];

/// Whether `status` is one of [`TERMINAL`].
pub fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

/// Everything the audit read.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub topics: &'a TopicFacts,
    pub committed: &'a Committed,
    pub state: &'a State,
    pub names: &'a TopicNames,
    pub tables: &'a [CardNumberInTable],
    pub read_apis: &'a ReadApiScan,
    pub logs: &'a [CardNumberInLog],
    /// Now, in milliseconds since the epoch.
    pub now_ms: i64,
    /// A fare without an outcome idle this long is stuck.
    pub stuck_after: Duration,
    /// The services' inbox rows older than this are pruned.
    pub retention: Duration,
}

/// A breach of one of SPEC §6's invariants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Violation {
    /// 1–7.
    pub invariant: u8,
    /// The fare concerned; `None` for what belongs to no fare (a log line).
    pub fare_id: Option<String>,
    pub problem: String,
}

impl Violation {
    fn new(invariant: u8, fare_id: Option<&str>, problem: String) -> Violation {
        Violation {
            invariant,
            fare_id: fare_id.map(shown),
            problem: shown(&problem),
        }
    }
}

/// A fare without an outcome, idle past `--stuck-after`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stuck {
    pub fare_id: String,
    /// Its status in payment-service, or `not registered`.
    pub status: String,
    pub idle_secs: u64,
    /// What it waits for, as the payment-service's read API says (`stuck.waiting_for`), when
    /// the service counts it stuck too; asked for the first [`crate::audit::read_apis::MAX_STUCK`].
    pub waiting_for: Option<String>,
}

/// A fare an operator must handle (SPEC §4: a compensation failed past its budget).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NeedsAttention {
    pub fare_id: String,
    pub reason: String,
}

/// Fares by outcome.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutcomeCounts {
    pub collected: usize,
    pub failed: usize,
    pub needs_attention: usize,
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Fares requested on `fare-requests`.
    pub fares: usize,
    /// Of those, fares with an outcome, by outcome.
    pub outcomes: OutcomeCounts,
    /// Fares without an outcome, active within `--stuck-after`.
    pub in_flight: usize,
    pub violations: Vec<Violation>,
    pub stuck: Vec<Stuck>,
    pub needs_attention: Vec<NeedsAttention>,
}

/// Runs every check.
pub fn run(evidence: &Evidence<'_>) -> Findings {
    let trails = trails(evidence.topics);
    let dead_letters = DeadLetters::of(evidence);
    let lifecycle = outcomes::fares_have_one_outcome(evidence, &trails);
    let (money_violations, refunds_failed) = money::money_adds_up(evidence.state);
    let (hold_violations, releases_failed) =
        holds::no_hold_outlives_its_fare(evidence.state, evidence.stuck_after);
    let mut violations = lifecycle.violations;
    violations.extend(event_ids::one_event_id_per_fare_and_type(&trails));
    violations.extend(money_violations);
    violations.extend(hold_violations);
    violations.extend(
        consumed::every_consumed_message_is_processed_or_dead_lettered(evidence, &dead_letters),
    );
    violations.extend(duplicates::a_second_request_never_starts_a_second_saga(
        evidence,
        &trails,
        &dead_letters,
    ));
    violations.extend(card_numbers::no_card_number_anywhere(evidence));
    violations.sort();
    let mut exceptions = refunds_failed;
    exceptions.extend(releases_failed);
    Findings {
        fares: lifecycle.fares,
        outcomes: lifecycle.outcomes,
        in_flight: lifecycle.in_flight,
        violations,
        stuck: lifecycle.stuck,
        needs_attention: needs_attention(evidence.state, exceptions),
    }
}

/// Every fare in `needs_attention`, with what an operator must do.
fn needs_attention(state: &State, mut reasons: HashMap<String, String>) -> Vec<NeedsAttention> {
    let mut fares: Vec<NeedsAttention> = state
        .fares
        .iter()
        .filter(|(_, fare)| fare.status == "needs_attention")
        .map(|(fare_id, fare)| NeedsAttention {
            fare_id: fare_id.clone(),
            reason: reasons.remove(fare_id).unwrap_or_else(|| {
                fare.failure_reason
                    .clone()
                    .unwrap_or_else(|| "status needs_attention".to_owned())
            }),
        })
        .collect();
    fares.sort_by(|a, b| a.fare_id.cmp(&b.fare_id));
    fares
}

/// What the topics say of one fare.
#[derive(Debug, Default)]
pub struct Trail {
    /// A message on `fare-requests` asks for it.
    pub requested: bool,
    /// The distinct event ids per event type on `payment-events`, `accounting-events` and
    /// `fare-outcomes`.
    pub events: BTreeMap<EventType, BTreeSet<Uuid>>,
    /// The distinct outcomes on `fare-outcomes`: event id → (type, needs_attention).
    pub outcomes: BTreeMap<Uuid, (EventType, bool)>,
    /// The broker timestamp of its latest message, in milliseconds since the epoch.
    pub last_seen_ms: Option<i64>,
}

/// Each fare's [`Trail`], by fare id.
pub fn trails(topics: &TopicFacts) -> BTreeMap<String, Trail> {
    let mut trails: BTreeMap<String, Trail> = BTreeMap::new();
    let seen = |trail: &mut Trail, at: Option<i64>| {
        trail.last_seen_ms = trail.last_seen_ms.max(at);
    };
    for request in &topics.requests {
        if let Some((fare_id, _)) = &request.fare {
            let trail = trails.entry(fare_id.clone()).or_default();
            trail.requested = true;
            seen(trail, request.envelope.timestamp_ms);
        }
    }
    for (topic, message) in &topics.events {
        let Some(fare_id) = message.fare_id() else {
            continue;
        };
        let trail = trails.entry(fare_id.to_owned()).or_default();
        seen(trail, message.envelope.timestamp_ms);
        let Some(event) = &message.event else {
            continue;
        };
        if event.event_type != EventType::FareRequested {
            trail
                .events
                .entry(event.event_type)
                .or_default()
                .insert(event.event_id);
        }
        if *topic == Topic::FareOutcomes && event.event_type.is_outcome() {
            trail
                .outcomes
                .insert(event.event_id, (event.event_type, event.needs_attention));
        }
    }
    trails
}

/// Every dead letter the services wrote: on their dead-letter topics, or still in an outbox.
#[derive(Debug, Default)]
pub struct DeadLetters {
    /// (dead-letter topic, source topic, position) → digests of the dead letters' bytes.
    by_source: HashMap<(Topic, String, Position), Vec<u64>>,
}

impl DeadLetters {
    fn of(evidence: &Evidence<'_>) -> DeadLetters {
        let mut letters = DeadLetters::default();
        let all = evidence
            .topics
            .dead_letters
            .iter()
            .chain(&evidence.state.unpublished_dead_letters);
        for (dlq, letter) in all {
            letters
                .by_source
                .entry((*dlq, letter.source_topic.clone(), letter.source))
                .or_default()
                .push(letter.digest);
        }
        letters
    }

    /// Whether `dlq` holds the message at `position` of `source_topic` with bytes `digest`.
    pub fn hold(&self, dlq: Topic, source_topic: &str, position: Position, digest: Digest) -> bool {
        self.by_source
            .get(&(dlq, source_topic.to_owned(), position))
            .is_some_and(|letters| letters.iter().any(|l| digest.is_held_by(*l)))
    }
}

/// The dead-letter topic of `service`.
pub fn dlq_of(service: Service) -> Topic {
    match service {
        Service::Payment => Topic::PaymentDlq,
        Service::Accounting => Topic::AccountingDlq,
    }
}

/// Whether `service`'s group had consumed the message at `position` of `topic`.
pub fn was_consumed(
    committed: &Committed,
    service: Service,
    topic: Topic,
    position: Position,
) -> bool {
    committed
        .get(&(service, topic, position.partition))
        .is_some_and(|&next| position.offset < next)
}

#[cfg(test)]
mod tests;
