//! Whether the console's sources answer: each service's `GET /health` and Kafka (its metadata,
//! with every topic of the stack). Checked every [`EVERY`] in the background, so that the page
//! asks without waiting on a source that is away, and says which one is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_schema::{timestamp, Topic};
use serde::Serialize;
use serde_json::{json, Value};

use crate::broker::Kafka;
use crate::services::ReadApi;

/// How often the sources are checked.
pub const EVERY: Duration = Duration::from_secs(3);

/// One source's state.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub name: String,
    /// Where it is (URL or bootstrap servers).
    pub at: String,
    /// `ok`, `unready` (answers, not ready), `unreachable`, or `checking` before the first check.
    pub state: &'static str,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// The sources' latest states.
#[derive(Debug, Clone)]
pub struct Health {
    sources: Arc<Mutex<(Vec<Source>, Option<String>)>>,
}

impl Health {
    /// Starts checking in the background.
    pub fn start(kafka: Kafka, payment: ReadApi, accounting: ReadApi) -> Health {
        let checking = |name: &str, at: &str| Source {
            name: name.to_owned(),
            at: at.to_owned(),
            state: "checking",
            problem: None,
        };
        let health = Health {
            sources: Arc::new(Mutex::new((
                vec![
                    checking(payment.name, &payment.base_url),
                    checking(accounting.name, &accounting.base_url),
                    checking("Kafka", kafka.bootstrap()),
                ],
                None,
            ))),
        };
        let shared = health.clone();
        tokio::spawn(async move {
            loop {
                let (p, a, k) =
                    tokio::join!(service(&payment), service(&accounting), broker(&kafka));
                let checked = timestamp::format(timestamp::now());
                *shared.sources.lock().unwrap_or_else(|e| e.into_inner()) =
                    (vec![p, a, k], Some(checked));
                tokio::time::sleep(EVERY).await;
            }
        });
        health
    }

    /// `{sources: [...], checked_at}`.
    pub fn snapshot(&self) -> Value {
        let (sources, checked) = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json!({ "sources": sources, "checked_at": checked })
    }
}

async fn service(api: &ReadApi) -> Source {
    let url = format!("{}/health", api.base_url);
    let (state, problem) = match api.get(&url).await {
        Ok(answer) if answer.status.is_success() => ("ok", None),
        Ok(answer) => (
            "unready",
            Some(format!(
                "{} answers {}: {}",
                api.name,
                answer.status,
                answer
                    .json()
                    .and_then(|j| j.get("reason").or(j.get("error")).map(Value::to_string))
                    .unwrap_or_else(|| answer.body.chars().take(200).collect())
            )),
        ),
        Err(error) => ("unreachable", Some(format!("{error:#}"))),
    };
    Source {
        name: api.name.to_owned(),
        at: api.base_url.clone(),
        state,
        problem,
    }
}

async fn broker(kafka: &Kafka) -> Source {
    let names: Vec<String> = Topic::ALL.iter().map(|t| kafka.topic(*t)).collect();
    let (state, problem) = match kafka.partitions(names).await {
        Ok(found) => {
            let missing: Vec<String> = found
                .into_iter()
                .filter(|(_, partitions)| partitions.is_none())
                .map(|(name, _)| name)
                .collect();
            if missing.is_empty() {
                ("ok", None)
            } else {
                (
                    "unready",
                    Some(format!(
                        "topics missing: {} — create them with `fares topics ensure`",
                        missing.join(", ")
                    )),
                )
            }
        }
        Err(error) => ("unreachable", Some(format!("{error:#}"))),
    };
    Source {
        name: "Kafka".to_owned(),
        at: kafka.bootstrap().to_owned(),
        state,
        problem,
    }
}
