//! The accounting-service's HTTP read API, for operators (no authentication: loopback only, see
//! `transactional_messaging::read_api`):
//!
//! - `GET /fares/{fare_id}?limit=` — the ledger entry or the refused credit, the events emitted
//!   for the fare and the dead letters of messages keyed with its id; each list bounded by
//!   `limit` (default 100, at most 1000) with its `total` and `truncated`;
//! - `GET /accounts/{customer_id}?limit=&after=` — the customer's balances and ledger entries,
//!   newest first, a page at a time: `next` is the `after` of the next page (null on the last).
//!
//! `GET /health` is added by the shared runtime. Read-only.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use events_schema::{CustomerId, FareId};
use serde_json::json;
use sqlx::PgPool;
use transactional_messaging::http::found_or_404;
use transactional_messaging::outbox;
use transactional_messaging::read_api::{
    decode_cursor, encode_cursor, paging, BadRequest, Page, PageQuery,
};

use crate::ledger;

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/fares/{fare_id}", get(show_fare))
        .route("/accounts/{customer_id}", get(show_account))
        .with_state(pool)
}

async fn show_fare(
    State(pool): State<PgPool>,
    Path(fare_id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, BadRequest> {
    let (limit, _) = paging(query)?;
    let fare_id = FareId::parse(&fare_id).map_err(|error| BadRequest(error.to_string()))?;
    let view = async {
        let mut conn = pool.acquire().await?;
        let ledger_entry = ledger::entry_for_fare(&mut conn, &fare_id).await?;
        let credit_failure = ledger::failure_for_fare(&mut conn, &fare_id).await?;
        let emitted = outbox::emitted_for_key(&mut conn, fare_id.as_str(), limit).await?;
        let dead_letters = outbox::dead_letters_for_key(&mut conn, fare_id.as_str(), limit).await?;
        if ledger_entry.is_none()
            && credit_failure.is_none()
            && emitted.total == 0
            && dead_letters.total == 0
        {
            return Ok(None);
        }
        Ok(Some(json!({
            "service": crate::SERVICE_NAME,
            "fare_id": fare_id,
            "ledger_entry": ledger_entry,
            "credit_failure": credit_failure,
            "emitted": emitted,
            "dead_letters": dead_letters,
        })))
    }
    .await;
    Ok(found_or_404(view, &format!("fare {fare_id} in accounting")))
}

async fn show_account(
    State(pool): State<PgPool>,
    Path(customer_id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, BadRequest> {
    let (limit, after) = paging(query)?;
    let before_id = after.as_deref().map(decode_entry_id).transpose()?;
    let customer_id =
        CustomerId::parse(&customer_id).map_err(|error| BadRequest(error.to_string()))?;
    let view = async {
        let mut conn = pool.acquire().await?;
        let accounts = ledger::accounts(&mut conn, &customer_id).await?;
        if accounts.is_empty() {
            return Ok(None);
        }
        let rows = ledger::entries(&mut conn, &customer_id, before_id, limit.probe()).await?;
        let page = Page::from_probe(rows, limit, |entry| encode_cursor(&entry.id.to_string()));
        Ok(Some(json!({
            "customer_id": customer_id,
            "accounts": accounts,
            "latest_entries": page.items,
            "limit": limit.get(),
            "next": page.next,
        })))
    }
    .await;
    Ok(found_or_404(view, &format!("customer {customer_id}")))
}

/// The entry a ledger cursor points after (the page goes on with older entries).
fn decode_entry_id(cursor: &str) -> Result<i64, BadRequest> {
    decode_cursor(cursor)?
        .parse()
        .map_err(|_| BadRequest::not_a_cursor(cursor))
}
