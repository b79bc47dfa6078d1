//! Typed configuration read once from environment variables, with local defaults.
//! Errors name the variable; values are never echoed for variables that may hold secrets.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The variable's value, or `default` when it is unset or empty.
pub fn env_or(name: &'static str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => default.to_owned(),
    }
}

/// The variable parsed as `T`, or `default` when unset. A value that does not parse is an
/// error naming the variable (the value itself is not repeated: it may be a secret).
pub fn env_parse<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map_err(|error: T::Err| ConfigError::Invalid {
                    name,
                    reason: error.to_string(),
                })
        }
        _ => Ok(default),
    }
}

/// The variable read as a duration such as `30s`, `90m` or `6h` (humantime), or `default` when
/// unset.
pub fn env_duration(name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            humantime::parse_duration(value.trim()).map_err(|error| ConfigError::Invalid {
                name,
                reason: format!("{error} (write a duration such as 30s, 90m or 6h)"),
            })
        }
        _ => Ok(default),
    }
}

/// Where the Kafka cluster is and how this service's topics are named.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `KAFKA_BOOTSTRAP_SERVERS`, default `localhost:9092`.
    pub bootstrap_servers: String,
    /// `TOPIC_SUFFIX`, default empty: appended to every topic name (tests isolate themselves
    /// with a random suffix).
    pub topic_suffix: String,
    /// `KAFKA_REPLICATION_FACTOR`, default 1 (a single local broker).
    pub replication_factor: i32,
    /// `KAFKA_MAX_POLL_INTERVAL_MS`, default 300000 (Kafka's): a consumer that does not poll
    /// for this long is evicted from its group. At least the session timeout, 10000.
    pub max_poll_interval: Duration,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(KafkaSettings {
            bootstrap_servers: env_or("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            topic_suffix: std::env::var("TOPIC_SUFFIX").unwrap_or_default(),
            replication_factor: env_parse("KAFKA_REPLICATION_FACTOR", 1)?,
            max_poll_interval: Duration::from_millis(max_poll_interval_ms()?),
        })
    }
}

fn max_poll_interval_ms() -> Result<u64, ConfigError> {
    let ms = env_parse("KAFKA_MAX_POLL_INTERVAL_MS", 300_000)?;
    if ms < 10_000 {
        return Err(ConfigError::Invalid {
            name: "KAFKA_MAX_POLL_INTERVAL_MS",
            reason: "must be at least the session timeout, 10000".to_owned(),
        });
    }
    Ok(ms)
}

/// How much a service takes on at once, and how long it keeps what it consumed and emitted.
#[derive(Debug, Clone)]
pub struct Processing {
    /// `CONSUMER_MAX_IN_FLIGHT`, default 5000: messages received and not done (waiting for
    /// their fare's turn, in a batch, or waiting for a gateway call) before the consumer
    /// pauses its partitions. Bounds the service's memory, and the gateway calls under way.
    pub max_in_flight: usize,
    /// `CONSUMER_MAX_BATCH`, default 500: messages per database transaction at most.
    pub max_batch: usize,
    /// `CONSUMER_WORKERS`, default 1: batch transactions under way at once. One is the fastest
    /// on a machine of a few cores: a batch takes everything that arrived while the one before
    /// it ran, so a message costs fewer statements and commits than in several smaller
    /// batches (README, "Performance"). More help only when PostgreSQL has cores to spare.
    pub workers: usize,
    /// `DATABASE_POOL_SIZE`, default 16: connections to PostgreSQL.
    pub pool_size: u32,
    /// `RETENTION`, default 7 days — the event topics' retention: published outbox rows and
    /// inbox rows older than this are deleted (their messages are gone from the topics by then,
    /// so none can be redelivered).
    pub retention: Duration,
}

impl Processing {
    /// The settings from the environment, [`Processing::default`] where unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Processing::default();
        let at_least_one = |name: &'static str, value: usize| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        Ok(Processing {
            max_in_flight: at_least_one(
                "CONSUMER_MAX_IN_FLIGHT",
                env_parse("CONSUMER_MAX_IN_FLIGHT", defaults.max_in_flight)?,
            )?,
            max_batch: at_least_one(
                "CONSUMER_MAX_BATCH",
                env_parse("CONSUMER_MAX_BATCH", defaults.max_batch)?,
            )?,
            workers: at_least_one(
                "CONSUMER_WORKERS",
                env_parse("CONSUMER_WORKERS", defaults.workers)?,
            )?,
            pool_size: at_least_one(
                "DATABASE_POOL_SIZE",
                env_parse("DATABASE_POOL_SIZE", defaults.pool_size as usize)?,
            )? as u32,
            retention: env_duration("RETENTION", defaults.retention)?,
        })
    }
}

impl Default for Processing {
    fn default() -> Self {
        let topic_retention = events_schema::Topic::FareRequests.retention_ms();
        Processing {
            max_in_flight: 5000,
            max_batch: 500,
            workers: 1,
            pool_size: 16,
            retention: Duration::from_millis(u64::try_from(topic_retention).unwrap_or(0)),
        }
    }
}

/// A database URL with its password hidden, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_the_password() {
        assert_eq!(
            redact_url("postgres://payment_service:secret@localhost:5432/wildrydes"),
            "postgres://payment_service:***@localhost:5432/wildrydes"
        );
        assert_eq!(
            redact_url("postgres://localhost/db"),
            "postgres://localhost/db"
        );
    }

    #[test]
    fn env_parse_names_the_variable() {
        std::env::set_var("TM_TEST_BAD_NUMBER", "twelve");
        let error = env_parse::<u32>("TM_TEST_BAD_NUMBER", 1).unwrap_err();
        assert!(error.to_string().contains("TM_TEST_BAD_NUMBER"));
        assert_eq!(env_parse::<u32>("TM_TEST_UNSET_NUMBER", 7).unwrap(), 7);
    }

    #[test]
    fn env_duration_reads_human_durations() {
        std::env::set_var("TM_TEST_DURATION", "90m");
        assert_eq!(
            env_duration("TM_TEST_DURATION", Duration::ZERO).unwrap(),
            Duration::from_secs(5400)
        );
        std::env::set_var("TM_TEST_BAD_DURATION", "soon");
        let error = env_duration("TM_TEST_BAD_DURATION", Duration::ZERO).unwrap_err();
        assert!(
            error.to_string().contains("TM_TEST_BAD_DURATION"),
            "{error}"
        );
        assert_eq!(
            env_duration("TM_TEST_UNSET_DURATION", Duration::from_secs(3)).unwrap(),
            Duration::from_secs(3)
        );
    }
}
