//! One test's world: its database, its topics, its recorder, its services.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accounting_service::{AccountingConfig, AccountingService};
use anyhow::Context;
use events_schema::{Topic, TopicNames};
use payment_service::saga::RetryPolicy;
use payment_service::{PaymentConfig, PaymentService};
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use transactional_messaging::config::{KafkaSettings, Processing};
use transactional_messaging::kafka;
use transactional_messaging::retry::Backoff;

use futures::future::try_join_all;

use crate::database::{self, TestDatabase};
use crate::invariants;
use crate::recorder::Recorder;
use crate::services::RunningService;

const DATABASE_PREFIX: &str = "wr_test_";

/// Tests share the broker; a test that restarts it takes this lock exclusively, the others
/// share it, so no test sees the broker vanish under it.
static BROKER: LazyLock<Arc<RwLock<()>>> = LazyLock::new(|| Arc::new(RwLock::new(())));

/// Held for a test's lifetime: shared, or exclusive for a test that restarts the broker or
/// PostgreSQL.
enum BrokerGuard {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// When a test database was created, from its name `wr_test_<unix secs>_<random>`.
pub fn created_at(name: &str) -> Option<u64> {
    name.strip_prefix(DATABASE_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// Test databases and topics older than this were left by a run that died: swept.
const STALE_SECS: u64 = 3600;

/// Deletes the topics of test runs that died more than [`STALE_SECS`] ago (their names end in
/// `.test-<unix secs>_<random>`).
async fn sweep_stale_topics(bootstrap_servers: &str) -> anyhow::Result<()> {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()?;
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))?;
    let now = unix_now();
    let stale: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|name| {
            name.rsplit_once(".test-")
                .and_then(|(_, tag)| tag.split('_').next()?.parse::<u64>().ok())
                .is_some_and(|created| now.saturating_sub(created) > STALE_SECS)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()?;
    let names: Vec<&str> = stale.iter().map(String::as_str).collect();
    admin.delete_topics(&names, &AdminOptions::new()).await?;
    Ok(())
}

pub fn bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "localhost:9092".to_owned())
}

/// Small pools: tests run side by side, each with several services, on one PostgreSQL.
pub fn test_processing() -> Processing {
    Processing {
        workers: 2,
        pool_size: 6,
        ..Processing::default()
    }
}

/// The compensation budget of the tests: a refused release or refund is given up after it.
pub const TEST_COMPENSATION_BUDGET: Duration = Duration::from_secs(1);

/// Retries fast enough for tests: a compensation is given up after a second of refusals.
pub fn fast_retry_policy() -> RetryPolicy {
    RetryPolicy {
        gateway_attempts: 20,
        gateway_backoff: Backoff::new(Duration::from_millis(2), Duration::from_millis(50)),
        compensation_budget: TEST_COMPENSATION_BUDGET,
        compensation_backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(100)),
        compensation_lease: RetryPolicy::default().compensation_lease,
        answer_timeout: RetryPolicy::default().answer_timeout,
    }
}

pub struct TestEnv {
    pub names: TopicNames,
    pub database: TestDatabase,
    pub kafka: KafkaSettings,
    pub recorder: Recorder,
    producer: FutureProducer,
    services: Vec<RunningService>,
    _broker: BrokerGuard,
}

impl TestEnv {
    /// A fresh database and fresh topics (created and recorded from the start).
    pub async fn new() -> anyhow::Result<TestEnv> {
        let guard = BrokerGuard::Shared(BROKER.clone().read_owned().await);
        TestEnv::with_guard(guard).await
    }

    /// As [`TestEnv::new`], for a test that stops the broker or the database server, or whose
    /// timings a busy broker would spoil: waits until no other test uses them, and keeps them
    /// waiting until this one is done.
    pub async fn with_exclusive_infrastructure() -> anyhow::Result<TestEnv> {
        let guard = BrokerGuard::Exclusive(BROKER.clone().write_owned().await);
        TestEnv::with_guard(guard).await
    }

