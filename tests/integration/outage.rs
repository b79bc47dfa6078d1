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
    let fares = env.publish_mixed_fares("wr_outage", FARES).await?;
    env.wait_for_outcomes(10, TIMEOUT).await?;

    env.database.set_reachable(false).await?;
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
