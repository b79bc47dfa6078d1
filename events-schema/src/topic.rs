//! The Kafka topics (SPEC §2): the one place their names, partition counts and retention live.
//!
//! | topic | partitions | retention |
//! |---|---|---|
//! | `fare-requests`, `payment-events`, `accounting-events`, `fare-outcomes` | 6 | 7 days |
//! | `payment-service.dlq`, `accounting-service.dlq` | 1 | 30 days |
//!
//! Event topics are keyed by `fare_id`, so one fare's events stay in order on one partition;
//! six partitions let each service run up to six consumers. Dead-letter topics see little
//! traffic and are read by people, so they have one partition (one total order) and are kept
//! long enough for an operator to notice and replay them.
//!
//! Tests isolate themselves with [`TopicNames::new`]`(suffix)`; production uses
//! [`TopicNames::production`], the bare names.

use std::fmt;

use crate::event_type::EventType;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One of the saga's topics.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `fare-requests`: `FareRequested`, written by riders' apps, the CLI, kcat.
    FareRequests,
    /// `payment-events`: written by payment-service.
    PaymentEvents,
    /// `accounting-events`: written by accounting-service.
    AccountingEvents,
    /// `fare-outcomes`: the terminal outcome of every fare, written by payment-service.
    FareOutcomes,
    /// `payment-service.dlq`: messages payment-service could not process.
    PaymentDlq,
    /// `accounting-service.dlq`: messages accounting-service could not process.
    AccountingDlq,
}

impl Topic {
    /// Every topic, event topics first.
    pub const ALL: [Topic; 6] = [
        Topic::FareRequests,
        Topic::PaymentEvents,
        Topic::AccountingEvents,
        Topic::FareOutcomes,
        Topic::PaymentDlq,
        Topic::AccountingDlq,
    ];

    /// The production name, without any suffix.
    pub fn base_name(&self) -> &'static str {
        match self {
            Topic::FareRequests => "fare-requests",
            Topic::PaymentEvents => "payment-events",
            Topic::AccountingEvents => "accounting-events",
            Topic::FareOutcomes => "fare-outcomes",
            Topic::PaymentDlq => "payment-service.dlq",
            Topic::AccountingDlq => "accounting-service.dlq",
        }
    }

    /// The topic whose production name is `name`.
    pub fn from_base_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.base_name() == name)
    }

    /// Partition count: 6 for event topics, 1 for dead-letter topics.
    pub fn partitions(&self) -> i32 {
        if self.is_dlq() {
            1
        } else {
            6
        }
    }

    /// `retention.ms`: 7 days for event topics, 30 days for dead-letter topics.
    pub fn retention_ms(&self) -> i64 {
        if self.is_dlq() {
            30 * DAY_MS
        } else {
            7 * DAY_MS
        }
    }

    /// The one service that writes this topic (SPEC §2); `None` for `fare-requests`, which
    /// riders' apps, the CLI and kcat write.
    pub fn writer(&self) -> Option<&'static str> {
        match self {
            Topic::FareRequests => None,
            Topic::PaymentEvents | Topic::FareOutcomes | Topic::PaymentDlq => {
                Some("payment-service")
            }
            Topic::AccountingEvents | Topic::AccountingDlq => Some("accounting-service"),
        }
    }

    /// Whether this is a dead-letter topic.
    pub fn is_dlq(&self) -> bool {
        matches!(self, Topic::PaymentDlq | Topic::AccountingDlq)
    }

    /// The event types published on this topic (none for dead-letter topics, which carry
    /// other topics' messages unchanged).
    pub fn event_types(&self) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|t| t.topic() == *self)
            .collect()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

/// The actual topic names of one deployment: base names plus a suffix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TopicNames {
    suffix: String,
}

impl TopicNames {
    /// Names with `suffix` appended, e.g. `"-t3f9a"` gives `fare-requests-t3f9a`.
    pub fn new(suffix: impl Into<String>) -> Self {
        Self {
            suffix: suffix.into(),
        }
    }

    /// The bare production names.
    pub fn production() -> Self {
        Self::new("")
    }

    /// The suffix appended to every base name.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The full name of `topic`.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}{}", topic.base_name(), self.suffix)
    }

    /// Which topic the full name `name` is, under this suffix.
    pub fn topic_of(&self, name: &str) -> Option<Topic> {
        name.strip_suffix(self.suffix.as_str())
            .and_then(Topic::from_base_name)
    }

    /// Every topic with its full name.
    pub fn all(&self) -> Vec<(Topic, String)> {
        Topic::ALL.into_iter().map(|t| (t, self.name(t))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_settings() {
        let names: Vec<&str> = Topic::ALL.iter().map(Topic::base_name).collect();
        assert_eq!(
            names,
            [
                "fare-requests",
                "payment-events",
                "accounting-events",
                "fare-outcomes",
                "payment-service.dlq",
                "accounting-service.dlq"
            ]
        );
        assert_eq!(Topic::PaymentEvents.partitions(), 6);
        assert_eq!(Topic::PaymentDlq.partitions(), 1);
        assert_eq!(Topic::FareOutcomes.retention_ms(), 604_800_000);
        assert_eq!(Topic::AccountingDlq.retention_ms(), 2_592_000_000);
        assert!(Topic::PaymentDlq.event_types().is_empty());
        assert_eq!(Topic::PaymentEvents.event_types().len(), 9);
        let covered: usize = Topic::ALL.iter().map(|t| t.event_types().len()).sum();
        assert_eq!(covered, EventType::ALL.len());
    }

    #[test]
    fn suffixed_names_map_back() {
        let names = TopicNames::new("-t42");
        assert_eq!(names.suffix(), "-t42");
        for t in Topic::ALL {
            let name = names.name(t);
            assert_eq!(name, format!("{}-t42", t.base_name()));
            assert_eq!(names.topic_of(&name), Some(t));
            assert_eq!(names.topic_of(t.base_name()), None);
        }
        assert_eq!(names.topic_of("fare-requests-t43"), None);
        let prod = TopicNames::production();
        assert_eq!(prod.name(Topic::FareRequests), "fare-requests");
        assert_eq!(
            prod.topic_of("payment-service.dlq"),
            Some(Topic::PaymentDlq)
        );
        assert_eq!(prod.topic_of("nope"), None);
        assert_eq!(prod.all().len(), 6);
    }
}