    async fn with_guard(guard: BrokerGuard) -> anyhow::Result<TestEnv> {
        transactional_messaging::telemetry::init("off");
        let _ = database::sweep_stale(DATABASE_PREFIX, STALE_SECS).await;
        let _ = sweep_stale_topics(&bootstrap_servers()).await;
        let tag = format!("{}_{:08x}", unix_now(), rand::rng().random::<u32>());
        let database = TestDatabase::create(&format!("{DATABASE_PREFIX}{tag}")).await?;
        let kafka = KafkaSettings {
            bootstrap_servers: bootstrap_servers(),
            topic_suffix: format!(".test-{tag}"),
            replication_factor: 1,
            max_poll_interval: Duration::from_secs(300),
        };
        let names = TopicNames::new(kafka.topic_suffix.clone());
        kafka::ensure_topics(&kafka.bootstrap_servers, &names, 1)
            .await
            .context("cannot create test topics — is Kafka up? (scripts/stack up --infra-only)")?;
        let recorder = Recorder::start(&kafka.bootstrap_servers, &names)?;
        let producer = kafka::producer(&kafka.bootstrap_servers)?;
        Ok(TestEnv {
            names,
            database,
            kafka,
            recorder,
            producer,
            services: Vec::new(),
            _broker: guard,
        })
    }

    /// The payment-service's configuration for this test.
    pub fn payment_config(&self) -> PaymentConfig {
        PaymentConfig {
            database_url: self.database.role_url("payment_service"),
            kafka: self.kafka.clone(),
            processing: test_processing(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: Default::default(),
            retry: fast_retry_policy(),
            stuck_after: payment_service::config::STUCK_AFTER,
        }
    }

    pub fn accounting_config(&self) -> AccountingConfig {
        AccountingConfig {
            database_url: self.database.role_url("accounting_service"),
            kafka: self.kafka.clone(),
            processing: test_processing(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    pub async fn start_payment_with(
        &mut self,
        config: PaymentConfig,
    ) -> anyhow::Result<SocketAddr> {
        let service = PaymentService::build(config).await?;
        let addr = service.http_addr()?;
        self.services
            .push(RunningService::spawn("payment-service", addr, |stop| {
                service.run(async move {
                    let _ = stop.await;
                })
            }));
        Ok(addr)
    }

    pub async fn start_accounting(&mut self) -> anyhow::Result<SocketAddr> {
        let service = AccountingService::build(self.accounting_config()).await?;
        let addr = service.http_addr()?;
        self.services
            .push(RunningService::spawn("accounting-service", addr, |stop| {
                service.run(async move {
                    let _ = stop.await;
                })
            }));
        Ok(addr)
    }

    /// Both services with this test's configuration, ready: `/health` answers 200 once each
    /// has joined its consumer group.
    pub async fn start_services(&mut self) -> anyhow::Result<()> {
        self.start_payment_with(self.payment_config()).await?;
        self.start_accounting().await?;
        self.wait_until_healthy().await
    }

    /// Waits until every service this test started answers 200 on `/health`.
    pub async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        for service in &self.services {
            wait_healthy(&service.url("/health")).await?;
        }
        Ok(())
    }

    /// The `/health` answers of every running instance of `name`.
    pub async fn health_of(&self, name: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut answers = Vec::new();
        for service in self.services.iter().filter(|s| s.name == name) {
            answers.push(reqwest::get(service.url("/health")).await?.json().await?);
        }
        Ok(answers)
    }

    /// The address of a running service's read API.
    pub fn service_url(&self, name: &str, path: &str) -> Option<String> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.url(path))
    }

    /// Publishes raw bytes to one of this test's topics and waits for the broker's ack.
    pub async fn publish(
        &self,
        topic: Topic,
        key: Option<&str>,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        self.publish_to(topic, None, key, payload).await
    }

    /// As [`TestEnv::publish`], to the given partition (`None`: the key's).
    pub async fn publish_to(
        &self,
        topic: Topic,
        partition: Option<i32>,
        key: Option<&str>,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let name = self.names.name(topic);
        let mut record = FutureRecord::<str, [u8]>::to(&name).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("publishing to {name}"))?;
        Ok(())
    }

    /// Publishes SPEC §3's minimal hand-typed request for `fare_id`.
    pub async fn request_fare(
        &self,
        fare_id: &str,
        customer_id: &str,
        amount_minor: i64,
    ) -> anyhow::Result<()> {
        let request = minimal_request(fare_id, customer_id, amount_minor);
        self.publish(Topic::FareRequests, Some(fare_id), request.as_bytes())
            .await
    }

    /// Publishes `count` fares `<prefix>_<i>` at once, for the mixed customers of
    /// [`invariants::mixed_customer`]; returns each fare id with its customer.
    pub async fn publish_mixed_fares(
        &self,
        prefix: &str,
        count: usize,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let fares: BTreeMap<String, (String, i64)> = (0..count)
            .map(|i| {
                (
                    format!("{prefix}_{i}"),
                    (invariants::mixed_customer(i), invariants::mixed_amount(i)),
                )
            })
            .collect();
        let requests: Vec<(&String, String)> = fares
            .iter()
            .map(|(fare_id, (customer, amount))| {
                (fare_id, minimal_request(fare_id, customer, *amount))
            })
            .collect();
        try_join_all(requests.iter().map(|(fare_id, body)| {
            self.publish(Topic::FareRequests, Some(fare_id), body.as_bytes())
        }))
        .await?;
        Ok(fares
            .into_iter()
            .map(|(fare_id, (customer, _))| (fare_id, customer))
            .collect())
    }

