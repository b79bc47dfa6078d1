//! Stuck sagas (ARCHITECTURE.md, "Stuck sagas"): a gateway that never answers a
//! pre-authorisation ends the fare failed with its possible hold voided; a `Charged` that the
//! accounting-service never answers is shown stuck — read API, log line, gauge, `fares status`,
//! `fares audit` — and never refunded on silence, until the answer comes.

use std::time::{Duration, Instant};

use events_schema::{Currency, CustomerId, EventData, EventType, FareId};
use payment_service::gateway::{
    FaultInjection, GatewayCall, GatewayError, GatewaySimulator, PaymentGateway,
};
use serde_json::Value;
use tests::processes::{fares, free_port, ServiceProcess};
use tests::recorder::causal_order;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_pre_authorisation_is_voided_and_the_fare_fails() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    // The `_slow_gateway` pre-authorisation would take a minute; the step waits 2 s.
    config.faults.slow = Duration::from_secs(60);
    config.retry.answer_timeout = Duration::from_secs(2);
    env.start_payment_with(config).await?;
    env.start_accounting().await?;

    let started = Instant::now();
    env.request_fare("wr_hung", "c_slow_gateway", 2000).await?;
    let outcome = env.recorder.outcome_of("wr_hung", TIMEOUT).await?;
    let waited = started.elapsed();
    let EventData::FareCollectionFailed(failed) = &outcome.data else {
        panic!("expected FareCollectionFailed, got {outcome:?}");
    };
    assert!(
        failed.reason.contains("pre-authorisation unanswered")
            && failed.reason.contains("within 2s"),
        "{}",
        failed.reason
    );
    assert!(!failed.needs_attention);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(30),
        "the fare ended {waited:?} after its request: the step must stop waiting at 2 s, not wait for the gateway's 60 s"
    );
    let events = causal_order(env.recorder.events_for("wr_hung"));
    let types: Vec<EventType> = events.iter().map(|event| event.event_type()).collect();
    assert_eq!(
        types,
        [EventType::PreAuthReleased, EventType::FareCollectionFailed]
    );

    // The gateway's book: the authorisation voided (released), never approved.
    let admin = env.database.admin_pool().await?;
    let approved: Vec<String> = sqlx::query_scalar(
        "SELECT operation FROM payment.gateway_operations \
         WHERE fare_id = 'wr_hung' AND approved ORDER BY created_at",
    )
    .fetch_all(&admin)
    .await?;
    assert_eq!(approved, ["release"]);
    // A pre-authorisation arriving after the void is refused: no hold can outlive the fare.
    let pool = sqlx::PgPool::connect(&env.database.role_url("payment_service")).await?;
    let gateway = GatewaySimulator::new(pool.clone(), FaultInjection::default());
    let (fare_id, customer_id) = (FareId::parse("wr_hung")?, CustomerId::parse("c_1")?);
    let late = gateway
        .pre_authorise(&GatewayCall {
            fare_id: &fare_id,
            customer_id: &customer_id,
            amount_minor: 2000,
            currency: Currency::parse("USD")?,
            payment_token: Some("tok_visa"),
            reference: None,
        })
        .await;
    assert_eq!(
        late,
        Err(GatewayError::Declined(
            "the authorisation was voided".to_owned()
        ))
    );
    drop(gateway);
    pool.close().await;
    admin.close().await;

    let audit = env.audit(&[]).await?;
    assert_eq!(audit.code, Some(0), "{:#}\n{}", audit.report, audit.stderr);
    env.teardown().await
}

