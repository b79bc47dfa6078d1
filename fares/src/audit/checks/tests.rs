//! Unit tests of the checks, on evidence made up in memory.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::*;
use crate::audit::messages::{DeadLetter, Envelope, EventFacts, EventMessage, Request};
use crate::audit::state::{Approved, FareRow};

const NOW_MS: i64 = 1_800_000_000_000;

struct World {
    topics: TopicFacts,
    committed: Committed,
    state: State,
    names: TopicNames,
    retention: Duration,
}

impl World {
    fn new() -> World {
        World {
            topics: TopicFacts::default(),
            committed: Committed::new(),
            state: State {
                taken_at: OffsetDateTime::from_unix_timestamp(NOW_MS / 1000).ok(),
                ..State::default()
            },
            names: TopicNames::new(".t"),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }

    fn findings(&self) -> Findings {
        run(&Evidence {
            topics: &self.topics,
            committed: &self.committed,
            state: &self.state,
            names: &self.names,
            tables: &[],
            read_apis: &ReadApiScan::default(),
            logs: &[],
            now_ms: NOW_MS,
            stuck_after: Duration::from_secs(300),
            retention: self.retention,
        })
    }

    fn fare(&mut self, fare_id: &str, status: &str, amount: i64) {
        self.state.fares.insert(
            fare_id.to_owned(),
            FareRow {
                status: status.to_owned(),
                request_fingerprint: fingerprint(fare_id),
                amount_minor: Some(amount),
                currency: Some("USD".to_owned()),
                failure_reason: None,
                updated_at: OffsetDateTime::from_unix_timestamp(NOW_MS / 1000 - 3600).unwrap(),
                compensation_deadline: None,
            },
        );
    }

    fn approved(&mut self, fare_id: &str, operation: &str, count: i64, amount: i64) {
        self.state
            .approved
            .entry(fare_id.to_owned())
            .or_default()
            .insert(
                operation.to_owned(),
                Approved {
                    count,
                    amount_minor: count * amount,
                    min_amount: Some(amount),
                    max_amount: Some(amount),
                    reference: Some(format!("ref_{operation}")),
                    latest_at: OffsetDateTime::from_unix_timestamp(NOW_MS / 1000 - 3600).ok(),
                },
            );
    }

    /// A request for `fare_id` at `offset` of partition 0, `payload` its bytes.
    fn request(&mut self, fare_id: Option<&str>, offset: i64, payload: &[u8], age_ms: i64) {
        self.topics.requests.push(Request {
            envelope: envelope(offset, payload, NOW_MS - age_ms, fare_id.is_none()),
            fare: fare_id.map(|f| (f.to_owned(), fingerprint(f))),
        });
    }

    fn event(&mut self, topic: Topic, fare_id: &str, event_type: EventType, offset: i64) {
        self.topics.events.push((
            topic,
            EventMessage {
                envelope: envelope(offset, b"{}", NOW_MS - 3_600_000, false),
                event_type_header: Some(event_type),
                event: Some(EventFacts {
                    event_id: Uuid::new_v4(),
                    event_type,
                    fare_id: fare_id.to_owned(),
                    fingerprint: Uuid::nil(),
                    needs_attention: false,
                }),
            },
        ));
    }

    fn consumed(&mut self, service: Service, topic: Topic, next_offset: i64) {
        self.committed.insert((service, topic, 0), next_offset);
    }

    fn dead_letter(&mut self, source: Topic, offset: i64, payload: &[u8]) {
        self.topics.dead_letters.push((
            Topic::PaymentDlq,
            DeadLetter {
                source_topic: self.names.name(source),
                source: Position {
                    partition: 0,
                    offset,
                },
                digest: crate::audit::messages::digest(payload),
                key: None,
            },
        ));
    }
}

fn fingerprint(fare_id: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, fare_id.as_bytes())
}

fn envelope(offset: i64, payload: &[u8], at_ms: i64, unreadable: bool) -> Envelope {
    Envelope {
        position: Position {
            partition: 0,
            offset,
        },
        timestamp_ms: Some(at_ms),
        key: None,
        digest: Digest::of(payload),
        unprocessable: unreadable.then(|| "not JSON".to_owned()),
    }
}

