//! payment-service binary: telemetry, configuration, build, run until SIGTERM/SIGINT.

use anyhow::Context;
use payment_service::{PaymentConfig, PaymentService};
use transactional_messaging::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_service("info", payment_service::SERVICE_NAME)?;
    let config = PaymentConfig::from_env().context("invalid configuration")?;
    let service = PaymentService::build(config).await?;
    tracing::info!(http_addr = %service.http_addr()?, "payment-service ready");
    let result = service.run(shutdown::signal()).await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "stopped with an error");
    }
    // Exit now rather than wait on client destructors that may block on an unreachable broker.
    std::process::exit(i32::from(result.is_err()))
}
