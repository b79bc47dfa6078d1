//! The real service binaries as child processes, for crash tests that SIGKILL them.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::TestEnv;

/// The directory holding the workspace's binaries (`target/debug`), found from this test
/// executable's path (`target/debug/deps/…`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("cannot locate the target directory")?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --bins` first (scripts/test does)",
        path.display()
    );
    Ok(path)
}

/// A service binary running as a child process with this test's configuration.
pub struct ServiceProcess {
    pub name: &'static str,
    child: Child,
}

impl ServiceProcess {
    pub fn start(env: &TestEnv, name: &'static str) -> anyhow::Result<ServiceProcess> {
        let mut command = Command::new(binary(name)?);
        command
            .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
            .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        match name {
            "payment-service" => command
                .env(
                    "PAYMENT_DATABASE_URL",
                    env.database.role_url("payment_service"),
                )
                .env("PAYMENT_HTTP_ADDR", "127.0.0.1:0")
                .env("GATEWAY_RETRY_BASE_MS", "2")
                .env("COMPENSATION_RETRY_BASE_MS", "20")
                .env("COMPENSATION_RETRY_MAX_MS", "100")
                .env("COMPENSATION_BUDGET", "1s"),
            _ => command
                .env(
                    "ACCOUNTING_DATABASE_URL",
                    env.database.role_url("accounting_service"),
                )
                .env("ACCOUNTING_HTTP_ADDR", "127.0.0.1:0"),
        };
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ServiceProcess { name, child })
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM and wait for the clean stop.
    pub async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await?;
        }
        Ok(self.child.wait().await?)
    }
}
