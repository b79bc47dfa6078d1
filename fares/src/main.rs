//! `fares`: the command line of the fare-collection saga (SPEC §7).
//!
//! - `fares topics ensure|list` — the SPEC §2 topics, created idempotently ([`topics`]);
//! - `fares request` — publish a `FareRequested` ([`request`]);
//! - `fares status <fare_id>` — one saga's timeline across both services ([`status`]);
//! - `fares watch` — outcomes live from `fare-outcomes` ([`watch`]);
//! - `fares audit` — checks SPEC §6's invariants across the topics and both services' state
//!   ([`audit`]).
//! - `fares bench` — a load benchmark with a raw Kafka / PostgreSQL baseline ([`bench`]).
//! - `fares dlq list|show|replay` — the dead letters, and replaying one to its source topic
//!   ([`dlq`]).
//! - `fares console` — a local web page over all of the above ([`console`]).
//! - `fares diagram` — the choreography diagram, generated from the step table ([`diagram`]).
//!
//! Invariants: the CLI sees the services' state only through their HTTP read APIs and the
//! topics — except `fares audit`, which also reads both schemas as the read-only role
//! `wildrydes_auditor`; only `fares bench`'s baseline writes to PostgreSQL, to a scratch schema
//! of its own. It joins no consumer group and commits no offset (the audit reads the
//! services' groups' committed offsets without joining). Amounts are
//! converted between decimal text and integer minor units exactly ([`money`]), never through
//! floating point. Input is validated before anything is sent.
//!
//! Errors are `anyhow` with context; every message says what is wrong and what to do. Exit
//! codes (see [`exit`]): 0 done, 1 a definite "no", 2 could not do it.

mod audit;
mod bench;
mod broker;
mod cli;
mod console;
mod detail;
mod diagram;
mod dlq;
mod exit;
mod money;
mod outcomes;
mod report;
mod request;
mod services;
mod status;
mod timeline;
mod topics;
mod watch;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report(&error),
    }
}
