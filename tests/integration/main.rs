//! Integration tests against the real Kafka and PostgreSQL (see `tests/lib.rs` for the harness).
//! One binary; every test has its own database and topics, so they run in parallel.

mod bad_input;
mod broker_restart;
mod cli;
mod concurrency;
mod crash;
mod duplicates;
mod harness;
mod markers;
mod outage;
mod read_api;
mod schema_ownership;
