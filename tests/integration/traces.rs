//! One trace per fare, read back from a real Jaeger (README "Tracing").
//!
//! Jaeger (built from the Go module proxy by `scripts/jaeger/build`, cached) runs on free
//! loopback ports with an in-memory store; both services run as binaries exporting to it over
//! OTLP/HTTP; `fares request` starts the trace. A fare of a `_fail_credit` customer goes
//! through every hop and the refund compensation: the test reads the trace from Jaeger's HTTP
//! query API and checks that it is one trace, with a `send` and a `process` span for every
//! hop (the process span a child of the send span, at the offset the send span reports), the
//! gateway calls and the compensation in it, the messaging attributes, and no payment token.
//! A request without a `traceparent` (as kcat sends it) starts its trace at the
//! payment-service.
//!
//! Skipped, with a message, only outside CI when Jaeger is not cached and `go` is missing.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tests::env::wait_healthy;
use tests::processes::{binary, checkout, free_port, ServiceProcess};
use tests::TestEnv;
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(60);
/// A token no span may show.
const TOKEN: &str = "tok_trace_secret_4242";

/// A Jaeger of this test's own.
struct Jaeger {
    query: String,
    otlp: String,
    _child: Child,
}

impl Jaeger {
    /// Starts it, or `None` when the test is to be skipped (outside CI, no `go` to build it).
    async fn start() -> anyhow::Result<Option<Jaeger>> {
        let build = Command::new("bash")
            .arg(checkout().join("scripts/jaeger/build"))
            .stderr(Stdio::inherit())
            .output()
            .await
            .context("running scripts/jaeger/build")?;
        if !build.status.success() {
            let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
            let go = std::process::Command::new("go").arg("version").output();
            if !in_ci && go.is_err() {
                eprintln!(
                    "SKIPPED traces: Jaeger is not built and go is not installed \
                     (install Go, then scripts/jaeger/build)"
                );
                return Ok(None);
            }
            anyhow::bail!("scripts/jaeger/build failed: {}", build.status);
        }
        let path = String::from_utf8(build.stdout)?.trim().to_owned();
        let (query, otlp, grpc) = (free_port()?, free_port()?, free_port()?);
        let child = Command::new(&path)
            .arg("--config")
            .arg(checkout().join("scripts/jaeger/jaeger.yaml"))
            .env("JAEGER_QUERY_ADDR", format!("127.0.0.1:{query}"))
            .env("JAEGER_OTLP_ADDR", format!("127.0.0.1:{otlp}"))
            .env("JAEGER_QUERY_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("JAEGER_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {path}"))?;
        let jaeger = Jaeger {
            query: format!("http://127.0.0.1:{query}"),
            otlp: format!("http://127.0.0.1:{otlp}"),
            _child: child,
        };
        wait_healthy(&format!("{}/api/services", jaeger.query)).await?;
        Ok(Some(jaeger))
    }

    /// The ids of the traces holding a span of `service` tagged `fare_id`.
    async fn trace_ids(&self, service: &str, fare_id: &str) -> anyhow::Result<Vec<String>> {
        let tags = serde_json::json!({ "fare_id": fare_id }).to_string();
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/api/traces", self.query))
            .query(&[
                ("service", service),
                ("tags", tags.as_str()),
                ("limit", "50"),
                ("lookback", "1h"),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut ids: Vec<String> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|trace| trace["traceID"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn trace(&self, id: &str) -> anyhow::Result<Trace> {
        let answer: Value = reqwest::get(format!("{}/api/traces/{id}", self.query))
            .await?
            .error_for_status()?
            .json()
            .await?;
        Trace::parse(&answer["data"][0])
    }
}

/// One span as Jaeger shows it.
#[derive(Debug, Clone)]
struct SpanView {
    id: String,
    trace_id: String,
    parent: Option<String>,
    name: String,
    service: String,
    tags: BTreeMap<String, String>,
}

impl SpanView {
    fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map_or("", String::as_str)
    }

    fn assert_tags(&self, expected: &[(&str, &str)]) {
        for (key, value) in expected {
            assert_eq!(self.tag(key), *value, "{key} of {self:?}");
        }
    }
}

#[derive(Debug)]
struct Trace {
    spans: Vec<SpanView>,
}

impl Trace {
    fn parse(trace: &Value) -> anyhow::Result<Trace> {
        let processes = &trace["processes"];
        let spans = trace["spans"]
            .as_array()
            .context("a trace without spans")?
            .iter()
            .map(|span| {
                let process = span["processID"].as_str().unwrap_or_default();
                let tags = span["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|tag| {
                        let value = match &tag["value"] {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        };
                        (tag["key"].as_str().unwrap_or_default().to_owned(), value)
                    })
                    .collect();
                SpanView {
                    id: span["spanID"].as_str().unwrap_or_default().to_owned(),
                    trace_id: span["traceID"].as_str().unwrap_or_default().to_owned(),
                    parent: span["references"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["refType"] == "CHILD_OF")
                        .and_then(|r| r["spanID"].as_str().map(str::to_owned)),
                    name: span["operationName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    service: processes[process]["serviceName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    tags,
                }
            })
            .collect();
        Ok(Trace { spans })
    }

    fn named(&self, name: &str) -> impl Iterator<Item = &SpanView> {
        let name = name.to_owned();
        self.spans.iter().filter(move |span| span.name == name)
    }

    fn parent_of(&self, span: &SpanView) -> Option<&SpanView> {
        let parent = span.parent.as_deref()?;
        self.spans.iter().find(|s| s.id == parent)
    }

    /// The `send` span of `event_type` on `topic`, by `service`.
    fn send(&self, topic: &str, event_type: &str, service: &str) -> anyhow::Result<&SpanView> {
        let name = format!("send {topic}");
        self.named(&name)
            .find(|s| s.tag("event_type") == event_type && s.service == service)
            .with_context(|| {
                format!(
                    "no {name:?} span of {event_type} by {service}: {}",
                    self.summary()
                )
            })
    }

    /// What the trace holds, to read in a failure.
    fn summary(&self) -> String {
        self.spans
            .iter()
            .map(|s| format!("{}:{}[{}]", s.service, s.name, s.tag("event_type")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The trace ids of `fare_id`'s spans in each service, polled until every service has spans
/// and the trace holds `expected` spans named so (or the deadline: then what there is).
async fn wait_for_trace(
    jaeger: &Jaeger,
    fare_id: &str,
    services: &[&str],
    complete: impl Fn(&Trace) -> bool,
) -> anyhow::Result<(BTreeMap<String, Vec<String>>, Option<Trace>)> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut ids = BTreeMap::new();
        for service in services {
            ids.insert(
                (*service).to_owned(),
                jaeger.trace_ids(service, fare_id).await?,
            );
        }
        let first = ids.values().flatten().next().cloned();
        let trace = match &first {
            Some(id) => Some(jaeger.trace(id).await?),
            None => None,
        };
        let all_seen = ids.values().all(|ids| !ids.is_empty());
        if (all_seen && trace.as_ref().is_some_and(&complete))
            || tokio::time::Instant::now() >= deadline
        {
            return Ok((ids, trace));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A service binary exporting its spans to `jaeger`, its read API on a port of ours.
fn start_traced(
    env: &TestEnv,
    name: &'static str,
    jaeger: &Jaeger,
) -> anyhow::Result<(ServiceProcess, String)> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let process = ServiceProcess::start_with(
        env,
        name,
        &addr,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )?;
    Ok((process, format!("http://{addr}")))
}

/// The hops of a `_fail_credit` fare: event type, topic, producer, consumer.
const HOPS: [(&str, &str, &str, Option<&str>); 6] = [
    (
        "FareRequested",
        "fare-requests",
        "fares",
        Some("payment-service"),
    ),
    (
        "PreAuthorised",
        "payment-events",
        "payment-service",
        Some("payment-service"),
    ),
    (
        "Charged",
        "payment-events",
        "payment-service",
        Some("accounting-service"),
    ),
    (
        "AccountUpdateFailed",
        "accounting-events",
        "accounting-service",
        Some("payment-service"),
    ),
    (
        "PaymentRefunded",
        "payment-events",
        "payment-service",
        Some("payment-service"),
    ),
    (
        "FareCollectionFailed",
        "fare-outcomes",
        "payment-service",
        None,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fare_is_one_trace_from_the_request_to_its_refund() -> anyhow::Result<()> {
    let Some(jaeger) = Jaeger::start().await? else {
        return Ok(());
    };
    let env = TestEnv::new().await?;
    let (payment, payment_url) = start_traced(&env, "payment-service", &jaeger)?;
    let (accounting, accounting_url) = start_traced(&env, "accounting-service", &jaeger)?;
    wait_healthy(&format!("{payment_url}/health")).await?;
    wait_healthy(&format!("{accounting_url}/health")).await?;

    let fare_id = format!("wr_trace_{}", rand::random::<u32>());
    let requested = Command::new(binary("fares")?)
        .args([
            "request",
            "--fare-id",
            &fare_id,
            "--customer",
            "7_fail_credit",
        ])
        .args([
            "--amount",
            "12.50",
            "--token",
            TOKEN,
            "--wait",
            "--timeout",
            "60",
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp)
        .output()
        .await?;
    assert_eq!(
        requested.status.code(),
        Some(1),
        "the fare is not collected: {requested:?}"
    );

    let services = ["fares", "payment-service", "accounting-service"];
    let (ids, trace) = wait_for_trace(&jaeger, &fare_id, &services, |trace| {
        HOPS.iter()
            .all(|(event_type, topic, producer, _)| trace.send(topic, event_type, producer).is_ok())
            && trace.named("process accounting-events").count() == 1
            && trace.named("process payment-events").count() >= 3
    })
    .await?;
    let trace = trace.with_context(|| format!("no span of fare {fare_id} in Jaeger"))?;

    // One trace for the whole fare, with spans of the CLI and both services.
    let trace_id = &trace.spans[0].trace_id;
    for (service, ids) in &ids {
        assert_eq!(
            ids,
            &vec![trace_id.clone()],
            "{service}'s spans of {fare_id} are all in the fare's one trace"
        );
    }
    assert!(trace.spans.iter().all(|s| &s.trace_id == trace_id));

    for (event_type, topic, producer, consumer) in HOPS {
        let send = trace.send(topic, event_type, producer)?;
        let topic_name = format!("{topic}{}", env.kafka.topic_suffix);
        send.assert_tags(&[
            ("messaging.system", "kafka"),
            ("messaging.operation.type", "send"),
            ("messaging.destination.name", topic_name.as_str()),
            ("messaging.kafka.message.key", fare_id.as_str()),
            ("fare_id", fare_id.as_str()),
            ("span.kind", "producer"),
        ]);
        for key in [
            "messaging.destination.partition.id",
            "messaging.kafka.offset",
            "messaging.message.id",
        ] {
            assert!(!send.tag(key).is_empty(), "{key} of {send:?}");
        }
        let Some(consumer) = consumer else {
            continue;
        };
        let processed: Vec<&SpanView> = trace
            .named(&format!("process {topic}"))
            .filter(|s| s.parent.as_deref() == Some(send.id.as_str()))
            .collect();
        assert_eq!(
            processed.len(),
            1,
            "one process span of {event_type}, child of its send span: {}",
            trace.summary()
        );
        let process = processed[0];
        let group = format!("{consumer}{}", env.kafka.topic_suffix);
        process.assert_tags(&[
            ("messaging.system", "kafka"),
            ("messaging.operation.type", "process"),
            ("messaging.destination.name", topic_name.as_str()),
            ("messaging.kafka.message.key", fare_id.as_str()),
            ("messaging.consumer.group.name", group.as_str()),
            (
                "messaging.destination.partition.id",
                send.tag("messaging.destination.partition.id"),
            ),
            ("messaging.kafka.offset", send.tag("messaging.kafka.offset")),
            ("messaging.message.id", send.tag("messaging.message.id")),
            ("fare_id", fare_id.as_str()),
            ("event_type", event_type),
            ("wildrydes.disposition", "processed"),
            ("span.kind", "consumer"),
        ]);
        assert_eq!(process.service, consumer, "{process:?}");
    }

    // The gateway calls, each in its step; the refund in the compensation that the process
    // span of AccountUpdateFailed started, and PaymentRefunded sent from there.
    for (gateway, step) in [
        ("gateway pre_authorise", "process fare-requests"),
        ("gateway capture", "process payment-events"),
        ("gateway refund", "compensate refund"),
    ] {
        let call = trace
            .named(gateway)
            .next()
            .with_context(|| format!("no {gateway} span: {}", trace.summary()))?;
        assert_eq!(call.service, "payment-service");
        assert_eq!(call.tag("gateway.result"), "approved", "{call:?}");
        assert_eq!(trace.parent_of(call).map(|p| p.name.as_str()), Some(step));
    }
    let compensation = trace
        .named("compensate refund")
        .next()
        .context("no compensate refund span")?;
    let started_by = trace
        .parent_of(compensation)
        .context("the compensation has no parent in the trace")?;
    assert_eq!(started_by.name, "process accounting-events");
    let refunded = trace.send("payment-events", "PaymentRefunded", "payment-service")?;
    assert_eq!(
        trace.parent_of(refunded).map(|p| p.id.as_str()),
        Some(compensation.id.as_str())
    );

    // The root is the CLI's request; no span shows the payment token.
    let roots: Vec<&SpanView> = trace.spans.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(roots[0].service, "fares");
    assert_eq!(roots[0].name, "send fare-requests");
    for span in &trace.spans {
        assert!(
            span.tags.values().all(|value| !value.contains(TOKEN)),
            "the payment token in {span:?}"
        );
    }

    // A request typed by hand (no traceparent) starts its trace at the payment-service.
    let by_hand = format!("wr_trace_kcat_{}", rand::random::<u32>());
    env.request_fare(&by_hand, "8", 700).await?;
    let (ids, trace) = wait_for_trace(&jaeger, &by_hand, &["payment-service"], |trace| {
        trace
            .send("fare-outcomes", "FareCollected", "payment-service")
            .is_ok()
    })
    .await?;
    let trace = trace.with_context(|| format!("no span of fare {by_hand} in Jaeger"))?;
    assert_eq!(ids["payment-service"].len(), 1, "{ids:?}");
    let roots: Vec<&SpanView> = trace.spans.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "{}", trace.summary());
    assert_eq!(
        (roots[0].service.as_str(), roots[0].name.as_str()),
        ("payment-service", "process fare-requests")
    );
    assert!(trace
        .send("payment-events", "Charged", "payment-service")
        .is_ok());

    payment.kill().await?;
    accounting.kill().await?;
    env.teardown().await
}