/// (invariant, fare) of each violation.
fn named(findings: &Findings) -> Vec<(u8, String)> {
    findings
        .violations
        .iter()
        .map(|v| (v.invariant, v.fare_id.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_collected_fare_whose_money_adds_up_is_clean() {
    let mut world = World::new();
    world.fare("wr_1", "collected", 500);
    world.approved("wr_1", "pre_authorise", 1, 500);
    world.approved("wr_1", "capture", 1, 500);
    world.state.ledger.insert("wr_1".into(), 500);
    let findings = world.findings();
    assert!(findings.violations.is_empty(), "{:?}", findings.violations);
}

#[test]
fn money_that_does_not_add_up_or_moved_twice_is_named() {
    let mut world = World::new();
    world.fare("wr_unledgered", "collected", 500);
    world.approved("wr_unledgered", "capture", 1, 500);
    world.fare("wr_twice", "failed", 500);
    world.approved("wr_twice", "capture", 1, 500);
    world.approved("wr_twice", "refund", 2, 500);
    world.fare("wr_in_flight", "charged", 500);
    world.approved("wr_in_flight", "capture", 1, 500);
    let findings = world.findings();
    let problems: Vec<&str> = findings
        .violations
        .iter()
        .map(|v| v.problem.as_str())
        .collect();
    assert_eq!(
        named(&findings),
        [
            (3, "wr_twice".into()),
            (3, "wr_twice".into()),
            (3, "wr_unledgered".into())
        ],
        "{problems:?}"
    );
    assert!(problems
        .iter()
        .any(|p| p.contains("money moved twice: 2 approved refund")));
}

#[test]
fn failed_compensations_are_listed_not_violations() {
    let mut world = World::new();
    world.fare("wr_refund", "needs_attention", 700);
    world.approved("wr_refund", "pre_authorise", 1, 700);
    world.approved("wr_refund", "capture", 1, 700);
    world.fare("wr_release", "needs_attention", 300);
    world.approved("wr_release", "pre_authorise", 1, 300);
    let findings = world.findings();
    assert!(findings.violations.is_empty(), "{:?}", findings.violations);
    let reasons: BTreeMap<&str, &str> = findings
        .needs_attention
        .iter()
        .map(|n| (n.fare_id.as_str(), n.reason.as_str()))
        .collect();
    assert!(reasons["wr_refund"].starts_with("refund failed"));
    assert!(reasons["wr_release"].starts_with("release failed"));
}

#[test]
fn a_hold_left_on_a_terminal_fare_is_named() {
    let mut world = World::new();
    world.fare("wr_held", "failed", 300);
    world.approved("wr_held", "pre_authorise", 1, 300);
    world.fare("wr_pending", "pre_authorised", 300);
    world.approved("wr_pending", "pre_authorise", 1, 300);
    // Held by the gateway, the fare not committed yet: in flight, until --stuck-after.
    world.approved("wr_registering", "pre_authorise", 1, 300);
    let just_now = OffsetDateTime::from_unix_timestamp(NOW_MS / 1000 - 1).ok();
    let hold = world.state.approved.get_mut("wr_registering").unwrap();
    hold.get_mut("pre_authorise").unwrap().latest_at = just_now;
    world.approved("wr_orphan", "pre_authorise", 1, 300);
    assert_eq!(
        named(&world.findings()),
        [(4, "wr_held".into()), (4, "wr_orphan".into())]
    );
}

#[test]
fn a_fare_without_outcome_is_in_flight_then_stuck() {
    let mut world = World::new();
    world.request(Some("wr_new"), 0, b"a", 1_000);
    world.request(Some("wr_old"), 1, b"b", 3_600_000);
    let findings = world.findings();
    assert_eq!(findings.fares, 2);
    assert_eq!(findings.in_flight, 1);
    assert_eq!(named(&findings), [(1, "wr_old".into())]);
    assert_eq!(findings.stuck[0].status, "not registered");
    assert_eq!(findings.stuck[0].idle_secs, 3600);
}

#[test]
fn a_fare_retrying_a_compensation_is_in_flight_until_its_deadline() {
    let mut world = World::new();
    world.request(Some("wr_refunding"), 0, b"a", 3_600_000);
    world.fare("wr_refunding", "refunding", 100);
    let deadline = |secs_from_now: i64| {
        OffsetDateTime::from_unix_timestamp(NOW_MS / 1000 + secs_from_now).ok()
    };
    let fare = world.state.fares.get_mut("wr_refunding").unwrap();
    fare.compensation_deadline = deadline(600);
    assert_eq!(world.findings().in_flight, 1);
    let fare = world.state.fares.get_mut("wr_refunding").unwrap();
    fare.compensation_deadline = deadline(-600);
    assert_eq!(world.findings().stuck[0].idle_secs, 600);
    // Attempts the gateway does not answer go on past the deadline: they are not progress.
    let fare = world.state.fares.get_mut("wr_refunding").unwrap();
    fare.updated_at = OffsetDateTime::from_unix_timestamp(NOW_MS / 1000 - 1).unwrap();
    assert_eq!(world.findings().stuck[0].idle_secs, 600);
}

#[test]
fn two_outcomes_and_an_outcome_nobody_asked_for_are_named() {
    let mut world = World::new();
    world.request(Some("wr_1"), 0, b"a", 3_600_000);
    world.event(Topic::FareOutcomes, "wr_1", EventType::FareCollected, 0);
    world.event(
        Topic::FareOutcomes,
        "wr_1",
        EventType::FareCollectionFailed,
        1,
    );
    world.event(Topic::FareOutcomes, "wr_ghost", EventType::FareCollected, 2);
    let findings = world.findings();
    assert_eq!(
        named(&findings),
        [(1, "wr_1".into()), (1, "wr_ghost".into())]
    );
    assert_eq!(findings.outcomes.collected, 1);
}

#[test]
fn two_ids_for_one_event_type_are_named() {
    let mut world = World::new();
    world.event(Topic::PaymentEvents, "wr_1", EventType::Charged, 0);
    world.event(Topic::PaymentEvents, "wr_1", EventType::Charged, 1);
    assert_eq!(named(&world.findings()), [(2, "wr_1".into())]);
}

#[test]
fn a_consumed_message_needs_its_effect_or_its_dead_letter() {
    let mut world = World::new();
    world.fare("wr_1", "collected", 100);
    world.request(Some("wr_1"), 0, b"ok", 3_600_000);
    world.event(Topic::FareOutcomes, "wr_1", EventType::FareCollected, 0);
    world.request(None, 1, b"poison", 3_600_000);
    world.request(None, 2, b"lost poison", 3_600_000);
    world.request(None, 3, b"changed poison", 3_600_000);
    world.request(None, 4, b"not consumed yet", 3_600_000);
    world.dead_letter(Topic::FareRequests, 1, b"poison");
    world.dead_letter(Topic::FareRequests, 3, b"other bytes at that position");
    world.consumed(Service::Payment, Topic::FareRequests, 4);
    // A PreAuthorised the payment-service consumed but has no record of.
    world.event(Topic::PaymentEvents, "wr_1", EventType::PreAuthorised, 0);
    world.consumed(Service::Payment, Topic::PaymentEvents, 1);
    let findings = world.findings();
    let fives: Vec<&str> = findings
        .violations
        .iter()
        .filter(|v| v.invariant == 5)
        .map(|v| v.problem.as_str())
        .collect();
    assert_eq!(fives.len(), 3, "{fives:?}");
    for missing in ["PreAuthorised", "offset 2", "offset 3"] {
        assert!(
            fives.iter().any(|p| p.contains(missing)),
            "{missing}: {fives:?}"
        );
    }
}

#[test]
fn an_event_consumed_before_the_retention_window_is_not_checked_against_the_pruned_inbox() {
    let mut world = World::new();
    world.fare("wr_1", "collected", 100);
    world.request(Some("wr_1"), 0, b"ok", 3_600_000);
    world.consumed(Service::Payment, Topic::FareRequests, 1);
    // An hour old, its inbox row gone.
    world.event(Topic::PaymentEvents, "wr_1", EventType::PreAuthorised, 0);
    world.consumed(Service::Payment, Topic::PaymentEvents, 1);
    let fives = |world: &World| {
        world
            .findings()
            .violations
            .iter()
            .filter(|v| v.invariant == 5)
            .count()
    };
    assert_eq!(
        fives(&world),
        1,
        "within the window, a missing inbox row is a violation"
    );
    world.retention = Duration::from_secs(1800);
    assert_eq!(
        fives(&world),
        0,
        "past the window, the row may have been pruned"
    );
}

#[test]
fn a_second_different_request_needs_its_dead_letter_and_starts_no_saga() {
    let mut world = World::new();
    world.fare("wr_1", "collected", 100);
    world.request(Some("wr_1"), 0, b"first", 3_600_000);
    world.event(Topic::FareOutcomes, "wr_1", EventType::FareCollected, 0);
    // The same fare, other data: another fingerprint.
    world.topics.requests.push(Request {
        envelope: envelope(1, b"second", NOW_MS, false),
        fare: Some(("wr_1".to_owned(), Uuid::nil())),
    });
    world.consumed(Service::Payment, Topic::FareRequests, 2);
    world.event(Topic::PaymentEvents, "wr_1", EventType::PreAuthorised, 0);
    world.event(Topic::PaymentEvents, "wr_1", EventType::FareRejected, 1);
    let findings = world.findings();
    assert_eq!(
        named(&findings),
        [(6, "wr_1".into()), (6, "wr_1".into())],
        "{:?}",
        findings.violations
    );
    world.dead_letter(Topic::FareRequests, 1, b"second");
    assert_eq!(named(&world.findings()).len(), 1);
}
