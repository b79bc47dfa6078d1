//! The harness itself works end to end: bytes through the real broker, rows through the real
//! database as the service role.

use std::time::Duration;

use events_schema::{EventType, ReceivedFareRequest, Topic};
use tests::env::minimal_request;
use tests::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fare_request_travels_through_the_real_broker() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let request = minimal_request("wr_smoke_1", "3", 2000);
    env.publish(Topic::FareRequests, Some("wr_smoke_1"), request.as_bytes())
        .await?;
    let received = env
        .recorder
        .wait_for(
            "the request on fare-requests",
            Duration::from_secs(20),
            |records| {
                records
                    .iter()
                    .find(|r| r.topic == Topic::FareRequests)
                    .cloned()
            },
        )
        .await?;
    assert_eq!(received.key.as_deref(), Some("wr_smoke_1"));
    assert_eq!(received.payload, request.as_bytes());
    let parsed = ReceivedFareRequest::parse(&received.payload)?;
    let event = parsed.to_event().expect("the minimal request is valid");
    assert_eq!(event.event_type(), EventType::FareRequested);
    assert_eq!(event.fare_id.as_str(), "wr_smoke_1");
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_role_writes_and_reads_its_own_schema() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let pool = env.database.role_pool("payment_service", "payment").await?;
    payment_service::MIGRATOR.run(&pool).await?;
    sqlx::query(
        "INSERT INTO inbox (event_id, event_type, fare_id, source_topic, source_partition, source_offset) \
         VALUES (gen_random_uuid(), 'FareRequested', 'wr_smoke_2', 'fare-requests', 0, 42)",
    )
    .execute(&pool)
    .await?;
    let offset: i64 =
        sqlx::query_scalar("SELECT source_offset FROM payment.inbox WHERE fare_id = 'wr_smoke_2'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(offset, 42);
    pool.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_once_the_services_consume() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    for service in ["payment-service", "accounting-service"] {
        let url = env.service_url(service, "/health").expect("running");
        let body: serde_json::Value = reqwest::get(url).await?.error_for_status()?.json().await?;
        assert_eq!(body["status"], "ok");
        assert_eq!(body["service"], service);
    }
    // The database gone, health says so.
    env.database.set_reachable(false).await?;
    let url = env
        .service_url("payment-service", "/health")
        .expect("running");
    let answer = reqwest::get(url).await?;
    env.database.set_reachable(true).await?;
    assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    env.teardown().await
}
