//! `fares audit` as the tests run it: the real binary, with `--json`, against this test's
//! topics, its database as the read-only auditor role and its services' read APIs; and what
//! the audit tests need to break an invariant on purpose.

use std::process::Output;
use std::time::Duration;

use anyhow::Context;
use events_schema::Topic;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;
use serde_json::Value;
use tokio::process::Command;
use transactional_messaging::kafka;

use crate::processes::binary;
use crate::TestEnv;

/// A read-API address nothing listens on (for tests whose services are not running).
const NOWHERE: &str = "http://127.0.0.1:1";

/// One run of `fares audit --json`.
#[derive(Debug)]
pub struct Audited {
    /// The exit code.
    pub code: Option<i32>,
    /// The report (`Value::Null` when stdout is not JSON, as when the audit could not run).
    pub report: Value,
    pub stderr: String,
}

impl Audited {
    fn of(output: Output) -> Audited {
        Audited {
            code: output.status.code(),
            report: serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The fare ids the report names under `invariant`.
    pub fn violating(&self, invariant: u64) -> Vec<String> {
        self.violations(invariant)
            .iter()
            .filter_map(|v| v["fare_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The violations of `invariant`.
    pub fn violations(&self, invariant: u64) -> Vec<Value> {
        self.report["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["invariant"] == invariant)
            .cloned()
            .collect()
    }
}

impl TestEnv {
    /// Runs `fares audit --json <args>` against this test's world.
    pub async fn audit(&self, args: &[&str]) -> anyhow::Result<Audited> {
        self.audit_with(args, &[]).await
    }

    /// As [`TestEnv::audit`], with environment variables overridden.
    pub async fn audit_with(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Audited> {
        let payment = self.service_url("payment-service", "");
        let accounting = self.service_url("accounting-service", "");
        let mut command = Command::new(binary("fares")?);
        command
            .arg("audit")
            .arg("--json")
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", &self.kafka.bootstrap_servers)
            .env("TOPIC_SUFFIX", &self.kafka.topic_suffix)
            .env(
                "AUDIT_DATABASE_URL",
                self.database.role_url("wildrydes_auditor"),
            )
            .env("PAYMENT_URL", payment.as_deref().unwrap_or(NOWHERE))
            .env("ACCOUNTING_URL", accounting.as_deref().unwrap_or(NOWHERE));
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().await.context("running fares audit")?;
        Ok(Audited::of(output))
    }

    /// Waits until `service`'s consumer group has committed every message now on `topic`.
    pub async fn wait_until_consumed(&self, service: &str, topic: Topic) -> anyhow::Result<()> {
        let name = self.names.name(topic);
        let group = format!("{service}{}", self.kafka.topic_suffix);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        for partition in 0..topic.partitions() {
            list.add_partition(&name, partition);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let committed = consumer.committed_offsets(list.clone(), Duration::from_secs(5))?;
            let mut behind = 0;
            for element in committed.elements() {
                let (_, high) = consumer.fetch_watermarks(
                    &name,
                    element.partition(),
                    Duration::from_secs(5),
                )?;
                let done = element.offset().to_raw().unwrap_or(0).max(0);
                behind += (high - done).max(0);
            }
            if behind == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{group} has not committed {behind} messages of {name} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deletes `topic` and creates it again, empty (its messages are lost).
    pub async fn recreate_topic(&self, topic: Topic) -> anyhow::Result<()> {
        let name = self.names.name(topic);
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .create()?;
        admin
            .delete_topics(&[name.as_str()], &AdminOptions::new())
            .await?;
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .create()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // Creating fails, or finds the old topic, until the deletion is complete.
            let created = kafka::ensure_topics(&self.kafka.bootstrap_servers, &self.names, 1).await;
            let empty = (0..topic.partitions()).all(|p| {
                matches!(
                    probe.fetch_watermarks(&name, p, Duration::from_secs(5)),
                    Ok((0, 0))
                )
            });
            if created.is_ok() && empty {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{name} was not recreated empty within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
