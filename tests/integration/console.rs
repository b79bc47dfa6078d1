//! `fares console` as an operator uses it: the real binary against the in-process services,
//! the page driven in headless Chromium (WebDriver). A fare requested through the page's form
//! shows its timeline, request to outcome; a dead letter is listed, and replayed through the
//! console with the CLI's checks and its refusal of a second replay; the README's diagram is
//! the one the step table generates; an address taken, a service away and a foreign `Host`
//! are told.

use std::process::{Output, Stdio};
use std::time::Duration;

use events_schema::{EventType, Topic};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::browser::Browser;
use tests::env::minimal_request;
use tests::processes::{binary, checkout, free_port};
use tests::TestEnv;
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `fares console`.
struct Console {
    url: String,
    _child: Child,
}

/// `fares` with this test's topics and services.
fn fares(env: &TestEnv) -> anyhow::Result<Command> {
    let mut command = Command::new(binary("fares")?);
    command
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.kafka.bootstrap_servers)
        .env("TOPIC_SUFFIX", &env.kafka.topic_suffix)
        .env(
            "PAYMENT_URL",
            env.service_url("payment-service", "").unwrap_or_default(),
        )
        .env(
            "ACCOUNTING_URL",
            env.service_url("accounting-service", "")
                .unwrap_or_default(),
        );
    Ok(command)
}

/// Starts `fares console` on a free loopback port and waits until it answers.
async fn start_console(env: &TestEnv, vars: &[(&str, &str)]) -> anyhow::Result<Console> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut child = fares(env)?
        .args(["console", "--addr", &addr])
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://{addr}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = reqwest::get(format!("{url}/api/overview")).await {
            if answer.status().is_success() {
                break;
            }
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("fares console exited before answering: {status}");
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "fares console did not answer on {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Console { url, _child: child })
}

async fn get(url: &str) -> anyhow::Result<(StatusCode, Value)> {
    let answer = reqwest::get(url).await?;
    Ok((answer.status(), answer.json().await?))
}

async fn post(url: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let answer = reqwest::Client::new().post(url).json(&body).send().await?;
    Ok((answer.status(), answer.json().await?))
}

const TIMELINE: &str = "return Array.from(document.querySelectorAll('#timeline tbody tr'))\
    .map(r => [r.dataset.eventType, r.cells[2].textContent, r.cells[0].textContent]);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fare_requested_in_the_page_shows_its_timeline() -> anyhow::Result<()> {
    let Some(browser) = Browser::start(1400, 2600).await? else {
        return Ok(());
    };
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let console = start_console(&env, &[]).await?;
    let page = &browser.client;
    page.goto(&format!("{}/", console.url)).await?;

    // The form, as a user fills it in.
    let customer = page
        .find(fantoccini::Locator::Id("request-customer"))
        .await?;
    customer.clear().await?;
    customer.send_keys("42").await?;
    let amount = page.find(fantoccini::Locator::Id("request-amount")).await?;
    amount.clear().await?;
    amount.send_keys("12.50").await?;
    page.find(fantoccini::Locator::Id("request-submit"))
        .await?
        .click()
        .await?;
    let fare_id: String = browser
        .wait_for(
            "the fare id of the request",
            TIMEOUT,
            "return [document.getElementById('request-result').dataset.fareId || null, \
             document.getElementById('request-result').textContent];",
            |v| v[0].as_str().map(str::to_owned),
        )
        .await?;

    // Its timeline, as the page follows it to its outcome: every event, in order, with its
    // topic and time.
    let rows = browser
        .wait_for(
            "the fare's timeline up to FareCollected",
            TIMEOUT,
            TIMELINE,
            |rows| {
                let rows = rows.as_array()?;
                let last = rows.last()?;
                (last[0] == "FareCollected").then(|| rows.clone())
            },
        )
        .await?;
    // What the page showed is what happened on the topics: the happy path, in causal order.
    let outcome = env.recorder.outcome_of(&fare_id, TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);
    let on_topics: Vec<&str> = env
        .recorder
        .event_types_for(&fare_id)
        .iter()
        .map(EventType::as_str)
        .collect();
    let types: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(types, on_topics, "{rows:?}");
    assert_eq!(types.len(), 5, "request, 3 steps, outcome: {rows:?}");
    let topics: Vec<&str> = rows.iter().filter_map(|r| r[1].as_str()).collect();
    assert_eq!(
        topics,
        [
            "fare-requests",
            "payment-events",
            "payment-events",
            "accounting-events",
            "fare-outcomes"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r[2].as_str().is_some_and(|t| t.starts_with("20"))),
        "every event has its time: {rows:?}"
    );
    let heading = browser
        .eval("return document.getElementById('fare-status').textContent;")
        .await?;
    assert_eq!(heading, "collected: 12.50 USD");

    // The live panel has the outcome and counts it.
    browser
        .wait_for(
            "the outcome in the live list",
            TIMEOUT,
            &format!(
                "return [document.querySelectorAll('#outcomes tr[data-fare-id=\"{fare_id}\"]').length, \
                 document.getElementById('count-collected').textContent];"
            ),
            |v| (v[0] == 1 && v[1] == "1").then_some(()),
        )
        .await?;
    // Everything the page loaded came from the console.
    let resources = browser
        .eval("return performance.getEntriesByType('resource').map(e => e.name);")
        .await?;
    for name in resources.as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        assert!(
            name.starts_with(&console.url),
            "loaded from elsewhere: {name}"
        );
    }
    // The diagram is drawn from the step table: every event a box.
    let boxes = browser
        .eval("return document.querySelectorAll('#diagram svg g.event').length;")
        .await?;
    assert_eq!(boxes, EventType::ALL.len());

    if let Some(path) = std::env::var_os("CONSOLE_SCREENSHOT") {
        screenshot(&env, &browser, std::path::Path::new(&path)).await?;
    }
    browser.close().await?;
    env.teardown().await
}

