//! The payment-service's HTTP read API, for operators (no authentication: loopback only, see
//! `transactional_messaging::read_api`):
//!
//! - `GET /fares/{fare_id}?limit=` — the fare, the events it consumed and emitted for it, the
//!   dead letters of messages keyed with its id, and the gateway operations; each list bounded
//!   by `limit` (default 100, at most 1000) with its `total` and `truncated`;
//! - `GET /fares` — how many fares are in each status;
//! - `GET /fares?status=needs_attention` — the ids of the fares in a status, oldest first.
//!
//! `GET /health` is added by the shared runtime. Read-only: state changes only through events.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use events_schema::FareId;
use serde_json::json;
use sqlx::PgPool;
use transactional_messaging::http::{error_response, found_or_404};
use transactional_messaging::read_api::{paging, BadRequest, PageQuery};

use crate::fare::{self, FareStatus};
use crate::timeline;

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/fares", get(list_fares))
        .route("/fares/{fare_id}", get(show_fare))
        .with_state(pool)
}

async fn show_fare(
    State(pool): State<PgPool>,
    Path(fare_id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, BadRequest> {
    let (limit, _) = paging(query)?;
    let fare_id = FareId::parse(&fare_id).map_err(|error| BadRequest(error.to_string()))?;
    Ok(found_or_404(
        timeline::of_fare(&pool, &fare_id, limit).await,
        &format!("fare {fare_id}"),
    ))
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list_fares(State(pool): State<PgPool>, Query(query): Query<ListQuery>) -> Response {
    let status = match query.status.as_deref() {
        None => None,
        Some(name) => match FareStatus::parse(name) {
            Some(status) => Some(status),
            None => {
                return error_response(StatusCode::BAD_REQUEST, &format!("unknown status {name}"))
            }
        },
    };
    let result: anyhow::Result<serde_json::Value> = async {
        let mut conn = pool.acquire().await?;
        Ok(match status {
            None => {
                let counts = fare::count_by_status(&mut conn).await?;
                let counts: std::collections::BTreeMap<_, _> = counts.into_iter().collect();
                json!({ "fares_by_status": counts })
            }
            Some(status) => {
                let ids = fare::ids_with_status(&mut conn, status).await?;
                json!({ "status": status.as_str(), "fare_ids": ids })
            }
        })
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error_response(StatusCode::SERVICE_UNAVAILABLE, &format!("{error:#}")),
    }
}
