//! Structured logging for the services: `RUST_LOG` filters, `LOG_FORMAT=json` for JSON lines;
//! and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, traces exported over OTLP ([`crate::trace`]).

use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops (tests call it repeatedly).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Logging, and tracing when the environment asks for it (see [`crate::trace::init_from_env`]),
/// for the service `service_name`. Fails on an OTLP setting the exporter cannot use.
pub fn init_service(default_filter: &str, service_name: &str) -> anyhow::Result<()> {
    init(default_filter);
    if crate::trace::init_from_env(service_name)? {
        tracing::info!(
            endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default(),
            "tracing on: exporting spans over OTLP/HTTP"
        );
    }
    Ok(())
}

/// At most one log line a second for a warning that can repeat many times a second (a broker
/// outage queues many receive errors; a broker away fails every send).
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(lines suppressed since the last one)` when a line may be logged now, else `None`
    /// (and the line counts as suppressed).
    pub fn allow(&mut self) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| last.elapsed() < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_the_count_of_those_left_out() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        throttle.last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(throttle.allow(), Some(2));
    }
}
