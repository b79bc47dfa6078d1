//! The shape every service of the saga shares: connect to its schema and migrate it, ensure the
//! topics, then run the consumer loop, the outbox relay, the HTTP read API and the service's
//! own background tasks until shutdown.
//!
//! Every task is supervised: if one ends or panics before shutdown, the service reports not
//! ready, stops the others and returns an error — the binary exits non-zero for its supervisor
//! to restart it, rather than live on as a zombie answering `/health`.
//!
//! At shutdown the consumer stops first (its offsets are committed), then the background tasks,
//! then the relay publishes what is left and flushes the producer, then the HTTP server stops.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use events_schema::choreography::Service as ServiceName;
use events_schema::{Topic, TopicNames};
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::commit_signal::CommitSignal;
use crate::config::{KafkaSettings, Processing};
use crate::consumer::{run_consumer, Consuming, Handler, Links};
use crate::http::{health_routes, metrics_routes};
use crate::kafka::GroupMembership;
use crate::metrics::Metrics;
use crate::outbox::OutboxRow;
use crate::pruner;
use crate::readiness::Readiness;
use crate::relay::{run_relay, Handoff};
use crate::{database, kafka, read_api};

/// How long a service may take to stop cleanly before it stops anyway. Nothing is lost
/// either way: the outbox and the uncommitted offsets are durable.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What a service is, for the shared runtime.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// Its name is the consumer group (plus the topic suffix) and log name.
    pub service: ServiceName,
    /// The PostgreSQL schema the service owns.
    pub schema: &'static str,
    pub subscribed: Vec<Topic>,
    /// Subscribed topics whose messages the handler reads as received (not strict events).
    pub raw_topics: Vec<Topic>,
    pub dead_letters: Topic,
}

/// A background task of a service, supervised like the runtime's own.
pub struct Task {
    name: &'static str,
    future: Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
}

impl Task {
    /// `future` must complete soon after the service's [`Stopping`] signal, and not before.
    pub fn new(
        name: &'static str,
        future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Task {
        Task {
            name,
            future: Box::pin(future),
        }
    }
}

/// Completes when the service's background tasks must stop.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// A service connected to PostgreSQL and Kafka, with its HTTP port bound, ready to run.
pub struct Service {
    identity: ServiceIdentity,
    pub pool: PgPool,
    names: TopicNames,
    consumer: StreamConsumer<GroupMembership>,
    readiness: Readiness,
    metrics: Metrics,
    committed: CommitSignal,
    handoff: (Handoff, mpsc::Receiver<Vec<OutboxRow>>),
    processing: Processing,
    producer: FutureProducer,
    bootstrap_servers: String,
    listener: TcpListener,
    background_stop: watch::Sender<bool>,
}

impl Service {
    /// Connects, applies `migrator` to the service's schema, creates missing topics, subscribes
    /// and binds `http_addr` (port 0 picks a free port).
    pub async fn connect(
        identity: ServiceIdentity,
        database_url: &str,
        migrator: &Migrator,
        kafka_settings: &KafkaSettings,
        processing: &Processing,
        http_addr: SocketAddr,
    ) -> anyhow::Result<Service> {
        let pool = database::connect(
            database_url,
            identity.schema,
            processing.pool_size,
            Duration::from_secs(30),
        )
        .await?;
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
        let group = format!("{}{}", identity.service.name(), names.suffix());
        let readiness = Readiness::new(kafka_settings.max_poll_interval);
        let metrics = Metrics::new(identity.service, &identity.subscribed, names.clone());
        let consumer = kafka::consumer(
            &kafka_settings.bootstrap_servers,
            &group,
            kafka_settings.max_poll_interval,
            GroupMembership::new(readiness.clone(), metrics.clone()),
        )?;
        let topics: Vec<String> = identity.subscribed.iter().map(|t| names.name(*t)).collect();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .with_context(|| format!("subscribing to {topics:?}"))?;
        let listener = TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("cannot listen on {http_addr}"))?;
        if let Ok(addr) = listener.local_addr() {
            read_api::warn_if_exposed(identity.service.name(), addr);
        }
        Ok(Service {
            identity,
            pool,
            names,
            consumer,
            readiness,
            metrics,
            committed: CommitSignal::default(),
            handoff: Handoff::channel(),
            processing: processing.clone(),
            producer,
            bootstrap_servers: kafka_settings.bootstrap_servers.clone(),
            listener,
            background_stop: watch::channel(false).0,
        })
    }

    /// The address the read API listens on.
    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn topic_names(&self) -> &TopicNames {
        &self.names
    }

    /// Announced after every message the consumer processed (for background tasks that act on
    /// what handlers wrote).
    pub fn commit_signal(&self) -> CommitSignal {
        self.committed.clone()
    }

    /// Hands rows a background task wrote to the outbox to the relay, after its commit.
    pub fn handoff(&self) -> Handoff {
        self.handoff.0.clone()
    }

    /// The service's metrics (`GET /metrics`), for it to add its own.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The signal the service's background [`Task`]s stop on.
    pub fn stopping(&self) -> Stopping {
        Stopping(self.background_stop.subscribe())
    }

