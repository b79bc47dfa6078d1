//! What every answer of the services' HTTP read APIs goes through. They are operator APIs
//! without authentication, so:
//!
//! - they listen on loopback by default; a service bound to another address says so at start
//!   ([`warn_if_exposed`]) — put an authenticating proxy in front of it to expose it;
//! - every list is bounded: `limit` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]; any
//!   other value is a 400), then either a [`Page`] with the opaque cursor of the next page
//!   (`next`, passed back as `after`) or, for the lists of one fare, a [`Bounded`] list that
//!   says how many there are in all and whether some were left out;
//! - no raw card number leaves them: [`mask_card_numbers`] masks, in every body, each one that
//!   SPEC §3 defines (13–19 digits, Luhn; first 6 and last 4 kept), whatever table it came from.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use events_schema::card;
use serde_json::Value;

use crate::http::error_response;

/// Items in a list when the request gives no `limit`.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` a request may ask for.
pub const MAX_LIMIT: u32 = 1000;

/// How many items a list may hold (`limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// The `limit` query parameter, checked.
    pub fn parse(value: Option<&str>) -> Result<Limit, BadRequest> {
        let Some(value) = value else {
            return Ok(Limit(DEFAULT_LIMIT));
        };
        match value.trim().parse::<u32>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(Limit(limit)),
            _ => Err(BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}), not {:?}",
                shorten(value)
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// For SQL `LIMIT`.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    /// One row more than the limit: fetching it tells whether there is a next page.
    pub fn probe(self) -> i64 {
        self.as_i64() + 1
    }
}

/// The paging parameters of a list: `?limit=…&after=…`. Strings, so that a bad value gets the
/// read API's JSON error rather than the framework's text.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

/// `limit` (checked) and `after` of a request's query string.
pub fn paging(
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<(Limit, Option<String>), BadRequest> {
    let Query(query) = query?;
    Ok((Limit::parse(query.limit.as_deref())?, query.after))
}

/// One page of a list and the cursor of the next page (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// From rows fetched in list order with `LIMIT limit.probe()`: an extra row only says that
    /// there is a next page, which starts after the last item kept (`cursor` of it).
    pub fn from_probe(mut rows: Vec<T>, limit: Limit, cursor: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > limit.get() as usize;
        rows.truncate(limit.get() as usize);
        let next = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next }
    }
}

/// A list cut at a limit: its first items, how many there are in all, and whether some were
/// left out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bounded<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub truncated: bool,
}

impl<T> Bounded<T> {
    /// `items`, the first of `total`.
    pub fn new(items: Vec<T>, total: i64) -> Bounded<T> {
        let truncated = i64::try_from(items.len()).unwrap_or(i64::MAX) < total;
        Bounded {
            items,
            total,
            truncated,
        }
    }
}

/// The opaque text of a cursor (`next`, `after`): URL-safe base64, so that it needs no
/// escaping in a query string and never reads as a card number.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position a cursor of [`encode_cursor`] holds.
pub fn decode_cursor(cursor: &str) -> Result<String, BadRequest> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| BadRequest::not_a_cursor(cursor))
}

/// A request a read API refuses: `400 {"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

impl BadRequest {
    /// An `after` that is not a `next` of the API.
    pub fn not_a_cursor(cursor: &str) -> BadRequest {
        BadRequest(format!(
            "after must be the `next` of a previous page, not {:?}",
            shorten(cursor)
        ))
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, &self.0)
    }
}

impl From<QueryRejection> for BadRequest {
    fn from(rejection: QueryRejection) -> Self {
        BadRequest(rejection.body_text())
    }
}

/// At most 40 characters of a value echoed in an error.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// `router` with every answer passed through [`mask_card_numbers`].
pub fn with_card_numbers_masked<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(middleware::from_fn(mask_card_numbers))
}

/// The largest answer the mask reads; a larger one is refused (500), never sent unchecked.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Middleware: the answer with every raw card number in its body masked (SPEC §3). A JSON body
/// is masked value by value (strings, numbers, keys), so it stays valid JSON; another body byte
/// by byte.
pub async fn mask_card_numbers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        tracing::error!(
            path = %masked_text(&path),
            "read API answer too large to check for card numbers: not sent"
        );
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer is too large to be checked for card numbers; ask for a smaller limit",
        );
    };
    match mask_body(&bytes) {
        None => Response::from_parts(parts, Body::from(bytes)),
        Some(masked) => {
            tracing::warn!(
                path = %masked_text(&path),
                "masked a raw card number in a read API answer: a stored row or the request holds one"
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(masked))
        }
    }
}

/// `text` with its card numbers masked.
fn masked_text(text: &str) -> String {
    match card::mask_card_numbers(text.as_bytes()) {
        Some(masked) => String::from_utf8_lossy(&masked).into_owned(),
        None => text.to_owned(),
    }
}

/// `body` with every card number masked, `None` when it holds none.
pub fn mask_body(body: &[u8]) -> Option<Vec<u8>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => mask_value(&mut value).then(|| value.to_string().into_bytes()),
        Err(_) => card::mask_card_numbers(body),
    }
}

