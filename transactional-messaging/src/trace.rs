//! Distributed tracing: one trace per fare, across both services, through the outbox.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`init_from_env`]): then spans are exported
//! over OTLP/HTTP (protobuf) by a batch exporter, under `OTEL_SERVICE_NAME` (default: the
//! service's name). Off, every function here is a check of one static and returns at once: no
//! span, no header read or written, no allocation.
//!
//! How a fare's trace crosses the services (W3C Trace Context, `traceparent` / `tracestate`):
//! - the consumer reads the headers of each message ([`Carrier::of_kafka`]) and starts a
//!   `process <topic>` span with that context as parent ([`process_span`]), or a new trace when
//!   there is none (a request typed with kcat);
//! - the events a message causes are written to the outbox with the context of that span in
//!   their row's `headers` ([`Span::inject`]): the context survives a crash, a sweep, a restart;
//! - the relay sends each row under a `send <topic>` span, child of the row's context, and
//!   puts *that* span's context in the Kafka headers ([`send_span`]);
//! - work done out of band carries the context with it: a gateway call runs in its message's
//!   span ([`Span::in_scope`]), a compensation continues the context the inbox kept for the
//!   event that started it.
//!
//! Span names and attributes follow the OpenTelemetry semantic conventions for messaging
//! (Kafka). No attribute ever holds a payment token or a card number: only topic names, keys
//! (fare ids), offsets, event ids and types.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::OnceLock;

use futures::future::Either;
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use rdkafka::message::{BorrowedHeaders, Headers};

pub use opentelemetry::trace::SpanKind as Kind;
pub use opentelemetry::KeyValue as Attribute;

/// The W3C Trace Context headers, on Kafka messages and in outbox rows.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Semantic-convention attribute names (messaging, Kafka), and the saga's own.
pub mod attribute {
    pub const MESSAGING_SYSTEM: &str = "messaging.system";
    pub const OPERATION_TYPE: &str = "messaging.operation.type";
    pub const OPERATION_NAME: &str = "messaging.operation.name";
    pub const DESTINATION: &str = "messaging.destination.name";
    pub const PARTITION: &str = "messaging.destination.partition.id";
    pub const MESSAGE_KEY: &str = "messaging.kafka.message.key";
    pub const OFFSET: &str = "messaging.kafka.offset";
    pub const CONSUMER_GROUP: &str = "messaging.consumer.group.name";
    pub const MESSAGE_ID: &str = "messaging.message.id";
    pub const BODY_SIZE: &str = "messaging.message.body.size";
    pub const FARE_ID: &str = "fare_id";
    pub const EVENT_TYPE: &str = "event_type";
    /// What became of a consumed message: `processed`, `ignored`, `dead_lettered`.
    pub const DISPOSITION: &str = "wildrydes.disposition";
}

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

fn tracer() -> Option<&'static SdkTracer> {
    TRACING.get().map(|tracing| &tracing.tracer)
}

/// Whether spans are recorded and exported (`OTEL_EXPORTER_OTLP_ENDPOINT` was set at start).
pub fn enabled() -> bool {
    TRACING.get().is_some()
}

/// Turns tracing on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (empty counts as unset), with
/// `OTEL_SERVICE_NAME` or else `default_service_name` as the service's name. The exporter
/// reads the standard `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` variables. Returns whether it is
/// on. Once per process: a second call keeps the first exporter.
pub fn init_from_env(default_service_name: &str) -> anyhow::Result<bool> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if endpoint.trim().is_empty() {
        return Ok(false);
    }
    if enabled() {
        return Ok(true);
    }
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default_service_name.to_owned());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|error| {
            anyhow::anyhow!(
                "OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot build the OTLP exporter: {error}"
            )
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    let tracer = provider.tracer("wildrydes");
    let _ = TRACING.set(Tracing { provider, tracer });
    Ok(true)
}

/// Exports the spans ended so far (the batch exporter would within `OTEL_BSP_SCHEDULE_DELAY`):
/// at shutdown, before the process exits.
pub fn flush() {
    if let Some(state) = TRACING.get() {
        if let Err(error) = state.provider.force_flush() {
            tracing::warn!(%error, "could not export the last spans");
        }
    }
}

