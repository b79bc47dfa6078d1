//! The payment-service's configuration, read once from the environment at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use transactional_messaging::config::{
    env_duration, env_or, env_parse, ConfigError, KafkaSettings, Processing,
};
use transactional_messaging::retry::Backoff;

use crate::gateway::FaultInjection;
use crate::saga::RetryPolicy;

/// `STUCK_AFTER`'s default, as `fares audit --stuck-after`'s.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// `PAYMENT_DATABASE_URL`: the payment_service role, which owns schema `payment`.
    pub database_url: String,
    pub kafka: KafkaSettings,
    /// `CONSUMER_MAX_IN_FLIGHT`, `CONSUMER_MAX_BATCH`, `CONSUMER_WORKERS`, `DATABASE_POOL_SIZE`,
    /// `RETENTION`.
    pub processing: Processing,
    /// `PAYMENT_HTTP_ADDR`, default `127.0.0.1:8081`: health and the read API.
    pub http_addr: SocketAddr,
    /// `GATEWAY_FAULT_RATE` (0.0–1.0, default 0), `GATEWAY_LATENCY_MS` (default 0) and
    /// `GATEWAY_SLOW_MS` (default 30000, the `_slow_gateway` marker's pre-authorisation).
    pub faults: FaultInjection,
    pub retry: RetryPolicy,
    /// `STUCK_AFTER`, default 5m: a fare without an outcome and without progress this long is
    /// stuck — listed by the read API, logged, counted (see `crate::stuck`).
    pub stuck_after: Duration,
}

impl PaymentConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let fault_rate: f64 = env_parse("GATEWAY_FAULT_RATE", 0.0)?;
        if !(0.0..=1.0).contains(&fault_rate) {
            return Err(ConfigError::Invalid {
                name: "GATEWAY_FAULT_RATE",
                reason: "must be between 0.0 and 1.0".to_owned(),
            });
        }
        if std::env::var_os("REFUND_MAX_ATTEMPTS").is_some() {
            tracing::warn!("REFUND_MAX_ATTEMPTS is no longer read: compensations are retried for COMPENSATION_BUDGET (a duration, default 6h)");
        }
        let defaults = RetryPolicy::default();
        Ok(PaymentConfig {
            database_url: env_or(
                "PAYMENT_DATABASE_URL",
                "postgres://payment_service:payment_service@localhost:5432/wildrydes",
            ),
            kafka: KafkaSettings::from_env()?,
            processing: Processing::from_env()?,
            http_addr: env_parse(
                "PAYMENT_HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8081)),
            )?,
            faults: FaultInjection {
                rate: fault_rate,
                latency: Duration::from_millis(env_parse("GATEWAY_LATENCY_MS", 0)?),
                slow: Duration::from_millis(env_parse("GATEWAY_SLOW_MS", 30_000)?),
            },
            retry: RetryPolicy {
                gateway_attempts: at_least_one(env_parse(
                    "GATEWAY_MAX_ATTEMPTS",
                    defaults.gateway_attempts,
                )?),
                gateway_backoff: Backoff::new(
                    Duration::from_millis(env_parse("GATEWAY_RETRY_BASE_MS", 20)?),
                    defaults.gateway_backoff.max,
                ),
                compensation_budget: env_duration(
                    "COMPENSATION_BUDGET",
                    defaults.compensation_budget,
                )?,
                compensation_backoff: Backoff::new(
                    Duration::from_millis(env_parse(
                        "COMPENSATION_RETRY_BASE_MS",
                        millis(defaults.compensation_backoff.base),
                    )?),
                    Duration::from_millis(env_parse(
                        "COMPENSATION_RETRY_MAX_MS",
                        millis(defaults.compensation_backoff.max),
                    )?),
                ),
                compensation_lease: env_duration(
                    "COMPENSATION_LEASE",
                    defaults.compensation_lease,
                )?,
                answer_timeout: env_duration("GATEWAY_ANSWER_TIMEOUT", defaults.answer_timeout)?,
            },
            stuck_after: env_duration("STUCK_AFTER", STUCK_AFTER)?,
        })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn at_least_one(attempts: u32) -> u32 {
    attempts.max(1)
}
