//! Integration tests against the real Kafka and PostgreSQL (see `tests/lib.rs` for the harness).
//! One binary; every test has its own database and topics, so they run in parallel.

mod audit;
mod bad_input;
mod bench;
mod broker_restart;
mod card_numbers;
mod cli;
mod cloud_events;
mod compensations;
mod concurrency;
mod console;
mod crash;
mod crash_points;
mod database_restart;
mod dead_letters;
mod dlq;
mod duplicates;
mod event_ids;
mod harness;
mod health;
mod markers;
mod metrics;
mod outage;
mod own_connection;
mod query_plans;
mod read_api;
mod schema_ownership;
mod stuck;
mod traces;
