//! `fares audit`: checks SPEC §6's invariants 1–7 across the topics and both services' state,
//! and reports every violation with its fare, the stuck fares and those that need attention.
//!
//! In order, so that what is read later is never older than what it is compared with:
//!
//! 1. connect to PostgreSQL as the read-only auditor ([`state`]) and ask Kafka for the
//!    topics' partitions; note the database clock (the audit's start);
//! 2. read the services' consumer groups' committed offsets ([`topics::committed`]);
//! 3. take every partition's watermarks, effects first ([`topics::ranges`]);
//! 4. at the same time: read every topic up to those watermarks ([`topics::read`]), read both
//!    schemas in one snapshot ([`state`]), scan every table for card numbers ([`tables`]) and
//!    the `--logs` files ([`logs`]);
//! 5. ask the read APIs about the fares with a dead letter or a rejection ([`read_apis`]);
//! 6. run the checks ([`checks`]) and print the report ([`report`]).
//!
//! Exit codes: 0 clean, 1 any violation (a stuck fare is one), 2 the audit could not run.

mod checks;
mod logs;
mod messages;
mod read_apis;
mod report;
mod state;
mod tables;
mod topics;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use events_schema::FareId;

use self::checks::Evidence;
use self::report::Report;
use self::state::Database;
use crate::broker::Kafka;
use crate::exit;
use crate::services::read_apis;

/// `fares audit`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Print one JSON object instead of the report (fields in the README, "Auditing the saga").
    #[arg(long)]
    pub json: bool,
    /// A fare without an outcome whose latest activity is older than this is stuck, a
    /// violation of invariant 1 (e.g. 90s, 5m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub stuck_after: Duration,
    /// The services' `RETENTION`: their inbox rows older than this are pruned, so an event
    /// consumed before that can no longer be shown processed and is not checked (invariant 5).
    #[arg(long, env = "RETENTION", value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retention: Duration,
    /// Also scan these log files for raw card numbers (invariant 7).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// The payment-service's read API. Default: http:// + PAYMENT_HTTP_ADDR when set, else
    /// http://127.0.0.1:8081.
    #[arg(long, env = "PAYMENT_URL", value_name = "URL")]
    pub payment_url: Option<String>,
    /// The accounting-service's read API. Default: http:// + ACCOUNTING_HTTP_ADDR when set,
    /// else http://127.0.0.1:8082.
    #[arg(long, env = "ACCOUNTING_URL", value_name = "URL")]
    pub accounting_url: Option<String>,
}

/// Runs the audit; `Err` carrying a negative answer (exit code 1) when it found violations.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let kafka = Kafka::from_env()?;
    let url = std::env::var("AUDIT_DATABASE_URL").unwrap_or_else(|_| state::DEFAULT_URL.to_owned());
    let (database, partitions) = tokio::join!(Database::connect(&url), topics::partitions(&kafka));
    let (database, partitions) = (database?, partitions?);
    let since = database.now().await?;
    let now_ms = unix_millis(SystemTime::now());

    let committed = topics::committed(&kafka, &partitions).await?;
    let ranges = topics::ranges(&kafka, &partitions).await?;
    let log_files = args.logs.clone();
    let (topic_facts, state, tables, logs) = tokio::join!(
        topics::read(&kafka, &ranges),
        database.read(since),
        tables::card_numbers(database.pool()),
        tokio::task::spawn_blocking(move || logs::card_numbers(&log_files)),
    );
    let (topic_facts, state, tables) = (topic_facts?, state?, tables?);
    let logs = logs.context("the scan of the log files was interrupted")??;

    let (payment, accounting) =
        read_apis(args.payment_url.as_deref(), args.accounting_url.as_deref())?;
    let asked = fares_to_ask_about(&topic_facts, &state);
    let apis = [payment, accounting];
    let read_api_scan = read_apis::scan(&apis, &asked).await;

    let mut findings = checks::run(&Evidence {
        topics: &topic_facts,
        committed: &committed,
        state: &state,
        names: &kafka.names,
        tables: &tables,
        read_apis: &read_api_scan,
        logs: &logs,
        now_ms,
        stuck_after: args.stuck_after,
        retention: args.retention,
    });
    read_apis::waiting_for(&apis[0], &mut findings.stuck).await;
    let mut not_checked = read_api_scan.not_checked;
    if args.logs.is_empty() {
        not_checked.push("log files: none given (--logs FILE…)".to_owned());
    }
    let report = Report {
        clean: findings.violations.is_empty(),
        fares: findings.fares,
        outcomes: findings.outcomes,
        in_flight: findings.in_flight,
        messages: topic_facts
            .messages
            .iter()
            .map(|(topic, count)| (topic.base_name(), *count))
            .collect(),
        violations: findings.violations,
        stuck: findings.stuck,
        needs_attention: findings.needs_attention,
        not_checked,
        elapsed_ms: started.elapsed().as_millis(),
        topic_suffix: kafka.names.suffix().to_owned(),
        kafka: kafka.bootstrap().to_owned(),
        database: database.described.clone(),
        stuck_after_secs: args.stuck_after.as_secs(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if report.clean {
        Ok(())
    } else {
        Err(exit::negative(format!(
            "fares audit: {} of SPEC §6 ({})",
            report.counted(),
            report.invariants()
        )))
    }
}

/// The fares whose read-API answers are scanned: those with a dead letter or a rejection.
fn fares_to_ask_about(topics: &topics::TopicFacts, state: &state::State) -> Vec<FareId> {
    let dead_lettered = topics
        .dead_letters
        .iter()
        .filter_map(|(_, letter)| letter.key.as_deref());
    let rejected = state
        .fares
        .iter()
        .filter(|(_, fare)| fare.status == "rejected")
        .map(|(fare_id, _)| fare_id.as_str());
    let ids: BTreeSet<&str> = dead_lettered.chain(rejected).collect();
    ids.into_iter()
        .filter_map(|id| FareId::parse(id).ok())
        .collect()
}

fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
