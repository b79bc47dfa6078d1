//! What a benchmark run saw of each fare — when it was meant to be sent, the broker timestamp
//! of its request and of its outcome, the outcome's kind — and what follows from it: counts,
//! throughput and latency percentiles (HDR histograms).
//!
//! Times are wall-clock: the request's and the outcome's broker timestamps (`CreateTime`,
//! milliseconds, stamped by the bench's and the payment-service's producers on this machine)
//! and the intended send times of the open loop (microseconds, from the same clock).

use std::collections::BTreeMap;

use events_schema::FailureMarker;
use serde::Serialize;
use uuid::Uuid;

use super::figures::{clamp, histogram, LatencyWindow, Percentiles, Throughput};
use super::mix::{events_per_saga, expected_outcome, marker_name};
use super::outcome::OutcomeKind;

/// One fare of the run.
#[derive(Debug, Clone)]
struct FareRecord {
    marker: FailureMarker,
    sent: bool,
    /// When the open loop meant to send it (µs since the Unix epoch); `None` without `--rate`.
    intended_us: Option<i64>,
    /// The request's timestamp as the broker acknowledged it (ms since the Unix epoch).
    request_ms: Option<i64>,
    /// From handing the request to the producer to the broker's acknowledgement (µs).
    ack_us: Option<i64>,
    send_failed: bool,
    outcome: Option<Settled>,
}

#[derive(Debug, Clone, Copy)]
struct Settled {
    at_ms: i64,
    kind: OutcomeKind,
    event_id: Uuid,
}

/// What became of one outcome message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The fare's first outcome.
    Settled,
    /// The same outcome event again (a redelivery: same `event_id`).
    Redelivered,
    /// A second, different outcome for the fare: SPEC §6.1 broken.
    Conflicting,
}

/// Every fare of a run, as far as it got.
#[derive(Debug, Clone)]
pub struct Tally {
    fares: Vec<FareRecord>,
    sent: usize,
    acknowledged: usize,
    send_failures: usize,
    settled: usize,
    redelivered: usize,
    conflicting: usize,
}

impl Tally {
    /// A run of one fare per marker in `markers`, none sent yet.
    pub fn new(markers: &[FailureMarker]) -> Tally {
        Tally {
            fares: markers
                .iter()
                .map(|&marker| FareRecord {
                    marker,
                    sent: false,
                    intended_us: None,
                    request_ms: None,
                    ack_us: None,
                    send_failed: false,
                    outcome: None,
                })
                .collect(),
            sent: 0,
            acknowledged: 0,
            send_failures: 0,
            settled: 0,
            redelivered: 0,
            conflicting: 0,
        }
    }

    /// Fare `i` was handed to the producer; the open loop meant to send it at `intended_us`.
    pub fn sent(&mut self, i: usize, intended_us: Option<i64>) {
        let fare = &mut self.fares[i];
        if !fare.sent {
            fare.sent = true;
            fare.intended_us = intended_us;
            self.sent += 1;
        }
    }

    /// The broker acknowledged fare `i`'s request with timestamp `at_ms`.
    pub fn acknowledged(&mut self, i: usize, at_ms: Option<i64>) {
        let fare = &mut self.fares[i];
        if fare.request_ms.is_none() {
            fare.request_ms = at_ms;
            self.acknowledged += 1;
        }
    }

    /// The broker's acknowledgement of fare `i`'s request came `after` it was handed to the
    /// producer.
    pub fn ack_took(&mut self, i: usize, after: std::time::Duration) {
        self.fares[i]
            .ack_us
            .get_or_insert(after.as_micros().min(i64::MAX as u128) as i64);
    }

    /// Fare `i`'s request was not acknowledged: it was not written, no outcome will come.
    pub fn send_failed(&mut self, i: usize) {
        let fare = &mut self.fares[i];
        if !fare.send_failed {
            fare.send_failed = true;
            self.send_failures += 1;
        }
    }

    /// An outcome for fare `i` (broker timestamp `at_ms`).
    pub fn outcome(&mut self, i: usize, at_ms: i64, kind: OutcomeKind, event_id: Uuid) -> Seen {
        let fare = &mut self.fares[i];
        match fare.outcome {
            None => {
                fare.outcome = Some(Settled {
                    at_ms,
                    kind,
                    event_id,
                });
                self.settled += 1;
                Seen::Settled
            }
            Some(first) if first.event_id == event_id => {
                self.redelivered += 1;
                Seen::Redelivered
            }
            Some(_) => {
                self.conflicting += 1;
                Seen::Conflicting
            }
        }
    }

    /// How many fares the run has.
    pub fn planned(&self) -> usize {
        self.fares.len()
    }

    /// How many requests were handed to the producer.
    pub fn sent_count(&self) -> usize {
        self.sent
    }

    /// How many fares have their outcome.
    pub fn settled_count(&self) -> usize {
        self.settled
    }