    /// Waits until at least `count` fares have their outcome.
    pub async fn wait_for_outcomes(&self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        self.recorder
            .wait_for(&format!("{count} outcomes"), timeout, |records| {
                (invariants::fares_with_outcome(records).len() >= count).then_some(())
            })
            .await
    }

    /// Checks SPEC §6 invariants 1–4 for `fares` (fare id → customer) from the topics and both
    /// schemas.
    pub async fn assert_invariants(&self, fares: &BTreeMap<String, String>) -> anyhow::Result<()> {
        invariants::assert_events(&self.recorder.snapshot(), fares);
        let admin = self.database.admin_pool().await?;
        invariants::assert_money(&admin, fares.len()).await?;
        admin.close().await;
        Ok(())
    }

    /// Stops the services this test started (cleanly).
    pub async fn stop_services(&mut self) -> anyhow::Result<()> {
        for service in self.services.drain(..) {
            service.stop().await?;
        }
        Ok(())
    }

    /// Deletes this test's topics and creates them again, empty, as after a broker reset with
    /// the database kept; the recorder starts over on the new topics. Stop the services first.
    pub async fn recreate_topics(&mut self) -> anyhow::Result<()> {
        self.recorder.stop().await;
        self.delete_topics().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match kafka::ensure_topics(&self.kafka.bootstrap_servers, &self.names, 1).await {
                Ok(()) if self.topics_are_empty()? => break,
                // The deletion is still going on: the topics are not created anew yet.
                Ok(()) | Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => {
                    other?;
                    anyhow::bail!("the test topics were not recreated empty within 60 s");
                }
            }
        }
        self.recorder = Recorder::start(&self.kafka.bootstrap_servers, &self.names)?;
        Ok(())
    }

    /// Whether every topic of this test exists with all its partitions, and holds nothing.
    fn topics_are_empty(&self) -> anyhow::Result<bool> {
        let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .create()?;
        for (topic, name) in self.names.all() {
            for partition in 0..topic.partitions() {
                match rdkafka::consumer::Consumer::fetch_watermarks(
                    &consumer,
                    &name,
                    partition,
                    Duration::from_secs(5),
                ) {
                    Ok((0, 0)) => {}
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    async fn delete_topics(&self) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .create()?;
        let topics: Vec<String> = Topic::ALL.iter().map(|t| self.names.name(*t)).collect();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        admin
            .delete_topics(&topic_refs, &AdminOptions::new())
            .await?;
        Ok(())
    }

    /// Stops the services, deletes the topics and drops the database.
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        self.stop_services().await?;
        self.recorder.stop().await;
        self.delete_topics().await?;
        self.database.drop().await
    }
}

/// Polls `url` until it answers 200, for at most 30 s.
pub async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reqwest::get(url).await;
        if answer.as_ref().is_ok_and(|a| a.status().is_success()) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{url} not healthy after 30 s: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SPEC §3's minimal valid request, with the given values.
pub fn minimal_request(fare_id: &str, customer_id: &str, amount_minor: i64) -> String {
    serde_json::json!({
        "event_type": "FareRequested",
        "fare_id": fare_id,
        "data": {
            "customer_id": customer_id,
            "amount_minor": amount_minor,
            "currency": "USD",
            "payment_token": "tok_visa"
        }
    })
    .to_string()
}

/// An answer of a read API: its status and body.
#[derive(Debug)]
pub struct ReadApiAnswer {
    pub status: reqwest::StatusCode,
    pub body: String,
}

impl ReadApiAnswer {
    /// The body as JSON (every answer of the read APIs is JSON, errors included).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("the answer ({}) is not JSON: {}", self.status, self.body))
    }
}

impl TestEnv {
    /// `GET path` on the read API of the running service `service`.
    pub async fn read_api(&self, service: &str, path: &str) -> anyhow::Result<ReadApiAnswer> {
        let url = self
            .service_url(service, path)
            .with_context(|| format!("{service} is not running"))?;
        let answer = reqwest::get(&url)
            .await
            .with_context(|| format!("GET {url}"))?;
        Ok(ReadApiAnswer {
            status: answer.status(),
            body: answer.text().await?,
        })
    }
}
