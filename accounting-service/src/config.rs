//! The accounting-service's configuration, read once from the environment at start-up.

use std::net::SocketAddr;

use transactional_messaging::config::{env_or, env_parse, ConfigError, KafkaSettings, Processing};

#[derive(Debug, Clone)]
pub struct AccountingConfig {
    /// `ACCOUNTING_DATABASE_URL`: the accounting_service role, which owns schema `accounting`.
    pub database_url: String,
    pub kafka: KafkaSettings,
    /// `CONSUMER_MAX_IN_FLIGHT`, `CONSUMER_MAX_BATCH`, `CONSUMER_WORKERS` (more than the default
    /// 1 gains least here: every credit locks its customer's account to carry the running
    /// balance, so concurrent batches would mostly wait on each other's accounts),
    /// `DATABASE_POOL_SIZE`, `RETENTION`.
    pub processing: Processing,
    /// `ACCOUNTING_HTTP_ADDR`, default `127.0.0.1:8082`: health and the read API.
    pub http_addr: SocketAddr,
}

impl AccountingConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(AccountingConfig {
            database_url: env_or(
                "ACCOUNTING_DATABASE_URL",
                "postgres://accounting_service:accounting_service@localhost:5432/wildrydes",
            ),
            kafka: KafkaSettings::from_env()?,
            processing: Processing::from_env()?,
            http_addr: env_parse(
                "ACCOUNTING_HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8082)),
            )?,
        })
    }
}
