//! The payment-service's HTTP read API: `GET /fares/{fare_id}` (the fare, the events it
//! consumed and emitted for it, the gateway operations), `GET /fares` (counts by status) and
//! `GET /fares?status=needs_attention` for operators; `GET /health` is added by the shared
//! runtime. Read-only: state changes only through events.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use events_schema::FareId;
use serde_json::json;
use sqlx::PgPool;
use transactional_messaging::http::{error_response, found_or_404};

use crate::fare::{self, FareStatus};
use crate::timeline;

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/fares", get(list_fares))
        .route("/fares/{fare_id}", get(show_fare))
        .with_state(pool)
}

async fn show_fare(State(pool): State<PgPool>, Path(fare_id): Path<String>) -> Response {
    match FareId::parse(&fare_id) {
        Ok(fare_id) => found_or_404(
            timeline::of_fare(&pool, &fare_id).await,
            &format!("fare {fare_id}"),
        ),
        Err(error) => error_response(StatusCode::BAD_REQUEST, &error.to_string()),
    }
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
