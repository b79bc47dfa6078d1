//! The read APIs are bounded operator APIs: lists come a page (`limit`, `after` → `next`) at a
//! time, a fare flooded with bad messages still answers with bounded lists, and no raw card
//! number leaves them, wherever it was stored (SPEC §6.7).

use std::collections::BTreeSet;
use std::time::Duration;

use events_schema::card::has_card_number;
use events_schema::{EventType, Topic};
use futures::future::try_join_all;
use reqwest::StatusCode;
use serde_json::Value;
use tests::env::minimal_request;
use tests::processes::binary;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Every page of `path` (a list answering `key` and `next`), following `next` until it is
/// null; the items in the order walked, and the size of each page.
async fn walk(
    env: &TestEnv,
    service: &str,
    path: &str,
    key: &str,
) -> anyhow::Result<(Vec<Value>, Vec<usize>)> {
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    let mut url = path.to_owned();
    loop {
        let answer = env.read_api(service, &url).await?;
        assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.body);
        let body = answer.json()?;
        let page = body[key].as_array().expect("a list").clone();
        sizes.push(page.len());
        items.extend(page);
        match body["next"].as_str() {
            Some(next) => url = format!("{path}&after={next}"),
            None => return Ok((items, sizes)),
        }
        anyhow::ensure!(sizes.len() < 1000, "{path}: no last page after 1000 pages");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_every_fare_of_a_status_and_every_ledger_entry_exactly_once(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let admin = env.database.admin_pool().await?;
    // 250 fares needing attention and 50 collected; ten at a time share their creation time,
    // so that pages cut through ties.
    sqlx::query(
        "INSERT INTO payment.fares (fare_id, request_event_id, correlation_id, request_fingerprint, \
         status, created_at) \
         SELECT 'wr_page_' || i, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), \
                CASE WHEN i % 6 = 0 THEN 'collected' ELSE 'needs_attention' END, \
                timestamptz '2026-11-27 08:00:00Z' + (i / 10) * interval '1 second' \
         FROM generate_series(1, 300) AS i",
    )
    .execute(&admin)
    .await?;
    let expected = |collected: bool| -> BTreeSet<String> {
        (1..=300)
            .filter(|i| (i % 6 == 0) == collected)
            .map(|i| format!("wr_page_{i}"))
            .collect()
    };

    let (ids, sizes) = walk(
        &env,
        "payment-service",
        "/fares?status=needs_attention&limit=7",
        "fare_ids",
    )
    .await?;
    let ids: Vec<String> = ids
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(distinct.len(), ids.len(), "a fare listed twice: {ids:?}");
    assert_eq!(
        distinct,
        expected(false),
        "every fare in the status, no other"
    );
    assert_eq!(sizes.len(), 36, "250 fares in pages of 7: {sizes:?}");
    assert!(sizes[..35].iter().all(|size| *size == 7), "{sizes:?}");
    let seconds: Vec<u32> = ids
        .iter()
        .map(|id| id["wr_page_".len()..].parse::<u32>().unwrap() / 10)
        .collect();
    assert!(
        seconds.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {ids:?}"
    );

    let (collected, _) = walk(
        &env,
        "payment-service",
        "/fares?status=collected&limit=1000",
        "fare_ids",
    )
    .await?;
    let collected: BTreeSet<String> = collected
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(collected, expected(true));

    // Without a limit, a page holds 100.
    let first = env
        .read_api("payment-service", "/fares?status=needs_attention")
        .await?
        .json()?;
    assert_eq!(first["fare_ids"].as_array().unwrap().len(), 100);
    assert_eq!(first["limit"], 100);
    assert!(first["next"].is_string(), "{first}");

    // A customer's ledger, newest first.
    sqlx::query(
        "INSERT INTO accounting.accounts (customer_id, currency, balance_minor) VALUES ('3', 'USD', 4000)",
    )
    .execute(&admin)
    .await?;
    sqlx::query(
        "INSERT INTO accounting.ledger_entries (customer_id, currency, fare_id, amount_minor, \
         balance_after_minor, charge_event_id) \
         SELECT '3', 'USD', 'wr_ledger_' || i, 100, 100 * i, gen_random_uuid() \
         FROM generate_series(1, 40) AS i",
    )
    .execute(&admin)
    .await?;
    let (entries, sizes) = walk(
        &env,
        "accounting-service",
        "/accounts/3?limit=7",
        "latest_entries",
    )
    .await?;
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 40, "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each: {ids:?}"
    );
    assert_eq!(sizes, [7, 7, 7, 7, 7, 5]);
    admin.close().await;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_outside_1_to_1000_or_a_foreign_cursor_is_a_400_with_a_json_error(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let lists = [
        ("payment-service", "/fares?status=needs_attention&"),
        ("payment-service", "/fares/wr_none?"),
        ("accounting-service", "/fares/wr_none?"),
        ("accounting-service", "/accounts/3?"),
    ];
    for (service, list) in lists {
        for limit in ["0", "1001", "x", "-1", ""] {
            let path = format!("{list}limit={limit}");
            let answer = env.read_api(service, &path).await?;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{service} {path}");
            let error = answer.json()?["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                error.contains("limit must be a whole number from 1 to 1000"),
                "{service} {path}: {error}"
            );
        }
    }
    for (service, path) in [
        (
            "payment-service",
            "/fares?status=needs_attention&after=bm90IG91cnM",
        ),
        (
            "payment-service",
            "/fares?status=needs_attention&after=%25%25",
        ),
        ("accounting-service", "/accounts/3?after=bm90IG91cnM"),
    ] {
        let answer = env.read_api(service, path).await?;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{service} {path}");
        assert!(
            answer.json()?["error"]
                .as_str()
                .unwrap_or_default()
                .contains("after must be"),
            "{service} {path}: {}",
            answer.body
        );
    }
    // The bounds themselves are accepted.
    for limit in ["1", "1000"] {
        let path = format!("/fares?status=needs_attention&limit={limit}");
        let answer = env.read_api("payment-service", &path).await?;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        assert_eq!(answer.json()?["limit"].as_u64(), Some(limit.parse()?));
    }
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fare_flooded_with_conflicting_requests_answers_with_bounded_lists() -> anyhow::Result<()>
{
    const FLOOD: usize = 300;
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_flood", "3", 2000).await?;
    env.recorder.outcome_of("wr_flood", TIMEOUT).await?;
    // Each with another amount, so another (derived) event id: each is dead-lettered.
    let conflicting: Vec<String> = (0..FLOOD)
        .map(|i| minimal_request("wr_flood", "3", 3000 + i as i64))
        .collect();
    try_join_all(
        conflicting
            .iter()
            .map(|body| env.publish(Topic::FareRequests, Some("wr_flood"), body.as_bytes())),
    )
    .await?;
    env.recorder
        .wait_for(
            "every conflicting request dead-lettered",
            TIMEOUT,
            |records| {
                let letters = records
                    .iter()
                    .filter(|r| {
                        r.topic == Topic::PaymentDlq && r.key.as_deref() == Some("wr_flood")
                    })
                    .count();
                (letters >= FLOOD).then_some(())
            },
        )
        .await?;

    let view = env.read_api("payment-service", "/fares/wr_flood").await?;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let view = view.json()?;
    let letters = &view["dead_letters"];
    assert_eq!(letters["total"], FLOOD);
    assert_eq!(letters["truncated"], true);
    assert_eq!(letters["items"].as_array().unwrap().len(), 100);
    assert!(letters["items"][0]["headers"]["dlq.error"]
        .as_str()
        .unwrap()
        .starts_with("conflicting duplicate"));
    // The flood is not in the inbox (a conflicting duplicate is not acted on): only the
    // saga's own events are, FareRequested, PreAuthorised and AccountUpdated.
    let consumed = &view["consumed"];
    assert_eq!(consumed["total"], 3, "{consumed}");
    assert_eq!(consumed["truncated"], false);
    // The saga's own events are apart from the flood, complete.
    let emitted = &view["emitted"];
    assert_eq!(emitted["truncated"], false);
    let types: Vec<&str> = emitted["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PreAuthorised", "Charged", "FareCollected"]);
    assert_eq!(view["gateway_operations"]["total"], 2);
    assert_eq!(view["gateway_operations"]["truncated"], false);

    let all = env
        .read_api("payment-service", "/fares/wr_flood?limit=1000")
        .await?
        .json()?;
    assert_eq!(
        all["dead_letters"]["items"].as_array().unwrap().len(),
        FLOOD
    );
    assert_eq!(all["dead_letters"]["truncated"], false);
    let few = env
        .read_api("payment-service", "/fares/wr_flood?limit=5")
        .await?
        .json()?;
    assert_eq!(few["dead_letters"]["items"].as_array().unwrap().len(), 5);
    let two = env
        .read_api("payment-service", "/fares/wr_flood?limit=2")
        .await?
        .json()?;
    assert_eq!(two["consumed"]["items"].as_array().unwrap().len(), 2);
    assert_eq!(two["consumed"]["truncated"], true);

    // `fares status` tells the flood apart from the saga.
    let status = tokio::process::Command::new(binary("fares")?)
        .args(["status", "wr_flood"])
        .env(
            "PAYMENT_URL",
            env.service_url("payment-service", "").unwrap(),
        )
        .env(
            "ACCOUNTING_URL",
            env.service_url("accounting-service", "").unwrap(),
        )
        .output()
        .await?;
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(
        text.contains(
            "dead letters in the payment-service's DLQ under this fare id: 300, the first 3:\n"
        ),
        "{text}"
    );
    assert_eq!(text.matches("conflicting duplicate").count(), 3, "{text}");
    assert!(text.contains("\nstatus: collected: 20.00 USD\n"), "{text}");
    assert_eq!(
        env.recorder.event_types_for("wr_flood"),
        [
            EventType::PreAuthorised,
            EventType::Charged,
            EventType::AccountUpdated,
            EventType::FareCollected
        ]
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_stored_in_a_table_leaves_the_read_apis_masked() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_card", "3", 2000).await?;
    env.recorder.outcome_of("wr_card", TIMEOUT).await?;
    // Rows as older code could have left them (published_at set: the relay leaves them be).
    let admin = env.database.admin_pool().await?;
    for (schema, topic, payload, headers) in [
        (
            "payment",
            "payment-service.dlq",
            r#"{"payment_token":"4111 1111 1111 1111"}"#,
            r#"{"dlq.error": "raw card number 4111111111111111 in the request"}"#,
        ),
        (
            "payment",
            "payment-events",
            r#"{"event_type":"ChargeFailed","fare_id":"wr_card","data":{"reason":"card 5555-5555-5555-4444 declined"}}"#,
            r#"{}"#,
        ),
        (
            "accounting",
            "accounting-service.dlq",
            "4111111111111111",
            r#"{"dlq.error": "not JSON"}"#,
        ),
    ] {
        sqlx::query(&format!(
            "INSERT INTO {schema}.outbox (event_id, topic, message_key, payload, headers, published_at) \
             VALUES (gen_random_uuid(), $1, 'wr_card', convert_to($2, 'UTF8'), $3::jsonb, now())"
        ))
        .bind(topic)
        .bind(payload)
        .bind(headers)
        .execute(&admin)
        .await?;
    }
    sqlx::query(
        "UPDATE payment.fares SET failure_reason = 'card 378282246310005 on file' WHERE fare_id = 'wr_card'",
    )
    .execute(&admin)
    .await?;
    admin.close().await;

    let payment = env.read_api("payment-service", "/fares/wr_card").await?;
    assert_eq!(payment.status, StatusCode::OK, "{}", payment.body);
    payment.json()?;
    assert!(
        !has_card_number(payment.body.as_bytes()),
        "{}",
        payment.body
    );
    for masked in [
        "4111 11** **** 1111",
        "raw card number 411111******1111 in the request",
        "card 5555-55**-****-4444 declined",
        "card 378282*****0005 on file",
    ] {
        assert!(payment.body.contains(masked), "{masked}: {}", payment.body);
    }

    let accounting = env.read_api("accounting-service", "/fares/wr_card").await?;
    assert_eq!(accounting.status, StatusCode::OK, "{}", accounting.body);
    accounting.json()?;
    assert!(
        !has_card_number(accounting.body.as_bytes()),
        "{}",
        accounting.body
    );
    assert!(
        accounting.body.contains(r#""payload":"411111******1111""#),
        "{}",
        accounting.body
    );

    // Even a request for a fare id that is a card number (no fare can have one).
    let unknown = env
        .read_api("payment-service", "/fares/4111111111111111")
        .await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        !has_card_number(unknown.body.as_bytes()),
        "{}",
        unknown.body
    );
    env.teardown().await
}
