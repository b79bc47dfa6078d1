//! Why a message could not be read as an event.
//!
//! Every [`DecodeError`] is permanent: the same bytes will fail the same way, so a consumer
//! sends the message to its dead-letter topic with [`DecodeError::reason`] (and
//! [`DecodeError::code`]) in the headers instead of retrying. No variant echoes a payment token
//! or anything that looks like a card number.

use crate::event_type::EventType;

/// A message that is not a well-formed event envelope.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// The bytes are not UTF-8 JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A required envelope field is absent (or `null`).
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// `event_type` names no known event type.
    #[error("unknown event_type {0:?}")]
    UnknownEventType(String),
    /// `schema_version` is one this build does not read.
    #[error("unsupported schema_version {0} (this build reads {v})", v = crate::SCHEMA_VERSION)]
    UnsupportedSchemaVersion(u64),
    /// An envelope field is present but breaks its rule.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The envelope key, e.g. `"fare_id"`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `data` does not match the struct of the event type.
    #[error("invalid data for {event_type}: {reason}")]
    InvalidData {
        /// The envelope's `event_type`.
        event_type: EventType,
        /// What is wrong with `data`.
        reason: String,
    },
}

impl DecodeError {
    /// A short human text, e.g. for a dead-letter header.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// A stable machine-readable kind, e.g. for a dead-letter header or a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::NotJson(_) => "not_json",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::UnknownEventType(_) => "unknown_event_type",
            DecodeError::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            DecodeError::InvalidField { .. } => "invalid_field",
            DecodeError::InvalidData { .. } => "invalid_data",
        }
    }
}
