//! The result of a benchmark run: one JSON object (`--json`) or a text report for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::baseline::{Baseline, Share};
use super::figures::{LatencyWindow, Percentiles, WINDOW_S};
use super::processes::ServiceUsage;
use super::tally::LoadSummary;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run id; its fares are `bench_<run>_<i>`.
    pub run: String,
    pub topic_suffix: String,
    /// `happy 90% · fail_credit 5% · fail_charge 5%`
    pub mix: String,
    /// Fares per second offered (`--rate`); `None`: as fast as possible.
    pub rate: Option<f64>,
    /// `settled`, `timed_out` or `interrupted`.
    pub ending: &'static str,
    #[serde(flatten)]
    pub load: LoadSummary,
    /// CPU and peak RSS of the services with the bench's `TOPIC_SUFFIX`, during the run.
    pub services: BTreeMap<&'static str, ServiceUsage>,
    /// `None` with `--no-baseline`, or when the run was interrupted.
    pub baseline: Option<Baseline>,
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: whole numbers with separators from 100 up, one decimal below.
pub fn rate(value: f64) -> String {
    if value >= 99.95 {
        thousands(value.round() as u64)
    } else {
        format!("{value:.1}")
    }
}

/// Milliseconds: `0.84 ms`, `33.1 ms`, `1,204 ms`.
fn millis(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 1000.0 {
        format!("{value:.1} ms")
    } else {
        format!("{} ms", thousands(value.round() as u64))
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn percent(share: f64) -> String {
    let value = share * 100.0;
    if value < 10.0 {
        format!("{value:.1}%")
    } else {
        format!("{value:.0}%")
    }
}

/// `p50 12.3 ms · p90 … · p99 … · p99.9 … · max …`
fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
        millis(p.p50),
        millis(p.p90),
        millis(p.p99),
        millis(p.p99_9),
        millis(p.max)
    )
}

impl Report {
    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = &self.load;
        let offered = match self.rate {
            Some(r) => format!("offered at {} fares/s (open loop)", rate(r)),
            None => "as fast as possible".to_owned(),
        };
        let _ = writeln!(
            out,
            "fares bench {}: {} fares ({}), {offered}",
            self.run,
            thousands(load.planned as u64),
            self.mix
        );
        let ending = match self.ending {
            "timed_out" => " — TIMED OUT",
            "interrupted" => " — INTERRUPTED",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  settled      {} of {} sent{ending}{}",
            thousands(load.settled as u64),
            thousands(load.sent as u64),
            match (load.missing, load.send_failures) {
                (0, 0) => String::new(),
                (missing, 0) => format!(" ({} without an outcome)", thousands(missing as u64)),
                (missing, failed) => format!(
                    " ({} without an outcome, {} not acknowledged by Kafka)",
                    thousands(missing as u64),
                    thousands(failed as u64)
                ),
            }
        );
        let t = &load.throughput;
        if let (Some(per_s), Some(seconds)) = (t.settled_per_s, t.seconds) {
            let sustained = t
                .sustained_per_s
                .map(|s| format!("; sustained {} sagas/s (middle 80% of that time)", rate(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  throughput   {} sagas/s over {seconds:.1} s (first request → last outcome){sustained}",
                rate(per_s)
            );
            if let Some(first) = t.first_outcome_after_s {
                let _ = writeln!(
                    out,
                    "               first outcome {first:.2} s after the first request"
                );
            }
        }
        if let Some(latency) = &load.latency_ms {
            let from = if self.rate.is_some() {
                "from the intended send time"
            } else {
                "from the request's timestamp"
            };
            let _ = writeln!(
                out,
                "  latency      request → outcome, broker timestamps, {from}:\n               {}",
                percentiles(latency)
            );
        }
        render_over_the_run(&mut out, &load.latency_over_the_run);
        if let (Some(_), Some(lag)) = (self.rate, &load.send_lag_ms) {
            if lag.p99 >= 5.0 {
                let _ = writeln!(
                    out,
                    "  send lag     the bench sent late against its schedule: {}",
                    percentiles(lag)
                );
            }
        }
        if let Some(ack) = load.ack_ms.as_ref().filter(|ack| ack.max >= 100.0) {
            let _ = writeln!(
                out,
                "  acks         request handed to the producer → the broker's acknowledgement: {}",
                percentiles(ack)
            );
        }
        let kinds: Vec<String> = load
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(kind, n)| format!("{kind} {}", thousands(*n as u64)))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(out, "  outcomes     {}", kinds.join(" · "));
        }
        if load.unexpected_outcomes > 0 {
            let wrong: Vec<String> = load
                .by_marker
                .iter()
                .filter(|(_, m)| m.unexpected > 0)
                .map(|(name, m)| format!("{} {name} fares not {}", m.unexpected, m.expected))
                .collect();
            let _ = writeln!(
                out,
                "  WRONG        {} outcome(s) not as SPEC §5 says: {}",
                load.unexpected_outcomes,
                wrong.join(", ")
            );
        }
        if load.conflicting_outcomes > 0 {
            let _ = writeln!(
                out,
                "  WRONG        {} fare(s) with a second, different outcome (SPEC §6.1)",
                load.conflicting_outcomes
            );
        }
        self.render_services(&mut out, t.seconds);
        if let Some(baseline) = &self.baseline {
            render_baseline(&mut out, baseline);
        }
        out
    }

    fn render_services(&self, out: &mut String, seconds: Option<f64>) {
        for (name, usage) in &self.services {
            let line = if usage.pids.is_empty() {
                format!(
                    "no process with TOPIC_SUFFIX={:?} found on this machine",
                    self.topic_suffix
                )
            } else {
                let share = seconds
                    .filter(|s| *s > 0.0)
                    .map(|s| format!(" ({:.0}% of a core)", usage.cpu_seconds * 100.0 / s))
                    .unwrap_or_default();
                format!(
                    "{} process{}, CPU {:.1} s{share}, peak RSS {}",
                    usage.pids.len(),
                    if usage.pids.len() == 1 { "" } else { "es" },
                    usage.cpu_seconds,
                    mib(usage.peak_rss_bytes)
                )
            };
            let _ = writeln!(out, "  {name:<20} {line}");
        }
    }
}

