//! Raw card numbers (PANs) are never accepted, stored or logged (SPEC §3).
//!
//! Two rules, for two jobs:
//!
//! - **Refusing input** is deliberately broad: a text "looks like a card number" when it holds
//!   a run of 13–19 digits, where single spaces or hyphens between digits are ignored
//!   (`4242 4242 4242 4242`). Such runs are replaced by [`REDACTED`] before text leaves this
//!   crate in an error, a problem list or `raw_data`.
//! - **Finding a card number in bytes kept as received** (a dead letter, an audit of topics,
//!   tables and read-API answers) is SPEC §3's definition: a run of 13–19 digits (single spaces
//!   or hyphens between them allowed) that passes the Luhn check and stands on its own — not
//!   glued to a letter or digit, directly or through a hyphen, as inside a UUID or a hex
//!   reference. [`mask_card_numbers`] keeps the first 6 and last 4 digits of each and replaces
//!   the others with `*`, so every other byte stays as it was.

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

/// A digit run found in bytes: where it is and how many digits it holds.
struct Run {
    span: Range<usize>,
    digits: usize,
}

/// The maximal digit runs of `bytes` (single spaces or hyphens between digits join them).
fn digit_runs(bytes: &[u8]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        let mut end = i;
        let mut j = i;
        loop {
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if j + 1 < bytes.len()
                && matches!(bytes[j], b' ' | b'-')
                && bytes[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        runs.push(Run {
            span: start..end,
            digits,
        });
        i = end;
    }
    runs
}

/// Whether the digit run at `span` is glued to a letter or digit, directly or through a hyphen.
fn is_glued(bytes: &[u8], span: &Range<usize>) -> bool {
    let alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let before = span.start.checked_sub(1);
    let glued_before = before
        .is_some_and(|b| alnum(b) || (bytes[b] == b'-' && b.checked_sub(1).is_some_and(alnum)));
    let glued_after =
        alnum(span.end) || (bytes.get(span.end) == Some(&b'-') && alnum(span.end + 1));
    glued_before || glued_after
}

/// The Luhn check over the digits of `run` (separators skipped).
fn passes_luhn(run: &[u8]) -> bool {
    let mut sum = 0;
    for (position, digit) in run
        .iter()
        .rev()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        sum += if position % 2 == 1 {
            let doubled = digit * 2;
            if doubled > 9 {
                doubled - 9
            } else {
                doubled
            }
        } else {
            digit
        };
    }
    sum % 10 == 0
}

/// Byte ranges of the raw card numbers in `bytes`, by SPEC §3's definition (see the module doc).
pub fn card_numbers(bytes: &[u8]) -> Vec<Range<usize>> {
    digit_runs(bytes)
        .into_iter()
        .filter(|run| (13..=19).contains(&run.digits))
        .filter(|run| !is_glued(bytes, &run.span) && passes_luhn(&bytes[run.span.clone()]))
        .map(|run| run.span)
        .collect()
}

/// Whether `bytes` hold a raw card number (SPEC §3).
pub fn has_card_number(bytes: &[u8]) -> bool {
    !card_numbers(bytes).is_empty()
}

/// `bytes` with every raw card number masked: its first 6 and last 4 digits kept, the digits
/// between replaced by `*`, separators and every other byte unchanged. `None` when there was
/// nothing to mask.
pub fn mask_card_numbers(bytes: &[u8]) -> Option<Vec<u8>> {
    let spans = card_numbers(bytes);
    if spans.is_empty() {
        return None;
    }
    let mut masked = bytes.to_vec();
    for span in spans {
        let digits: Vec<usize> = span
            .clone()
            .filter(|&i| bytes[i].is_ascii_digit())
            .collect();
        for &i in &digits[6..digits.len() - 4] {
            masked[i] = b'*';
        }
    }
    Some(masked)
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

    #[test]
    fn finds_luhn_valid_card_numbers_that_stand_alone() {
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "tok_4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011000990139424",
        ] {
            assert!(has_card_number(card.as_bytes()), "{card}");
        }
        for not_card in [
            "4111111111111112",                     // fails Luhn
            "411111111111",                         // 12 digits
            "41111111111111111111",                 // 20 digits
            "x4111111111111111",                    // glued to a letter
            "4111111111111111abc",                  // glued to a letter
            "ab-4111111111111111",                  // glued through a hyphen
            "auth_0195f3a2a41111111111111111b",     // inside a hex reference
            "01a21c04-4111-1111-1111-1111b9785a13", // inside a UUID
            "2026-11-27T08:00:00.123Z",
        ] {
            assert!(!has_card_number(not_card.as_bytes()), "{not_card}");
        }
    }

    #[test]
    fn masks_all_but_the_first_six_and_last_four_digits() {
        let masked =
            mask_card_numbers(br#"{"payment_token":"4111 1111 1111 1111","n":"378282246310005"}"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(masked).unwrap(),
            r#"{"payment_token":"4111 11** **** 1111","n":"378282*****0005"}"#
        );
        assert_eq!(mask_card_numbers(b"tok_visa 4111111111111112"), None);
        let binary = [0xff, b' ', b'4', b'1', b'1', b'1'];
        assert_eq!(mask_card_numbers(&binary), None);
    }
}
