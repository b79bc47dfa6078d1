//! Connecting a service to its own PostgreSQL schema.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use sqlx::{Connection, PgConnection};

use crate::config::redact_url;

/// A pool of `pool_size` connections that resolve unqualified names in `schema` only, so a service's SQL can
/// only ever name its own tables. Waits up to `wait` for PostgreSQL to accept connections.
///
/// Prepared statements use generic plans (`plan_cache_mode`): every statement of a service is
/// keyed (by ids, in arrays), so one plan per statement fits all, and planning it again at each
/// of its thousands of executions a second cost more CPU than running it.
///
/// Sequential scans are priced out (`enable_seqscan = off`: the planner still uses one where
/// no index serves). A generic plan is made once per connection, and on a new database its
/// tables are empty and not analysed yet: a lookup by key planned then is a sequential scan,
/// kept while the table grows until autovacuum's first `ANALYZE` (up to a minute or more
/// later). Measured on a fresh stack: 100,000 fares at full speed fell from ~3,000 to ~600
/// sagas/s for over a minute, reading millions of rows per second, until the plans were
/// remade.
pub async fn connect(
    url: &str,
    schema: &str,
    pool_size: u32,
    wait: Duration,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("invalid database URL {}", redact_url(url)))?
        .options([
            ("search_path", schema),
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
        ]);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let attempt = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(url = %redact_url(url), %error, "PostgreSQL not reachable yet, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot connect to PostgreSQL at {}", redact_url(url))
                })
            }
        }
    }
}

/// How long a new own connection may take to connect: the pool's acquire timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection of a busy task's own, kept between its transactions and outside the pool.
/// sqlx tests a pooled connection with a round trip when it leaves the pool and again when it
/// comes back: two of the nine round trips of a batch, and two of the four of a gateway
/// record, at 500 fares/s a fifth of PostgreSQL's CPU and a third of the saga's latency. Being
/// outside the pool, it never takes a connection the relay, the sweeps or the read API need
/// (`DATABASE_POOL_SIZE` counts those). After an error it is closed and the next use connects
/// again: a database restart costs one failed attempt.
pub struct OwnConnection {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl OwnConnection {
    /// A connection made like the pool's (same server, role, schema and settings), when first
    /// used.
    pub fn like(pool: &PgPool) -> Self {
        OwnConnection {
            options: (*pool.connect_options()).clone(),
            connection: None,
        }
    }

    /// The connection, connecting if there is none.
    pub async fn get(&mut self) -> sqlx::Result<&mut PgConnection> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&self.options))
                    .await
                    .map_err(|_| {
                        sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connecting to PostgreSQL timed out",
                        ))
                    })??
            }
        };
        Ok(self.connection.insert(connection))
    }

    /// Passes `result` on; after an error, drops the connection, so that the next use
    /// connects again.
    pub fn check<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    /// Closes the connection, if there is one.
    pub async fn close(mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }
}
