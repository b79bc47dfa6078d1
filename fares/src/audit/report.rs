//! The audit's report: one JSON object (`--json`), or text for people — the summary, then the
//! violations grouped by invariant, then the stuck and needs_attention fares. Long lists are
//! cut at [`SHOWN`] lines in the text (with the total); the JSON has them all.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::checks::{NeedsAttention, OutcomeCounts, Stuck, Violation};

/// Lines shown per list in the text report.
pub const SHOWN: usize = 50;

/// What each invariant of SPEC §6 says, in a few words.
pub fn invariant_title(invariant: u8) -> &'static str {
    match invariant {
        1 => "every fare requested ends in exactly one outcome",
        2 => "at most one event id per fare and event type",
        3 => "money: captured − refunded = the ledger amount",
        4 => "no pre-authorisation held once the fare is terminal",
        5 => "every consumed message is processed or dead-lettered",
        6 => "a second request never starts a second saga",
        7 => "no raw card number anywhere",
        _ => "?",
    }
}

/// The audit's result, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    /// No violation.
    pub clean: bool,
    /// Fares requested on fare-requests.
    pub fares: usize,
    /// Fares with an outcome, by outcome.
    pub outcomes: OutcomeCounts,
    /// Fares without an outcome yet, active within --stuck-after.
    pub in_flight: usize,
    /// Messages read per topic (base names).
    pub messages: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    pub stuck: Vec<Stuck>,
    pub needs_attention: Vec<NeedsAttention>,
    /// What could not be checked, and why.
    pub not_checked: Vec<String>,
    pub elapsed_ms: u128,
    /// Where the audit looked.
    pub topic_suffix: String,
    pub kafka: String,
    pub database: String,
    pub stuck_after_secs: u64,
}

impl Report {
    /// Fares with an outcome.
    pub fn terminal(&self) -> usize {
        self.outcomes.collected + self.outcomes.failed + self.outcomes.needs_attention
    }

    /// The invariants violated, in order.
    pub fn violated(&self) -> Vec<u8> {
        let mut invariants: Vec<u8> = self.violations.iter().map(|v| v.invariant).collect();
        invariants.dedup();
        invariants
    }

    /// `1 violation`, `3 violations`.
    pub fn counted(&self) -> String {
        match self.violations.len() {
            1 => "1 violation".to_owned(),
            n => format!("{n} violations"),
        }
    }

    /// `invariant 3`, `invariants 1, 2`.
    pub fn invariants(&self) -> String {
        let violated = self.violated();
        let listed: Vec<String> = violated.iter().map(ToString::to_string).collect();
        match violated.len() {
            1 => format!("invariant {}", listed[0]),
            _ => format!("invariants {}", listed.join(", ")),
        }
    }

    /// The text report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "fares audit of Kafka {} (TOPIC_SUFFIX {:?}) and PostgreSQL {}",
            self.kafka, self.topic_suffix, self.database
        )?;
        let read: u64 = self.messages.values().sum();
        let per_topic: Vec<String> = self
            .messages
            .iter()
            .map(|(topic, count)| format!("{topic} {count}"))
            .collect();
        writeln!(out, "messages read: {read} ({})", per_topic.join(", "))?;
        writeln!(
            out,
            "fares: {} requested — {} with an outcome (collected {}, failed {}, needs_attention {}), \
             {} in flight, {} stuck (no outcome after {}s idle)",
            self.fares,
            self.terminal(),
            self.outcomes.collected,
            self.outcomes.failed,
            self.outcomes.needs_attention,
            self.in_flight,
            self.stuck.len(),
            self.stuck_after_secs
        )?;
        writeln!(out)?;
        if self.clean {
            writeln!(out, "CLEAN: no violation of SPEC §6 invariants 1–7")?;
        } else {
            writeln!(
                out,
                "{} of SPEC §6 ({})",
                self.counted().to_uppercase(),
                self.invariants()
            )?;
        }
        for invariant in self.violated() {
            let violations: Vec<&Violation> = self
                .violations
                .iter()
                .filter(|v| v.invariant == invariant)
                .collect();
            writeln!(
                out,
                "\ninvariant {invariant} — {} ({}):",
                invariant_title(invariant),
                violations.len()
            )?;
            for v in violations.iter().take(SHOWN) {
                match &v.fare_id {
                    Some(fare_id) => writeln!(out, "  fare {fare_id}: {}", v.problem)?,
                    None => writeln!(out, "  {}", v.problem)?,
                }
            }
            more(out, violations.len())?;
        }
        if !self.stuck.is_empty() {
            writeln!(out, "\nstuck fares ({}):", self.stuck.len())?;
            for s in self.stuck.iter().take(SHOWN) {
                writeln!(
                    out,
                    "  {}  {}  idle {}{}",
                    s.fare_id,
                    s.status,
                    humantime::format_duration(std::time::Duration::from_secs(s.idle_secs)),
                    s.waiting_for
                        .as_deref()
                        .map(|what| format!("  waiting for {what}"))
                        .unwrap_or_default()
                )?;
            }
            more(out, self.stuck.len())?;
        }
        if !self.needs_attention.is_empty() {
            writeln!(
                out,
                "\nneeds attention ({}), for an operator:",
                self.needs_attention.len()
            )?;
            for n in self.needs_attention.iter().take(SHOWN) {
                writeln!(out, "  {}: {}", n.fare_id, n.reason)?;
            }
            more(out, self.needs_attention.len())?;
        }
        if !self.not_checked.is_empty() {
            writeln!(out, "\nnot checked:")?;
            for note in &self.not_checked {
                writeln!(out, "  {note}")?;
            }
        }
        writeln!(out, "\naudited in {:.1} s", self.elapsed_ms as f64 / 1000.0)
    }
}

fn more(out: &mut String, total: usize) -> std::fmt::Result {
    if total > SHOWN {
        writeln!(
            out,
            "  … and {} more (--json lists them all)",
            total - SHOWN
        )?;
    }
    Ok(())
}
