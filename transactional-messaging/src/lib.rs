//! Kafka + PostgreSQL plumbing shared by the saga's services: the transactional outbox and its
//! relay, the inbox that de-duplicates consumed events, the dead-letter queue, the
//! at-least-once consumer loop, topic creation, typed configuration and shutdown signals, and
//! what the services' read APIs share (bounded lists, the card-number mask).
//!
//! The guarantee this crate gives a service: a consumed message's effects, the record that it
//! was consumed, and the events it causes commit in one PostgreSQL transaction; the Kafka offset
//! is stored only after that commit; an outbox row is marked published only after the broker
//! acknowledged it. Delivery is at-least-once; effects are once, because every consumer
//! de-duplicates on `event_id` (see `ARCHITECTURE.md`).
//!
//! Error policy: library functions return `thiserror`/`sqlx`/`rdkafka` errors or `anyhow` with
//! context; a handler classifies its own failures as [`HandleError::Retryable`] (the message is
//! retried, never skipped) or [`HandleError::Permanent`] (the message goes to the service's DLQ).

pub mod commit_signal;
pub mod config;
pub mod consumer;
pub mod crash_point;
pub mod database;
pub mod dead_letter;
pub mod http;
pub mod inbox;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod pruner;
pub mod read_api;
pub mod readiness;
pub mod relay;
pub mod retry;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
pub mod work_queue;

pub use commit_signal::{CommitSignal, CommitWatch};
pub use consumer::{
    run_consumer, Consumed, Consuming, Disposition, HandleError, Handler, Input, Messages, NoCall,
    Progress,
};
pub use metrics::{DatabaseGauges, FareResult, Metrics, OutcomeObservation};
pub use outbox::OutboxMessage;
pub use readiness::Readiness;
pub use relay::{run_relay, Handoff};
pub use service::{Service, ServiceIdentity, Stopping, Task};
