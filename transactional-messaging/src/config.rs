//! Typed configuration read once from environment variables, with local defaults.
//! Errors name the variable; values are never echoed for variables that may hold secrets.

use std::str::FromStr;

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
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(KafkaSettings {
            bootstrap_servers: env_or("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            topic_suffix: std::env::var("TOPIC_SUFFIX").unwrap_or_default(),
            replication_factor: env_parse("KAFKA_REPLICATION_FACTOR", 1)?,
        })
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
}
