//! The console's HTTP routes: the page, and the JSON it asks for. Every answer passes
//! through the read APIs' card-number mask; a request whose `Host` is not the console's own
//! loopback address is refused. Errors are `{"error": "…"}`: 400 bad input, 404 unknown,
//! 409 refused (a dead letter replayed before), 502 a source (a service, Kafka) failed.

use std::net::SocketAddr;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use events_schema::choreography::{Service, STEPS};
use events_schema::{EventType, FailureMarker, Topic};
use serde::Deserialize;
use serde_json::{json, Value};
use transactional_messaging::http::error_response;
use transactional_messaging::read_api::with_card_numbers_masked;

use super::{page, queues, Console};
use crate::detail::describe;
use crate::dlq::{self, replay, LetterId};
use crate::report::{json_report, status_line};
use crate::request::{self, RequestArgs};
use crate::{diagram, exit, status, timeline};

/// The console's router.
pub fn router(console: Console) -> Router {
    let addr = console.addr;
    let routes = Router::new()
        .route("/", get(page::index))
        .route("/console.js", get(page::script))
        .route("/console.css", get(page::style))
        .route("/api/overview", get(overview))
        .route("/api/fares", post(request_fare))
        .route("/api/fares/{fare_id}", get(fare))
        .route("/api/queues/{queue}", get(queue))
        .route("/api/dead-letters", get(dead_letters))
        .route("/api/dead-letters/{id}", get(dead_letter))
        .route("/api/dead-letters/{id}/replay", post(replay_letter))
        .route("/api/diagram", get(choreography))
        .with_state(console);
    with_card_numbers_masked(routes).layer(middleware::from_fn_with_state(addr, same_host))
}

/// An error answer.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error_response(self.0, &self.1)
    }
}

type Answer = Result<Json<Value>, Failure>;

fn bad_request(error: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::BAD_REQUEST, error.to_string())
}

/// A source's failure: `negative` (e.g. 404) for a definite "no", else 502.
fn failed(error: &anyhow::Error, negative: StatusCode) -> Failure {
    let status = if exit::code_of(error) == exit::NEGATIVE {
        negative
    } else {
        StatusCode::BAD_GATEWAY
    };
    Failure(status, format!("{error:#}"))
}

/// Refuses a request whose `Host` is not the console's own address, when it listens on
/// loopback: a page of another site cannot reach it through a name that resolves to 127.0.0.1
/// (DNS rebinding).
async fn same_host(State(addr): State<SocketAddr>, request: Request, next: Next) -> Response {
    if addr.ip().is_loopback() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let port = addr.port();
        let names = [
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "[::1]".to_owned(),
            addr.ip().to_string(),
        ];
        let allowed = names
            .iter()
            .any(|name| host == format!("{name}:{port}") || (port == 80 && host == name));
        if !allowed {
            return error_response(
                StatusCode::FORBIDDEN,
                &format!("the console answers only as http://{addr}/ (Host {host:?} refused)"),
            );
        }
    }
    next.run(request).await
}

#[derive(Debug, Deserialize)]
struct Paging {
    limit: Option<u32>,
    after: Option<String>,
}

/// `limit` checked against 1..=`max`, `default` when absent.
fn limit(given: Option<u32>, default: u32, max: u32) -> Result<u32, Failure> {
    match given.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(bad_request(format!("limit {n} is outside 1..={max}"))),
    }
}

async fn overview(State(console): State<Console>, Query(paging): Query<Paging>) -> Answer {
    let limit = limit(paging.limit, 25, super::live::KEPT as u32)?;
    Ok(Json(json!({
        "live": console.live.snapshot(limit as usize),
        "health": console.health.snapshot(),
        "markers": FailureMarker::ALL.iter().filter_map(FailureMarker::suffix).collect::<Vec<_>>(),
    })))
}

/// The page's request form.
#[derive(Debug, Deserialize)]
struct FareForm {
    customer: String,
    amount: String,
    #[serde(default)]
    currency: Option<String>,
    /// A failure marker ending (SPEC §5), appended to the customer id.
    #[serde(default)]
    marker: Option<String>,
}

/// Publishes a `FareRequested`, as `fares request` does.
async fn request_fare(State(console): State<Console>, Json(form): Json<FareForm>) -> Answer {
    let marker = form.marker.unwrap_or_default();
    if !marker.is_empty()
        && !FailureMarker::ALL
            .iter()
            .any(|m| m.suffix() == Some(marker.as_str()))
    {
        return Err(bad_request(format!("unknown marker {marker:?}")));
    }
    let args = RequestArgs {
        fare_id: None,
        customer: format!("{}{marker}", form.customer.trim()),
        amount: form.amount,
        currency: form.currency.unwrap_or_else(|| "USD".to_owned()),
        token: "tok_visa".to_owned(),
        wait: false,
        timeout: 30,
    };
    let event = request::build(&args).map_err(|e| {
        bad_request(
            format!("{e:#}")
                .replace("--customer", "customer")
                .replace("--amount", "amount")
                .replace("--currency", "currency"),
        )
    })?;
    let kafka = &console.kafka;
    let published = async {
        kafka.require(Topic::FareRequests).await?;
        request::publish(kafka, &kafka.topic(Topic::FareRequests), &event).await
    };
    published
        .await
        .map_err(|e| failed(&e, StatusCode::BAD_GATEWAY))?;
    Ok(Json(json!({
        "fare_id": event.fare_id.as_str(),
        "detail": describe(&event.data),
    })))
}

