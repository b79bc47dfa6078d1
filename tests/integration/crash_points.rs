//! A crash at every step (README "Crash points"): the real service binary, started with
//! `CRASH_POINT=<name>`, aborts mid-load at that point — after a gateway call and before its
//! answer is recorded, in the middle of a batch, after a commit and before the offsets are
//! stored, after the broker acknowledged an outbox row and before it is marked published,
//! inside a compensation attempt. It is started again without it; every fare then ends in
//! exactly one outcome, no money moved twice (the topics, both schemas) and `fares audit` is
//! clean.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use events_schema::Topic;
use tests::processes::{free_port, ServiceProcess};
use tests::TestEnv;

/// Mixed fares: every saga path, compensations included.
const FARES: usize = 60;
const TIMEOUT: Duration = Duration::from_secs(120);
const SIGABRT: i32 = 6;

/// A service with its read API on a port of ours, so the audit can read it.
fn start(
    env: &TestEnv,
    name: &'static str,
    vars: &[(&str, &str)],
) -> anyhow::Result<(ServiceProcess, String)> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let process = ServiceProcess::start_with(env, name, &addr, vars)?;
    Ok((process, format!("http://{addr}")))
}

/// Runs the mixed fares with `service` armed to crash the `after`-th time it reaches `point`,
/// checks that it did, restarts it, and checks every invariant.
async fn crash_at(service: &'static str, point: &str, after: u32) -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let other = match service {
        "payment-service" => "accounting-service",
        _ => "payment-service",
    };
    let after = after.to_string();
    let armed = [
        ("CRASH_POINT", point),
        ("CRASH_POINT_AFTER", after.as_str()),
    ];
    let (mut crashing, _) = start(&env, service, &armed)?;
    let (steady, steady_url) = start(&env, other, &[])?;
    let fares = env
        .publish_mixed_fares(&format!("wr_crash_{}", point.replace('-', "_")), FARES)
        .await?;

    let status = crashing.exited(TIMEOUT).await?;
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "{service} should have aborted at {point}: {status:?}"
    );
    let (restarted, restarted_url) = start(&env, service, &[])?;
    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;

    for (group, topic) in [
        ("payment-service", Topic::FareRequests),
        ("payment-service", Topic::PaymentEvents),
        ("payment-service", Topic::AccountingEvents),
        ("accounting-service", Topic::PaymentEvents),
    ] {
        env.wait_until_consumed(group, topic).await?;
    }
    let (payment_url, accounting_url) = match service {
        "payment-service" => (restarted_url, steady_url),
        _ => (steady_url, restarted_url),
    };
    let audited = env
        .audit_with(
            &[],
            &[
                ("PAYMENT_URL", payment_url.as_str()),
                ("ACCOUNTING_URL", accounting_url.as_str()),
            ],
        )
        .await?;
    assert_eq!(audited.code, Some(0), "{audited:#?}");
    assert_eq!(audited.report["fares"], FARES);

    restarted.kill().await?;
    steady.kill().await?;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_gateway_answer_before_it_is_recorded() -> anyhow::Result<()> {
    crash_at("payment-service", "gateway-answered", 10).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_payment_batch() -> anyhow::Result<()> {
    crash_at("payment-service", "mid-batch", 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_commit_before_the_offsets_are_stored() -> anyhow::Result<()> {
    crash_at("payment-service", "batch-committed", 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_broker_acknowledged_before_the_row_is_marked() -> anyhow::Result<()> {
    crash_at("payment-service", "outbox-acknowledged", 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_compensation_attempt() -> anyhow::Result<()> {
    crash_at("payment-service", "compensation-answered", 2).await
}

// The accounting-service is sure of one batch only: every fare has a single step there, and
// its `Charged` events may all come in one batch (the payment-service captures them in big
// batches). The payment-service's crash points above are safe at 5: a fare goes through at
// least five of its batches (request, pre-authorisation answer, `PreAuthorised`, capture answer,
// the accounting's answer).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_of_the_accounting_service_after_a_commit() -> anyhow::Result<()> {
    crash_at("accounting-service", "batch-committed", 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_of_the_accounting_service_mid_batch_and_after_an_acknowledgement(
) -> anyhow::Result<()> {
    crash_at("accounting-service", "mid-batch", 1).await?;
    crash_at("accounting-service", "outbox-acknowledged", 5).await
}