    /// Sent, not failed, no outcome yet.
    pub fn in_flight(&self) -> usize {
        self.sent.saturating_sub(self.send_failures + self.settled)
    }

    /// Whether every request was answered by the broker (acknowledged or failed).
    pub fn all_answered(&self) -> bool {
        self.acknowledged + self.send_failures >= self.sent
    }

    /// Whether every fare the run sent successfully has its outcome.
    pub fn all_settled(&self) -> bool {
        self.sent == self.planned()
            && self.all_answered()
            && self.settled + self.send_failures >= self.sent
    }

    /// Counts, throughput and percentiles of what was seen.
    pub fn summary(&self) -> LoadSummary {
        let mut latency = histogram();
        let mut request_to_outcome = histogram();
        let mut send_lag = histogram();
        let mut ack = histogram();
        let mut outcome_times: Vec<i64> = Vec::with_capacity(self.settled);
        let mut latencies: Vec<(i64, u64)> = Vec::with_capacity(self.settled);
        let mut outcomes: BTreeMap<OutcomeKind, usize> =
            OutcomeKind::ALL.iter().map(|k| (*k, 0)).collect();
        let mut by_marker: BTreeMap<&'static str, MarkerSummary> = BTreeMap::new();
        let mut first_request: Option<i64> = None;
        for fare in &self.fares {
            let entry = by_marker
                .entry(marker_name(fare.marker))
                .or_insert_with(|| MarkerSummary::new(fare.marker));
            entry.fares += 1;
            if let Some(ack_us) = fare.ack_us {
                ack.saturating_record(clamp(ack_us));
            }
            if let Some(request_ms) = fare.request_ms {
                first_request = Some(first_request.map_or(request_ms, |f| f.min(request_ms)));
                if let Some(intended) = fare.intended_us {
                    send_lag.saturating_record(clamp(request_ms * 1000 - intended));
                }
            }
            let Some(outcome) = fare.outcome else {
                continue;
            };
            entry.settled += 1;
            *entry.outcomes.entry(outcome.kind.name()).or_default() += 1;
            if outcome.kind != expected_outcome(fare.marker) {
                entry.unexpected += 1;
            }
            *outcomes.entry(outcome.kind).or_default() += 1;
            outcome_times.push(outcome.at_ms);
            let outcome_us = outcome.at_ms * 1000;
            if let Some(request_ms) = fare.request_ms {
                request_to_outcome.saturating_record(clamp(outcome_us - request_ms * 1000));
            }
            // From the intended send time; without a schedule, from the request itself.
            let from = fare.intended_us.or(fare.request_ms.map(|ms| ms * 1000));
            if let Some(from) = from {
                latency.saturating_record(clamp(outcome_us - from));
                latencies.push((from, clamp(outcome_us - from)));
            }
        }
        outcome_times.sort_unstable();
        let unexpected = by_marker.values().map(|m| m.unexpected).sum();
        LoadSummary {
            planned: self.planned(),
            sent: self.sent,
            acknowledged: self.acknowledged,
            send_failures: self.send_failures,
            settled: self.settled,
            missing: self.in_flight(),
            throughput: Throughput::from_times(first_request, &outcome_times),
            latency_ms: Percentiles::of(&latency),
            latency_over_the_run: LatencyWindow::over_the_run(&latencies),
            request_to_outcome_ms: Percentiles::of(&request_to_outcome),
            send_lag_ms: Percentiles::of(&send_lag),
            ack_ms: Percentiles::of(&ack),
            outcomes: outcomes.into_iter().map(|(k, n)| (k.name(), n)).collect(),
            by_marker,
            unexpected_outcomes: unexpected,
            redelivered_outcomes: self.redelivered,
            conflicting_outcomes: self.conflicting,
            events_per_saga: self.events_per_saga(),
        }
    }

    /// The mean number of events the services publish per fare of this run (SPEC §5).
    fn events_per_saga(&self) -> f64 {
        if self.fares.is_empty() {
            return 0.0;
        }
        let total: u64 = self
            .fares
            .iter()
            .map(|f| u64::from(events_per_saga(f.marker)))
            .sum();
        total as f64 / self.fares.len() as f64
    }
}