/// One fare as `fares status --json` gives it, with each timeline entry's topic, the status
/// line, and why the accounting-service's view is missing when it could not be asked.
async fn fare(State(console): State<Console>, Path(fare_id): Path<String>) -> Answer {
    let fare_id = status::parse_fare_id(&fare_id).map_err(|e| bad_request(format!("{e:#}")))?;
    let views = status::views(&fare_id, &console.payment, &console.accounting)
        .await
        .map_err(|e| failed(&e, StatusCode::NOT_FOUND))?;
    let (accounting, accounting_error) = match views.accounting {
        Ok(view) => (view, None),
        Err(error) => (None, Some(format!("{error:#}"))),
    };
    let entries = timeline::merge(&views.payment, accounting.as_ref());
    let report = json_report(&fare_id, &views.payment, accounting.as_ref(), &entries);
    let mut answer = serde_json::to_value(&report)
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(entries) = answer.get_mut("timeline").and_then(Value::as_array_mut) {
        for entry in entries {
            let topic = entry
                .get("event_type")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<EventType>().ok())
                .map(|t| t.topic().base_name());
            entry["topic"] = json!(topic);
        }
    }
    answer["status_line"] = json!(status_line(
        views.payment.get("fare").unwrap_or(&Value::Null)
    ));
    answer["accounting_error"] = json!(accounting_error);
    Ok(Json(answer))
}

/// A page of the payment-service's `needs-attention` or `stuck` queue.
async fn queue(
    State(console): State<Console>,
    Path(queue): Path<String>,
    Query(paging): Query<Paging>,
) -> Answer {
    let limit = limit(paging.limit, 20, queues::MAX_LIMIT)?;
    let after = paging.after.as_deref();
    let page = match queue.as_str() {
        "needs-attention" => queues::needs_attention(&console.payment, limit, after).await,
        "stuck" => queues::stuck(&console.payment, limit, after).await,
        other => {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no queue {other:?}: needs-attention or stuck"),
            ))
        }
    };
    page.map(Json)
        .map_err(|e| failed(&e, StatusCode::BAD_GATEWAY))
}

#[derive(Debug, Deserialize)]
struct LetterQuery {
    /// `payment` or `accounting`; both when absent.
    service: Option<String>,
    limit: Option<u32>,
    /// With one service: only the dead letters below this offset (the next page).
    before: Option<i64>,
}

/// The newest dead letters, as `fares dlq list --json`, and `next_before` for the next page
/// of one service's DLQ.
async fn dead_letters(State(console): State<Console>, Query(query): Query<LetterQuery>) -> Answer {
    let limit = limit(query.limit, 20, 500)?;
    let services: Vec<Service> = match query.service.as_deref().filter(|s| !s.is_empty()) {
        None => Service::ALL.to_vec(),
        Some(name) => vec![Service::ALL
            .into_iter()
            .find(|s| dlq::letter::short_name(*s) == name)
            .ok_or_else(|| {
                bad_request(format!("unknown service {name:?}: payment or accounting"))
            })?],
    };
    if query.before.is_some() && services.len() != 1 {
        return Err(bad_request(
            "`before` pages one service's dead letters: give `service` too",
        ));
    }
    let listing = dlq::listing(&console.kafka, &services, u64::from(limit), query.before)
        .await
        .map_err(|e| failed(&e, StatusCode::NOT_FOUND))?;
    let mut answer = listing.to_json(&console.kafka);
    let oldest = listing.letters.iter().map(|l| l.id.offset).min();
    answer["next_before"] = match (services.len(), listing.more, oldest) {
        (1, more, Some(oldest)) if more > 0 => json!(oldest),
        _ => Value::Null,
    };
    Ok(Json(answer))
}

async fn dead_letter(State(console): State<Console>, Path(id): Path<String>) -> Answer {
    let id: LetterId = id
        .parse()
        .map_err(|e: anyhow::Error| bad_request(format!("{e:#}")))?;
    dlq::details_json(&console.kafka, id)
        .await
        .map(Json)
        .map_err(|e| failed(&e, StatusCode::NOT_FOUND))
}

/// The page's replay form.
#[derive(Debug, Deserialize)]
struct ReplayForm {
    /// A corrected payload; absent: the dead letter's own bytes.
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
}

/// Replays a dead letter with the code of `fares dlq replay`: the same checks, the same
/// refusal of a second replay unless forced.
async fn replay_letter(
    State(console): State<Console>,
    Path(id): Path<String>,
    Json(form): Json<ReplayForm>,
) -> Answer {
    let id: LetterId = id
        .parse()
        .map_err(|e: anyhow::Error| bad_request(format!("{e:#}")))?;
    let order = replay::Order {
        id,
        payload: form
            .payload
            .filter(|p| !p.trim().is_empty())
            .map(String::into_bytes),
        force: form.force,
        dry_run: form.dry_run,
    };
    match replay::replay(&console.kafka, order).await {
        Ok(done) => Ok(Json(json!({
            "sent": matches!(done, replay::Done::Sent { .. }),
            "summary": done.summary(),
        }))),
        Err(error) if format!("{error}").contains("cannot be replayed") => {
            Err(bad_request(format!("{error:#}")))
        }
        Err(error) => Err(failed(&error, StatusCode::CONFLICT)),
    }
}

/// The choreography: the SVG and the Mermaid text generated from the step table, and the
/// table itself.
async fn choreography() -> Json<Value> {
    let steps: Vec<Value> = STEPS
        .iter()
        .map(|s| {
            json!({
                "on": s.on.as_str(),
                "service": s.service.name(),
                "does": s.does,
                "emits": s.emits.iter().map(EventType::as_str).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "svg": diagram::svg(), "mermaid": diagram::mermaid(), "steps": steps }))
}
