//! A PostgreSQL outage in the middle of a load: both services lose every connection and cannot
//! open new ones for a while. Nothing may be lost or done twice; every fare still ends in its
//! one outcome once the database is back.

use std::time::Duration;

use tests::invariants;
use tests::TestEnv;

const FARES: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(300);
/// How long the database stays unreachable.
const OUTAGE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_delays_fares_but_loses_none() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let mut fares = env.publish_mixed_fares("wr_outage_a", FARES / 2).await?;
    env.wait_for_outcomes(10, TIMEOUT).await?;

    // The second half is requested during the outage, so that it surely catches fares in
    // flight however fast the first half goes.
    env.database.set_reachable(false).await?;
    fares.extend(env.publish_mixed_fares("wr_outage_b", FARES / 2).await?);
    tokio::time::sleep(OUTAGE).await;
    let during = invariants::fares_with_outcome(&env.recorder.snapshot()).len();
    env.database.set_reachable(true).await?;
    assert!(
        during < FARES,
        "the outage should have caught fares in flight"
    );

    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;
    env.teardown().await
}

/// Every connection of both services terminated (`pg_terminate_backend`) three times during the
/// load, as a PostgreSQL restart or a failover does: the pools reconnect, the batches under way
/// are retried, and every fare ends in its one outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_load_lose_nothing() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let fares = env.publish_mixed_fares("wr_terminated", FARES).await?;
    let mut terminated = 0;
    for threshold in [10, FARES / 3, FARES / 2] {
        env.wait_for_outcomes(threshold, TIMEOUT).await?;
        terminated += env.database.terminate_connections().await?;
    }
    assert!(terminated > 0, "no connection was terminated");
    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;
    env.wait_until_healthy().await?;
    env.teardown().await
}

/// The database made read-only in the middle of a load: both services report not ready
/// (`/health` 503, naming it) while it lasts, lose nothing, and every fare ends in its one
/// outcome once it is writable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_makes_the_services_not_ready_and_loses_nothing() -> anyhow::Result<()>
{
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let fares = env.publish_mixed_fares("wr_read_only", FARES).await?;
    env.wait_for_outcomes(10, TIMEOUT).await?;

    env.database.set_read_only(true).await?;
    for service in ["payment-service", "accounting-service"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answers = env.health_of(service).await?;
            let reasons: Vec<&str> = answers.iter().filter_map(|a| a["error"].as_str()).collect();
            if reasons.iter().any(|r| r.contains("read-only")) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service} still says {answers:?} 20 s after the database became read-only"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let during = invariants::fares_with_outcome(&env.recorder.snapshot()).len();
    env.database.set_read_only(false).await?;
    assert!(
        during < FARES,
        "the read-only time should have caught fares in flight"
    );

    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;
    env.wait_until_healthy().await?;
    env.teardown().await
}
