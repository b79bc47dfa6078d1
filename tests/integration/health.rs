//! `/health` tells the truth (issue: "health that lies"): not ready while the consumer is out of
//! its group — evicted by the broker, until it has rejoined — or while the outbox relay keeps
//! failing; and a service whose task ended stops instead of answering as a zombie.

use std::time::Duration;

use accounting_service::AccountingService;
use events_schema::Topic;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::sync::Arc;

use rdkafka::consumer::{Consumer, StreamConsumer};
use tests::processes::{free_port, ServiceProcess};
use tests::TestEnv;
use transactional_messaging::Task;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `url` until its answer satisfies `wanted` (status, body); returns that body.
async fn wait_for_health(
    url: &str,
    what: &str,
    wanted: impl Fn(u16, &serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(answer) = reqwest::get(url).await {
            let status = answer.status().as_u16();
            let body: serde_json::Value = answer.json().await.unwrap_or_default();
            if wanted(status, &body) {
                return Ok(body);
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{url} never {what} within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn not_ready_because(reason: &'static str) -> impl Fn(u16, &serde_json::Value) -> bool {
    move |status, body| status == 503 && body["error"].as_str().is_some_and(|e| e.contains(reason))
}

fn ready(status: u16, _: &serde_json::Value) -> bool {
    status == 200
}

/// A consumer the broker evicted from its group — here, its process frozen past the session
/// timeout while another member took its partitions — reports not ready until it rejoined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_consumer_is_not_ready_until_it_has_rejoined() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let service = ServiceProcess::start_on(&env, "payment-service", &addr)?;
    let health = format!("http://{addr}/health");
    wait_for_health(&health, "was ready", ready).await?;

    // Another member of the service's group, which polls and never processes anything.
    let rival: Arc<StreamConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &env.kafka.bootstrap_servers)
            .set(
                "group.id",
                format!("payment-service{}", env.kafka.topic_suffix),
            )
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "10000")
            .create()?,
    );
    let topics: Vec<String> = payment_service::handler::SUBSCRIBED
        .iter()
        .map(|topic| env.names.name(*topic))
        .collect();
    rival.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
    let polling = tokio::spawn({
        let rival = rival.clone();
        async move {
            loop {
                let _ = rival.recv().await;
            }
        }
    });
    let all_partitions: usize = payment_service::handler::SUBSCRIBED
        .iter()
        .map(|topic| topic.partitions() as usize)
        .sum();

    service.signal("STOP").await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while rival.assignment()?.count() < all_partitions {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the frozen service was never evicted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.signal("CONT").await?;
    let body = wait_for_health(
        &health,
        "reported the consumer out of its group",
        not_ready_because("out of its group"),
    )
    .await?;
    assert!(body["partitions"] == 0, "{body}");
    wait_for_health(&health, "was ready again", ready).await?;
    polling.abort();
    service.kill().await?;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stuck_on_a_row_the_broker_rejects_is_not_ready_until_it_recovers(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let health = env
        .service_url("payment-service", "/health")
        .expect("running");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .create()?;
    let dlq = env.names.name(Topic::PaymentDlq);
    let set_max_bytes = |bytes: &'static str| {
        let config =
            AlterConfig::new(ResourceSpecifier::Topic(&dlq)).set("max.message.bytes", bytes);
        let admin = &admin;
        async move {
            let results = admin.alter_configs([&config], &AdminOptions::new()).await?;
            for result in results {
                result.map_err(|(_, code)| anyhow::anyhow!("alter configs: {code}"))?;
            }
            anyhow::Ok(())
        }
    };
    // The DLQ now refuses anything over 100 bytes: a poison message of 1000 can't be dead-lettered.
    set_max_bytes("100").await?;
    let poison = "x".repeat(1000);
    // The broker applies a topic's new config a moment after the controller accepted it (on a
    // loaded machine, after the service could have dead-lettered the poison): probe until it
    // refuses a message that size.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while env
        .publish(
            Topic::PaymentDlq,
            Some("probe"),
            "p".repeat(1000).as_bytes(),
        )
        .await
        .is_ok()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the DLQ never refused 1000 bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.publish(Topic::FareRequests, Some("wr_poison"), poison.as_bytes())
        .await?;
    wait_for_health(
        &health,
        "reported the relay failing",
        not_ready_because("outbox relay"),
    )
    .await?;
    set_max_bytes("2097152").await?;
    wait_for_health(&health, "was ready again", ready).await?;
    env.recorder
        .wait_for(
            "the dead letter, once the broker takes it",
            TIMEOUT,
            |records| {
                records
                    .iter()
                    .find(|r| r.topic == Topic::PaymentDlq && r.payload == poison.as_bytes())
                    .cloned()
            },
        )
        .await?;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_task_dies_stops_instead_of_serving_as_a_zombie() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let service = AccountingService::build(env.accounting_config()).await?;
    let health = format!("http://{}/health", service.http_addr()?);
    let (doom, doomed) = tokio::sync::oneshot::channel::<()>();
    let task = Task::new("doomed", async move {
        let _ = doomed.await;
        panic!("boom");
    });
    let (_keep_running, shutdown) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_with(vec![task], async move {
        let _ = shutdown.await;
    }));
    wait_for_health(&health, "was ready", ready).await?;
    let _ = doom.send(());
    let stopped = tokio::time::timeout(TIMEOUT, running).await??;
    let error = stopped.expect_err("the service stops with an error");
    assert!(
        error.to_string().contains("task doomed panicked: boom"),
        "{error:#}"
    );
    assert!(
        reqwest::get(&health).await.is_err(),
        "nothing answers /health once the service stopped"
    );
    env.teardown().await
}
