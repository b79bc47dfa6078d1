//! payment-service: registers fares, pre-authorises, captures, releases and refunds through the
//! payment gateway, and publishes every fare's one terminal outcome (SPEC §4). It owns the
//! PostgreSQL schema `payment` and writes only there; it reacts to `fare-requests`,
//! `payment-events` and `accounting-events` and writes `payment-events`, `fare-outcomes` and
//! `payment-service.dlq`, always through its outbox.

pub mod api;
pub mod capture;
pub mod compensation;
pub mod config;
pub mod fare;
pub mod gateway;
pub mod handler;
pub mod outcome;
pub mod refund;
pub mod registration;
pub mod saga;
pub mod timeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use events_schema::Topic;
use transactional_messaging::{Service, ServiceIdentity};

pub use config::PaymentConfig;

use crate::gateway::GatewaySimulator;
use crate::handler::PaymentHandler;
use crate::saga::Saga;

pub const SERVICE_NAME: &str = "payment-service";
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
            name: SERVICE_NAME,
            schema: SCHEMA,
            subscribed: handler::SUBSCRIBED.to_vec(),
            dead_letters: Topic::PaymentDlq,
        };
        let service = Service::connect(
            identity,
            &config.database_url,
            &MIGRATOR,
            &config.kafka,
            config.http_addr,
        )
        .await?;
        Ok(PaymentService { service, config })
    }

    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        self.service.http_addr()
    }

    /// Runs until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let pool = self.service.pool.clone();
        let saga = Arc::new(Saga {
            gateway: GatewaySimulator::new(pool.clone(), self.config.faults),
            policy: self.config.retry,
        });
        let handler = PaymentHandler::new(saga.clone(), self.service.topic_names().clone());
        // The refund retrier stops with the service.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let retrier = tokio::spawn(refund::run_retrier(pool.clone(), saga, async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let result = self.service.run(handler, api::router(pool), shutdown).await;
        let _ = retrier.await;
        result
    }
}
