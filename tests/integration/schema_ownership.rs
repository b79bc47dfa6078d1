//! Each service's role may touch only its own schema (issue: schema ownership). These tests
//! fail if a grant is widened: any successful read, write or create across the boundary, or
//! any privilege the catalog reports, is a failure.

use sqlx::PgPool;
use tests::TestEnv;

/// SQLSTATE 42501: insufficient_privilege.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

async fn assert_denied(pool: &PgPool, sql: &str) {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("`{sql}` succeeded: the grant is too wide"),
        Err(sqlx::Error::Database(error)) => assert_eq!(
            error.code().as_deref(),
            Some(INSUFFICIENT_PRIVILEGE),
            "`{sql}` failed, but not for lack of privilege: {error}"
        ),
        Err(other) => panic!("`{sql}` failed unexpectedly: {other}"),
    }
}

async fn privileges(admin: &PgPool, role: &str, schema: &str) -> anyhow::Result<(bool, bool)> {
    Ok(sqlx::query_as(
        "SELECT has_schema_privilege($1, $2, 'USAGE'), has_schema_privilege($1, $2, 'CREATE')",
    )
    .bind(role)
    .bind(schema)
    .fetch_one(admin)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_service_role_can_touch_the_other_schema() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let payment = env.database.role_pool("payment_service", "payment").await?;
    let accounting = env
        .database
        .role_pool("accounting_service", "accounting")
        .await?;
    payment_service::MIGRATOR.run(&payment).await?;
    accounting_service::MIGRATOR.run(&accounting).await?;

    // Each role works in its own schema.
    sqlx::query("SELECT count(*) FROM payment.fares")
        .execute(&payment)
        .await?;
    sqlx::query("SELECT count(*) FROM accounting.ledger_entries")
        .execute(&accounting)
        .await?;

    // …and nowhere else.
    assert_denied(&payment, "SELECT * FROM accounting.ledger_entries").await;
    assert_denied(
        &payment,
        "INSERT INTO accounting.accounts (customer_id, currency) VALUES ('x', 'USD')",
    )
    .await;
    assert_denied(&payment, "CREATE TABLE accounting.intruder (id int)").await;
    assert_denied(&payment, "CREATE TABLE public.intruder (id int)").await;
    assert_denied(&accounting, "SELECT * FROM payment.fares").await;
    assert_denied(&accounting, "DELETE FROM payment.outbox").await;
    assert_denied(&accounting, "CREATE TABLE payment.intruder (id int)").await;
    assert_denied(&accounting, "CREATE TABLE public.intruder (id int)").await;

    let admin = env.database.admin_pool().await?;
    assert_eq!(
        privileges(&admin, "payment_service", "accounting").await?,
        (false, false)
    );
    assert_eq!(
        privileges(&admin, "accounting_service", "payment").await?,
        (false, false)
    );
    assert_eq!(
        privileges(&admin, "payment_service", "payment").await?,
        (true, true)
    );
    assert_eq!(
        privileges(&admin, "accounting_service", "accounting").await?,
        (true, true)
    );

    // The auditor reads both schemas, and writes nothing anywhere.
    let auditor = env
        .database
        .role_pool("wildrydes_auditor", "payment")
        .await?;
    sqlx::query("SELECT count(*) FROM payment.fares, accounting.ledger_entries")
        .execute(&auditor)
        .await?;
    for write in [
        "INSERT INTO accounting.accounts (customer_id, currency) VALUES ('x', 'USD')",
        "DELETE FROM payment.outbox",
        "CREATE TABLE payment.intruder (id int)",
        "CREATE TABLE public.intruder (id int)",
    ] {
        let mut tx = auditor.begin().await?;
        sqlx::query("SET TRANSACTION READ WRITE")
            .execute(&mut *tx)
            .await?;
        match sqlx::query(write).execute(&mut *tx).await {
            Ok(_) => panic!("the auditor could `{write}`"),
            Err(sqlx::Error::Database(error)) => assert_eq!(
                error.code().as_deref(),
                Some(INSUFFICIENT_PRIVILEGE),
                "`{write}`: {error}"
            ),
            Err(other) => panic!("`{write}`: {other}"),
        }
    }
    for schema in ["payment", "accounting"] {
        assert_eq!(
            privileges(&admin, "wildrydes_auditor", schema).await?,
            (true, false)
        );
    }

    for pool in [payment, accounting, admin, auditor] {
        pool.close().await;
    }
    env.teardown().await
}
