//! `fares bench`: a load benchmark of the running saga, with a baseline of raw Kafka and raw
//! PostgreSQL measured in the same run.
//!
//! - [`mix`]: which share of the fares takes which SPEC §5 path, and which fare gets which;
//! - [`schedule`]: the open loop (`--rate`): when each fare is due;
//! - [`load`]: sends the fares and follows their outcomes;
//! - [`tally`]: what was seen of each fare, and the counts per outcome and marker;
//! - [`figures`]: throughput and HDR latency percentiles;
//! - [`processes`]: CPU and RSS of the services, from `/proc`;
//! - [`baseline`]: raw Kafka produce → consume, raw Kafka through a saga's hops (`--rate`),
//!   raw PostgreSQL commits, and the comparison;
//! - [`progress`], [`report`]: what the user sees;
//! - [`warm_up`]: `fares warm-up`, raw Kafka through the hops until the broker's JIT is warm.
//!
//! The bench only writes `fare-requests`, reads `fare-outcomes` (without a consumer group),
//! and, for the baseline, scratch topics and a scratch schema it creates and removes.

mod baseline;
mod figures;
mod interrupt;
mod load;
mod mix;
mod outcome;
mod processes;
mod progress;
mod report;
mod schedule;
mod tally;
mod warm_up;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use events_schema::Topic;

use self::baseline::postgres::PostgresPlan;
use self::baseline::{Baseline, Comparison};
use self::interrupt::Interrupt;
use self::load::{Ending, Load};
use self::mix::Mix;
use self::progress::Progress;
use self::report::Report;
use self::schedule::Schedule;
use self::tally::Tally;
use crate::broker::Kafka;
use crate::exit;

pub use self::warm_up::{run as warm_up, WarmUpArgs};

const DEFAULT_DATABASE_URL: &str =
    "postgres://wildrydes_admin:wildrydes_admin@localhost:5432/wildrydes";

/// `fares bench`
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// How many fares to publish.
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub fares: u32,
    /// Share of each SPEC §5 path, as whole-number weights: happy, fail_auth, fail_charge,
    /// fail_credit, fail_credit_fail_refund, fail_charge_fail_release, slow_gateway. The
    /// counts are exact and spread evenly over the run.
    #[arg(long, default_value = "happy=100", value_name = "NAME=WEIGHT,...")]
    pub mix: Mix,
    /// Offer this many fares per second, on schedule whatever the system does (open loop);
    /// latency then counts from each fare's intended send time, so a stall of the system
    /// (or of the bench) shows in it (no coordinated omission). Default: as fast as possible.
    #[arg(long, value_name = "FARES_PER_S", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Give up when no outcome has arrived for this long after the last fare was sent
    /// (e.g. 90s, 5m); the fares still without an outcome are reported and the exit code is 1.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object with every figure on stdout (progress goes to stderr as plain
    /// lines).
    #[arg(long)]
    pub json: bool,
    /// Skip the raw Kafka and PostgreSQL baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// PostgreSQL for the baseline, as a user who may create a schema (the admin).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL",
          default_value = DEFAULT_DATABASE_URL, hide_default_value = true)]
    pub database_url: String,
    /// How long the PostgreSQL baseline commits.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub postgres_duration: Duration,
    /// Concurrent connections of the PostgreSQL baseline.
    #[arg(long, default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub postgres_connections: u16,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of fares per second"
        )),
    }
}