/// `GET url` as JSON.
async fn get_json(url: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(url).await?.error_for_status()?.json().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_accounting_never_answers_is_shown_stuck_and_never_refunded() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;
    let log = std::env::temp_dir().join(format!("stuck{}.log", env.kafka.topic_suffix));
    let addr = format!("127.0.0.1:{}", free_port()?);
    let payment_url = format!("http://{addr}");
    let nowhere = format!("http://127.0.0.1:{}", free_port()?);
    let payment = ServiceProcess::start_logging_to(
        &env,
        "payment-service",
        &addr,
        &[("STUCK_AFTER", "2s")],
        &log,
    )?;
    let accounting_addr = format!("127.0.0.1:{}", free_port()?);
    let accounting_url = format!("http://{accounting_addr}");
    let accounting = ServiceProcess::start_on(&env, "accounting-service", &accounting_addr)?;
    tests::env::wait_healthy(&format!("{payment_url}/health")).await?;
    tests::env::wait_healthy(&format!("{accounting_url}/health")).await?;
    // The accounting-service hangs (SIGSTOP): the fare is charged, then waits for the ledger.
    accounting.signal("STOP").await?;
    env.request_fare("wr_stuck", "c_1", 2000).await?;
    let deadline = Instant::now() + TIMEOUT;
    let listed = loop {
        let page = get_json(&format!("{payment_url}/fares?stuck=true&limit=10")).await?;
        if let Some(fare) = page["fares"]
            .as_array()
            .and_then(|fares| fares.iter().find(|f| f["fare_id"] == "wr_stuck"))
        {
            break fare.clone();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "wr_stuck never listed stuck: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(listed["status"], "charged", "{listed}");
    assert!(listed["idle_secs"].as_i64().unwrap() >= 2, "{listed}");
    let waiting_for = listed["waiting_for"].as_str().unwrap().to_owned();
    assert!(waiting_for.contains("accounting-service"), "{waiting_for}");

    // The fare's own view says the same.
    let view = get_json(&format!("{payment_url}/fares/wr_stuck")).await?;
    assert_eq!(view["stuck"]["waiting_for"], waiting_for.as_str(), "{view}");
    // The gauge counts it.
    let metrics = reqwest::get(format!("{payment_url}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|line| line == "wildrydes_fares_stuck 1"),
        "{metrics}"
    );
    // A warning names it in the log.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log)?;
        if text
            .lines()
            .any(|line| line.contains("fare stuck") && line.contains("wr_stuck"))
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no log line names the stuck fare:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // `fares status` shows it (and says that the accounting-service cannot be asked).
    let status = fares(&env, &payment_url, &nowhere, &["status", "wr_stuck"]).await?;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("STUCK: no progress for") && text.contains(&waiting_for),
        "{text}"
    );
    // `fares audit` lists it with what it waits for, and fails.
    let urls = [
        ("PAYMENT_URL", payment_url.as_str()),
        ("ACCOUNTING_URL", nowhere.as_str()),
    ];
    let audit = env.audit_with(&["--stuck-after", "2s"], &urls).await?;
    assert_eq!(audit.code, Some(1), "{:#}\n{}", audit.report, audit.stderr);
    let stuck = audit.report["stuck"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        stuck.iter().any(|s| s["fare_id"] == "wr_stuck"
            && s["status"] == "charged"
            && s["waiting_for"] == waiting_for.as_str()),
        "{:#}",
        audit.report
    );

    // Silence never refunds: the answer, when it comes, collects the fare.
    accounting.signal("CONT").await?;
    let outcome = env.recorder.outcome_of("wr_stuck", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);
    let page = get_json(&format!("{payment_url}/fares?stuck=true")).await?;
    assert_eq!(page["fares"], serde_json::json!([]), "{page}");
    let urls = [
        ("PAYMENT_URL", payment_url.as_str()),
        ("ACCOUNTING_URL", accounting_url.as_str()),
    ];
    let audit = env.audit_with(&[], &urls).await?;
    assert_eq!(audit.code, Some(0), "{:#}\n{}", audit.report, audit.stderr);

    payment.terminate().await?;
    accounting.terminate().await?;
    let _ = std::fs::remove_file(&log);
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stuck_list_refuses_what_it_cannot_answer() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    for (query, expected) in [
        ("stuck=maybe", "expected true or false"),
        ("stuck=true&stuck_after=soon", "is not a duration"),
        ("stuck=true&status=charged", "cannot be combined"),
    ] {
        let answer = env
            .read_api("payment-service", &format!("/fares?{query}"))
            .await?;
        assert_eq!(answer.status, reqwest::StatusCode::BAD_REQUEST, "{query}");
        assert!(answer.body.contains(expected), "{query}: {}", answer.body);
    }
    let answer = env
        .read_api("payment-service", "/fares?stuck=true&stuck_after=1h")
        .await?
        .json()?;
    assert_eq!(answer["stuck_after_secs"], 3600);
    assert_eq!(answer["fares"], serde_json::json!([]));
    env.teardown().await
}
