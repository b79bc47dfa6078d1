//! Pieces of the services' HTTP read APIs: the health route and JSON errors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

/// `GET /health`: 200 while the service's database answers, 503 otherwise.
pub fn health_routes(pool: PgPool, service: &'static str) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state((pool, service))
}

async fn health(State((pool, service)): State<(PgPool, &'static str)>) -> Response {
    match sqlx::query("SELECT 1").execute(&pool).await {
        Ok(_) => Json(json!({"status": "ok", "service": service})).into_response(),
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
