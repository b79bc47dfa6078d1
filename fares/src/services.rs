//! The services' HTTP read APIs (`GET /fares/{fare_id}`), the only way the CLI sees their
//! state — except `fares audit`, which also reads their databases as the read-only auditor
//! role, and scans these answers for card numbers. Their lists are bounded: see
//! [`list_items`].

use std::time::Duration;

use anyhow::{anyhow, Context};
use events_schema::FareId;
use reqwest::StatusCode;
use serde_json::Value;

/// One service's read API.
#[derive(Debug, Clone)]
pub struct ReadApi {
    client: reqwest::Client,
    /// e.g. `payment-service`.
    pub name: &'static str,
    /// e.g. `http://127.0.0.1:8081`, without a trailing slash.
    pub base_url: String,
    /// The variable that sets `base_url`, for messages.
    url_variable: &'static str,
}

impl ReadApi {
    /// The API of service `name` at `base_url` (set by `url_variable`).
    pub fn new(
        name: &'static str,
        base_url: String,
        url_variable: &'static str,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot create the HTTP client")?;
        Ok(ReadApi {
            client,
            name,
            base_url,
            url_variable,
        })
    }

    /// The service's view of the fare; `None` when it answers 404 (it never saw the fare).
    pub async fn fare(&self, fare_id: &FareId) -> anyhow::Result<Option<Value>> {
        let Some(body) = self.fare_body(fare_id).await? else {
            return Ok(None);
        };
        serde_json::from_str(&body).map(Some).map_err(|_| {
            anyhow!(
                "the answer of {}/fares/{fare_id} is not JSON — does {} point at the {}?",
                self.base_url,
                self.url_variable,
                self.name
            )
        })
    }

    /// The body of the service's answer about the fare, as sent; `None` when it answers 404.
    pub async fn fare_body(&self, fare_id: &FareId) -> anyhow::Result<Option<String>> {
        if matches!(fare_id.as_str(), "." | "..") {
            anyhow::bail!(
                "fare id {fare_id:?} cannot be looked up over HTTP (a URL path cannot hold it); \
                 read the topics with kcat instead"
            );
        }
        let url = format!("{}/fares/{fare_id}", self.base_url);
        let answer = self.get(&url).await?;
        if answer.status == StatusCode::NOT_FOUND {
            // The read API answers 404 with {"error": …}; anything else is not that API.
            return match answer.error() {
                Some(_) => Ok(None),
                None => Err(anyhow!(
                    "{url} answered 404 without the read API's error body — does {} point at the {}?",
                    self.url_variable,
                    self.name
                )),
            };
        }
        if !answer.status.is_success() {
            return Err(self.refused(&url, &answer));
        }
        Ok(Some(answer.body))
    }

    /// GET `url` (of this service): its status and body, whatever the status; an error only
    /// when the service cannot be reached or breaks off its answer.
    pub async fn get(&self, url: &str) -> anyhow::Result<Answer> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context(self.unreachable()))?;
        let status = response.status();
        let body = response.text().await.with_context(|| {
            format!(
                "the {} at {} broke off its answer — try again",
                self.name, self.base_url
            )
        })?;
        Ok(Answer { status, body })
    }

    /// "the … answered 503 to GET …: …" for an answer that is not a success.
    pub fn refused(&self, url: &str, answer: &Answer) -> anyhow::Error {
        let said = answer
            .error()
            .unwrap_or_else(|| answer.body.chars().take(200).collect());
        anyhow!(
            "the {} at {} answered {} to GET {url}: {said} — check its log (scripts/stack logs {})",
            self.name,
            self.base_url,
            answer.status,
            self.name
        )
    }

    /// "cannot reach the … at …" with what to do about it.
    pub fn unreachable(&self) -> String {
        format!(
            "cannot reach the {} at {} — is it running? (scripts/stack status; set {} if it runs elsewhere)",
            self.name, self.base_url, self.url_variable
        )
    }
}

/// A read API's answer: its status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    /// The body as JSON, when it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The read API's `{"error": "…"}`, when the body is one.
    pub fn error(&self) -> Option<String> {
        self.json()?.get("error")?.as_str().map(str::to_owned)
    }
}

