//! The payment-service's queues an operator works through, a page at a time (its `limit` and
//! `next` cursor passed through): the `needs_attention` fares (`GET /fares?status=…`), each
//! with its status line, and the stuck ones (`GET /fares?stuck=true`), where the service
//! offers them — an older one answers 400 or 404, or the counts by status, and the page says
//! the list is not available.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::report::status_line;
use crate::services::ReadApi;

/// The largest page the console asks for.
pub const MAX_LIMIT: u32 = 100;

/// One page of `needs_attention` fares: `{fares: [{fare_id, status_line}], next}`.
pub async fn needs_attention(
    payment: &ReadApi,
    limit: u32,
    after: Option<&str>,
) -> anyhow::Result<Value> {
    let url = page_url(payment, ("status", "needs_attention"), limit, after);
    let answer = payment.get(&url).await?;
    if !answer.status.is_success() {
        return Err(payment.refused(&url, &answer));
    }
    let body = answer.json().unwrap_or(Value::Null);
    let ids: Vec<String> = body
        .get("fare_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let lines = join_all(ids.iter().map(|id| line_of(payment, id))).await;
    let fares: Vec<Value> = ids
        .iter()
        .zip(lines)
        .map(|(id, line)| json!({ "fare_id": id, "status_line": line }))
        .collect();
    Ok(json!({ "available": true, "fares": fares, "next": body.get("next") }))
}

/// One page of stuck fares, as the payment-service lists them:
/// `{available, stuck_after_secs, fares: [{fare_id, status, since, idle_secs, waiting_for}],
/// next}`; `available: false` with the reason when it does not list them.
pub async fn stuck(payment: &ReadApi, limit: u32, after: Option<&str>) -> anyhow::Result<Value> {
    let url = page_url(payment, ("stuck", "true"), limit, after);
    let answer = payment.get(&url).await?;
    let body = answer.json();
    let fares = body
        .as_ref()
        .and_then(|b| b.get("fares"))
        .filter(|f| f.is_array());
    match (answer.status, fares) {
        (status, Some(fares)) if status.is_success() => Ok(json!({
            "available": true,
            "stuck_after_secs": body.as_ref().and_then(|b| b.get("stuck_after_secs")),
            "fares": fares,
            "next": body.as_ref().and_then(|b| b.get("next")),
        })),
        (status, _)
            if status.is_success()
                || status == StatusCode::BAD_REQUEST
                || status == StatusCode::NOT_FOUND =>
        {
            Ok(json!({
                "available": false,
                "reason": format!(
                    "not available: the payment-service at {} does not list stuck fares (GET /fares?stuck=true answered {status}) — `fares audit` lists them",
                    payment.base_url
                ),
            }))
        }
        _ => Err(payment.refused(&url, &answer)),
    }
}

fn page_url(api: &ReadApi, filter: (&str, &str), limit: u32, after: Option<&str>) -> String {
    let limit = limit.to_string();
    let mut query = vec![filter, ("limit", limit.as_str())];
    query.extend(after.map(|after| ("after", after)));
    let base = format!("{}/fares", api.base_url);
    reqwest::Url::parse_with_params(&base, &query).map_or(base, String::from)
}

/// The fare's status line, or why it could not be read.
async fn line_of(payment: &ReadApi, fare_id: &str) -> String {
    let Ok(fare_id) = events_schema::FareId::parse(fare_id) else {
        return "(not a fare id)".to_owned();
    };
    match payment.fare(&fare_id).await {
        Ok(Some(view)) => status_line(view.get("fare").unwrap_or(&Value::Null)),
        Ok(None) => "(no longer known)".to_owned(),
        Err(error) => format!("(cannot read it: {error:#})"),
    }
}
