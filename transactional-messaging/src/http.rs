//! Pieces of the services' HTTP read APIs: the health route and JSON errors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

use crate::kafka::GroupMembership;

/// `GET /health`: 200 once the consumer has joined its group and while the service's
/// database answers; 503 otherwise, with the reason.
pub fn health_routes(pool: PgPool, membership: GroupMembership, service: &'static str) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(Health {
            pool,
            membership,
            service,
        })
}

#[derive(Clone)]
struct Health {
    pool: PgPool,
    membership: GroupMembership,
    service: &'static str,
}

async fn health(State(health): State<Health>) -> Response {
    if !health.membership.has_joined() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the Kafka consumer has not joined its group yet",
        );
    }
    match sqlx::query_scalar!("SELECT 1 AS one")
        .fetch_one(&health.pool)
        .await
    {
        Ok(_) => Json(json!({"status": "ok", "service": health.service})).into_response(),
        Err(error) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("database unavailable: {error}"),
        ),
    }
}

/// `{"error": message}` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// The usual mapping of a repository result to a response: 200 with the value, 404 when
/// absent, 503 when the database failed.
pub fn found_or_404<T: serde::Serialize>(
    result: anyhow::Result<Option<T>>,
    what: &str,
) -> Response {
    match result {
        Ok(Some(value)) => Json(value).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, &format!("unknown {what}")),
        Err(error) => error_response(StatusCode::SERVICE_UNAVAILABLE, &format!("{error:#}")),
    }
}
