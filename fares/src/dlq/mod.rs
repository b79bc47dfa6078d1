//! `fares dlq list | show | replay`: the services' dead letters (SPEC §2), as an operator
//! acts on them. Read from the two DLQ topics and the source topics, joining no consumer group
//! ([`Kafka::read_spans`]); a replay is published like `fares request` publishes a request.
//!
//! - [`letter`]: a dead letter's id (`payment:17`) and what it holds;
//! - [`replays`]: which dead letters were replayed (the `dlq.replay.of` header);
//! - [`replay`]: the replay itself, with its checks;
//! - [`text`]: printing without a card number.
//!
//! Exit codes: 0 done; 1 a definite "no": no dead letter with that id, a replay refused
//! because the dead letter was replayed before; 2 could not do it: a malformed id, a payload
//! that fails its checks, Kafka unreachable, a topic missing.

pub mod letter;
pub mod replay;
mod replays;
mod text;

use std::collections::BTreeMap;

use events_schema::choreography::Service;
use serde_json::{json, Value};

pub use self::letter::{Letter, LetterId};
use self::replays::Replay;
use self::text::{masked, payload_json, payload_text, time};
use crate::broker::Kafka;

pub use self::replay::ReplayArgs;

/// `fares dlq …`
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List the newest dead letters of both services (or one), newest first: id, time,
    /// source topic/partition/offset, key, size, whether a card number was masked, whether it
    /// was replayed, and the reason.
    List(ListArgs),
    /// Show one dead letter: its headers, reason, key, replays and payload (pretty JSON when
    /// it is JSON, else text with other bytes escaped; card numbers masked).
    Show(ShowArgs),
    /// Publish a dead letter again, or a corrected payload (--payload), with its key to its
    /// source topic, headers dlq.replay.of (its id) and dlq.replay.at recording the replay.
    ///
    /// The payload is checked as strictly as a hand-typed request, and refused with every
    /// problem before anything is sent (a raw card number too). A dead letter replayed
    /// before is refused (exit code 1, saying when) unless --force.
    Replay(ReplayArgs),
}

/// Which service's DLQ.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceArg {
    Payment,
    Accounting,
}

impl From<ServiceArg> for Service {
    fn from(arg: ServiceArg) -> Service {
        match arg {
            ServiceArg::Payment => Service::Payment,
            ServiceArg::Accounting => Service::Accounting,
        }
    }
}

