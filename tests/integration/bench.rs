//! `fares bench` as a user runs it: the real binary against the real services (in-process),
//! its JSON report checked against what the recorder saw on the topics.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use events_schema::Topic;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;
use tests::processes::binary;
use tests::{Recorded, TestEnv};
use tokio::process::Command;

/// `fares <command> <args>` against the test's Kafka, topics and database.
async fn fares(env: &TestEnv, command: &str, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(binary("fares")?)
        .arg(command)
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .env("DATABASE_URL", env.database.admin_url())
        .output()
        .await?)
}

async fn bench(env: &TestEnv, args: &[&str]) -> anyhow::Result<Output> {
    fares(env, "bench", args).await
}

async fn warm_up(env: &TestEnv, args: &[&str]) -> anyhow::Result<Output> {
    fares(env, "warm-up", args).await
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON object ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn number(value: &Value, path: &str) -> f64 {
    let mut at = value;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {at}"))
}

/// p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max, all positive, over `count` values.
fn assert_percentiles(report: &Value, name: &str, count: u64) {
    let p = &report[name];
    let values: Vec<f64> = ["p50", "p90", "p99", "p99_9", "max"]
        .iter()
        .map(|k| number(p, k))
        .collect();
    assert!(values[0] > 0.0, "{name}: {p}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{name}: {p}");
    assert_eq!(p["count"].as_u64(), Some(count), "{name}: {p}");
}

/// The messages recorded on `topic` whose key is a fare of run `run`, by key.
fn of_run(records: &[Recorded], topic: Topic, run: &str) -> BTreeMap<String, Recorded> {
    let prefix = format!("bench_{run}_");
    records
        .iter()
        .filter(|r| r.topic == topic)
        .filter_map(|r| Some((r.key.clone()?, r.clone())))
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_settles_every_fare_of_its_mix_and_measures_a_baseline() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;

    let output = bench(
        &env,
        &[
            "--fares",
            "200",
            "--mix",
            "happy=90,fail_credit=5,fail_charge=5",
            "--json",
            "--timeout",
            "60s",
            "--postgres-duration",
            "1s",
        ],
    )
    .await?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = report(&output);
    assert_eq!(report["ending"], "settled");
    assert_eq!(report["sent"], 200);
    assert_eq!(report["settled"], 200);
    assert_eq!(report["missing"], 0);
    assert_eq!(
        report["outcomes"]["collected"], 180,
        "{}",
        report["outcomes"]
    );
    assert_eq!(report["outcomes"]["failed_refunded"], 10);
    assert_eq!(report["outcomes"]["failed_released"], 10);
    assert_eq!(report["unexpected_outcomes"], 0);
    assert_eq!(report["by_marker"]["fail_credit"]["fares"], 10);
    assert_percentiles(&report, "latency_ms", 200);
    assert!(number(&report, "throughput.settled_per_s") > 0.0);

    // What the bench reports is what is on the topics: 200 requests of this run, 200 outcomes.
    let run = report["run"].as_str().expect("a run id").to_owned();
    env.recorder
        .wait_for(
            "the run's 200 outcomes",
            Duration::from_secs(30),
            |records| (of_run(records, Topic::FareOutcomes, &run).len() == 200).then_some(()),
        )
        .await?;
    let requests = of_run(&env.recorder.snapshot(), Topic::FareRequests, &run);
    assert_eq!(requests.len(), 200);

    let baseline = &report["baseline"];
    assert_eq!(baseline["errors"], serde_json::json!([]), "{baseline}");
    assert_eq!(baseline["kafka"]["messages"], 200);
    assert!(number(baseline, "kafka.msgs_per_s") > 0.0, "{baseline}");
    assert_percentiles(&baseline["kafka"], "latency_ms", 200);
    assert!(
        number(baseline, "postgres.commits_per_s") > 0.0,
        "{baseline}"
    );
    assert_eq!(baseline["postgres"]["connections"], 16);
    assert_eq!(baseline["postgres"]["synchronous_commit"], "on");
    assert!(
        number(baseline, "comparison.kafka.share") > 0.0,
        "{baseline}"
    );
    assert!(
        number(baseline, "comparison.postgres.share") > 0.0,
        "{baseline}"
    );
    // The request and the events of the mix: 0.9 × 4 + 0.05 × 5 (fail_credit) + 0.05 × 4.
    let per_saga = number(baseline, "comparison.kafka.per_saga");
    assert!((per_saga - 5.05).abs() < 1e-9, "{per_saga}");

    // The scratch topic and schema are gone.
    let topic = baseline["kafka"]["topic"].as_str().expect("a topic name");
    assert!(
        topic_is_gone(&env.kafka.bootstrap_servers, topic).await?,
        "{topic} is still there"
    );
    let admin = env.database.admin_pool().await?;
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'fares_bench_%'")
            .fetch_one(&admin)
            .await?;
    assert_eq!(schemas, 0, "the scratch schema is still there");
    admin.close().await;
    env.teardown().await
}

/// Whether `topic` has left the broker's metadata (a deletion takes a moment to show).
async fn topic_is_gone(bootstrap: &str, topic: &str) -> anyhow::Result<bool> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        if !metadata.topics().iter().any(|t| t.name() == topic) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_at_a_rate_sends_on_schedule() -> anyhow::Result<()> {
    // Alone: its acknowledgement and latency figures are timings, which other tests creating
    // and deleting their topics on the same broker would spoil (acks p90 615 ms in one CI run).
    let mut env = TestEnv::with_exclusive_infrastructure().await?;
    env.start_services().await?;

    let output = bench(
        &env,
        &[
            "--rate",
            "100",
            "--fares",
            "200",
            "--json",
            "--postgres-duration",
            "1s",
        ],
    )
    .await?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = report(&output);
    assert_eq!(report["settled"], 200);
    assert_eq!(report["outcomes"]["collected"], 200);
    assert_eq!(number(&report, "rate"), 100.0);
    assert_percentiles(&report, "latency_ms", 200);
    assert_percentiles(&report, "send_lag_ms", 200);
    assert_percentiles(&report, "ack_ms", 200);
    // The producer is ready before the clock starts: librdkafka holds an idempotent producer's
    // first messages until it has its producer id, which it asks for again only every 500 ms.
    // A bench that started the clock at once would count that as the saga's latency: at
    // 100/s, the first ~50 requests would wait for the same moment, 500 ms after the start
    // (an eighth of the run with more than 250 ms: p90 about 300 ms). A busy broker (tests run
    // in parallel) may delay an acknowledgement now and then, not a tenth of them.
    let acks = &report["ack_ms"];
    assert!(number(acks, "p90") < 250.0, "acknowledgements: {acks}");

    // With a rate, the baseline also sends the run's requests, on its schedule, through a happy
    // saga's four hops of raw Kafka: the floor of the saga's latency, and the saga's p99 as a
    // multiple of it. Its scratch topic is gone after it.
    let baseline = &report["baseline"];
    assert_eq!(baseline["errors"], serde_json::json!([]), "{baseline}");
    let hops = &baseline["kafka_hops"];
    assert_eq!(hops["hops"], 4, "{hops}");
    assert_eq!(hops["messages"], 200, "{hops}");
    assert_eq!(number(hops, "rate"), 100.0);
    assert_percentiles(hops, "latency_ms", 200);
    let floor = number(hops, "latency_ms.p99");
    let times = number(baseline, "comparison.latency.times");
    let saga_p99 = number(&report, "latency_ms.p99");
    assert!((times - saga_p99 / floor).abs() < 1e-6, "{baseline}");
    let run = report["run"].as_str().expect("a run id").to_owned();
    let topic = format!("fares-bench-hops.{run}{}", env.kafka.topic_suffix);
    assert!(
        topic_is_gone(&env.kafka.bootstrap_servers, &topic).await?,
        "{topic} is still there"
    );

    // 200 fares at 100/s: the requests' broker timestamps span about 2 s (1.99 s on schedule).
    let requests = env
        .recorder
        .wait_for(
            "the run's 200 requests",
            Duration::from_secs(30),
            |records| {
                let requests = of_run(records, Topic::FareRequests, &run);
                (requests.len() == 200).then_some(requests)
            },
        )
        .await?;
    let times: Vec<i64> = requests.values().filter_map(|r| r.timestamp_ms).collect();
    assert_eq!(times.len(), 200);
    let span = times.iter().max().unwrap() - times.iter().min().unwrap();
    assert!((1_900..=3_000).contains(&span), "requests span {span} ms");
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_without_services_times_out_and_counts_the_missing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let output = bench(&env, &["--fares", "5", "--timeout", "2s", "--no-baseline"]).await?;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("timed out: 5 of 5 fares sent have no outcome after 2s"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("settled      0 of 5 sent — TIMED OUT"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no process with TOPIC_SUFFIX"),
        "the in-process services are not separate processes: {stdout}"
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_without_topics_says_to_bring_the_stack_up() -> anyhow::Result<()> {
    let output = Command::new(binary("fares")?)
        .args(["bench", "--fares", "1"])
        .env("KAFKA_BOOTSTRAP_SERVERS", tests::env::bootstrap_servers())
        .env(
            "TOPIC_SUFFIX",
            format!(".no-such-stack-{}", uuid::Uuid::new_v4().simple()),
        )
        .output()
        .await?;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/stack up"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_sends_raw_messages_through_the_hops_and_reports_each_window() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;

    // 12 s at 50 msgs/s: two progress windows, 0–10 s and 10–12 s, each printed when its last
    // message is through the four hops.
    let output = warm_up(&env, &["--duration", "12s", "--rate", "50"]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("600 messages of 160 bytes at 50"),
        "{stderr}"
    );
    let windows: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warm-up: ") && l.contains(" through 4 hops"))
        .collect();
    assert_eq!(windows.len(), 2, "{stderr}");
    assert!(
        windows[0].starts_with("warm-up: 0–10 s through 4 hops: p50 "),
        "{stderr}"
    );
    assert!(
        windows[1].starts_with("warm-up: 10–12 s through 4 hops: p50 "),
        "{stderr}"
    );

    // Then a burst of the same messages through 6 partitions.
    assert!(stderr.contains("warm-up: the burst: "), "{stderr}");

    // Its scratch topics are gone after it, and no fare was requested: the saga's topics are
    // untouched.
    let hops = stderr
        .split_whitespace()
        .find(|w| w.starts_with("fares-warm-up."))
        .expect("the scratch topic's name")
        .to_owned();
    let run = hops
        .trim_start_matches("fares-warm-up.")
        .trim_end_matches(&env.kafka.topic_suffix);
    let burst = format!("fares-bench-baseline.{run}{}", env.kafka.topic_suffix);
    for topic in [&hops, &burst] {
        assert!(
            topic_is_gone(&env.kafka.bootstrap_servers, topic).await?,
            "{topic} is still there"
        );
    }
    assert_eq!(
        env.recorder.snapshot().len(),
        0,
        "the warm-up wrote to a saga topic"
    );

    // Bad input is refused before anything is sent.
    let zero = warm_up(&env, &["--rate", "0"]).await?;
    assert_eq!(zero.status.code(), Some(2), "{zero:?}");
    let too_few = warm_up(&env, &["--duration", "100ms", "--rate", "1"]).await?;
    assert_eq!(too_few.status.code(), Some(2), "{too_few:?}");
    assert!(
        String::from_utf8_lossy(&too_few.stderr).contains("must be between 1 and"),
        "{too_few:?}"
    );
    env.teardown().await
}
