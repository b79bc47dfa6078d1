//! `fares request`: publishes one `FareRequested` (a full SPEC §3 envelope) to `fare-requests`,
//! keyed by the fare id, and waits for the broker's acknowledgement. With `--wait`, then
//! follows `fare-outcomes` until the fare's outcome arrives.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the request starts the fare's trace: a root
//! `send fare-requests` span, whose context goes with the message (`traceparent`), so that
//! every step of both services is in one trace.
//!
//! Input is checked here first, with the same rules as the payment-service, so a typo never
//! reaches Kafka. (To publish an invalid request on purpose, use kcat; see the README.)

use std::time::Duration;

use anyhow::anyhow;
use events_schema::{
    cloud_events, is_valid_fare_amount, Currency, CustomerId, Event, EventData, FareId,
    FareRequested, Topic, MAX_FARE_MINOR, MIN_FARE_MINOR,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use transactional_messaging::kafka::producer;
use transactional_messaging::{shutdown, trace};

use crate::broker::{Kafka, Start, KAFKA_TIMEOUT};
use crate::detail::describe;
use crate::exit;
use crate::money::{format_amount, parse_amount};
use crate::outcomes::{self, Received};

/// `fares request`
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The fare (saga) id, also the Kafka key: 1–64 characters of [A-Za-z0-9._:-].
    /// Default: `wr_` and 10 random hex digits. Re-sending the same id with the same details
    /// is safe: the payment-service ignores an identical request.
    #[arg(long, value_name = "ID")]
    pub fare_id: Option<String>,
    /// The rider to charge: 1–64 characters of [A-Za-z0-9._:-]. Endings force failures
    /// (SPEC §5): _fail_auth, _fail_charge, _fail_credit, _fail_credit_fail_refund.
    #[arg(long, value_name = "ID")]
    pub customer: String,
    /// The fare as a decimal in the currency's units, e.g. 20.00 or 20.5 (USD), 500 (JPY).
    /// Converted exactly to minor units; more decimal places than the currency has is an error.
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub amount: String,
    /// ISO 4217 currency code.
    #[arg(long, default_value = "USD", value_name = "CODE")]
    pub currency: String,
    /// The tokenised card (never a raw card number).
    #[arg(long, default_value = "tok_visa", value_name = "TOKEN")]
    pub token: String,
    /// After publishing, follow fare-outcomes until this fare's outcome arrives and print it
    /// (on stderr). Exit code 0 when collected, 1 when not collected, 2 on timeout.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how many seconds to wait for the outcome.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", requires = "wait")]
    pub timeout: u64,
}

/// Publishes the request (and waits for its outcome with `--wait`).
pub async fn run(args: RequestArgs) -> anyhow::Result<()> {
    let event = build(&args)?;
    let kafka = Kafka::from_env()?;
    let requests = kafka.topic(Topic::FareRequests);
    kafka.require(Topic::FareRequests).await?;
    // Where fare-outcomes ends now: the outcome of this fare can only be written after it.
    let outcomes_start = if args.wait {
        let partitions = kafka.require(Topic::FareOutcomes).await?;
        let topic = kafka.topic(Topic::FareOutcomes);
        Some(Start::At(kafka.end_offsets(&topic, partitions).await?))
    } else {
        None
    };

    publish(&kafka, &requests, &event).await?;
    // The root span is exported before the wait (and before a Ctrl-C during it).
    tokio::task::spawn_blocking(trace::flush).await?;
    println!("{}", event.fare_id);
    eprintln!(
        "requested fare {}: {}",
        event.fare_id,
        describe(&event.data)
    );

    match outcomes_start {
        Some(start) => {
            wait_for_outcome(
                &kafka,
                &event.fare_id,
                &start,
                Duration::from_secs(args.timeout),
            )
            .await
        }
        None => Ok(()),
    }
}