/// A baseline measurement's figures; why they are missing goes to `errors`, named `what`.
fn figures<T>(
    what: &str,
    measured: anyhow::Result<Option<T>>,
    errors: &mut Vec<String>,
) -> Option<T> {
    match measured {
        Ok(Some(figures)) => Some(figures),
        Ok(None) => {
            errors.push(format!("{what}: interrupted"));
            None
        }
        Err(error) => {
            errors.push(format!("{what}: {error:#}"));
            None
        }
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let kafka = Kafka::from_env()?;
    let need_stack = || {
        format!(
            "fares bench needs the saga's topics and services: scripts/stack up (--release to \
             measure), with the same TOPIC_SUFFIX ({:?})",
            kafka.names.suffix()
        )
    };
    for topic in [Topic::FareRequests, Topic::FareOutcomes] {
        kafka.require(topic).await.with_context(need_stack)?;
    }
    let mut interrupt = Interrupt::on_signal();
    let run = run_id();
    let n = args.fares as usize;
    let markers = args.mix.assign(n);
    let fares = load::plan(&run, &markers);
    let mut tally = Tally::new(&markers);
    let interactive = !args.json && std::io::stderr().is_terminal();
    let mut progress = Progress::new(n, interactive);

    let suffix = kafka.names.suffix().to_owned();
    let found = processes::find_services(&suffix);
    for service in processes::SERVICES {
        if !found.iter().any(|(_, s)| *s == service) {
            eprintln!(
                "note: no {service} with TOPIC_SUFFIX={suffix:?} runs on this machine: its CPU \
                 and memory are not measured (scripts/stack status)"
            );
        }
    }
    eprintln!(
        "fares bench {run}: {} fares ({}) to {} on {}, {}; Ctrl-C stops and reports",
        report::thousands(n as u64),
        args.mix,
        kafka.topic(Topic::FareRequests),
        kafka.bootstrap(),
        match args.rate {
            Some(rate) => format!(
                "{} fares/s over {:.1} s",
                report::rate(rate),
                Schedule::new(n, Some(rate)).span().as_secs_f64()
            ),
            None => "as fast as possible".to_owned(),
        }
    );

    let sampler = processes::Sampler::start(&suffix);
    let load = Load {
        kafka: &kafka,
        run: &run,
        fares: &fares,
        schedule: Schedule::new(n, args.rate),
        timeout: args.timeout,
    };
    let ending = load.drive(&mut tally, &mut progress, &mut interrupt).await;
    let services = sampler.finish().await;
    progress.finish();
    let ending = ending?;
    let summary = tally.summary();

    let baseline = if args.no_baseline || ending == Ending::Interrupted {
        None
    } else {
        Some(measure_baseline(&args, &kafka, &run, &fares, &summary, &mut interrupt).await)
    };
    let report = Report {
        run,
        topic_suffix: suffix,
        mix: args.mix.to_string(),
        rate: args.rate,
        ending: match ending {
            Ending::Settled => "settled",
            Ending::TimedOut => "timed_out",
            Ending::Interrupted => "interrupted",
        },
        load: summary,
        services,
        baseline,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print!("{}", report.render());
    }
    verdict(&report, ending, args.timeout)
}

/// The baseline, each part's failure recorded rather than fatal (the saga's figures are in).
async fn measure_baseline(
    args: &BenchArgs,
    kafka: &Kafka,
    run: &str,
    fares: &[load::PlannedFare],
    summary: &tally::LoadSummary,
    interrupt: &mut Interrupt,
) -> Baseline {
    let mut errors = Vec::new();
    eprintln!(
        "baseline: raw Kafka, {} messages through a scratch topic…",
        report::thousands(fares.len() as u64)
    );
    let kafka_figures = figures(
        "raw Kafka",
        baseline::kafka::measure(kafka, run, fares, interrupt).await,
        &mut errors,
    );
    let hops_figures = match args.rate {
        Some(rate) if !interrupt.happened() => {
            eprintln!(
                "baseline: raw Kafka through {} hops at {} msgs/s…",
                baseline::hops::HOPS,
                report::rate(rate)
            );
            figures(
                "raw Kafka hops",
                baseline::hops::measure(kafka, run, fares, rate, interrupt).await,
                &mut errors,
            )
        }
        _ => None,
    };
    let postgres_figures = if interrupt.happened() {
        None
    } else {
        eprintln!(
            "baseline: raw PostgreSQL, {} connections committing for {} s…",
            args.postgres_connections,
            args.postgres_duration.as_secs_f64()
        );
        let plan = PostgresPlan {
            url: &args.database_url,
            run,
            connections: args.postgres_connections as usize,
            duration: args.postgres_duration,
            row: fares
                .first()
                .map(|f| f.payload.as_slice())
                .unwrap_or_default(),
        };
        figures(
            "raw PostgreSQL",
            baseline::postgres::measure(&plan, interrupt).await,
            &mut errors,
        )
    };
    let comparison = Comparison::new(
        summary.throughput.settled_per_s,
        summary.events_per_saga,
        summary.latency_ms.as_ref().map(|latency| latency.p99),
        kafka_figures.as_ref(),
        hops_figures.as_ref(),
        postgres_figures.as_ref(),
    );
    Baseline {
        kafka: kafka_figures,
        kafka_hops: hops_figures,
        postgres: postgres_figures,
        errors,
        comparison,
    }
}

/// The exit status of a run whose report is printed: what went wrong, if anything.
fn verdict(report: &Report, ending: Ending, timeout: Duration) -> anyhow::Result<()> {
    let load = &report.load;
    match ending {
        Ending::Interrupted => {
            return Err(exit::negative(format!(
                "interrupted: {} of {} fares sent, {} settled",
                report::thousands(load.sent as u64),
                report::thousands(load.planned as u64),
                report::thousands(load.settled as u64)
            )))
        }
        Ending::TimedOut => {
            return Err(exit::negative(format!(
                "timed out: {} of {} fares sent have no outcome after {} without one — are both \
                 services up and healthy? (scripts/stack status)",
                report::thousands(load.missing as u64),
                report::thousands(load.sent as u64),
                humantime::format_duration(timeout)
            )))
        }
        Ending::Settled => {}
    }
    if load.send_failures > 0 {
        return Err(exit::negative(format!(
            "{} request(s) were not acknowledged by Kafka",
            load.send_failures
        )));
    }
    if load.unexpected_outcomes > 0 || load.conflicting_outcomes > 0 {
        return Err(exit::negative(format!(
            "{} outcome(s) not as SPEC §5 says, {} fare(s) with two different outcomes",
            load.unexpected_outcomes, load.conflicting_outcomes
        )));
    }
    if let Some(errors) = report.baseline.as_ref().map(|b| &b.errors) {
        if !errors.is_empty() {
            anyhow::bail!("the baseline was not measured: {}", errors.join("; "));
        }
    }
    Ok(())
}

/// A new run id: the Unix time in hex and 4 random hex digits (`6929a3f1c0de`), so that fare
/// ids never repeat across runs and sort by time.
fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{secs:08x}{}", &random[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_short_unique_and_fit_in_a_fare_id() {
        let (a, b) = (run_id(), run_id());
        assert_ne!(a, b);
        assert!(a.len() <= 16, "{a}");
        let longest = format!("{}{}", load::fare_prefix(&a), 9_999_999);
        assert!(events_schema::FareId::parse(&longest).is_ok(), "{longest}");
    }

    #[test]
    fn a_rate_must_be_positive() {
        assert_eq!(positive_rate("100"), Ok(100.0));
        assert_eq!(positive_rate("0.5"), Ok(0.5));
        for bad in ["0", "-3", "fast", "inf", "NaN"] {
            assert!(positive_rate(bad).is_err(), "{bad}");
        }
    }
}
