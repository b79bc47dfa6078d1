//! The shape every service of the saga shares: connect to its schema and migrate it, ensure the
//! topics, then run the consumer loop, the outbox relay and the HTTP read API until shutdown.
//! At shutdown the consumer stops first (its offsets are committed), then the relay publishes
//! what is left and flushes the producer, then the HTTP server stops.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use events_schema::{Topic, TopicNames};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::KafkaSettings;
use crate::consumer::{run_consumer, DeadLetterTarget, Handler};
use crate::http::health_routes;
use crate::kafka::GroupMembership;
use crate::relay::{run_relay, RelayWaker};
use crate::{database, kafka, read_api};

/// How long a service may take to stop cleanly before it stops anyway. Nothing is lost
/// either way: the outbox and the uncommitted offsets are durable.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What a service is, for the shared runtime.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// e.g. `payment-service`: the consumer group (plus the topic suffix) and log name.
    pub name: &'static str,
    /// The PostgreSQL schema the service owns.
    pub schema: &'static str,
    pub subscribed: Vec<Topic>,
    pub dead_letters: Topic,
}

/// A service connected to PostgreSQL and Kafka, with its HTTP port bound, ready to run.
pub struct Service {
    identity: ServiceIdentity,
    pub pool: PgPool,
    names: TopicNames,
    consumer: StreamConsumer<GroupMembership>,
    membership: GroupMembership,
    producer: FutureProducer,
    bootstrap_servers: String,
    listener: TcpListener,
}

impl Service {
    /// Connects, applies `migrator` to the service's schema, creates missing topics, subscribes
    /// and binds `http_addr` (port 0 picks a free port).
    pub async fn connect(
        identity: ServiceIdentity,
        database_url: &str,
        migrator: &Migrator,
        kafka_settings: &KafkaSettings,
        http_addr: SocketAddr,
    ) -> anyhow::Result<Service> {
        let pool =
            database::connect(database_url, identity.schema, Duration::from_secs(30)).await?;
        migrator
            .run(&pool)
            .await
            .with_context(|| format!("applying the {} migrations", identity.schema))?;
        let names = TopicNames::new(kafka_settings.topic_suffix.clone());
        kafka::ensure_topics(
            &kafka_settings.bootstrap_servers,
            &names,
            kafka_settings.replication_factor,
        )
        .await?;
        let producer = kafka::producer(&kafka_settings.bootstrap_servers)?;
        let group = format!("{}{}", identity.name, names.suffix());
        let membership = GroupMembership::default();
        let consumer = kafka::consumer(
            &kafka_settings.bootstrap_servers,
            &group,
            membership.clone(),
        )?;
        let topics: Vec<String> = identity.subscribed.iter().map(|t| names.name(*t)).collect();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .with_context(|| format!("subscribing to {topics:?}"))?;
        let listener = TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("cannot listen on {http_addr}"))?;
        Ok(Service {
            identity,
            pool,
            names,
            consumer,
            membership,
            producer,
            bootstrap_servers: kafka_settings.bootstrap_servers.clone(),
            listener,
        })
    }

    /// The address the read API listens on.
    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn topic_names(&self) -> &TopicNames {
        &self.names
    }

    /// Tells whether the consumer has joined its group (for `/health`).
    pub fn membership(&self) -> GroupMembership {
        self.membership.clone()
    }

    /// Runs until `shutdown` completes, then stops in order (see the module doc). `router` is
    /// the service's read API; `GET /health` is added to it, and every answer passes through
    /// [`read_api::mask_card_numbers`]. A read API bound beyond loopback is logged as a warning.
    pub async fn run<H: Handler>(
        self,
        handler: H,
        router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_sender, stop) = watch::channel(false);
        let stopped = |mut receiver: watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        };
        let waker = RelayWaker::default();
        let dead_letters = DeadLetterTarget {
            topic: self.identity.dead_letters,
            service: self.identity.name.to_owned(),
        };
        let consumer = tokio::spawn(run_consumer(
            self.consumer,
            self.pool.clone(),
            handler,
            dead_letters,
            waker.clone(),
            stopped(stop.clone()),
        ));
        let (relay_stop_sender, relay_stop) = watch::channel(false);
        let relay = tokio::spawn(run_relay(
            self.pool.clone(),
            self.producer,
            self.bootstrap_servers,
            self.names,
            waker,
            stopped(relay_stop),
        ));
        // Every answer, whichever route gives it, goes through the card-number mask.
        let router = read_api::with_card_numbers_masked(router.merge(health_routes(
            self.pool.clone(),
            self.membership.clone(),
            self.identity.name,
        )));
        if let Ok(addr) = self.listener.local_addr() {
            read_api::warn_if_exposed(self.identity.name, addr);
        }
        let (http_stop_sender, http_stop) = watch::channel(false);
        let server = tokio::spawn(
            axum::serve(self.listener, router)
                .with_graceful_shutdown(stopped(http_stop))
                .into_future(),
        );
        tracing::info!(service = self.identity.name, "running");
        shutdown.await;
        let name = self.identity.name;
        let pool = self.pool;
        let stopping = async move {
            let _ = stop_sender.send(true);
            let consumer_result = consumer.await.context("consumer task panicked")?;
            let _ = relay_stop_sender.send(true);
            let relay_result = relay.await.context("relay task panicked")?;
            let _ = http_stop_sender.send(true);
            server.await.context("HTTP task panicked")??;
            pool.close().await;
            consumer_result?;
            relay_result
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, stopping).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                service = name,
                "graceful shutdown took longer than {SHUTDOWN_GRACE:?} (Kafka or PostgreSQL unreachable?); \
                 stopping anyway: unpublished outbox rows and uncommitted offsets are taken up at the next start"
            ),
        }
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}
