//! The integration-test harness: every test gets its own PostgreSQL database (with the two
//! service schemas and roles exactly as the stack provisions them) and its own topic names (a
//! random suffix), runs the real services in-process against the real Kafka and PostgreSQL,
//! and observes what a user would: the events on the topics and the rows in each schema.
//!
//! Environment: `KAFKA_BOOTSTRAP_SERVERS` (default `localhost:9092`) and `DATABASE_URL`, the
//! admin URL (default `postgres://wildrydes_admin:wildrydes_admin@localhost:5432/wildrydes`).
//! `scripts/test` sets both.

pub mod audit;
pub mod browser;
pub mod database;
pub mod env;
pub mod invariants;
pub mod processes;
pub mod recorder;
pub mod services;

pub use env::TestEnv;
pub use recorder::{Recorded, Recorder};
