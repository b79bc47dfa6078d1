//! A busy task's own connection (`database::OwnConnection`): kept between uses, so that a
//! batch costs no pool round trips, and not one of the pool's, so that it never starves the
//! tasks that share the pool; dropped after an error, so that a broken connection (the server
//! restarted, the backend terminated) is replaced at the next use.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgConnection;
use transactional_messaging::database::OwnConnection;

async fn backend_pid(conn: &mut PgConnection) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
}

#[tokio::test]
async fn an_own_connection_is_kept_between_uses_and_leaves_the_pool_alone() -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&tests::database::admin_url())
        .await?;
    let mut own = OwnConnection::like(&pool);
    let first = backend_pid(own.get().await?).await;
    let first = own.check(first)?;
    // The pool's one connection is still the pool's, and another backend.
    let mut pooled = pool.try_acquire().ok_or_else(|| {
        anyhow::anyhow!("the pool's one connection is taken while the own connection is used")
    })?;
    let pooled_pid = backend_pid(&mut pooled).await?;
    assert_ne!(pooled_pid, first, "the own connection is the pool's");
    let second = backend_pid(own.get().await?).await;
    assert_eq!(own.check(second)?, first, "a second use connected again");
    own.close().await;
    Ok(())
}

#[tokio::test]
async fn after_an_error_the_next_use_takes_a_working_connection() -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&tests::database::admin_url())
        .await?;
    let mut own = OwnConnection::like(&pool);
    let pid = backend_pid(own.get().await?).await;
    let pid = own.check(pid)?;
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await?;
    assert!(terminated, "backend {pid} was not terminated");

    let broken = backend_pid(own.get().await?).await;
    assert!(
        own.check(broken).is_err(),
        "a query on the terminated backend {pid} succeeded"
    );
    let next = backend_pid(own.get().await?).await;
    let next = own
        .check(next)
        .map_err(|error| anyhow::anyhow!("the use after the error failed too: {error}"))?;
    assert_ne!(next, pid, "the terminated connection was used again");
    own.close().await;
    Ok(())
}
