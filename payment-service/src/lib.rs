//! payment-service: registers fares, pre-authorises, captures, releases and refunds through the
//! payment gateway, and publishes every fare's one terminal outcome (SPEC §4). It owns the
//! PostgreSQL schema `payment` and writes only there; it reacts to `fare-requests`,
//! `payment-events` and `accounting-events` and writes `payment-events`, `fare-outcomes` and
//! `payment-service.dlq`, always through its outbox.

pub mod api;
pub mod batch;
pub mod capture;
pub mod compensation;
pub mod compensator;
pub mod config;
pub mod fare;
pub mod gateway;
pub mod handler;
pub mod metrics;
pub mod outcome;
pub mod registration;
pub mod saga;
pub mod stuck;
pub mod timeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use events_schema::choreography;
use events_schema::Topic;
use transactional_messaging::{Service, ServiceIdentity, Task};

pub use config::PaymentConfig;

use crate::gateway::GatewaySimulator;
use crate::handler::PaymentHandler;
use crate::saga::Saga;

pub const SERVICE_NAME: &str = choreography::Service::Payment.name();
/// The schema this service owns.
pub const SCHEMA: &str = "payment";

/// The `payment` schema's migrations, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The payment-service, connected and ready to run.
pub struct PaymentService {
    service: Service,
    config: PaymentConfig,
}

impl PaymentService {
    pub async fn build(config: PaymentConfig) -> anyhow::Result<Self> {
        let identity = ServiceIdentity {
            service: choreography::Service::Payment,
            schema: SCHEMA,
            subscribed: handler::SUBSCRIBED.to_vec(),
            raw_topics: handler::RAW_TOPICS.to_vec(),
            dead_letters: Topic::PaymentDlq,
        };
        let service = Service::connect(
            identity,
            &config.database_url,
            &MIGRATOR,
            &config.kafka,
            &config.processing,
            config.http_addr,
        )
        .await?;
        Ok(PaymentService { service, config })
    }

    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        self.service.http_addr()
    }

    /// Runs until `shutdown` completes (or one of its tasks ends: then with an error).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.run_with(Vec::new(), shutdown).await
    }

    /// As [`PaymentService::run`], with more background tasks supervised with the service's.
    pub async fn run_with(
        self,
        mut tasks: Vec<Task>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let pool = self.service.pool.clone();
        let stuck_after = self.config.stuck_after;
        let gauges = metrics::FareGauges::register(self.service.metrics().registry(), stuck_after)?;
        self.service.metrics().read_on_scrape(Arc::new(gauges));
        let saga = Arc::new(Saga {
            gateway: GatewaySimulator::new(pool.clone(), self.config.faults),
            policy: self.config.retry,
        });
        tasks.push(Task::new(
            "compensator",
            compensator::run(
                pool.clone(),
                saga.clone(),
                self.service.handoff(),
                self.service.commit_signal().subscribe(),
                self.service.stopping(),
            ),
        ));
        tasks.push(Task::new(
            "stuck-fares watch",
            stuck::watch(pool.clone(), stuck_after, self.service.stopping()),
        ));
        let handler = PaymentHandler::new(saga);
        self.service
            .run(handler, api::router(pool, stuck_after), tasks, shutdown)
            .await
    }
}