/// Masks every card number in `value`, in place: in strings and object keys (digits become
/// `*`), and a number that is one becomes the string of its masked digits. True when
/// something was masked.
pub fn mask_value(value: &mut Value) -> bool {
    match value {
        Value::String(text) => match card::mask_card_numbers(text.as_bytes()) {
            Some(masked) => {
                *text = String::from_utf8_lossy(&masked).into_owned();
                true
            }
            None => false,
        },
        Value::Number(number) => match card::mask_card_numbers(number.to_string().as_bytes()) {
            Some(masked) => {
                *value = Value::String(String::from_utf8_lossy(&masked).into_owned());
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |any, v| mask_value(v) | any),
        Value::Object(map) => {
            let mut masked = false;
            if map.keys().any(|key| card::has_card_number(key.as_bytes())) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, v)| (masked_text(&key), v))
                    .collect();
                masked = true;
            }
            map.values_mut().fold(masked, |any, v| mask_value(v) | any)
        }
        Value::Null | Value::Bool(_) => false,
    }
}

/// Whether the read API at `addr` can be reached from other machines.
pub fn is_exposed(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// Logs a warning when the read API listens beyond loopback: it has no authentication.
pub fn warn_if_exposed(service: &str, addr: SocketAddr) {
    if is_exposed(addr) {
        tracing::warn!(
            service,
            %addr,
            "the read API listens on a non-loopback address and has no authentication: \
             anyone who reaches this address can read fares and ledgers. Bind it to 127.0.0.1 \
             (the default), or keep the port private (docker compose publishes it on \
             127.0.0.1 only) and put an authenticating proxy in front of it to expose it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limit(value: Option<&str>) -> Result<u32, StatusCode> {
        Limit::parse(value)
            .map(Limit::get)
            .map_err(|error| error.into_response().status())
    }

    #[test]
    fn limit_defaults_to_100_and_accepts_1_to_1000() {
        assert_eq!(limit(None), Ok(100));
        assert_eq!(limit(Some("1")), Ok(1));
        assert_eq!(limit(Some("1000")), Ok(1000));
        for bad in ["0", "1001", "x", "", "-1", "2.5", "99999999999"] {
            assert_eq!(limit(Some(bad)), Err(StatusCode::BAD_REQUEST), "{bad:?}");
        }
    }

    #[test]
    fn a_page_keeps_the_limit_and_points_after_its_last_item() {
        let limit = Limit::parse(Some("2")).unwrap();
        let page = Page::from_probe(vec![1, 2, 3], limit, |n| n.to_string());
        assert_eq!(
            page,
            Page {
                items: vec![1, 2],
                next: Some("2".to_owned())
            }
        );
        let last = Page::from_probe(vec![1, 2], limit, |n| n.to_string());
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_bounded_list_says_when_it_is_truncated() {
        assert!(Bounded::new(vec![1, 2], 3).truncated);
        assert!(!Bounded::new(vec![1, 2], 2).truncated);
        assert!(!Bounded::<u8>::new(vec![], 0).truncated);
    }

    #[test]
    fn cursors_round_trip_and_a_foreign_one_is_a_400() {
        let cursor = encode_cursor("1795847126123456 wr_563");
        assert!(!card::has_card_number(cursor.as_bytes()));
        assert_eq!(decode_cursor(&cursor).unwrap(), "1795847126123456 wr_563");
        assert_eq!(
            decode_cursor("not a cursor!").unwrap_err(),
            BadRequest::not_a_cursor("not a cursor!")
        );
    }

    #[test]
    fn masks_card_numbers_in_strings_numbers_and_keys_keeping_valid_json() {
        let body = json!({
            "payload": "{\"payment_token\":\"4111 1111 1111 1111\"}",
            "amount_minor": 4111111111111111_u64,
            "4111-1111-1111-1111": ["tok_visa", "5555555555554444"],
            "fare_id": "wr_563",
            "event_id": "01a21c04-4111-1111-1111-1111b9785a13",
        })
        .to_string();
        let masked: Value = serde_json::from_slice(&mask_body(body.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            masked,
            json!({
                "payload": "{\"payment_token\":\"4111 11** **** 1111\"}",
                "amount_minor": "411111******1111",
                "4111-11**-****-1111": ["tok_visa", "555555******4444"],
                "fare_id": "wr_563",
                "event_id": "01a21c04-4111-1111-1111-1111b9785a13",
            })
        );
        assert!(!card::has_card_number(masked.to_string().as_bytes()));
        assert_eq!(
            mask_body(br#"{"fare_id":"wr_563","amount_minor":2000}"#),
            None
        );
        assert_eq!(
            mask_body(b"unknown fare 4111111111111111").unwrap(),
            b"unknown fare 411111******1111"
        );
    }

    #[test]
    fn only_loopback_addresses_are_private() {
        for private in ["127.0.0.1:8081", "[::1]:8081", "127.0.0.2:1"] {
            assert!(!is_exposed(private.parse().unwrap()), "{private}");
        }
        for exposed in ["0.0.0.0:8081", "[::]:8081", "192.168.1.7:8081"] {
            assert!(is_exposed(exposed.parse().unwrap()), "{exposed}");
        }
    }
}
