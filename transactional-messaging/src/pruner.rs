//! Keeps a service's outbox and inbox the size of its retention window: published outbox rows
//! and inbox rows older than `RETENTION` (by default the event topics' retention, 7 days) are
//! deleted, a chunk at a time. By then their messages are gone from the topics: none can be
//! redelivered (so the inbox row is no longer needed to recognise it), and none can be asked
//! of the read API from the topics either.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;

/// Rows deleted per statement.
const CHUNK: i64 = 10_000;
/// The longest pause between two passes.
const EVERY: Duration = Duration::from_secs(60);

/// Prunes until `stopping`.
pub async fn run(
    pool: PgPool,
    retention: Duration,
    stopping: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stopping);
    let every = (retention / 10).clamp(Duration::from_secs(1), EVERY);
    loop {
        match prune(&pool, retention).await {
            // A full chunk: there is more, go on at once.
            Ok(deleted) if deleted >= CHUNK as u64 => continue,
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::debug!(deleted, "outbox and inbox pruned");
                }
            }
            Err(error) => tracing::warn!(%error, "pruning failed; trying again later"),
        }
        tokio::select! {
            () = &mut stopping => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One chunk of each table; returns the most rows deleted from one.
async fn prune(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    let older_than = retention.as_secs_f64();
    let outbox = sqlx::query!(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
         WHERE published_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2)",
        older_than,
        CHUNK,
    )
    .execute(pool)
    .await?
    .rows_affected();
    let inbox = sqlx::query!(
        "DELETE FROM inbox WHERE event_id IN (SELECT event_id FROM inbox \
         WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2)",
        older_than,
        CHUNK,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(outbox.max(inbox))
}
