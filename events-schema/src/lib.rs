//! The event contract of the fare collection saga (SPEC §2–§5): the one crate every service,
//! the CLI and the tests share to name topics and to read and write events.
//!
//! - [`Topic`] / [`TopicNames`]: the topic list, partitions and retention (SPEC §2).
//! - [`Event`]: the envelope of SPEC §3 with typed [`EventData`], one struct per
//!   [`EventType`] (module [`data`]); [`Event::encode`] / [`Event::decode`] are the only
//!   JSON form on the wire.
//! - [`ReceivedFareRequest`]: the lenient reader of `fare-requests`, which fills in what a
//!   hand-typed request omits and lists every problem of an invalid one (SPEC §4).
//! - [`FareId`], [`CustomerId`], [`EventId`], [`Currency`]: validated ids and money
//!   (integer minor units, never floating point).
//! - [`choreography`]: SPEC §4's step table — who reacts to what, and what it emits.
//! - [`cloud_events`]: the CloudEvents binary-mode headers every published event carries.
//! - [`FailureMarker`]: the workshop's `customer_id` endings that force failures (SPEC §5).
//! - [`json_schemas`]: JSON Schemas generated from the types, committed under `schemas/`.
//!
//! Invariants: this crate depends on nothing but serde, serde_json, schemars, thiserror, time
//! and uuid; it does no I/O. Raw card numbers never leave it in an error text, a problem list
//! or `raw_data`, and `Debug` output never shows a payment token.

pub mod canonical;
pub mod card;
pub mod choreography;
pub mod cloud_events;
pub mod data;
mod envelope;
mod error;
mod event;
mod event_type;
mod fare_rules;
mod ids;
mod marker;
mod money;
mod request;
mod schema;
pub mod timestamp;
mod topic;

pub use data::{
    AccountUpdateFailed, AccountUpdated, ChargeFailed, Charged, Compensation, FareCollected,
    FareCollectionFailed, FareRejected, FareRequested, PaymentRefunded, PreAuthFailed,
    PreAuthReleased, PreAuthorised, RefundFailed, ReleaseFailed,
};
pub use error::DecodeError;
pub use event::{Event, EventData, SCHEMA_VERSION};
pub use event_type::{EventType, UnknownEventType};
pub use fare_rules::MAX_PAYMENT_TOKEN_LEN;
pub use ids::{CustomerId, EventId, FareId, InvalidId, ID_CHARSET, ID_PATTERN, MAX_ID_LEN};
pub use marker::FailureMarker;
pub use money::{is_valid_fare_amount, Currency, UnknownCurrency, MAX_FARE_MINOR, MIN_FARE_MINOR};
pub use request::{derived_event_id, ReceivedFareRequest, FARE_REQUEST_NAMESPACE};
pub use schema::{json_schema, json_schemas};
pub use topic::{Topic, TopicNames};
