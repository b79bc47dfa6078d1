//! Connecting a service to its own PostgreSQL schema.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

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
            .acquire_timeout(Duration::from_secs(10))
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