    /// Runs until `shutdown` completes or a task ends, then stops in order (see the module
    /// doc). `router` is the service's read API; `GET /health` is added to it, and every answer
    /// passes through [`read_api::mask_card_numbers`]. `tasks` are the service's own background
    /// tasks, stopped by [`Service::stopping`].
    pub async fn run<H: Handler>(
        self,
        handler: H,
        router: axum::Router,
        tasks: Vec<Task>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let name = self.identity.service.name();
        crate::crash_point::arm_from_env()?;
        let (ended, mut endings) = mpsc::unbounded_channel();
        let (consumer_stop, consumer_stopped) = watch::channel(false);
        let consuming = Consuming {
            service: self.identity.service,
            group: format!("{name}{}", self.names.suffix()),
            names: self.names.clone(),
            raw_topics: self.identity.raw_topics.clone(),
            dead_letters: self.identity.dead_letters,
            max_in_flight: self.processing.max_in_flight,
            max_batch: self.processing.max_batch,
            workers: self.processing.workers,
        };
        let (handoff, handed_over) = self.handoff;
        let consumer = supervise(
            "consumer",
            run_consumer(
                self.consumer,
                self.pool.clone(),
                handler,
                consuming,
                Links {
                    relay: handoff,
                    committed: self.committed.clone(),
                    readiness: self.readiness.clone(),
                    metrics: self.metrics.clone(),
                },
                Stopping(consumer_stopped).wait(),
            ),
            &ended,
        );
        let pruner = Task::new(
            "pruner",
            pruner::run(
                self.pool.clone(),
                self.processing.retention,
                Stopping(self.background_stop.subscribe()).wait(),
            ),
        );
        let background: Vec<JoinHandle<()>> = tasks
            .into_iter()
            .chain([pruner])
            .map(|task| supervise(task.name, task.future, &ended))
            .collect();
        let (relay_stop, relay_stopped) = watch::channel(false);
        let relay = supervise(
            "relay",
            run_relay(
                self.pool.clone(),
                self.producer,
                self.bootstrap_servers,
                self.names,
                handed_over,
                self.readiness.clone(),
                Stopping(relay_stopped).wait(),
            ),
            &ended,
        );
        // Every answer, whichever route gives it, goes through the card-number mask — but
        // `/metrics`, whose text is only names, fixed labels and numbers (and whose long
        // decimal numbers the mask could take for card numbers).
        let router = read_api::with_card_numbers_masked(router.merge(health_routes(
            self.pool.clone(),
            self.readiness.clone(),
            name,
        )))
        .merge(metrics_routes(self.pool.clone(), self.metrics.clone()));
        let (http_stop, http_stopped) = watch::channel(false);
        let server = supervise(
            "http",
            axum::serve(self.listener, router)
                .with_graceful_shutdown(Stopping(http_stopped).wait())
                .into_future()
                .map(|served| served.context("the HTTP server failed")),
            &ended,
        );
        drop(ended);
        tracing::info!(service = name, "running");

        let early_end = tokio::select! {
            () = shutdown => None,
            Some((task, outcome)) = endings.recv() => {
                let why = format!("task {task} {}", outcome.err().unwrap_or_else(|| "ended".to_owned()));
                tracing::error!(service = name, "{why} before shutdown; stopping the service");
                self.readiness.task_ended(&why);
                Some(why)
            }
        };

        let background_stop = self.background_stop;
        let pool = self.pool;
        let stopping = async move {
            let _ = consumer_stop.send(true);
            let _ = consumer.await;
            let _ = background_stop.send(true);
            for task in background {
                let _ = task.await;
            }
            let _ = relay_stop.send(true);
            let _ = relay.await;
            let _ = http_stop.send(true);
            let _ = server.await;
            pool.close().await;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, stopping)
            .await
            .is_err()
        {
            tracing::warn!(
                service = name,
                "graceful shutdown took longer than {SHUTDOWN_GRACE:?} (Kafka or PostgreSQL unreachable?); \
                 stopping anyway: unpublished outbox rows and uncommitted offsets are taken up at the next start"
            );
        }
        let mut failures: Vec<String> = early_end.into_iter().collect();
        while let Ok((task, outcome)) = endings.try_recv() {
            if let Err(error) = outcome {
                failures.push(format!("task {task} {error}"));
            }
        }
        // The last spans, before the process exits (the batch exporter would wait for its next
        // round).
        let _ = tokio::task::spawn_blocking(crate::trace::flush).await;
        tracing::info!(service = name, "stopped");
        match failures.is_empty() {
            true => Ok(()),
            false => Err(anyhow::anyhow!(failures.join("; "))),
        }
    }
}

/// Spawns `future` as the task `name`; when it ends — returning, failing or panicking — its
/// outcome is sent on `ended` (`Err` with what went wrong).
fn supervise(
    name: &'static str,
    future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ended: &mpsc::UnboundedSender<(&'static str, Result<(), String>)>,
) -> JoinHandle<()> {
    let ended = ended.clone();
    tokio::spawn(async move {
        let outcome = match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("failed: {error:#}")),
            Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
        };
        let _ = ended.send((name, outcome));
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
