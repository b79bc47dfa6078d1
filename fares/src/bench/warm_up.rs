//! `fares warm-up`: a freshly started broker is slow until its JVM has compiled its hot
//! paths. On the 2-core machine, the first 30–50 s of a 500 fares/s run spend about 30 s of
//! the broker's time in the JIT compiler, and the saga's p99 in that time is several times
//! its steady value. The warm-up sends raw messages (no fares, no database) through the
//! saga's consume → produce hops on a scratch topic, with the services' producer settings,
//! for a while, printing each 10 s window's latency, so the cooling of the broker shows; then
//! it sends them once more, as a burst through a topic of 6 partitions (the raw Kafka baseline
//! of `fares bench`). It deletes both topics. `scripts/stack up --release` runs it before it reports the stack
//! ready.

use std::time::Duration;

use anyhow::Context;

use super::baseline::hops::{self, Windows, HOPS};
use super::baseline::kafka::{self as raw_kafka, ScratchTopic};
use super::figures::{Percentiles, WINDOW_S};
use super::interrupt::Interrupt;
use super::load::PlannedFare;
use super::report;
use crate::broker::Kafka;
use crate::exit;

/// Bytes of each message: about a fare request's.
const MESSAGE_BYTES: usize = 160;
const MAX_MESSAGES: f64 = 10_000_000.0;

/// `fares warm-up`
#[derive(Debug, clap::Args)]
pub struct WarmUpArgs {
    /// How long to send (e.g. 30s, 1m); 0 does nothing (a way to skip it in a script).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Messages per second into the first hop (each hop writes them again).
    #[arg(long, default_value_t = 1000.0, value_name = "MSGS_PER_S", value_parser = super::positive_rate)]
    pub rate: f64,
}

/// The warm-up's messages: `broker-warm-up-<i>`, same-size payloads.
fn messages(rate: f64, duration: Duration) -> anyhow::Result<Vec<PlannedFare>> {
    let n = (rate * duration.as_secs_f64()).round();
    anyhow::ensure!(
        (1.0..=MAX_MESSAGES).contains(&n),
        "--rate × --duration is {n} messages; it must be between 1 and {MAX_MESSAGES}"
    );
    Ok((0..n as usize)
        .map(|i| PlannedFare {
            fare_id: format!("broker-warm-up-{i}"),
            payload: vec![b'w'; MESSAGE_BYTES],
        })
        .collect())
}

/// Messages per progress window: [`WINDOW_S`] seconds of them at `rate`, at least one.
fn window_size(rate: f64) -> usize {
    (rate * WINDOW_S as f64).round().max(1.0) as usize
}

/// The progress line of window `window` (its messages were sent from `window × WINDOW_S`
/// seconds on, to the next window or the end of `duration`).
fn window_line(window: usize, duration: Duration, latency: Option<Percentiles>) -> String {
    let from = window as f64 * WINDOW_S as f64;
    let to = (from + WINDOW_S as f64).min(duration.as_secs_f64());
    match latency {
        Some(p) => format!(
            "warm-up: {from:.0}–{to:.0} s through {HOPS} hops: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
            p.p50, p.p99, p.max
        ),
        None => format!("warm-up: {from:.0}–{to:.0} s: no messages"),
    }
}

/// Runs the warm-up, printing a line per window on stderr.
pub async fn run(args: WarmUpArgs) -> anyhow::Result<()> {
    if args.duration.is_zero() {
        eprintln!("fares warm-up: --duration 0, no warm-up");
        return Ok(());
    }
    let kafka = Kafka::from_env()?;
    let messages = messages(args.rate, args.duration)?;
    let mut interrupt = Interrupt::on_signal();
    let run = super::run_id();
    let topic = format!("fares-warm-up.{run}{}", kafka.names.suffix());
    eprintln!(
        "fares warm-up: {} messages of {MESSAGE_BYTES} bytes at {} msgs/s over {:.0} s through \
         {HOPS} consume → produce hops of the scratch topic {topic} (no fares); Ctrl-C stops",
        report::thousands(messages.len() as u64),
        report::rate(args.rate),
        args.duration.as_secs_f64(),
    );
    let scratch = ScratchTopic::create(&kafka, topic, HOPS as i32 + 1)
        .await
        .with_context(|| format!("fares warm-up needs Kafka at {}", kafka.bootstrap()))?;
    let duration = args.duration;
    let progress = Windows {
        size: window_size(args.rate),
        through: Box::new(move |window, latency| {
            eprintln!(
                "{}",
                window_line(window, duration, Percentiles::of(latency))
            );
        }),
    };
    let through = hops::through_hops(
        &kafka,
        &scratch.name,
        &messages,
        args.rate,
        progress,
        &mut interrupt,
    )
    .await;
    scratch.delete().await;
    if through?.is_none() {
        return Err(exit::negative("warm-up interrupted"));
    }
    // The hops' requests each carry one partition; the services' carry several topics and
    // partitions. A burst of the same messages through a topic of 6 partitions, produced and
    // consumed back as fast as they go, gives the broker's compiler those shapes too.
    eprintln!(
        "warm-up: a burst of the {} messages through a scratch topic of 6 partitions…",
        report::thousands(messages.len() as u64)
    );
    match raw_kafka::measure(&kafka, &run, &messages, &mut interrupt).await? {
        Some(burst) => {
            eprintln!(
                "warm-up: the burst: {} msgs/s produced and consumed back",
                report::rate(burst.msgs_per_s)
            );
            Ok(())
        }
        None => Err(exit::negative("warm-up interrupted")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_are_rate_times_duration_with_distinct_keys() {
        let sent = messages(1000.0, Duration::from_secs(3)).unwrap();
        assert_eq!(sent.len(), 3000);
        let keys: std::collections::HashSet<_> = sent.iter().map(|m| &m.fare_id).collect();
        assert_eq!(keys.len(), 3000);
        assert!(sent.iter().all(|m| m.payload.len() == MESSAGE_BYTES));
        let error = messages(0.01, Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("between 1 and"), "{error}");
    }

    #[test]
    fn windows_are_ten_seconds_of_messages_and_lines_name_their_span() {
        assert_eq!(window_size(1000.0), 10_000);
        assert_eq!(window_size(0.01), 1);
        let latency = Percentiles {
            count: 10,
            p50: 3.0,
            p90: 8.0,
            p99: 12.5,
            p99_9: 20.0,
            max: 21.0,
            mean: 4.0,
        };
        assert_eq!(
            window_line(1, Duration::from_secs(30), Some(latency)),
            "warm-up: 10–20 s through 4 hops: p50 3.0 ms · p99 12.5 ms · max 21.0 ms"
        );
        assert_eq!(
            window_line(2, Duration::from_secs(25), None),
            "warm-up: 20–25 s: no messages"
        );
    }
}