/// `fares dlq list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this service's DLQ.
    #[arg(long)]
    pub service: Option<ServiceArg>,
    /// Show the newest N dead letters (and say how many more there are).
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `fares dlq show`
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The dead letter, e.g. payment:17 (see `fares dlq list`).
    pub id: String,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fares dlq <command>`.
pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    let kafka = Kafka::from_env()?;
    match command {
        DlqCommand::List(args) => list(&kafka, args).await,
        DlqCommand::Show(args) => show(&kafka, args).await,
        DlqCommand::Replay(args) => replay::run(&kafka, args).await,
    }
}

async fn list(kafka: &Kafka, args: ListArgs) -> anyhow::Result<()> {
    let services: Vec<Service> = match args.service {
        Some(service) => vec![service.into()],
        None => Service::ALL.to_vec(),
    };
    let listing = listing(kafka, &services, args.limit, None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing.to_json(kafka))?);
        return Ok(());
    }
    if !listing.letters.is_empty() {
        print!("{}", table(kafka, &listing.letters, &listing.replays));
    }
    let (total, shown, more) = (listing.total, listing.shown(), listing.more);
    match (total, more) {
        (0, _) => eprintln!("no dead letters"),
        (1, 0) => eprintln!("1 dead letter"),
        (_, 0) => eprintln!("{shown} dead letters"),
        _ => eprintln!(
            "the newest {shown} of {total} dead letters; {more} more (--limit {total} lists them all)"
        ),
    }
    Ok(())
}

/// A page of dead letters, newest first, with their replays.
#[derive(Debug)]
pub struct Listing {
    pub letters: Vec<Letter>,
    /// The replays of each letter, by index in `letters`.
    pub replays: BTreeMap<usize, Vec<Replay>>,
    /// How many dead letters the DLQs keep in all.
    pub total: u64,
    /// How many older than those shown.
    pub more: u64,
}

impl Listing {
    /// How many are shown.
    pub fn shown(&self) -> u64 {
        self.letters.len() as u64
    }

    /// `{dead_letters: [...], shown, total, more}`, card numbers masked.
    pub fn to_json(&self, kafka: &Kafka) -> Value {
        let entries: Vec<Value> = self
            .letters
            .iter()
            .enumerate()
            .map(|(i, l)| {
                summary_json(
                    kafka,
                    l,
                    self.replays.get(&i).map_or(&[][..], Vec::as_slice),
                )
            })
            .collect();
        json!({ "dead_letters": entries, "shown": self.shown(), "total": self.total, "more": self.more })
    }
}

/// The newest `limit` dead letters of `services`' DLQs, newest first — those below offset
/// `before` when given (the next page of one DLQ) — and their replays.
pub async fn listing(
    kafka: &Kafka,
    services: &[Service],
    limit: u64,
    before: Option<i64>,
) -> anyhow::Result<Listing> {
    let mut letters = Vec::new();
    let mut total = 0;
    let mut spans = Vec::new();
    for &service in services {
        let newest = letter::newest(kafka, service, limit, before).await?;
        letters.extend(newest.letters);
        total += newest.total;
        spans.extend(newest.spans.into_iter().map(|span| (service, span)));
    }
    letters.sort_by_key(|l| std::cmp::Reverse((l.timestamp_ms, l.id)));
    letters.truncate(limit as usize);
    // Older than shown: in each partition read, below the oldest letter kept of it.
    let more = spans
        .iter()
        .map(|&(service, (partition, low, end))| {
            let oldest_shown = letters
                .iter()
                .filter(|l| l.id.service == service && l.id.partition == partition)
                .map(|l| l.id.offset)
                .min()
                .unwrap_or(end);
            (oldest_shown - low).max(0) as u64
        })
        .sum();
    let replays = replays::find(kafka, &letters).await?;
    Ok(Listing {
        letters,
        replays,
        total,
        more,
    })
}

async fn show(kafka: &Kafka, args: ShowArgs) -> anyhow::Result<()> {
    let id: LetterId = args.id.parse()?;
    if args.json {
        let report = details_json(kafka, id).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let (letter, replays) = with_replays(kafka, id).await?;
    print!("{}", details(kafka, &letter, &replays));
    Ok(())
}

/// The dead letter `id` and its replays.
async fn with_replays(kafka: &Kafka, id: LetterId) -> anyhow::Result<(Letter, Vec<Replay>)> {
    let letter = letter::find(kafka, id).await?;
    let replays = replays::find(kafka, std::slice::from_ref(&letter))
        .await?
        .remove(&0)
        .unwrap_or_default();
    Ok((letter, replays))
}

/// Everything about the dead letter `id` as one JSON object (`fares dlq show --json`): its
/// summary, headers and payload, card numbers masked.
pub async fn details_json(kafka: &Kafka, id: LetterId) -> anyhow::Result<Value> {
    let (letter, replays) = with_replays(kafka, id).await?;
    let mut report = summary_json(kafka, &letter, &replays);
    let headers: serde_json::Map<String, Value> = letter
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(masked(v))))
        .collect();
    report["headers"] = Value::Object(headers);
    report["payload_json"] = payload_json(&letter.payload).unwrap_or(Value::Null);
    report["payload_text"] = Value::String(payload_text(&letter.payload));
    Ok(report)
}

/// A source topic's name without the stack's suffix, when it is one of the stack's topics.
fn base_name(kafka: &Kafka, topic: &str) -> String {
    kafka
        .names
        .topic_of(topic)
        .map_or_else(|| topic.to_owned(), |t| t.base_name().to_owned())
}

fn summary_json(kafka: &Kafka, letter: &Letter, replays: &[Replay]) -> Value {
    let source = letter.source();
    json!({
        "id": letter.id.to_string(),
        "dlq": kafka.topic(letter.id.topic()),
        "partition": letter.id.partition,
        "offset": letter.id.offset,
        "time": time(letter.timestamp_ms),
        "service": letter.service(),
        "source": source.map(|s| json!({"topic": s.topic, "partition": s.partition, "offset": s.offset})),
        "key": letter.key.as_deref().map(masked),
        "reason": masked(letter.reason()),
        "bytes": letter.payload.len(),
        "redacted": letter.redacted(),
        "replayed": !replays.is_empty(),
        "replays": replays.iter().map(|r| json!({
            "topic": r.topic, "partition": r.partition, "offset": r.offset,
            "time": time(r.timestamp_ms), "at": r.at,
        })).collect::<Vec<_>>(),
    })
}

/// The list as a table, one dead letter a line.
fn table(kafka: &Kafka, letters: &[Letter], replays: &BTreeMap<usize, Vec<Replay>>) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "TIME (UTC)".to_owned(),
        "SOURCE".to_owned(),
        "KEY".to_owned(),
        "BYTES".to_owned(),
        "REDACTED".to_owned(),
        "REPLAYED".to_owned(),
        "REASON".to_owned(),
    ]];
    for (i, l) in letters.iter().enumerate() {
        let source = l.source().map_or_else(
            || "-".to_owned(),
            |s| {
                format!(
                    "{}/{}@{}",
                    base_name(kafka, &s.topic),
                    s.partition,
                    s.offset
                )
            },
        );
        let replayed = match replays.get(&i).map_or(0, Vec::len) {
            0 => "no".to_owned(),
            1 => "yes".to_owned(),
            n => format!("yes ({n}×)"),
        };
        rows.push([
            l.id.to_string(),
            time(l.timestamp_ms),
            source,
            l.key.as_deref().map_or_else(|| "-".to_owned(), masked),
            l.payload.len().to_string(),
            if l.redacted() { "yes" } else { "no" }.to_owned(),
            replayed,
            cut(&masked(l.reason()), 80),
        ]);
    }
    let mut widths = [0; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` cut to `max` characters, with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// One dead letter in full.