/// The `FareRequested` event for `args`, or what is wrong with them.
pub fn build(args: &RequestArgs) -> anyhow::Result<Event> {
    let fare_id = match &args.fare_id {
        Some(id) => {
            FareId::parse(id).map_err(|e| anyhow!("--fare-id is invalid: it {}", e.problem()))?
        }
        None => generated_fare_id(),
    };
    let customer_id = CustomerId::parse(&args.customer)
        .map_err(|e| anyhow!("--customer is invalid: it {}", e.problem()))?;
    let currency = Currency::parse(&args.currency.trim().to_ascii_uppercase())
        .map_err(|e| anyhow!("--currency is invalid: {e}"))?;
    let amount_minor = parse_amount(&args.amount, currency)
        .map_err(|e| anyhow!("--amount {:?} {}", args.amount.trim(), e.problem()))?;
    if !is_valid_fare_amount(amount_minor) {
        anyhow::bail!(
            "--amount {} is outside the fare range {} to {} ({MIN_FARE_MINOR} to {MAX_FARE_MINOR} minor units); \
             to send an invalid request on purpose, publish it with kcat (see the README)",
            format_amount(amount_minor, currency),
            format_amount(MIN_FARE_MINOR, currency),
            format_amount(MAX_FARE_MINOR, currency),
        );
    }
    let data = FareRequested {
        customer_id,
        amount_minor,
        currency,
        payment_token: args.token.clone(),
    };
    let problems = data.problems();
    if !problems.is_empty() {
        anyhow::bail!(
            "the request is invalid: {}",
            problems
                .iter()
                .map(|p| flag_names(p))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(Event::start_saga(fare_id, EventData::FareRequested(data)))
}

/// A new fare id: `wr_` and 10 random hex digits.
pub fn generated_fare_id() -> FareId {
    let random = uuid::Uuid::new_v4().simple().to_string();
    FareId::parse(&format!("wr_{}", &random[..10])).expect("wr_ and hex digits is a valid fare id")
}

/// A problem text of the schema's rules, with the CLI's flag names instead of JSON paths.
fn flag_names(problem: &str) -> String {
    problem
        .replace("data.payment_token", "--token")
        .replace("data.customer_id", "--customer")
        .replace("data.amount_minor", "--amount (in minor units)")
}

/// Sends `event` keyed by its fare id and waits for the broker's acknowledgement.
pub async fn publish(kafka: &Kafka, topic: &str, event: &Event) -> anyhow::Result<()> {
    let producer = producer(kafka.bootstrap())?;
    let payload = event.encode();
    let key = event.fare_id.as_str();
    let mut headers = OwnedHeaders::new().insert(Header {
        key: "event_type",
        value: Some(event.event_type().as_str()),
    });
    let span = if trace::init_from_env("fares")? {
        trace::send_root_span(
            Topic::FareRequests.base_name(),
            topic,
            &event.event_id.to_string(),
            key,
            event.event_type().as_str(),
        )
    } else {
        trace::Span::none()
    };
    let mut trace_headers = std::collections::BTreeMap::new();
    span.inject(&mut trace_headers);
    let cloud_events = cloud_events::headers(event, "fares-cli")
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value));
    for (name, value) in cloud_events.chain(trace_headers) {
        headers = headers.insert(Header {
            key: &name,
            value: Some(value.as_str()),
        });
    }
    let record = FutureRecord::to(topic)
        .key(key)
        .payload(&payload)
        .headers(headers);
    let not_acknowledged = || {
        format!(
            "{} — no acknowledgement for fare {key} within {} s. It may still arrive: check with \
             `fares status {key}`; re-sending with --fare-id {key} and the same details is safe",
            kafka.unreachable(),
            KAFKA_TIMEOUT.as_secs()
        )
    };
    let sent = match tokio::time::timeout(KAFKA_TIMEOUT, producer.send(record, Duration::ZERO))
        .await
    {
        Ok(Ok(delivery)) => {
            trace::delivered(&span, delivery.partition, delivery.offset);
            Ok(())
        }
        Ok(Err((error, _message))) => Err(anyhow::Error::new(error).context(not_acknowledged())),
        Err(_elapsed) => Err(anyhow!(not_acknowledged())),
    };
    if let Err(error) = &sent {
        span.fail(|| format!("{error:#}"));
    }
    span.end();
    sent
}

