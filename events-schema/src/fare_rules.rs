//! The rules of a valid `FareRequested` (SPEC §3–§4): what the payment-service checks before
//! it registers a fare, and the problem texts of a `FareRejected`.
//!
//! Every problem is reported, not only the first. A problem text never repeats the payment
//! token, and anything that looks like a card number is redacted.

use serde_json::{Map, Value};

use crate::card;
use crate::data::FareRequested;
use crate::envelope::kind;
use crate::ids::CustomerId;
use crate::money::{is_valid_fare_amount, Currency, MAX_FARE_MINOR, MIN_FARE_MINOR};

/// Longest accepted `payment_token`, in characters.
pub const MAX_PAYMENT_TOKEN_LEN: usize = 255;

const CARD_PROBLEM: &str =
    "looks like a raw card number; only tokenised cards (payment_token) are accepted";

impl FareRequested {
    /// Every rule this typed request breaks (empty when valid): amount range and
    /// payment-token rules. Ids and currency are valid by construction.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(p) = amount_problem(self.amount_minor) {
            problems.push(format!("data.amount_minor {p}"));
        }
        if let Some(p) = token_problem(&self.payment_token) {
            problems.push(format!("data.payment_token {p}"));
        }
        if card::looks_like_card_number(self.customer_id.as_str()) {
            problems.push(format!("data.customer_id {CARD_PROBLEM}"));
        }
        problems.into_iter().map(|p| card::redact(&p)).collect()
    }
}

fn amount_problem(amount_minor: i64) -> Option<String> {
    (!is_valid_fare_amount(amount_minor)).then(|| {
        format!(
            "must be between {MIN_FARE_MINOR} and {MAX_FARE_MINOR} minor units, got {amount_minor}"
        )
    })
}

fn token_problem(token: &str) -> Option<String> {
    if token.trim().is_empty() {
        Some("is empty".to_owned())
    } else if token.chars().count() > MAX_PAYMENT_TOKEN_LEN {
        Some(format!("is longer than {MAX_PAYMENT_TOKEN_LEN} characters"))
    } else if card::looks_like_card_number(token) {
        Some(CARD_PROBLEM.to_owned())
    } else {
        None
    }
}

/// Collects the problems of one request, field by field.
struct Problems {
    list: Vec<String>,
    reported: Vec<String>,
}

impl Problems {
    fn add(&mut self, field: &str, problem: impl std::fmt::Display) {
        self.list.push(format!("data.{field} {problem}"));
        self.reported.push(field.to_owned());
    }
}

fn field<'a, T>(
    data: &'a Map<String, Value>,
    name: &str,
    expected: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
    problems: &mut Problems,
) -> Option<T> {
    match data.get(name).filter(|v| !v.is_null()) {
        None => {
            problems.add(name, "is missing");
            None
        }
        Some(v) => {
            let read = read(v);
            if read.is_none() {
                problems.add(name, format!("must be {expected}, found {}", kind(v)));
            }
            read
        }
    }
}

/// Checks the `data` of a received `FareRequested` (`None` when absent).
pub(crate) fn check(data: Option<&Value>) -> Result<FareRequested, Vec<String>> {
    let data = match data {
        None => return Err(vec!["data is missing".to_owned()]),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(vec![format!(
                "data must be a JSON object, found {}",
                kind(other)
            )])
        }
    };
    let mut problems = Problems {
        list: Vec::new(),
        reported: Vec::new(),
    };

    let customer_id = field(
        data,
        "customer_id",
        "a string",
        Value::as_str,
        &mut problems,
    )
    .and_then(|s| match CustomerId::parse(s) {
        Ok(id) => Some(id),
        Err(e) => {
            problems.add("customer_id", e.problem());
            None
        }
    });

    let amount_minor = match data.get("amount_minor").and_then(Value::as_u64) {
        Some(big) if i64::try_from(big).is_err() => {
            problems.add(
                "amount_minor",
                format!(
                    "must be between {MIN_FARE_MINOR} and {MAX_FARE_MINOR} minor units, got {big}"
                ),
            );
            None
        }
        _ => field(
            data,
            "amount_minor",
            "an integer number of minor units",
            Value::as_i64,
            &mut problems,
        )
        .filter(|amount| match amount_problem(*amount) {
            Some(p) => {
                problems.add("amount_minor", p);
                false
            }
            None => true,
        }),
    };

    let currency =
        field(data, "currency", "a string", Value::as_str, &mut problems).and_then(|s| {
            match Currency::parse(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.add(
                        "currency",
                        format!("{:?} is not an active ISO 4217 currency code", e.code()),
                    );
                    None
                }
            }
        });

    let payment_token = field(
        data,
        "payment_token",
        "a string",
        Value::as_str,
        &mut problems,
    )
    .filter(|token| match token_problem(token) {
        Some(p) => {
            problems.add("payment_token", p);
            false
        }
        None => true,
    });

    // Anything else that looks like a card number, in any field, is refused too.
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    for key in keys {
        let already = problems.reported.iter().any(|r| r == key);
        if !already && data.get(key).is_some_and(card::value_has_card_number) {
            let shown: String = key.chars().take(64).collect();
            problems.add(&shown, CARD_PROBLEM);
        }
    }

    match (customer_id, amount_minor, currency, payment_token) {
        (Some(customer_id), Some(amount_minor), Some(currency), Some(token))
            if problems.list.is_empty() =>
        {
            Ok(FareRequested {
                customer_id,
                amount_minor,
                currency,
                payment_token: token.to_owned(),
            })
        }
        _ => Err(problems.list.iter().map(|p| card::redact(p)).collect()),
    }
}
