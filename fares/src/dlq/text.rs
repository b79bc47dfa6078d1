//! How a dead letter's parts are printed: never with a raw card number (the services mask
//! them before dead-lettering; what is printed is masked again, SPEC §6.7), the payload as
//! pretty JSON when it is JSON, else as text with every other byte escaped.

use events_schema::card;
use serde_json::Value;
use time::OffsetDateTime;

/// `text` with any card number masked.
pub fn masked(text: &str) -> String {
    match card::mask_card_numbers(text.as_bytes()) {
        Some(masked) => String::from_utf8_lossy(&masked).into_owned(),
        None => text.to_owned(),
    }
}

/// `bytes` with any card number masked.
pub fn masked_bytes(bytes: &[u8]) -> Vec<u8> {
    card::mask_card_numbers(bytes).unwrap_or_else(|| bytes.to_vec())
}

/// The payload as JSON, when it is JSON (masked first).
pub fn payload_json(payload: &[u8]) -> Option<Value> {
    serde_json::from_slice(&masked_bytes(payload)).ok()
}

/// The payload as text: masked, valid UTF-8 kept (control characters but newline and tab
/// escaped), every other byte written `\xNN`.
pub fn payload_text(payload: &[u8]) -> String {
    let masked = masked_bytes(payload);
    let mut text = String::with_capacity(masked.len());
    for chunk in masked.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                text.extend(c.escape_default());
            } else {
                text.push(c);
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// A broker timestamp as `2026-11-29T02:30:01.123Z`; `-` when there is none.
pub fn time(timestamp_ms: Option<i64>) -> String {
    timestamp_ms
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .map_or_else(|| "-".to_owned(), events_schema::timestamp::format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_masked_and_escaped() {
        assert_eq!(
            payload_text(b"pan 4111111111111111\x01\xff\nok"),
            "pan 411111******1111\\u{1}\\xff\nok"
        );
        assert_eq!(masked("4111 1111 1111 1111"), "4111 11** **** 1111");
    }

    #[test]
    fn json_is_recognised_and_masked() {
        let value = payload_json(br#"{"t":"4111111111111111"}"#).unwrap();
        assert_eq!(value["t"], "411111******1111");
        assert!(payload_json(b"{\"fare_id\":").is_none());
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(time(Some(1_764_383_401_123)), "2025-11-29T02:30:01.123Z");
        assert_eq!(time(None), "-");
    }
}
