//! Raw PostgreSQL commits on the same machine: in a scratch schema the bench creates and
//! drops, `connections` connections each commit one-row transactions (`BEGIN`, `INSERT` of a
//! request-sized row, `COMMIT`) back to back for a few seconds. The server's durability
//! settings are left as they are (and reported): the figure is what a durable commit costs
//! there.
//!
//! This is the one place the CLI connects to PostgreSQL: as the admin of `--database-url`,
//! never to the services' schemas.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use tokio::time::Instant;

use crate::bench::figures::{histogram, Percentiles};
use crate::bench::interrupt::Interrupt;

/// Raw PostgreSQL's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresBaseline {
    /// `host:port/database`, no credentials.
    pub database: String,
    pub schema: String,
    pub connections: usize,
    pub seconds: f64,
    pub commits: u64,
    pub commits_per_s: f64,
    /// The server's `synchronous_commit` and `fsync`, as they were.
    pub synchronous_commit: String,
    pub fsync: String,
    /// One transaction, `BEGIN` to `COMMIT` acknowledged.
    pub commit_latency_ms: Option<Percentiles>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct PostgresPlan<'a> {
    pub url: &'a str,
    pub run: &'a str,
    pub connections: usize,
    pub duration: Duration,
    /// The bytes of each inserted row.
    pub row: &'a [u8],
}

/// `host:port/database` of a PostgreSQL URL, for messages (never the password).
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    )
}

/// Measures commits/s; `None` when interrupted.
pub async fn measure(
    plan: &PostgresPlan<'_>,
    interrupt: &Interrupt,
) -> anyhow::Result<Option<PostgresBaseline>> {
    let options = PgConnectOptions::from_str(plan.url)
        .context("--database-url (or DATABASE_URL) is not a PostgreSQL URL")?
        .disable_statement_logging();
    let database = describe(&options);
    let unreachable = || {
        format!(
            "cannot connect to PostgreSQL at {database} for the baseline — is it up? \
             (scripts/stack up; set --database-url or DATABASE_URL to an admin URL; \
             --no-baseline skips it)"
        )
    };
    let mut admin = PgConnection::connect_with(&options)
        .await
        .with_context(unreachable)?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut admin)
        .await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&mut admin)
        .await?;
    let schema = format!("fares_bench_{}", plan.run);
    admin
        .execute(
            format!(
                "CREATE SCHEMA {schema}; CREATE TABLE {schema}.commits \
                 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, worker int NOT NULL, \
                 row_bytes bytea NOT NULL)"
            )
            .as_str(),
        )
        .await
        .with_context(|| format!("cannot create the scratch schema {schema} in {database}"))?;
    let measured = commit_for_a_while(&options, &schema, plan, interrupt).await;
    let dropped = admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await;
    if let Err(error) = dropped {
        eprintln!("warning: cannot drop the scratch schema {schema} in {database}: {error}");
    }
    let _ = admin.close().await;
    let Some((commits, latency, seconds)) = measured? else {
        return Ok(None);
    };
    Ok(Some(PostgresBaseline {
        database,
        schema,
        connections: plan.connections,
        seconds,
        commits,
        commits_per_s: commits as f64 / seconds.max(1e-6),
        synchronous_commit,
        fsync,
        commit_latency_ms: Percentiles::of(&latency),
    }))
}

/// Commits from every connection until the duration is over; the commits, their latency and
/// the seconds it took.
async fn commit_for_a_while(
    options: &PgConnectOptions,
    schema: &str,
    plan: &PostgresPlan<'_>,
    interrupt: &Interrupt,
) -> anyhow::Result<Option<(u64, Histogram<u64>, f64)>> {
    let mut connections = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        connections.push(
            PgConnection::connect_with(options)
                .await
                .context("cannot open the baseline's connections")?,
        );
    }
    let insert = format!("INSERT INTO {schema}.commits (worker, row_bytes) VALUES ($1, $2)");
    let started = Instant::now();
    let deadline = started + plan.duration;
    let workers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(worker, mut conn)| {
            let insert = insert.clone();
            let row = plan.row.to_vec();
            let interrupt = interrupt.clone();
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut commits = 0_u64;
                while Instant::now() < deadline && !interrupt.happened() {
                    let begun = Instant::now();
                    let mut tx = conn.begin().await?;
                    sqlx::query(&insert)
                        .bind(worker as i32)
                        .bind(&row)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    latency.saturating_record(begun.elapsed().as_micros().max(1) as u64);
                    commits += 1;
                }
                let _ = conn.close().await;
                anyhow::Ok((commits, latency))
            })
        })
        .collect();
    let mut commits = 0;
    let mut latency = histogram();
    for worker in workers {
        let (n, h) = worker
            .await
            .context("a baseline connection's task failed")?
            .context("a baseline commit failed")?;
        commits += n;
        latency.add(&h).context("merging the commit latencies")?;
    }
    if interrupt.happened() {
        return Ok(None);
    }
    Ok(Some((commits, latency, started.elapsed().as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_described_without_its_password() {
        let options =
            PgConnectOptions::from_str("postgres://admin:s3cret@db.local:6543/wildrydes").unwrap();
        let text = describe(&options);
        assert_eq!(text, "db.local:6543/wildrydes");
        assert!(!text.contains("s3cret"));
    }
}
