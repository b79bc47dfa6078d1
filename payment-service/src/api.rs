//! The payment-service's HTTP read API, for operators (no authentication: loopback only, see
//! `transactional_messaging::read_api`):
//!
//! - `GET /fares/{fare_id}?limit=` — the fare, the events it consumed and emitted for it, the
//!   dead letters of messages keyed with its id, and the gateway operations; each list bounded
//!   by `limit` (default 100, at most 1000) with its `total` and `truncated`;
//! - `GET /fares` — how many fares are in each status;
//! - `GET /fares?status=needs_attention&limit=&after=` — the ids of the fares in a status,
//!   oldest first, a page at a time: `next` is the `after` of the next page (null on the last);
//! - `GET /fares?stuck=true&limit=&after=[&stuck_after=10m]` — the stuck fares (see
//!   [`crate::stuck`]), oldest first, paged the same way: each with its status, since when
//!   nothing happened, and what it waits for. `stuck_after` overrides `STUCK_AFTER` for this
//!   answer. `GET /fares/{fare_id}` has the same under `stuck` (null when it is not).
//!
//! `GET /health` is added by the shared runtime. Read-only: state changes only through events.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use events_schema::FareId;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use transactional_messaging::http::{error_response, found_or_404};
use transactional_messaging::read_api::{
    decode_cursor, encode_cursor, paging, BadRequest, Limit, Page, PageQuery,
};

use crate::fare::{self, FareStatus, ListPosition};
use crate::stuck::{self, StuckFare};
use crate::timeline;

#[derive(Clone)]
struct Api {
    pool: PgPool,
    /// `STUCK_AFTER`: a fare without progress this long is stuck.
    stuck_after: Duration,
}

pub fn router(pool: PgPool, stuck_after: Duration) -> Router {
    Router::new()
        .route("/fares", get(list_fares))
        .route("/fares/{fare_id}", get(show_fare))
        .with_state(Api { pool, stuck_after })
}

async fn show_fare(
    State(api): State<Api>,
    Path(fare_id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, BadRequest> {
    let (limit, _) = paging(query)?;
    let fare_id = FareId::parse(&fare_id).map_err(|error| BadRequest(error.to_string()))?;
    Ok(found_or_404(
        timeline::of_fare(&api.pool, &fare_id, limit, api.stuck_after).await,
        &format!("fare {fare_id}"),
    ))
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
    stuck: Option<String>,
    stuck_after: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

async fn list_fares(
    State(api): State<Api>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, BadRequest> {
    let Query(query) = query?;
    let limit = Limit::parse(query.limit.as_deref())?;
    let pool = api.pool;
    match query.stuck.as_deref() {
        None | Some("false") => {}
        Some("true") => {
            if query.status.is_some() {
                return Err(BadRequest(
                    "stuck=true and status= cannot be combined".to_owned(),
                ));
            }
            let stuck_after = match query.stuck_after.as_deref() {
                None => api.stuck_after,
                Some(text) => humantime::parse_duration(text).map_err(|error| {
                    BadRequest(format!(
                        "stuck_after={text:?} is not a duration such as 90s or 10m: {error}"
                    ))
                })?,
            };
            let after = query.after.as_deref().map(decode_position).transpose()?;
            return Ok(respond(
                stuck_fares(&pool, stuck_after, after.as_ref(), limit).await,
            ));
        }
        Some(other) => {
            return Err(BadRequest(format!(
                "stuck={other:?}: expected true or false"
            )))
        }
    }
    let Some(name) = query.status.as_deref() else {
        return Ok(respond(count_by_status(&pool).await));
    };
    let status =
        FareStatus::parse(name).ok_or_else(|| BadRequest(format!("unknown status {name}")))?;
    let after = query.after.as_deref().map(decode_position).transpose()?;
    Ok(respond(
        fares_in_status(&pool, status, after.as_ref(), limit).await,
    ))
}

async fn count_by_status(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let mut conn = pool.acquire().await?;
    let counts = fare::count_by_status(&mut conn).await?;
    let counts: std::collections::BTreeMap<_, _> = counts.into_iter().collect();
    Ok(json!({ "fares_by_status": counts }))
}

async fn fares_in_status(
    pool: &PgPool,
    status: FareStatus,
    after: Option<&ListPosition>,
    limit: Limit,
) -> anyhow::Result<serde_json::Value> {
    let mut conn = pool.acquire().await?;
    let rows = fare::ids_with_status(&mut conn, status, after, limit.probe()).await?;
    let page = Page::from_probe(rows, limit, encode_position);
    let ids: Vec<String> = page.items.into_iter().map(|p| p.fare_id).collect();
    Ok(json!({
        "status": status.as_str(),
        "fare_ids": ids,
        "limit": limit.get(),
        "next": page.next,
    }))
}

async fn stuck_fares(
    pool: &PgPool,
    stuck_after: Duration,
    after: Option<&ListPosition>,
    limit: Limit,
) -> anyhow::Result<serde_json::Value> {
    let mut conn = pool.acquire().await?;
    let rows = stuck::list(&mut conn, stuck_after, after, limit.probe()).await?;
    let page = Page::from_probe(rows, limit, |fare: &StuckFare| {
        encode_position(&fare.position)
    });
    Ok(json!({
        "stuck_after_secs": stuck_after.as_secs(),
        "fares": page.items,
        "limit": limit.get(),
        "next": page.next,
    }))
}

fn respond(result: anyhow::Result<serde_json::Value>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error_response(StatusCode::SERVICE_UNAVAILABLE, &format!("{error:#}")),
    }
}

/// The cursor of the page after the fare at `position`: its creation time (Unix nanoseconds)
/// and id, opaque to clients.
fn encode_position(position: &ListPosition) -> String {
    encode_cursor(&format!(
        "{} {}",
        position.created_at.unix_timestamp_nanos(),
        position.fare_id
    ))
}

fn decode_position(cursor: &str) -> Result<ListPosition, BadRequest> {
    let text = decode_cursor(cursor)?;
    text.split_once(' ')
        .and_then(|(nanos, fare_id)| {
            let created_at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
            let fare_id = FareId::parse(fare_id).ok()?;
            Some(ListPosition {
                created_at,
                fare_id: fare_id.as_str().to_owned(),
            })
        })
        .ok_or_else(|| BadRequest::not_a_cursor(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_its_cursor() {
        let position = ListPosition {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_795_847_126_123_456_000)
                .unwrap(),
            fare_id: "wr_563".to_owned(),
        };
        assert_eq!(
            decode_position(&encode_position(&position)).unwrap(),
            position
        );
        let foreign = encode_cursor("yesterday wr_563");
        assert_eq!(
            decode_position(&foreign).unwrap_err(),
            BadRequest::not_a_cursor(&foreign)
        );
    }
}
