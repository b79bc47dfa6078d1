//! Typed identifiers: the saga id ([`FareId`]), the rider's [`CustomerId`] and the
//! per-event [`EventId`].
//!
//! `FareId` and `CustomerId` share one rule (SPEC §3): 1–64 characters of
//! `[A-Za-z0-9._:-]`. They are validated on construction and on deserialisation, so a value
//! of these types is always valid.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::marker::FailureMarker;

/// Longest accepted [`FareId`] or [`CustomerId`], in characters.
pub const MAX_ID_LEN: usize = 64;

/// The allowed characters of a [`FareId`] or [`CustomerId`], as a character class.
pub const ID_CHARSET: &str = "[A-Za-z0-9._:-]";

/// JSON Schema / regex pattern of a [`FareId`] or [`CustomerId`].
pub const ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,64}$";

/// An identifier that breaks its rule; the message names the rule.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("invalid {what}: {problem}")]
pub struct InvalidId {
    what: &'static str,
    problem: String,
}

impl InvalidId {
    fn new(what: &'static str, problem: impl Into<String>) -> Self {
        Self {
            what,
            problem: problem.into(),
        }
    }

    /// Which kind of id was being parsed, e.g. `"fare_id"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The rule that was broken, without the id kind, e.g. `"is empty; …"`.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks the shared id rule. The value itself is not echoed, only the offending character.
fn check_id(what: &'static str, s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::new(
            what,
            format!("is empty; it must be 1–{MAX_ID_LEN} characters of {ID_CHARSET}"),
        ));
    }
    let len = s.chars().count();
    if len > MAX_ID_LEN {
        return Err(InvalidId::new(
            what,
            format!("is {len} characters long; at most {MAX_ID_LEN} are allowed"),
        ));
    }
    if let Some((pos, c)) = s.chars().enumerate().find(|(_, c)| !is_id_char(*c)) {
        return Err(InvalidId::new(
            what,
            format!(
                "contains {:?} (U+{:04X}) at position {}, which is not one of {ID_CHARSET}",
                c,
                u32::from(c),
                pos + 1
            ),
        ));
    }
    // An id travels in every event and Kafka key of its saga: it must never be card data.
    if crate::card::has_card_number(s.as_bytes()) {
        return Err(InvalidId::new(
            what,
            "is a raw card number; ids must not carry card data".to_owned(),
        ));
    }
    Ok(())
}

fn id_schema(description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LEN,
        "pattern": ID_PATTERN,
        "description": description,
    })
}

/// Declares a validated string id with the shared rule.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $schema_doc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the id rule (1–64 characters of `[A-Za-z0-9._:-]`).
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                check_id($what, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_id($what, &s)?;
                Ok(Self(s))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                id_schema($schema_doc)
            }
        }
    };
}

string_id!(
    /// The saga id and Kafka key of every event of one fare (SPEC §3).
    FareId,
    "fare_id",
    "The saga id, also the Kafka key: 1–64 characters of [A-Za-z0-9._:-]."
);

string_id!(
    /// The rider being charged. Its ending may carry a [`FailureMarker`] (SPEC §5).
    CustomerId,
    "customer_id",
    "The rider's id: 1–64 characters of [A-Za-z0-9._:-]. Endings such as _fail_auth force failures (SPEC §5)."
);

impl CustomerId {
    /// The failure forced by this id's ending (SPEC §5).
    pub fn failure_marker(&self) -> FailureMarker {
        FailureMarker::of(self)
    }
}

/// The unique id of one event; consumers de-duplicate on it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh, time-ordered id (UUIDv7).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Parses the textual UUID forms accepted by [`Uuid::parse_str`].
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| InvalidId::new("event_id", "is not a UUID"))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for EventId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<EventId> for Uuid {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl JsonSchema for EventId {
    fn schema_name() -> Cow<'static, str> {
        "EventId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "uuid",
            "description": "A UUID, written in its hyphenated form.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fare_id_rules() {
        assert!(FareId::parse("").unwrap_err().problem().contains("empty"));
        let long = "a".repeat(65);
        assert!(FareId::parse(&long).unwrap_err().problem().contains("65"));
        let e = FareId::parse("wr 563").unwrap_err();
        assert!(e.problem().contains("' '"), "{e}");
        assert!(e.to_string().starts_with("invalid fare_id:"), "{e}");
        assert!(FareId::parse("wr_é").is_err());
        assert!(FareId::parse("wr/563").is_err());
        let ok: String = "Az09._:-".repeat(8);
        assert_eq!(ok.len(), 64);
        assert_eq!(FareId::parse(&ok).unwrap().as_str(), ok);
        assert_eq!(FareId::parse("wr_563").unwrap().to_string(), "wr_563");
        for card in [
            "4111111111111111",
            "4111-1111-1111-1111",
            "wr_4111111111111111",
        ] {
            let e = FareId::parse(card).unwrap_err();
            assert!(e.problem().contains("card number"), "{card}: {e}");
            assert!(
                !e.to_string().contains("1111"),
                "the value is not echoed: {e}"
            );
        }
        assert!(FareId::parse("4111111111111112").is_ok(), "not Luhn-valid");
    }

    #[test]
    fn customer_id_rules() {
        assert!(CustomerId::parse("3").is_ok());
        assert!(CustomerId::parse("").is_err());
        let e = CustomerId::parse("bad id").unwrap_err();
        assert_eq!(e.what(), "customer_id");
    }

    #[test]
    fn ids_deserialize_with_validation() {
        let id: FareId = serde_json::from_str("\"wr_563\"").unwrap();
        assert_eq!(id.as_str(), "wr_563");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"wr_563\"");
        assert!(serde_json::from_str::<FareId>("\"\"").is_err());
        assert!(serde_json::from_str::<CustomerId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<FareId>("12").is_err());
    }

    #[test]
    fn event_id_is_v7_and_round_trips() {
        let id = EventId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let text = id.to_string();
        assert_eq!(text.parse::<EventId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert!(EventId::parse("nope").is_err());
        assert_ne!(EventId::new(), EventId::new());
    }
}
