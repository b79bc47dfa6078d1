//! `fares watch`: prints every outcome on `fare-outcomes` as it arrives, until Ctrl-C.
//!
//! It reads every partition without joining a consumer group and commits nothing, so it never
//! takes messages away from anyone and leaves no state on the broker.

use anyhow::anyhow;
use events_schema::{FareId, Topic};
use transactional_messaging::shutdown;

use crate::broker::{Kafka, Start};
use crate::outcomes::{self, Received};

/// `fares watch`
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Start with the oldest outcome Kafka still keeps (default: only new outcomes).
    #[arg(long)]
    pub from_beginning: bool,
    /// Only this fare's outcome.
    #[arg(long, value_name = "ID")]
    pub fare: Option<String>,
    /// Print each event's JSON exactly as it is on the topic, one per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many outcomes.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Follows the topic until Ctrl-C / SIGTERM (or `--count`).
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let only = args
        .fare
        .as_deref()
        .map(|id| FareId::parse(id).map_err(|e| anyhow!("--fare is invalid: it {}", e.problem())))
        .transpose()?;
    let kafka = Kafka::from_env()?;
    let topic = kafka.topic(Topic::FareOutcomes);
    let partitions = kafka.require(Topic::FareOutcomes).await?;
    let start = if args.from_beginning {
        Start::Beginning(partitions)
    } else {
        Start::End(partitions)
    };
    let reader = kafka.reader(&topic, &start)?;
    eprintln!(
        "watching {topic} on {} ({}); Ctrl-C to stop",
        kafka.bootstrap(),
        if args.from_beginning {
            "from the oldest kept"
        } else {
            "new outcomes only"
        }
    );

    let shutdown = shutdown::signal();
    tokio::pin!(shutdown);
    let mut printed = 0_u64;
    let mut warnings = outcomes::Warnings::default();
    while args.count.is_none_or(|n| printed < n) {
        let message = tokio::select! {
            _ = &mut shutdown => break,
            message = outcomes::next_message(&reader, &topic, kafka.bootstrap(), &mut warnings) => message?,
        };
        let received = Received::from_message(&message);
        if only
            .as_ref()
            .is_some_and(|id| received.fare_id() != Some(id.as_str()))
        {
            continue;
        }
        if args.json {
            if let Some(payload) = rdkafka::Message::payload(&message) {
                println!("{}", String::from_utf8_lossy(payload).trim_end());
                printed += 1;
            }
            continue;
        }
        match received {
            Received::Event(event) => {
                println!("{}", outcomes::line(&event));
                printed += 1;
            }
            Received::Unreadable {
                position, reason, ..
            } => eprintln!(
                "warning: skipped the message at {topic} {position}: not an event: {reason}"
            ),
        }
    }
    Ok(())
}