/// The trace context a message carries: its `traceparent` and `tracestate`, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carrier {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Carrier {
    /// The trace headers of a consumed message; nothing read when tracing is off.
    pub fn of_kafka(headers: Option<&BorrowedHeaders>) -> Carrier {
        let mut carrier = Carrier::default();
        let Some(headers) = headers.filter(|_| enabled()) else {
            return carrier;
        };
        for header in headers.iter() {
            let value = || {
                header
                    .value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            match header.key {
                TRACEPARENT => carrier.traceparent = value(),
                TRACESTATE => carrier.tracestate = value(),
                _ => {}
            }
        }
        carrier
    }

    /// The trace headers among an outbox row's headers.
    pub fn of_headers(headers: &BTreeMap<String, String>) -> Carrier {
        Carrier {
            traceparent: headers.get(TRACEPARENT).cloned(),
            tracestate: headers.get(TRACESTATE).cloned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// The remote parent it names (an empty context when it names none, or a malformed one).
    fn context(&self) -> Context {
        if self.is_empty() {
            return Context::new();
        }
        TraceContextPropagator::new().extract(self)
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

struct HeaderMap<'a>(&'a mut BTreeMap<String, String>);

impl Injector for HeaderMap<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// One of our spans, or nothing when tracing is off (every method is then a no-op). Clones
/// share the span; it ends at [`Span::end`], or when the last clone is dropped.
#[derive(Clone, Default)]
pub struct Span(Option<Context>);

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(cx) => write!(f, "Span({:?})", cx.span().span_context().span_id()),
            None => f.write_str("Span(off)"),
        }
    }
}

impl Span {
    /// No span (tracing off, or nothing to trace).
    pub fn none() -> Span {
        Span(None)
    }

    fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: &Context,
        attributes: Vec<KeyValue>,
    ) -> Span {
        let Some(tracer) = tracer() else {
            return Span::none();
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        Span(Some(parent.with_span(span)))
    }

    /// A span of the work in progress (the span of the future polling it, see
    /// [`Span::in_scope`]); none when that work belongs to no trace.
    pub fn child(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        if !enabled() {
            return Span::none();
        }
        let current = Context::current();
        if !current.has_active_span() {
            return Span::none();
        }
        Span::start(name, kind, &current, attributes())
    }

    /// A span continuing the trace `parent` names (a new trace when it names none).
    pub fn follow(
        parent: &Carrier,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        if !enabled() {
            return Span::none();
        }
        Span::start(name, kind, &parent.context(), attributes())
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub fn set(&self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(attribute());
        }
    }

    pub fn event(&self, name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = &self.0 {
            cx.span().add_event(name, attributes());
        }
    }

    /// Marks the span failed, with why.
    pub fn fail(&self, why: impl FnOnce() -> String) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(why()));
        }
    }

    pub fn end(&self) {
        if let Some(cx) = &self.0 {
            cx.span().end();
        }
    }

    /// Writes this span's context into `headers` (an outbox row's, or a message's).
    pub fn inject(&self, headers: &mut BTreeMap<String, String>) {
        if let Some(cx) = &self.0 {
            TraceContextPropagator::new().inject_context(cx, &mut HeaderMap(headers));
        }
    }

    /// This span's context as a [`Carrier`] (to keep it, e.g. in the inbox).
    pub fn carrier(&self) -> Carrier {
        let mut headers = BTreeMap::new();
        self.inject(&mut headers);
        Carrier::of_headers(&headers)
    }

    /// `future`, with this span current while it runs: spans started inside it
    /// ([`Span::child`]) are its children.
    pub fn in_scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        match &self.0 {
            Some(cx) => Either::Left(future.with_context(cx.clone())),
            None => Either::Right(future),
        }
    }
}

/// The attributes every messaging span has.
fn messaging(operation: &'static str, topic: &str, key: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(attribute::MESSAGING_SYSTEM, "kafka"),
        KeyValue::new(attribute::OPERATION_TYPE, operation),
        KeyValue::new(attribute::OPERATION_NAME, operation),
        KeyValue::new(attribute::DESTINATION, topic.to_owned()),
    ];
    if let Some(key) = key {
        attributes.push(KeyValue::new(attribute::MESSAGE_KEY, key.to_owned()));
    }
    attributes
}

