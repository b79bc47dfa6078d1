//! The real service binaries as child processes, for crash tests that SIGKILL them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

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
    /// Where its read API listens (`127.0.0.1:0`: a port of its choosing, unknown here).
    pub http_addr: String,
    child: Child,
}

/// `fares <args>` as a user runs it: this test's Kafka and topics, the payment-service's read
/// API at `payment`, the accounting-service's at `accounting`.
pub async fn fares(
    env: &TestEnv,
    payment: &str,
    accounting: &str,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    Command::new(binary("fares")?)
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .env("PAYMENT_URL", payment)
        .env("ACCOUNTING_URL", accounting)
        .output()
        .await
        .context("running fares")
}

/// A free loopback port, for a child process's read API (free when asked).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ServiceProcess {
    pub fn start(env: &TestEnv, name: &'static str) -> anyhow::Result<ServiceProcess> {
        ServiceProcess::start_on(env, name, "127.0.0.1:0")
    }

    /// As [`ServiceProcess::start`], with its read API on `http_addr`.
    pub fn start_on(
        env: &TestEnv,
        name: &'static str,
        http_addr: &str,
    ) -> anyhow::Result<ServiceProcess> {
        ServiceProcess::start_with(env, name, http_addr, &[])
    }

    /// As [`ServiceProcess::start_on`], with more environment variables (e.g. `CRASH_POINT`).
    pub fn start_with(
        env: &TestEnv,
        name: &'static str,
        http_addr: &str,
        vars: &[(&str, &str)],
    ) -> anyhow::Result<ServiceProcess> {
        ServiceProcess::spawn(
            env,
            name,
            http_addr,
            vars,
            (Stdio::null(), Stdio::inherit()),
        )
    }

    /// As [`ServiceProcess::start_with`], its log (stdout and stderr) written to the file `log`.
    pub fn start_logging_to(
        env: &TestEnv,
        name: &'static str,
        http_addr: &str,
        vars: &[(&str, &str)],
        log: &std::path::Path,
    ) -> anyhow::Result<ServiceProcess> {
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let stderr = file.try_clone()?;
        ServiceProcess::spawn(
            env,
            name,
            http_addr,
            vars,
            (Stdio::from(file), Stdio::from(stderr)),
        )
    }

    fn spawn(
        env: &TestEnv,
        name: &'static str,
        http_addr: &str,
        vars: &[(&str, &str)],
        (stdout, stderr): (Stdio, Stdio),
    ) -> anyhow::Result<ServiceProcess> {
        let mut command = Command::new(binary(name)?);
        command
            .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
            .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        match name {
            "payment-service" => command
                .env(
                    "PAYMENT_DATABASE_URL",
                    env.database.role_url("payment_service"),
                )
                .env("PAYMENT_HTTP_ADDR", http_addr)
                .env("GATEWAY_RETRY_BASE_MS", "2")
                .env("COMPENSATION_RETRY_BASE_MS", "20")
                .env("COMPENSATION_RETRY_MAX_MS", "100")
                .env("COMPENSATION_BUDGET", "1s")
                // An attempt cut short by a crash is made again after this.
                .env("COMPENSATION_LEASE", "2s"),
            _ => command
                .env(
                    "ACCOUNTING_DATABASE_URL",
                    env.database.role_url("accounting_service"),
                )
                .env("ACCOUNTING_HTTP_ADDR", http_addr),
        };
        command.envs(vars.iter().copied());
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ServiceProcess {
            name,
            http_addr: http_addr.to_owned(),
            child,
        })
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process.
    pub async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the process has ended")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Waits for the process to end by itself, at most `timeout`.
    pub async fn exited(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("{} still runs after {timeout:?}", self.name))?
            .context("waiting for the process")
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

/// The checkout these tests belong to (its `scripts/stack` runs the infrastructure).
pub fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `scripts/stack ARGS…` of this checkout; an error when it fails.
pub async fn stack(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("bash")
        .arg(checkout().join("scripts/stack"))
        .args(args)
        .status()
        .await
        .context("running scripts/stack")?;
    anyhow::ensure!(
        status.success(),
        "scripts/stack {} failed: {status}",
        args.join(" ")
    );
    Ok(())
}
