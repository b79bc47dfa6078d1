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
