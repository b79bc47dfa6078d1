//! Contract tests of events-schema through its public API: committed JSON Schemas, the
//! example events, envelope decoding and the `fare-requests` reader.

mod decode;
mod examples;
mod mini_schema;
mod request;
mod schemas;

use std::path::PathBuf;

/// A path inside the events-schema package.
pub fn package_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}