/// Both services' read APIs: each at its flag or `*_URL` variable when given, else as
/// [`base_url`] finds it.
pub fn read_apis(
    payment_url: Option<&str>,
    accounting_url: Option<&str>,
) -> anyhow::Result<(ReadApi, ReadApi)> {
    let env = |name| std::env::var(name).ok();
    let payment = ReadApi::new(
        "payment-service",
        base_url(
            payment_url,
            env("PAYMENT_HTTP_ADDR").as_deref(),
            "http://127.0.0.1:8081",
        ),
        "PAYMENT_URL",
    )?;
    let accounting = ReadApi::new(
        "accounting-service",
        base_url(
            accounting_url,
            env("ACCOUNTING_HTTP_ADDR").as_deref(),
            "http://127.0.0.1:8082",
        ),
        "ACCOUNTING_URL",
    )?;
    Ok((payment, accounting))
}

/// The items of one of a view's lists. The read APIs answer each list as
/// `{"items": [...], "total": n, "truncated": bool}` (at most `limit` items, default 100); a
/// plain array is read too.
pub fn list_items<'a>(view: &'a Value, key: &str) -> &'a [Value] {
    view.get(key)
        .map(|list| list.get("items").unwrap_or(list))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// How many items a list has in all, when the service left some out of its answer.
pub fn truncated_total(view: &Value, key: &str) -> Option<i64> {
    let list = view.get(key)?;
    if list.get("truncated").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    list.get("total").and_then(Value::as_i64)
}

/// How many items a list has in all (the items shown when the service did not say).
pub fn list_total(view: &Value, key: &str) -> i64 {
    view.get(key)
        .and_then(|list| list.get("total"))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| i64::try_from(list_items(view, key).len()).unwrap_or(i64::MAX))
}

/// The base URL to use: the flag or `*_URL` variable when given, else `http://` + the
/// service's own `*_HTTP_ADDR` (what `scripts/stack` and `.stack/env` set), else `default`.
/// A value without a scheme gets `http://`; a trailing slash is dropped; a wildcard listen
/// address (`0.0.0.0`) becomes `127.0.0.1`.
pub fn base_url(given: Option<&str>, http_addr: Option<&str>, default: &str) -> String {
    let given = given.map(str::trim).filter(|s| !s.is_empty());
    let http_addr = http_addr.map(str::trim).filter(|s| !s.is_empty());
    let url = match (given, http_addr) {
        (Some(url), _) => url.to_owned(),
        (None, Some(addr)) => addr.replacen("0.0.0.0:", "127.0.0.1:", 1),
        (None, None) => default.to_owned(),
    };
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_read_bounded_or_plain() {
        let view = json!({
            "emitted": {"items": [1, 2], "total": 5, "truncated": true},
            "consumed": {"items": [1], "total": 1, "truncated": false},
            "gateway_operations": [1, 2, 3],
        });
        assert_eq!(list_items(&view, "emitted").len(), 2);
        assert_eq!(truncated_total(&view, "emitted"), Some(5));
        assert_eq!(list_total(&view, "emitted"), 5);
        assert_eq!(truncated_total(&view, "consumed"), None);
        assert_eq!(list_items(&view, "gateway_operations").len(), 3);
        assert_eq!(list_total(&view, "gateway_operations"), 3);
        assert!(list_items(&view, "dead_letters").is_empty());
        assert_eq!(list_total(&view, "dead_letters"), 0);
    }

    #[test]
    fn base_url_prefers_the_flag_then_the_listen_address() {
        let default = "http://127.0.0.1:8081";
        assert_eq!(base_url(None, None, default), default);
        assert_eq!(
            base_url(Some("http://pay:9000/"), Some("127.0.0.1:1"), default),
            "http://pay:9000"
        );
        assert_eq!(base_url(Some("pay:9000"), None, default), "http://pay:9000");
        assert_eq!(
            base_url(None, Some("127.0.0.1:18081"), default),
            "http://127.0.0.1:18081"
        );
        assert_eq!(
            base_url(None, Some("0.0.0.0:8081"), default),
            "http://127.0.0.1:8081"
        );
        assert_eq!(base_url(Some(" "), Some(""), default), default);
    }
}
