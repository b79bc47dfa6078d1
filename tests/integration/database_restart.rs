//! The PostgreSQL server crashes in the middle of a load (`scripts/stack kill postgres`:
//! SIGKILL to the postmaster and every backend), stays down, and is started again (crash
//! recovery from its WAL). Meanwhile both services answer `/health` 503; afterwards their pools
//! reconnect, the batches that failed are retried, and every fare ends in its one outcome with
//! no money moved twice.
//!
//! The server must be the one `scripts/stack` runs for this checkout (scripts/test ensures it).
//! Against a PostgreSQL it does not control, set `SKIP_DATABASE_RESTART_TEST=1`.

use std::time::Duration;

use tests::invariants;
use tests::processes::{checkout, stack};
use tests::TestEnv;

const FARES: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(300);
const OUTAGE: Duration = Duration::from_secs(5);
/// From the server's return to the last outcome: the services' backoff between batch retries
/// is capped at 5 s, and a compensation waits at most for its lease (below).
const RECOVERY: Duration = Duration::from_secs(30);
/// A compensation claimed just as the server died (the claim committed, its answer lost with
/// the connection) is attempted again when its lease ends: 2 minutes by default
/// (`COMPENSATION_LEASE`), 10 s here so that the bound above holds. Seen once in CI: the last
/// outcome 114.8 s after the server was back, 120 s after the crash.
const COMPENSATION_LEASE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_server_crash_mid_saga_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    if std::env::var("SKIP_DATABASE_RESTART_TEST").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: SKIP_DATABASE_RESTART_TEST=1");
        return Ok(());
    }
    anyhow::ensure!(
        checkout()
            .join(".stack/postgres/data/postmaster.pid")
            .exists(),
        "this test restarts PostgreSQL through scripts/stack, but scripts/stack does not run \
         PostgreSQL here; run it through scripts/test, or set SKIP_DATABASE_RESTART_TEST=1"
    );
    let mut env = TestEnv::with_exclusive_infrastructure().await?;
    let mut payment = env.payment_config();
    payment.retry.compensation_lease = COMPENSATION_LEASE;
    env.start_payment_with(payment).await?;
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    let fares = env.publish_mixed_fares("wr_pg_crash", FARES).await?;
    env.wait_for_outcomes(10, TIMEOUT).await?;

    stack(&["kill", "postgres"]).await?;
    let down = std::time::Instant::now();
    for service in ["payment-service", "accounting-service"] {
        let answers = env.health_of(service).await?;
        assert!(
            answers.iter().all(|a| a["status"] == "not ready"),
            "{service} with its database down: {answers:?}"
        );
    }
    let during = invariants::fares_with_outcome(&env.recorder.snapshot()).len();
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    stack(&["start", "postgres"]).await?;
    let back = std::time::Instant::now();
    assert!(
        during < FARES,
        "the crash should have caught fares in flight"
    );

    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    let recovered = back.elapsed();
    eprintln!("every fare had its outcome {recovered:?} after PostgreSQL was back");
    assert!(
        recovered <= RECOVERY,
        "the last outcome came {recovered:?} after PostgreSQL was back, more than {RECOVERY:?}"
    );
    env.assert_invariants(&fares).await?;
    env.wait_until_healthy().await?;
    env.teardown().await
}
