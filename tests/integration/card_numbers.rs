//! SPEC §3 and §6.7: a raw card number never reaches a dead letter, a table or a read-API
//! answer — it is masked (first 6 and last 4 digits) before a dead letter is stored.

use std::time::Duration;

use events_schema::{card, Topic};
use tests::env::minimal_request;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_are_masked_in_dead_letters_tables_and_read_apis() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_card", "3", 2000).await?;
    env.recorder.outcome_of("wr_card", TIMEOUT).await?;

    // The same fare again, with a card number for a token: a conflicting duplicate.
    let mut duplicate: serde_json::Value =
        serde_json::from_str(&minimal_request("wr_card", "3", 2000))?;
    duplicate["data"]["payment_token"] = serde_json::json!("4111 1111 1111 1111");
    let duplicate = duplicate.to_string();
    // Not JSON, and JSON without a fare_id, both carrying card numbers; one keyed by one.
    let not_json = "card=5555555555554444 exp=12/29";
    let no_fare_id = r#"{"event_type":"FareRequested","data":{"pan":"4111-1111-1111-1111"}}"#;
    for (key, payload) in [
        ("wr_card", duplicate.as_str()),
        ("wr_card_2", not_json),
        ("4111111111111111", no_fare_id),
    ] {
        env.publish(Topic::FareRequests, Some(key), payload.as_bytes())
            .await?;
    }
    let letters = env
        .recorder
        .wait_for("three dead letters", TIMEOUT, |records| {
            let letters: Vec<_> = records
                .iter()
                .filter(|r| r.topic == Topic::PaymentDlq)
                .cloned()
                .collect();
            (letters.len() == 3).then_some(letters)
        })
        .await?;
    for letter in &letters {
        assert_eq!(
            letter.headers.get("dlq.redacted").map(String::as_str),
            Some("card-number"),
            "{letter:?}"
        );
        assert!(!card::has_card_number(&letter.payload), "{letter:?}");
        assert!(!card::has_card_number(
            letter.key.as_deref().unwrap_or("").as_bytes()
        ));
    }
    let payloads: Vec<String> = letters
        .iter()
        .map(|l| String::from_utf8_lossy(&l.payload).into_owned())
        .collect();
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("\"4111 11** **** 1111\"")),
        "{payloads:?}"
    );
    assert!(
        payloads.contains(&"card=555555******4444 exp=12/29".to_owned()),
        "{payloads:?}"
    );
    assert!(
        payloads.iter().any(|p| p.contains("4111-11**-****-1111")),
        "{payloads:?}"
    );
    assert!(letters
        .iter()
        .any(|l| l.key.as_deref() == Some("411111******1111")));

    let admin = env.database.admin_pool().await?;
    let leaks = tests::invariants::card_numbers_in_tables(&admin).await?;
    assert!(leaks.is_empty(), "card numbers in tables: {leaks:?}");
    admin.close().await;
    for service in ["payment-service", "accounting-service"] {
        let url = env.service_url(service, "/fares/wr_card").expect("running");
        let body = reqwest::get(url).await?.text().await?;
        assert!(!card::has_card_number(body.as_bytes()), "{service}: {body}");
    }
    env.teardown().await
}