/// Reads fare-outcomes from `start` until `fare_id`'s outcome, Ctrl-C or the timeout.
async fn wait_for_outcome(
    kafka: &Kafka,
    fare_id: &FareId,
    start: &Start,
    timeout: Duration,
) -> anyhow::Result<()> {
    let topic = kafka.topic(Topic::FareOutcomes);
    let reader = kafka.reader(&topic, start)?;
    eprintln!(
        "waiting up to {} s for the outcome on {topic}…",
        timeout.as_secs()
    );
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let shutdown = shutdown::signal();
    tokio::pin!(shutdown);
    let mut warnings = outcomes::Warnings::default();
    loop {
        let message = tokio::select! {
            _ = &mut deadline => anyhow::bail!(
                "no outcome for fare {fare_id} within {} s — the services may be down or busy, or the \
                 fare was requested before (a repeated request is ignored): see \
                 `fares status {fare_id}` and `scripts/stack status`",
                timeout.as_secs()
            ),
            _ = &mut shutdown => anyhow::bail!(
                "interrupted; fare {fare_id} was requested — follow it with `fares status {fare_id}`"
            ),
            message = outcomes::next_message(&reader, &topic, kafka.bootstrap(), &mut warnings) => message?,
        };
        let received = Received::from_message(&message);
        let Received::Event(event) = received else {
            continue;
        };
        if event.fare_id != *fare_id || !event.event_type().is_outcome() {
            continue;
        }
        eprintln!("{}", outcomes::line(&event));
        return match event.data {
            EventData::FareCollected(_) => Ok(()),
            _ => Err(exit::negative(format!("fare {fare_id} was not collected"))),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(amount: &str) -> RequestArgs {
        RequestArgs {
            fare_id: Some("wr_563".into()),
            customer: "3".into(),
            amount: amount.into(),
            currency: "USD".into(),
            token: "tok_visa".into(),
            wait: false,
            timeout: 30,
        }
    }

    fn error(args: &RequestArgs) -> String {
        format!("{:#}", build(args).unwrap_err())
    }

    #[test]
    fn builds_a_full_fare_requested_envelope() {
        let event = build(&args("20.00")).unwrap();
        assert_eq!(event.fare_id.as_str(), "wr_563");
        assert_eq!(event.causation_id, event.event_id);
        assert_eq!(event.correlation_id, event.event_id);
        let EventData::FareRequested(data) = &event.data else {
            panic!("{:?}", event.data)
        };
        assert_eq!(data.amount_minor, 2000);
        assert_eq!(data.currency.as_str(), "USD");
        assert_eq!(data.customer_id.as_str(), "3");
        assert_eq!(data.payment_token, "tok_visa");
        // What goes on the wire is what the services decode.
        assert_eq!(Event::decode(&event.encode()).unwrap(), event);
    }

    #[test]
    fn generates_a_fare_id_when_none_is_given() {
        let mut a = args("20");
        a.fare_id = None;
        let first = build(&a).unwrap().fare_id;
        let second = build(&a).unwrap().fare_id;
        assert!(first.as_str().starts_with("wr_"), "{first}");
        assert_eq!(first.as_str().len(), 13);
        assert_ne!(first, second);
    }

    #[test]
    fn currency_and_its_digits() {
        let mut a = args("500");
        a.currency = "jpy".into();
        let EventData::FareRequested(data) = build(&a).unwrap().data else {
            panic!()
        };
        assert_eq!((data.amount_minor, data.currency.as_str()), (500, "JPY"));
        a.currency = "XXX".into();
        assert!(error(&a).contains("--currency is invalid"), "{}", error(&a));
        a.currency = "USD".into();
        a.amount = "20.001".into();
        assert!(
            error(&a).contains("USD has 2 decimal places"),
            "{}",
            error(&a)
        );
    }

    #[test]
    fn reports_bad_ids_with_the_rule() {
        let mut a = args("20");
        a.fare_id = Some("wr 1".into());
        let e = error(&a);
        assert!(e.starts_with("--fare-id is invalid"), "{e}");
        assert!(e.contains("[A-Za-z0-9._:-]"), "{e}");
        let mut a = args("20");
        a.customer = String::new();
        assert!(
            error(&a).starts_with("--customer is invalid: it is empty"),
            "{}",
            error(&a)
        );
    }

    #[test]
    fn reports_amounts_outside_the_fare_range() {
        for amount in ["0", "10000.01", "-1", "abc"] {
            let e = error(&args(amount));
            assert!(e.contains("--amount"), "{amount}: {e}");
        }
        assert!(error(&args("0")).contains("0.01 USD to 10000.00 USD"));
        assert!(build(&args("10000")).is_ok());
    }

    #[test]
    fn refuses_a_raw_card_number_as_token() {
        let mut a = args("20");
        a.token = "4242 4242 4242 4242".into();
        let e = error(&a);
        assert!(e.contains("--token looks like a raw card number"), "{e}");
        assert!(!e.contains("4242 4242"), "{e}");
    }
}
