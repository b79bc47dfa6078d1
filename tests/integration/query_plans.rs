//! The services read their tables by key from the first fare on. On a new database the tables
//! are empty and not analysed yet, and a statement's generic plan is made once per connection:
//! a plan that scans the whole (empty) table is then kept while the table grows, until
//! autovacuum's first ANALYZE remakes it. No statement of the services may scan a table.

use std::time::Duration;

use tests::TestEnv;

const FARES: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_is_read_by_key_while_its_tables_grow() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.publish_mixed_fares("wr_plans", FARES).await?;
    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    // A backend reports its table counters when it exits at the latest: stop the services and
    // wait until their connections are gone, then read the counters.
    env.stop_services().await?;
    let admin = env.database.admin_pool().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let connected: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND usename IN ('payment_service', 'accounting_service')",
        )
        .fetch_one(&admin)
        .await?;
        if connected == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{connected} service connections still open 30 s after the services stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let tables: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) \
         FROM pg_stat_user_tables \
         WHERE schemaname IN ('payment', 'accounting') AND relname <> '_sqlx_migrations' \
         ORDER BY 1",
    )
    .fetch_all(&admin)
    .await?;
    // The counters are there: the fares were looked up by key.
    let fares = tables.iter().find(|t| t.0 == "payment.fares");
    assert!(
        fares.is_some_and(|t| t.3 >= FARES as i64),
        "payment.fares was not read by key: {tables:?}"
    );
    let scanned: Vec<_> = tables.iter().filter(|t| t.2 > 0).collect();
    assert!(
        scanned.is_empty(),
        "tables read whole (name, sequential scans, rows read, index scans): {scanned:?}"
    );
    env.teardown().await
}
