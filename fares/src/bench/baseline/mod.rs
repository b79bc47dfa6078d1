//! The baseline measured in the same run as the saga: what raw Kafka and raw PostgreSQL do
//! on this machine, and the saga's rate as a share of each.
//!
//! The comparison divides each raw rate by what one saga of the run's mix needs of it:
//!
//! - **Kafka: messages written per saga** — the request plus the events the services publish
//!   for it (SPEC §5: 4 for a happy fare, 2 to 5 on the failure paths). The baseline
//!   produces each message once and reads it back once; a saga also reads most messages more
//!   than once (both services read `payment-events`), which costs the broker little, so the
//!   ceiling it gives is generous rather than strict.
//! - **PostgreSQL: local transactions per saga** — one per event the services publish, each
//!   written in one local transaction with its event (SPEC §4): 4 for a happy fare. A design
//!   that batches several messages into one commit can beat this ceiling; today's commits
//!   once per message consumed and more besides.
//!
//! The saga's rate compared is the settled fares per second from the first request to the
//! last outcome.
//!
//! With `--rate`, a third measurement gives the saga's latency a floor: raw Kafka through a
//! happy saga's four consume → produce hops at the same rate, with no database ([`hops`]).

pub mod hops;
pub mod kafka;
pub mod postgres;

use serde::Serialize;

use self::hops::HopsBaseline;
use self::kafka::KafkaBaseline;
use self::postgres::PostgresBaseline;

/// Both raw measurements (each absent if it failed or was interrupted), and the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub kafka: Option<KafkaBaseline>,
    /// Only with `--rate`.
    pub kafka_hops: Option<HopsBaseline>,
    pub postgres: Option<PostgresBaseline>,
    /// Why a measurement is missing.
    pub errors: Vec<String>,
    pub comparison: Comparison,
}

/// The saga's rate beside each raw rate.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Settled fares per second, first request to last outcome.
    pub sagas_per_s: Option<f64>,
    pub kafka: Option<Share>,
    pub postgres: Option<Share>,
    /// The saga's p99 latency beside raw Kafka's through the same hops (`--rate` only).
    pub latency: Option<LatencyFloor>,
}

/// The saga's p99 latency as a multiple of raw Kafka's through a happy saga's hops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyFloor {
    pub saga_p99_ms: f64,
    pub hops_p99_ms: f64,
    /// `saga_p99_ms / hops_p99_ms`.
    pub times: f64,
}

impl LatencyFloor {
    fn of(saga_p99_ms: f64, hops_p99_ms: f64) -> Option<LatencyFloor> {
        (hops_p99_ms > 0.0).then(|| LatencyFloor {
            saga_p99_ms,
            hops_p99_ms,
            times: saga_p99_ms / hops_p99_ms,
        })
    }
}

/// The saga's rate as a share of what one raw rate would allow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    /// Messages/s or commits/s.
    pub raw_per_s: f64,
    /// What one saga needs of it: messages written, or local transactions.
    pub per_saga: f64,
    /// `raw_per_s / per_saga`: sagas/s if nothing else limited them.
    pub ceiling_sagas_per_s: f64,
    /// `sagas_per_s / ceiling_sagas_per_s`, 0–1.
    pub share: f64,
}

impl Share {
    fn of(sagas_per_s: f64, raw_per_s: f64, per_saga: f64) -> Option<Share> {
        if raw_per_s <= 0.0 || per_saga <= 0.0 {
            return None;
        }
        let ceiling = raw_per_s / per_saga;
        Some(Share {
            raw_per_s,
            per_saga,
            ceiling_sagas_per_s: ceiling,
            share: sagas_per_s / ceiling,
        })
    }
}

impl Comparison {
    /// `events_per_saga`: the mean events the services publish per saga of the run's mix;
    /// `saga_p99_ms`: the saga's latency, request → outcome.
    pub fn new(
        sagas_per_s: Option<f64>,
        events_per_saga: f64,
        saga_p99_ms: Option<f64>,
        kafka: Option<&KafkaBaseline>,
        hops: Option<&HopsBaseline>,
        postgres: Option<&PostgresBaseline>,
    ) -> Comparison {
        let share =
            |raw: f64, per_saga: f64| sagas_per_s.and_then(|rate| Share::of(rate, raw, per_saga));
        Comparison {
            sagas_per_s,
            kafka: kafka.and_then(|k| share(k.msgs_per_s, events_per_saga + 1.0)),
            postgres: postgres.and_then(|p| share(p.commits_per_s, events_per_saga)),
            latency: saga_p99_ms
                .zip(hops.and_then(|h| h.latency_ms.as_ref()))
                .and_then(|(saga, floor)| LatencyFloor::of(saga, floor.p99)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_divide_by_what_a_saga_needs() {
        let s = Share::of(200.0, 100_000.0, 5.0).unwrap();
        assert_eq!(s.ceiling_sagas_per_s, 20_000.0);
        assert!((s.share - 0.01).abs() < 1e-12);
        assert_eq!(Share::of(200.0, 0.0, 5.0), None);
    }

    #[test]
    fn the_latency_floor_is_the_saga_p99_over_raw_kafkas() {
        let floor = LatencyFloor::of(150.0, 25.0).unwrap();
        assert_eq!(floor.times, 6.0);
        assert_eq!(LatencyFloor::of(150.0, 0.0), None);
    }
}
