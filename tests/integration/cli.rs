//! The `fares` CLI as a user runs it: the real binary against the real services.

use std::process::Output;

use tests::processes;
use tests::TestEnv;

async fn fares(env: &TestEnv, args: &[&str]) -> anyhow::Result<Output> {
    let payment = env
        .service_url("payment-service", "")
        .expect("payment-service runs");
    let accounting = env
        .service_url("accounting-service", "")
        .expect("accounting-service runs");
    processes::fares(env, &payment, &accounting, args).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_wait_and_status_tell_a_fares_story() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;

    let collected = fares(
        &env,
        &[
            "request",
            "--fare-id",
            "wr_cli_ok",
            "--customer",
            "3",
            "--amount",
            "12.50",
            "--wait",
        ],
    )
    .await?;
    assert_eq!(collected.status.code(), Some(0), "{collected:?}");
    assert_eq!(
        stdout(&collected).trim(),
        "wr_cli_ok",
        "stdout is the fare id alone"
    );

    let failed = fares(
        &env,
        &[
            "request",
            "--fare-id",
            "wr_cli_charge",
            "--customer",
            "3_fail_charge",
            "--amount",
            "7",
            "--wait",
        ],
    )
    .await?;
    assert_eq!(
        failed.status.code(),
        Some(1),
        "a fare not collected exits 1: {failed:?}"
    );

    let status = fares(&env, &["status", "wr_cli_charge", "--json"]).await?;
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let report: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    assert_eq!(report["status"], "failed");
    let types: Vec<&str> = report["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|step| step["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "FareRequested",
            "PreAuthorised",
            "ChargeFailed",
            "PreAuthReleased",
            "FareCollectionFailed"
        ]
    );
    let table = fares(&env, &["status", "wr_cli_ok"]).await?;
    assert!(stdout(&table).contains("12.50 USD"), "{}", stdout(&table));
    assert!(stdout(&table).contains("collected"), "{}", stdout(&table));

    let unknown = fares(&env, &["status", "wr_nobody"]).await?;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown fare wr_nobody"));

    let too_precise = fares(&env, &["request", "--customer", "3", "--amount", "20.001"]).await?;
    assert_eq!(too_precise.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_precise.stderr).contains("2 decimal places"));
    env.teardown().await
}