/// What a consumer span says of the message it processes.
#[derive(Debug, Clone)]
pub struct Received<'a> {
    /// The topic's SPEC §2 name (the span's name); `topic` is the name on the broker.
    pub base_topic: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a str>,
    pub group: &'a str,
    pub fare_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub event_id: Option<String>,
}

/// The `process <topic>` span of a consumed message, child of the context it carries.
pub fn process_span(parent: &Carrier, received: Received<'_>) -> Span {
    Span::follow(
        parent,
        format!("process {}", received.base_topic),
        SpanKind::Consumer,
        || {
            let mut attributes = messaging("process", received.topic, received.key);
            attributes.extend([
                KeyValue::new(attribute::PARTITION, received.partition.to_string()),
                KeyValue::new(attribute::OFFSET, received.offset),
                KeyValue::new(attribute::CONSUMER_GROUP, received.group.to_owned()),
            ]);
            saga_attributes(&mut attributes, received.fare_id, received.event_type);
            if let Some(id) = received.event_id {
                attributes.push(KeyValue::new(attribute::MESSAGE_ID, id));
            }
            attributes
        },
    )
}

/// The `send <topic>` span of a message being published, child of the context of the span
/// that produced it (`parent`, from its outbox row or its caller). `None` when tracing is off
/// or the message belongs to no trace (written while tracing was off): it is sent as it is.
pub fn send_span(
    parent: &Carrier,
    base_topic: &str,
    topic: &str,
    message_id: uuid::Uuid,
    key: Option<&str>,
    headers: &BTreeMap<String, String>,
) -> Span {
    if parent.is_empty() {
        return Span::none();
    }
    Span::follow(
        parent,
        format!("send {base_topic}"),
        SpanKind::Producer,
        || {
            let mut attributes = messaging("send", topic, key);
            saga_attributes(
                &mut attributes,
                key,
                headers.get("event_type").map(String::as_str),
            );
            attributes.push(KeyValue::new(attribute::MESSAGE_ID, message_id.to_string()));
            attributes
        },
    )
}

/// The root `send <topic>` span of a message that starts a trace (a fare requested by the
/// CLI).
pub fn send_root_span(
    base_topic: &str,
    topic: &str,
    message_id: &str,
    key: &str,
    event_type: &str,
) -> Span {
    Span::follow(
        &Carrier::default(),
        format!("send {base_topic}"),
        SpanKind::Producer,
        || {
            let mut attributes = messaging("send", topic, Some(key));
            saga_attributes(&mut attributes, Some(key), Some(event_type));
            attributes.push(KeyValue::new(attribute::MESSAGE_ID, message_id.to_owned()));
            attributes
        },
    )
}

/// Where the broker put a message a `send` span sent.
pub fn delivered(span: &Span, partition: i32, offset: i64) {
    span.set(|| KeyValue::new(attribute::PARTITION, partition.to_string()));
    span.set(|| KeyValue::new(attribute::OFFSET, offset));
}

fn saga_attributes(
    attributes: &mut Vec<KeyValue>,
    fare_id: Option<&str>,
    event_type: Option<&str>,
) {
    if let Some(fare_id) = fare_id {
        attributes.push(KeyValue::new(attribute::FARE_ID, fare_id.to_owned()));
    }
    if let Some(event_type) = event_type {
        attributes.push(KeyValue::new(attribute::EVENT_TYPE, event_type.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_it_records_and_writes_nothing() {
        let span = Span::follow(
            &Carrier {
                traceparent: Some(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
                ),
                tracestate: None,
            },
            "process fare-requests",
            SpanKind::Consumer,
            || panic!("no attributes are built when tracing is off"),
        );
        assert!(!span.is_on());
        let mut headers = BTreeMap::new();
        span.inject(&mut headers);
        assert!(headers.is_empty());
        assert!(span.carrier().is_empty());
    }

    #[test]
    fn a_carrier_names_its_parent() {
        let carrier = Carrier {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            tracestate: Some("wr=1".to_owned()),
        };
        let cx = carrier.context();
        let parent = cx.span().span_context().clone();
        assert!(parent.is_remote() && parent.is_sampled());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(parent.trace_state().header(), "wr=1");

        let mut headers = BTreeMap::new();
        headers.insert(TRACEPARENT.to_owned(), "not a traceparent".to_owned());
        let cx = Carrier::of_headers(&headers).context();
        assert!(!cx.span().span_context().is_valid());
    }
}
