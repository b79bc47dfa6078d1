//! Raw card numbers (PANs) are never accepted, stored or logged (SPEC §3).
//!
//! A text "looks like a card number" when it holds a run of 13–19 digits, where single spaces
//! or hyphens between digits are ignored (`4242 4242 4242 4242`). Such runs are replaced by
//! [`REDACTED`] before text leaves this crate in an error, a problem list or `raw_data`.

use std::ops::Range;

use serde_json::Value;

/// What a card-number-like run is replaced with.
pub const REDACTED: &str = "[redacted card number]";

/// Byte ranges of the card-number-like runs in `text`.
fn card_number_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        let mut end = i;
        let mut j = i;
        loop {
            if j < b.len() && b[j].is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits) {
            spans.push(start..end);
        }
        i = end;
    }
    spans
}

/// Whether `text` holds something that looks like a raw card number.
pub fn looks_like_card_number(text: &str) -> bool {
    !card_number_spans(text).is_empty()
}

/// `text` with every card-number-like run replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in card_number_spans(text) {
        out.push_str(&text[last..span.start]);
        out.push_str(REDACTED);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Whether a JSON value (a string, a number, or anything inside arrays and objects) holds
/// something that looks like a raw card number.
pub fn value_has_card_number(value: &Value) -> bool {
    match value {
        Value::String(s) => looks_like_card_number(s),
        Value::Number(n) => looks_like_card_number(&n.to_string()),
        Value::Array(items) => items.iter().any(value_has_card_number),
        Value::Object(map) => map.values().any(value_has_card_number),
        Value::Null | Value::Bool(_) => false,
    }
}

/// `value` with card-number-like strings redacted and card-number-like numbers replaced by
/// the string [`REDACTED`].
pub fn redact_value(value: Value) -> Value {
    match value {
        Value::String(s) if looks_like_card_number(&s) => Value::String(redact(&s)),
        Value::Number(n) if looks_like_card_number(&n.to_string()) => {
            Value::String(REDACTED.to_owned())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(redact_value).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, redact_value(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_runs_of_13_to_19_digits() {
        assert!(looks_like_card_number("4242424242424242"));
        assert!(looks_like_card_number("4242 4242 4242 4242"));
        assert!(looks_like_card_number("4242-4242-4242-4242"));
        assert!(looks_like_card_number("tok_4111111111111"));
        assert!(looks_like_card_number("6011000990139424000"));
        assert!(!looks_like_card_number("tok_visa"));
        assert!(!looks_like_card_number("424242424242"));
        assert!(!looks_like_card_number("42424242424242424242"));
        assert!(!looks_like_card_number("4242  4242 4242 4242"));
        assert!(!looks_like_card_number("2026-11-27T08:00:00.123Z"));
    }

    #[test]
    fn redacts_only_the_run() {
        assert_eq!(
            redact("token 4242 4242 4242 4242 was sent"),
            format!("token {REDACTED} was sent")
        );
        assert_eq!(redact("tok_visa"), "tok_visa");
        assert_eq!(redact("ünï 4111111111111111!"), format!("ünï {REDACTED}!"));
    }

    #[test]
    fn redacts_json_values() {
        let v = json!({"a": "4111111111111111", "b": [4111111111111111_u64], "c": "tok", "d": 12});
        assert!(value_has_card_number(&v));
        let r = redact_value(v);
        assert_eq!(
            r,
            json!({"a": REDACTED, "b": [REDACTED], "c": "tok", "d": 12})
        );
        assert!(!value_has_card_number(&r));
    }
}
