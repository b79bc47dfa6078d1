//! `fares dlq list | show | replay` as an operator runs it: the real binary against the
//! in-process services. A poison request is listed and shown with its reason, refused for
//! replay as it is, replayed corrected and processed to its outcome; replayed again it is
//! refused, and forced it starts no second saga; the audit stays clean.

use std::process::{Output, Stdio};
use std::time::Duration;

use events_schema::{EventType, Topic};
use serde_json::Value;
use tests::env::minimal_request;
use tests::processes::binary;
use tests::{Recorded, TestEnv};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `fares dlq <args>` against this test's topics, with `stdin` as its input.
async fn dlq(env: &TestEnv, args: &[&str], stdin: &[u8]) -> anyhow::Result<Output> {
    dlq_with(env, args, stdin, &[]).await
}

async fn dlq_with(
    env: &TestEnv,
    args: &[&str],
    stdin: &[u8],
    vars: &[(&str, &str)],
) -> anyhow::Result<Output> {
    let mut command = Command::new(binary("fares")?);
    command
        .arg("dlq")
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let mut input = child.stdin.take().expect("piped");
    input.write_all(stdin).await?;
    drop(input);
    Ok(child.wait_with_output().await?)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn listed(env: &TestEnv) -> anyhow::Result<Value> {
    let output = dlq(env, &["list", "--json"], b"").await?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The replays recorded on `fare-requests`.
fn replays_on_requests(env: &TestEnv) -> Vec<Recorded> {
    env.recorder
        .on_topic(Topic::FareRequests)
        .into_iter()
        .filter(|r| r.headers.contains_key("dlq.replay.of"))
        .collect()
}

/// The entry of dead letter `id` in a `list --json` answer.
fn entry_of(list: &Value, id: &str) -> Value {
    list["dead_letters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {list:#}"))
}

/// The rows of `payment.outbox` for `fare_id`: every event the payment-service wrote for it.
async fn payment_outbox_rows(env: &TestEnv, fare_id: &str) -> anyhow::Result<i64> {
    let pool = env.database.admin_pool().await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payment.outbox WHERE message_key = $1")
            .bind(fare_id)
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    Ok(count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_request_is_listed_shown_and_replayed_corrected_once() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    // A rider's app cut the request short: not JSON, so no saga to answer (SPEC §4).
    let full = minimal_request("wr_dlq_1", "3", 2000);
    let cut = &full.as_bytes()[..40];
    env.publish(Topic::FareRequests, Some("wr_dlq_1"), cut)
        .await?;
    let letter = env.recorder.first_on(Topic::PaymentDlq, TIMEOUT).await?;
    assert_eq!(letter.offset, 0);

    // (a) listed and shown with its reason.
    let list = listed(&env).await?;
    assert_eq!(list["total"], 1, "{list:#}");
    let entry = &list["dead_letters"][0];
    assert_eq!(entry["id"], "payment:0", "{list:#}");
    assert_eq!(entry["key"], "wr_dlq_1");
    assert_eq!(
        entry["source"]["topic"],
        env.names.name(Topic::FareRequests)
    );
    assert_eq!(entry["source"]["offset"], 0);
    assert_eq!(entry["bytes"], 40);
    assert_eq!(entry["redacted"], false);
    assert_eq!(entry["replayed"], false);
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not a JSON object")),
        "{list:#}"
    );
    let shown = dlq(&env, &["show", "payment:0"], b"").await?;
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    let text = stdout(&shown);
    assert!(text.contains("reason     not a JSON object"), "{text}");
    assert!(text.contains("key        wr_dlq_1"), "{text}");
    assert!(text.contains("payload (not JSON"), "{text}");
    assert!(text.contains(std::str::from_utf8(cut)?), "{text}");

    // A second one, with a card number the service masked: the newest, listed first, and
    // past --limit 1 the first one is counted, not listed.
    env.publish(
        Topic::FareRequests,
        Some("wr_dlq_card"),
        b"card 4111111111111111",
    )
    .await?;
    env.recorder
        .wait_for("the second dead letter", TIMEOUT, |records| {
            (records
                .iter()
                .filter(|r| r.topic == Topic::PaymentDlq)
                .count()
                == 2)
                .then_some(())
        })
        .await?;
    let newest = dlq(&env, &["list", "--json", "--limit", "1"], b"").await?;
    let newest: Value = serde_json::from_slice(&newest.stdout)?;
    assert_eq!(
        (&newest["shown"], &newest["total"], &newest["more"]),
        (&1.into(), &2.into(), &1.into()),
        "{newest:#}"
    );
    assert_eq!(newest["dead_letters"][0]["id"], "payment:1", "{newest:#}");
    assert_eq!(newest["dead_letters"][0]["redacted"], true, "{newest:#}");
    let carded = dlq(&env, &["show", "payment:1"], b"").await?;
    let text = stdout(&carded);
    assert!(text.contains("card 411111******1111"), "{text}");
    assert!(text.contains("redacted   yes"), "{text}");
    assert!(!text.contains("4111111111111111"), "{text}");

    // As it is, it cannot be replayed; a correction with problems is refused with each one,
    // as is a card number; a dry run sends nothing.
    let as_is = dlq(&env, &["replay", "payment:0"], b"").await?;
    assert_eq!(as_is.status.code(), Some(2), "{as_is:?}");
    assert!(stderr(&as_is).contains("not a JSON object"), "{as_is:?}");
    assert!(stderr(&as_is).contains("--payload"), "{as_is:?}");
    let wrong = minimal_request("wr_other", "3", 0);
    let refused = dlq(
        &env,
        &["replay", "payment:0", "--payload", "-"],
        wrong.as_bytes(),
    )
    .await?;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(stderr(&refused).contains("amount_minor"), "{refused:?}");
    assert!(
        stderr(&refused).contains("is not the payload's fare_id"),
        "{refused:?}"
    );
    let carded = full.replace("tok_visa", "4111 1111 1111 1111");
    let refused = dlq(
        &env,
        &["replay", "payment:0", "--payload", "-"],
        carded.as_bytes(),
    )
    .await?;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(stderr(&refused).contains("raw card number"), "{refused:?}");
    assert!(
        !stderr(&refused).contains("4111 1111 1111 1111"),
        "{refused:?}"
    );
    let dry = dlq(
        &env,
        &["replay", "payment:0", "--payload", "-", "--dry-run"],
        full.as_bytes(),
    )
    .await?;
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    assert!(stdout(&dry).contains("dlq.replay.of: payment:0"), "{dry:?}");

    // (b) replayed corrected, it is processed to its outcome.
    let fixed = std::env::temp_dir().join(format!("dlq-fixed{}.json", env.kafka.topic_suffix));
    std::fs::write(&fixed, &full)?;
    let fixed = fixed.to_str().expect("a UTF-8 path");
    let replayed = dlq(&env, &["replay", "payment:0", "--payload", fixed], b"").await?;
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    let outcome = env.recorder.outcome_of("wr_dlq_1", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);
    let replays = replays_on_requests(&env);
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].headers["dlq.replay.of"], "payment:0");
    assert!(replays[0].headers.contains_key("dlq.replay.at"));
    assert_eq!(replays[0].payload, full.as_bytes());
    assert_eq!(
        entry_of(&listed(&env).await?, "payment:0")["replayed"],
        true
    );
    let table = dlq(&env, &["list", "--service", "payment"], b"").await?;
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let row = stdout(&table)
        .lines()
        .find(|line| line.starts_with("payment:0 "))
        .map(str::to_owned);
    let row = row.unwrap_or_else(|| panic!("no row for payment:0: {table:?}"));
    assert!(row.contains("fare-requests/"), "{row}");
    assert!(row.contains("wr_dlq_1"), "{row}");
    assert!(row.contains(" yes "), "replayed: {row}");

    // (c) again: refused, saying when; forced, no second saga.
    let again = dlq(&env, &["replay", "payment:0", "--payload", fixed], b"").await?;
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        stderr(&again).contains("was already replayed at"),
        "{again:?}"
    );
    assert_eq!(replays_on_requests(&env).len(), 1, "nothing sent");
    env.wait_until_consumed("payment-service", Topic::FareRequests)
        .await?;
    let written_once = payment_outbox_rows(&env, "wr_dlq_1").await?;
    let forced = dlq(
        &env,
        &["replay", "payment:0", "--payload", fixed, "--force"],
        b"",
    )
    .await?;
    assert_eq!(forced.status.code(), Some(0), "{forced:?}");
    env.recorder
        .wait_for("the forced replay", TIMEOUT, |records| {
            (records
                .iter()
                .filter(|r| r.topic == Topic::FareRequests)
                .filter(|r| r.headers.contains_key("dlq.replay.of"))
                .count()
                == 2)
                .then_some(())
        })
        .await?;
    // Consumed means committed: whatever the replay caused is in the outbox by now.
    env.wait_until_consumed("payment-service", Topic::FareRequests)
        .await?;
    assert_eq!(
        payment_outbox_rows(&env, "wr_dlq_1").await?,
        written_once,
        "the forced replay wrote nothing: an identical request is ignored"
    );
    let types = env.recorder.event_types_for("wr_dlq_1");
    let count = |t: EventType| types.iter().filter(|x| **x == t).count();
    assert_eq!(count(EventType::PreAuthorised), 1, "{types:?}");
    assert_eq!(count(EventType::FareCollected), 1, "{types:?}");
    assert_eq!(env.recorder.on_topic(Topic::PaymentDlq).len(), 2);
    let list = listed(&env).await?;
    let replays = &entry_of(&list, "payment:0")["replays"];
    assert_eq!(replays.as_array().map(Vec::len), Some(2), "{list:#}");

    let audited = env.audit(&[]).await?;
    assert_eq!(audited.code, Some(0), "{audited:#?}");
    std::fs::remove_file(fixed)?;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_kafka_away_and_missing_topics_are_told() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let empty = dlq(&env, &["list"], b"").await?;
    assert_eq!(empty.status.code(), Some(0), "{empty:?}");
    assert!(stderr(&empty).contains("no dead letters"), "{empty:?}");

    let unknown = dlq(&env, &["show", "payment:5"], b"").await?;
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(
        stderr(&unknown).contains("no dead letter payment:5"),
        "{unknown:?}"
    );
    let unknown = dlq(&env, &["replay", "accounting:0"], b"").await?;
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(stderr(&unknown).contains("no dead letter accounting:0"));

    let malformed = dlq(&env, &["show", "payments-17"], b"").await?;
    assert_eq!(malformed.status.code(), Some(2), "{malformed:?}");
    assert!(stderr(&malformed).contains("malformed dead-letter id"));

    let away = dlq_with(
        &env,
        &["list"],
        b"",
        &[("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")],
    )
    .await?;
    assert_eq!(away.status.code(), Some(2), "{away:?}");
    assert!(stderr(&away).contains("cannot reach Kafka at 127.0.0.1:1"));

    let missing = dlq_with(
        &env,
        &["show", "payment:0"],
        b"",
        &[("TOPIC_SUFFIX", ".test-no-such-topics")],
    )
    .await?;
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(
        stderr(&missing).contains("payment-service.dlq.test-no-such-topics does not exist"),
        "{missing:?}"
    );
    env.teardown().await
}