/// The latency of each 10 s of the run, four to a line, when the run lasted more than one.
fn render_over_the_run(out: &mut String, windows: &[LatencyWindow]) {
    if windows.len() < 2 {
        return;
    }
    let _ = write!(
        out,
        "  over time    p50 / p99 of the fares sent in each {WINDOW_S} s:"
    );
    for (i, window) in windows.iter().enumerate() {
        let separator = match i {
            0 => " ",
            _ if i % 4 == 0 => "\n               ",
            _ => " · ",
        };
        let _ = write!(
            out,
            "{separator}{}–{} s {} / {}",
            window.from_s,
            window.to_s,
            millis(window.latency_ms.p50).trim_end_matches(" ms"),
            millis(window.latency_ms.p99)
        );
    }
    out.push('\n');
}

fn render_baseline(out: &mut String, baseline: &Baseline) {
    let _ = writeln!(out, "baseline (same machine, same run)");
    if let Some(k) = &baseline.kafka {
        let _ = writeln!(
            out,
            "  raw Kafka       {} msgs/s produced and consumed back ({} messages of {} bytes, {} partitions, \
             idempotent, acks=all; {:.2} s)",
            rate(k.msgs_per_s),
            thousands(k.messages as u64),
            k.message_bytes,
            k.partitions,
            k.seconds
        );
        if let Some(latency) = &k.latency_ms {
            let _ = writeln!(out, "                  {}", percentiles(latency));
        }
    }
    if let Some(h) = &baseline.kafka_hops {
        let _ = writeln!(
            out,
            "  raw Kafka hops  {} messages at {} msgs/s through {} consume → produce hops, no \
             database (a happy saga's hops): request → last hop",
            thousands(h.messages as u64),
            rate(h.rate),
            h.hops
        );
        if let Some(latency) = &h.latency_ms {
            let _ = writeln!(out, "                  {}", percentiles(latency));
        }
    }
    if let Some(p) = &baseline.postgres {
        let _ = writeln!(
            out,
            "  raw PostgreSQL  {} commits/s ({} connections × {:.1} s of BEGIN, INSERT, COMMIT; \
             synchronous_commit={}, fsync={})",
            rate(p.commits_per_s),
            p.connections,
            p.seconds,
            p.synchronous_commit,
            p.fsync
        );
    }
    for error in &baseline.errors {
        let _ = writeln!(out, "  not measured    {error}");
    }
    let c = &baseline.comparison;
    let Some(sagas) = c.sagas_per_s else {
        return;
    };
    let line = |share: &Share, raw: &str, per: &str| {
        format!(
            "{} sagas/s = {} of raw {raw} ÷ {} ({per}) = {} sagas/s",
            rate(sagas),
            percent(share.share),
            trim(share.per_saga),
            rate(share.ceiling_sagas_per_s)
        )
    };
    if let Some(share) = &c.kafka {
        let raw = format!("Kafka's {} msgs/s", rate(share.raw_per_s));
        let _ = writeln!(
            out,
            "  the saga        {}",
            line(
                share,
                &raw,
                "messages written per saga: the request and its events"
            )
        );
    }
    if let Some(share) = &c.postgres {
        let raw = format!("PostgreSQL's {} commits/s", rate(share.raw_per_s));
        let _ = writeln!(
            out,
            "  the saga        {}",
            line(share, &raw, "local transactions per saga, SPEC §4")
        );
    }
    if let Some(floor) = &c.latency {
        let _ = writeln!(
            out,
            "  the saga        p99 {} = {:.1} × raw Kafka's p99 through the same hops ({})",
            millis(floor.saga_p99_ms),
            floor.times,
            millis(floor.hops_p99_ms)
        );
    }
}

