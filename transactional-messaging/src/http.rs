//! Pieces of the services' HTTP read APIs: the health and metrics routes, JSON errors.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// How long `/health` waits for the database (a prober gives up soon: the answer must come
/// first).
pub const HEALTH_DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a scrape waits for the database-derived gauges.
pub const METRICS_DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /metrics`: the service's [`Metrics`] in Prometheus' text format (version 0.0.4). Its
/// text holds only metric names, labels from fixed lists and numbers — never a fare id, a key
/// or a payload.
pub fn metrics_routes(pool: PgPool, metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state((pool, metrics))
}

async fn scrape(State((pool, metrics)): State<(PgPool, Metrics)>) -> Response {
    let text = metrics.scrape(&pool, METRICS_DATABASE_TIMEOUT).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /health`: 200 while the service does its work and its database answers and takes
/// writes; 503 otherwise,
/// with the reason (see [`Readiness`]). Both answers say how many partitions this instance
/// consumes and how many messages it processed.
pub fn health_routes(pool: PgPool, readiness: Readiness, service: &'static str) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(Health {
            pool,
            readiness,
            service,
        })
}

#[derive(Clone)]
struct Health {
    pool: PgPool,
    readiness: Readiness,
    service: &'static str,
}

async fn health(State(health): State<Health>) -> Response {
    let problem = match health.readiness.problem() {
        Some(problem) => Some(problem),
        None => {
            let read_only = sqlx::query_scalar!(
                r#"SELECT current_setting('transaction_read_only') AS "read_only!""#
            )
            .fetch_one(&health.pool);
            match tokio::time::timeout(HEALTH_DATABASE_TIMEOUT, read_only).await {
                Ok(Ok(read_only)) if read_only == "on" => {
                    Some("the database is read-only: no work can be recorded".to_owned())
                }
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(format!("database unavailable: {error}")),
                Err(_) => Some(format!(
                    "database unavailable: no answer within {}s",
                    HEALTH_DATABASE_TIMEOUT.as_secs()
                )),
            }
        }
    };
    let activity = health.readiness.activity();
    let mut body = json!({
        "service": health.service,
        "partitions": activity.partitions,
        "messages_processed": activity.messages_processed,
    });
    match problem {
        None => {
            body["status"] = json!("ok");
            Json(body).into_response()
        }
        Some(problem) => {
            body["status"] = json!("not ready");
            body["error"] = json!(format!("not ready: {problem}"));
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
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