/// For the README: a few fares of every kind and a dead letter, then the page.
async fn screenshot(
    env: &TestEnv,
    browser: &Browser,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let fares = env.publish_mixed_fares("wr_shot", 12).await?;
    env.publish(
        Topic::FareRequests,
        Some("wr_shot_cut"),
        b"{\"event_type\":\"FareRequested\",\"fare_",
    )
    .await?;
    env.wait_for_outcomes(fares.len() + 1, TIMEOUT).await?;
    browser
        .wait_for(
            "the dead letter in the page",
            TIMEOUT,
            "return document.querySelectorAll('#dead-letters tbody tr').length;",
            |n| (n.as_u64() >= Some(1)).then_some(()),
        )
        .await?;
    browser.screenshot(path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_and_replayed_through_the_console() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let console = start_console(&env, &[]).await?;
    let full = minimal_request("wr_console_dlq", "3", 2000);
    env.publish(
        Topic::FareRequests,
        Some("wr_console_dlq"),
        &full.as_bytes()[..40],
    )
    .await?;
    env.recorder.first_on(Topic::PaymentDlq, TIMEOUT).await?;

    let (status, list) = get(&format!("{}/api/dead-letters?limit=5", console.url)).await?;
    assert_eq!(status, StatusCode::OK, "{list:#}");
    assert_eq!(list["total"], 1, "{list:#}");
    let letter = &list["dead_letters"][0];
    assert_eq!(letter["id"], "payment:0");
    assert_eq!(letter["key"], "wr_console_dlq");
    assert!(
        letter["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not a JSON object")),
        "{list:#}"
    );

    // In the page too, when there is a browser.
    if let Some(browser) = Browser::start(1200, 1600).await? {
        browser.client.goto(&format!("{}/", console.url)).await?;
        let row = browser
            .wait_for(
                "the dead letter's row",
                TIMEOUT,
                "const r = document.querySelector('#dead-letters tr[data-id=\"payment:0\"]'); \
                 return r ? Array.from(r.cells).map(c => c.textContent) : null;",
                |row| row.as_array().cloned(),
            )
            .await?;
        assert_eq!(row[3], "wr_console_dlq", "{row:?}");
        assert!(
            row[5]
                .as_str()
                .is_some_and(|r| r.starts_with("not a JSON object")),
            "{row:?}"
        );
        browser.close().await?;
    }

    // Replayed with the CLI's code: refused as it is, sent corrected, refused a second time
    // (409), sent again when forced — and the saga still runs once.
    let replay = format!("{}/api/dead-letters/payment:0/replay", console.url);
    let (status, body) = post(&replay, json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("not a JSON object")));
    let (status, body) = post(&replay, json!({ "payload": full })).await?;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["sent"], true);
    let outcome = env.recorder.outcome_of("wr_console_dlq", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);
    let (status, body) = post(&replay, json!({ "payload": full })).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("was already replayed at")));
    let (status, body) = post(&replay, json!({ "payload": full, "force": true })).await?;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (_, list) = get(&format!("{}/api/dead-letters?service=payment", console.url)).await?;
    assert_eq!(
        list["dead_letters"][0]["replays"].as_array().map(Vec::len),
        Some(2),
        "{list:#}"
    );
    env.wait_until_consumed("payment-service", Topic::FareRequests)
        .await?;
    let types = env.recorder.event_types_for("wr_console_dlq");
    let count = |t: EventType| types.iter().filter(|x| **x == t).count();
    assert_eq!(count(EventType::PreAuthorised), 1, "{types:?}");
    assert_eq!(count(EventType::FareCollected), 1, "{types:?}");

    // The queues: none needs attention, none is stuck, and the service lists stuck fares.
    for queue in ["needs-attention", "stuck"] {
        let (status, page) = get(&format!("{}/api/queues/{queue}?limit=5", console.url)).await?;
        assert_eq!(status, StatusCode::OK, "{page:#}");
        assert_eq!(page["available"], true, "{queue}: {page:#}");
        assert_eq!(page["fares"], json!([]), "{queue}: {page:#}");
    }

    // One dead letter shown in full, its card numbers never (none here; the mask is the read
    // APIs' own layer).
    let (status, shown) = get(&format!("{}/api/dead-letters/payment:0", console.url)).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["payload_text"], &full[..40]);
    let (status, _) = get(&format!("{}/api/dead-letters/payment:9", console.url)).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_diagram_is_the_one_the_step_table_generates() -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(checkout().join("README.md"))?;
    let generated = Command::new(binary("fares")?)
        .arg("diagram")
        .output()
        .await?;
    assert_eq!(generated.status.code(), Some(0), "{generated:?}");
    let generated = String::from_utf8(generated.stdout)?;
    let begin = "<!-- generated by: fares diagram -->";
    let end = "<!-- end generated -->";
    let start = readme
        .find(begin)
        .expect("the README has the diagram's markers");
    let stop = readme[start..].find(end).expect("and its end marker") + start + end.len();
    assert_eq!(
        format!("{}\n", &readme[start..stop]),
        generated,
        "README.md's diagram is not the generated one: run `fares diagram --update README.md`"
    );
    let checked: Output = Command::new(binary("fares")?)
        .args(["diagram", "--check"])
        .arg(checkout().join("README.md"))
        .output()
        .await?;
    assert_eq!(checked.status.code(), Some(0), "{checked:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_a_service_away_and_a_foreign_host_are_told() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    // Nothing listens on port 1: both services are away.
    let away = [
        ("PAYMENT_URL", "http://127.0.0.1:1"),
        ("ACCOUNTING_URL", "http://127.0.0.1:1"),
    ];
    let console = start_console(&env, &away).await?;
    let (status, answer) = get(&format!("{}/api/fares/wr_1", console.url)).await?;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer:#}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the payment-service at http://127.0.0.1:1")),
        "{answer:#}"
    );
    let health = format!("{}/api/overview", console.url);
    // Polled until the console's first check of every source is done.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let sources = loop {
        let (_, overview) = get(&health).await?;
        let sources = overview["health"]["sources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !sources.is_empty() && sources.iter().all(|s| s["state"] != "checking") {
            break sources;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still checking: {overview:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let state = |name: &str| {
        sources
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"].clone())
    };
    assert_eq!(
        state("payment-service"),
        Some(json!("unreachable")),
        "{sources:?}"
    );
    assert_eq!(state("accounting-service"), Some(json!("unreachable")));
    assert_eq!(state("Kafka"), Some(json!("ok")), "{sources:?}");

    // Only requests addressed to the console itself are answered.
    let foreign = reqwest::Client::new()
        .get(format!("{}/api/overview", console.url))
        .header("host", "attacker.example:80")
        .send()
        .await?;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    // The same address again: taken; an address that is none: refused by the parser.
    let addr = console.url.trim_start_matches("http://");
    let taken = fares(&env)?
        .args(["console", "--addr", addr])
        .output()
        .await?;
    assert_eq!(taken.status.code(), Some(2), "{taken:?}");
    assert!(
        String::from_utf8_lossy(&taken.stderr)
            .contains(&format!("cannot listen on {addr}: the address is taken")),
        "{taken:?}"
    );
    let invalid = fares(&env)?
        .args(["console", "--addr", "localhost"])
        .output()
        .await?;
    assert_eq!(invalid.status.code(), Some(2), "{invalid:?}");
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("--addr"));
    env.teardown().await
}