/// `4`, `4.3`: a count per saga, without a needless `.0`.
fn trim(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::baseline::hops::HopsBaseline;
    use crate::bench::baseline::{Comparison, LatencyFloor};
    use crate::bench::outcome::OutcomeKind;
    use crate::bench::tally::Tally;
    use events_schema::FailureMarker;
    use uuid::Uuid;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(9.26), "9.3");
        assert_eq!(rate(184.4), "184");
        assert_eq!(rate(2150.0), "2,150");
        assert_eq!(millis(0.844), "0.84 ms");
        assert_eq!(millis(33.14), "33.1 ms");
        assert_eq!(millis(1204.4), "1,204 ms");
        assert_eq!(percent(0.3105), "31%");
        assert_eq!(percent(0.0123), "1.2%");
    }

    fn report() -> Report {
        let mut tally = Tally::new(&[FailureMarker::None, FailureMarker::FailCredit]);
        for i in 0..2 {
            tally.sent(i, None);
            tally.acknowledged(i, Some(1_000));
        }
        tally.outcome(0, 1_010, OutcomeKind::Collected, Uuid::from_u128(1));
        tally.outcome(1, 1_030, OutcomeKind::Collected, Uuid::from_u128(2));
        let load = tally.summary();
        Report {
            run: "r1".into(),
            topic_suffix: ".bench".into(),
            mix: "happy 50% · fail_credit 50%".into(),
            rate: None,
            ending: "settled",
            services: BTreeMap::from([
                (
                    "payment-service",
                    ServiceUsage {
                        pids: vec![42],
                        cpu_seconds: 0.015,
                        peak_rss_bytes: 24 * 1024 * 1024,
                    },
                ),
                ("accounting-service", ServiceUsage::default()),
            ]),
            baseline: Some(Baseline {
                kafka: None,
                kafka_hops: Some(HopsBaseline {
                    hops: 4,
                    messages: 5_000,
                    rate: 500.0,
                    latency_ms: Some(Percentiles {
                        count: 5_000,
                        p50: 10.0,
                        p90: 12.0,
                        p99: 15.0,
                        p99_9: 20.0,
                        max: 22.0,
                        mean: 10.5,
                    }),
                }),
                postgres: None,
                errors: vec!["raw Kafka: interrupted".into()],
                comparison: Comparison {
                    sagas_per_s: load.throughput.settled_per_s,
                    kafka: Some(Share {
                        raw_per_s: 10_000.0,
                        per_saga: 5.5,
                        ceiling_sagas_per_s: 10_000.0 / 5.5,
                        share: (2.0 / 0.03) / (10_000.0 / 5.5),
                    }),
                    postgres: None,
                    latency: Some(LatencyFloor {
                        saga_p99_ms: 30.0,
                        hops_p99_ms: 15.0,
                        times: 2.0,
                    }),
                },
            }),
            load,
        }
    }

    #[test]
    fn the_text_report_says_what_each_number_is() {
        let text = report().render();
        assert!(
            text.starts_with(
                "fares bench r1: 2 fares (happy 50% · fail_credit 50%), as fast as possible\n"
            ),
            "{text}"
        );
        assert!(text.contains("  settled      2 of 2 sent\n"), "{text}");
        assert!(
            text.contains("66.7 sagas/s over 0.0 s (first request → last outcome)"),
            "{text}"
        );
        assert!(text.contains("from the request's timestamp"), "{text}");
        assert!(text.contains("max 30.0 ms"), "{text}");
        assert!(text.contains("outcomes     collected 2\n"), "{text}");
        assert!(
            text.contains("WRONG        1 outcome(s) not as SPEC §5 says: 1 fail_credit fares not failed_refunded"),
            "{text}"
        );
        assert!(
            text.contains("payment-service      1 process, CPU 0.0 s"),
            "{text}"
        );
        assert!(
            text.contains("accounting-service   no process with TOPIC_SUFFIX=\".bench\""),
            "{text}"
        );
        assert!(
            text.contains("not measured    raw Kafka: interrupted"),
            "{text}"
        );
        assert!(
            text.contains(
                "66.7 sagas/s = 3.7% of raw Kafka's 10,000 msgs/s ÷ 5.5 (messages written per saga"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "raw Kafka hops  5,000 messages at 500 msgs/s through 4 consume → produce hops"
            ),
            "{text}"
        );
        assert!(
            text.contains("p50 10.0 ms · p90 12.0 ms · p99 15.0 ms"),
            "{text}"
        );
        assert!(
            text.contains("the saga        p99 30.0 ms = 2.0 × raw Kafka's p99 through the same hops (15.0 ms)"),
            "{text}"
        );
    }

    #[test]
    fn the_latency_of_a_long_run_is_told_by_window() {
        let mut report = report();
        assert!(
            !report.render().contains("over time"),
            "one window: no line"
        );
        let window = |from_s: i64, p50: f64, p99: f64| LatencyWindow {
            from_s,
            to_s: from_s + WINDOW_S,
            latency_ms: Percentiles {
                count: 100,
                p50,
                p90: p99,
                p99,
                p99_9: p99,
                max: p99,
                mean: p50,
            },
        };
        report.load.latency_over_the_run = (0..5)
            .map(|i| window(i * WINDOW_S, 40.0 + i as f64, 90.5))
            .collect();
        let text = report.render();
        assert!(
            text.contains(
                "  over time    p50 / p99 of the fares sent in each 10 s: 0–10 s 40.0 / 90.5 ms · \
                 10–20 s 41.0 / 90.5 ms · 20–30 s 42.0 / 90.5 ms · 30–40 s 43.0 / 90.5 ms\n               \
                 40–50 s 44.0 / 90.5 ms\n"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["latency_over_the_run"][4]["from_s"], 40);
        assert_eq!(json["latency_over_the_run"][4]["latency_ms"]["p50"], 44.0);
    }

    #[test]
    fn the_json_report_has_every_figure_at_the_top() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["settled"], 2);
        assert_eq!(json["outcomes"]["collected"], 2);
        assert_eq!(json["by_marker"]["fail_credit"]["unexpected"], 1);
        assert!(json["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
        assert!(json["throughput"]["settled_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(json["services"]["payment-service"]["pids"][0], 42);
        assert_eq!(json["baseline"]["comparison"]["latency"]["times"], 2.0);
        assert_eq!(json["baseline"]["kafka_hops"]["latency_ms"]["p99"], 15.0);
        assert!(
            json["baseline"]["comparison"]["kafka"]["share"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
}