fn details(kafka: &Kafka, letter: &Letter, replays: &[Replay]) -> String {
    let mut out = format!(
        "dead letter {} on {} (partition {}, offset {})\n",
        letter.id,
        kafka.topic(letter.id.topic()),
        letter.id.partition,
        letter.id.offset
    );
    let mut field = |name: &str, value: String| out.push_str(&format!("  {name:<10} {value}\n"));
    field("time", time(letter.timestamp_ms));
    field("service", letter.service().to_owned());
    field(
        "source",
        letter.source().map_or_else(
            || "- (no dlq.source.* headers)".to_owned(),
            |s| format!("{} partition {} offset {}", s.topic, s.partition, s.offset),
        ),
    );
    field(
        "key",
        letter.key.as_deref().map_or_else(|| "-".to_owned(), masked),
    );
    field("reason", masked(letter.reason()));
    field("size", format!("{} bytes", letter.payload.len()));
    field(
        "redacted",
        if letter.redacted() {
            "yes: a card number was masked before it was dead-lettered".to_owned()
        } else {
            "no".to_owned()
        },
    );
    if replays.is_empty() {
        field("replayed", "no".to_owned());
    }
    for r in replays {
        field(
            "replayed",
            format!(
                "{} to {} partition {} offset {}",
                time(r.timestamp_ms),
                r.topic,
                r.partition,
                r.offset
            ),
        );
    }
    out.push_str("headers:\n");
    for (name, value) in &letter.headers {
        out.push_str(&format!("  {name}: {}\n", masked(value)));
    }
    match payload_json(&letter.payload) {
        Some(value) => {
            out.push_str("payload (JSON):\n");
            out.push_str(&serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        None => {
            out.push_str("payload (not JSON; as text, other bytes escaped):\n");
            out.push_str(&payload_text(&letter.payload));
        }
    }
    out.push('\n');
    out
}
