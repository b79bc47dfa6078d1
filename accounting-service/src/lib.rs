//! accounting-service: keeps each customer's account and append-only ledger, crediting the
//! amount of every `Charged` fare (SPEC §4 row 5). It owns the PostgreSQL schema `accounting`
//! and writes only there; it reacts to `payment-events` and writes `accounting-events` and
//! `accounting-service.dlq`, always through its outbox.

pub mod api;
pub mod config;
pub mod credit;
pub mod handler;
pub mod ledger;

use std::future::Future;
use std::net::SocketAddr;

use events_schema::choreography;
use events_schema::Topic;
use transactional_messaging::{Service, ServiceIdentity, Task};

pub use config::AccountingConfig;

use crate::handler::AccountingHandler;

pub const SERVICE_NAME: &str = choreography::Service::Accounting.name();
/// The schema this service owns.
pub const SCHEMA: &str = "accounting";

/// The `accounting` schema's migrations, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The accounting-service, connected and ready to run.
pub struct AccountingService {
    service: Service,
}

impl AccountingService {
    pub async fn build(config: AccountingConfig) -> anyhow::Result<Self> {
        let identity = ServiceIdentity {
            service: choreography::Service::Accounting,
            schema: SCHEMA,
            subscribed: handler::SUBSCRIBED.to_vec(),
            raw_topics: Vec::new(),
            dead_letters: Topic::AccountingDlq,
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
        Ok(AccountingService { service })
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

    /// As [`AccountingService::run`], with background tasks supervised with the service's.
    pub async fn run_with(
        self,
        tasks: Vec<Task>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = api::router(self.service.pool.clone());
        self.service
            .run(AccountingHandler, router, tasks, shutdown)
            .await
    }
}