/// What a run saw, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// Fares the run was to send (`--fares`).
    pub planned: usize,
    /// Requests handed to the producer.
    pub sent: usize,
    /// Requests the broker acknowledged.
    pub acknowledged: usize,
    /// Requests the broker did not take (not written: no outcome can come).
    pub send_failures: usize,
    /// Fares with an outcome.
    pub settled: usize,
    /// Sent and written, no outcome (yet).
    pub missing: usize,
    pub throughput: Throughput,
    /// Request → outcome, from the intended send time (with `--rate`) or the request's
    /// broker timestamp (without).
    pub latency_ms: Option<Percentiles>,
    /// The same, for the fares sent in each 10 s of the run.
    pub latency_over_the_run: Vec<LatencyWindow>,
    /// Request → outcome, from the request's broker timestamp.
    pub request_to_outcome_ms: Option<Percentiles>,
    /// How late requests left against the schedule (with `--rate` only).
    pub send_lag_ms: Option<Percentiles>,
    /// From handing a request to the producer to the broker's acknowledgement.
    pub ack_ms: Option<Percentiles>,
    /// Outcomes per kind (every kind, zeros included).
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Per marker of the mix: fares, settled, outcomes per kind, outcomes not as SPEC §5 says.
    pub by_marker: BTreeMap<&'static str, MarkerSummary>,
    /// Outcomes of another kind than the fare's marker calls for.
    pub unexpected_outcomes: usize,
    /// An outcome event seen again (same `event_id`): harmless.
    pub redelivered_outcomes: usize,
    /// A second, different outcome for a fare: SPEC §6.1 broken.
    pub conflicting_outcomes: usize,
    /// Mean events the services publish per saga of this mix (SPEC §5).
    pub events_per_saga: f64,
}

/// One marker's share of a run.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerSummary {
    pub fares: usize,
    pub settled: usize,
    /// The outcome SPEC §5 calls for.
    pub expected: &'static str,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub unexpected: usize,
}

impl MarkerSummary {
    fn new(marker: FailureMarker) -> MarkerSummary {
        MarkerSummary {
            fares: 0,
            settled: 0,
            expected: expected_outcome(marker).name(),
            outcomes: BTreeMap::new(),
            unexpected: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn latency_counts_from_the_intended_time_not_the_late_send() {
        let mut tally = Tally::new(&[FailureMarker::None; 2]);
        // Fare 0 meant for t=1000 ms, sent on time, settled at 1010 ms.
        tally.sent(0, Some(1_000_000));
        tally.acknowledged(0, Some(1_000));
        tally.outcome(0, 1_010, OutcomeKind::Collected, id(1));
        // Fare 1 meant for t=1000 ms, the sender stalled: sent at 1500 ms, settled at 1510.
        tally.sent(1, Some(1_000_000));
        tally.acknowledged(1, Some(1_500));
        tally.outcome(1, 1_510, OutcomeKind::Collected, id(2));
        let summary = tally.summary();
        let latency = summary.latency_ms.unwrap();
        assert!((latency.max - 510.0).abs() < 1.0, "{latency:?}");
        let service = summary.request_to_outcome_ms.unwrap();
        assert!((service.max - 10.0).abs() < 0.1, "{service:?}");
        let lag = summary.send_lag_ms.unwrap();
        assert!((lag.max - 500.0).abs() < 1.0, "{lag:?}");
        assert!(tally.all_settled());
    }

    #[test]
    fn outcomes_are_counted_per_kind_and_checked_against_the_marker() {
        let markers = [
            FailureMarker::None,
            FailureMarker::FailCharge,
            FailureMarker::FailCredit,
        ];
        let mut tally = Tally::new(&markers);
        for i in 0..3 {
            tally.sent(i, None);
            tally.acknowledged(i, Some(100));
        }
        assert_eq!(tally.in_flight(), 3);
        assert_eq!(
            tally.outcome(0, 200, OutcomeKind::Collected, id(1)),
            Seen::Settled
        );
        assert_eq!(
            tally.outcome(0, 201, OutcomeKind::Collected, id(1)),
            Seen::Redelivered
        );
        assert_eq!(
            tally.outcome(0, 202, OutcomeKind::Failed, id(9)),
            Seen::Conflicting
        );
        tally.outcome(1, 300, OutcomeKind::FailedReleased, id(2));
        // A fail_credit fare that ends collected is not what SPEC §5 says.
        tally.outcome(2, 400, OutcomeKind::Collected, id(3));
        let summary = tally.summary();
        assert_eq!(summary.settled, 3);
        assert_eq!(summary.missing, 0);
        assert_eq!(summary.outcomes["collected"], 2);
        assert_eq!(summary.outcomes["failed_released"], 1);
        assert_eq!(summary.outcomes["needs_attention"], 0);
        assert_eq!(summary.unexpected_outcomes, 1);
        assert_eq!(summary.by_marker["fail_credit"].unexpected, 1);
        assert_eq!(summary.by_marker["fail_credit"].expected, "failed_refunded");
        assert_eq!(summary.redelivered_outcomes, 1);
        assert_eq!(summary.conflicting_outcomes, 1);
        assert!((summary.events_per_saga - 13.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn unsettled_and_failed_sends_are_told_apart() {
        let mut tally = Tally::new(&[FailureMarker::None; 3]);
        for i in 0..3 {
            tally.sent(i, None);
        }
        tally.acknowledged(0, Some(10));
        tally.send_failed(1);
        tally.acknowledged(2, Some(10));
        tally.outcome(0, 20, OutcomeKind::Collected, id(1));
        assert!(!tally.all_settled());
        let summary = tally.summary();
        assert_eq!(
            (summary.settled, summary.send_failures, summary.missing),
            (1, 1, 1)
        );
        assert_eq!(tally.in_flight(), 1);
    }
}
