//! Crash recovery: the real service binaries are SIGKILLed in the middle of a load and
//! restarted; every fare still ends in exactly one outcome and no money moves twice.

use std::time::Duration;

use tests::processes::ServiceProcess;
use tests::TestEnv;

const FARES: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_services_mid_saga_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut payment = ServiceProcess::start(&env, "payment-service")?;
    let mut accounting = ServiceProcess::start(&env, "accounting-service")?;
    let fares = env.publish_mixed_fares("wr_crash", FARES).await?;

    // Kill each service while fares are in flight, twice, and bring it back.
    for threshold in [FARES / 10, FARES / 3] {
        env.wait_for_outcomes(threshold, TIMEOUT).await?;
        payment.kill().await?;
        payment = ServiceProcess::start(&env, "payment-service")?;
        env.wait_for_outcomes(threshold + 20, TIMEOUT).await?;
        accounting.kill().await?;
        accounting = ServiceProcess::start(&env, "accounting-service")?;
    }
    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;

    // A clean stop after all that exits 0.
    assert!(payment.terminate().await?.success());
    assert!(accounting.terminate().await?.success());
    env.teardown().await
}
