//! The command line: subcommands, flags, help texts, and which module runs each.

use clap::{Parser, Subcommand};

use crate::audit::{self, AuditArgs};
use crate::bench::{self, BenchArgs, WarmUpArgs};
use crate::broker::Kafka;
use crate::console::{self, ConsoleArgs};
use crate::diagram::{self, DiagramArgs};
use crate::dlq::{self, DlqCommand};
use crate::request::{self, RequestArgs};
use crate::status::{self, StatusArgs};
use crate::topics;
use crate::watch::{self, WatchArgs};

const AFTER_HELP: &str = "\
Environment:
  KAFKA_BOOTSTRAP_SERVERS   Kafka to use (default localhost:9092)
  TOPIC_SUFFIX              appended to every topic name (default none)
  KAFKA_REPLICATION_FACTOR  for `topics ensure` (default 1)
  PAYMENT_URL               payment-service read API (default http://$PAYMENT_HTTP_ADDR, else http://127.0.0.1:8081)
  ACCOUNTING_URL            accounting-service read API (default http://$ACCOUNTING_HTTP_ADDR, else http://127.0.0.1:8082)
  AUDIT_DATABASE_URL        for `audit`: PostgreSQL as the read-only auditor role
                            (default postgres://wildrydes_auditor:…@localhost:5432/wildrydes)

Exit codes:
  0  done (request --wait: the fare was collected; audit: clean)
  1  a definite \"no\": unknown fare, fare not collected, topics missing, audit found violations,
     unknown dead letter, a dead letter replayed before (dlq replay without --force)
  2  could not do it: invalid input, Kafka, PostgreSQL or a service unreachable, timeout

Example:
  scripts/stack up
  FARE=$(fares request --customer 3 --amount 20.00)
  fares status \"$FARE\"
  fares bench --fares 5000";

/// Request fares and follow the fare-collection saga (payment-service + accounting-service)
/// over Kafka and the services' read APIs.
#[derive(Debug, Parser)]
#[command(name = "fares", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or list the saga's Kafka topics (SPEC §2).
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Publish a FareRequested to fare-requests; prints the fare id on stdout.
    ///
    /// The amount is a decimal in the currency's units ("20.00" USD is 2000 cents). Input is
    /// checked before anything is sent. The fare id alone goes to stdout, so
    /// `FARE=$(fares request …)` works; a human summary goes to stderr.
    Request(RequestArgs),
    /// Show one fare's saga: its events across both services, its status, gateway operations
    /// and ledger entry.
    ///
    /// Reads the services' HTTP read APIs (never their databases). Exit code 1 for a fare the
    /// payment-service does not know, 2 when a service cannot be reached.
    Status(StatusArgs),
    /// Print fare outcomes (FareCollected / FareCollectionFailed) live as they are published.
    ///
    /// Reads fare-outcomes without joining a consumer group or committing offsets. Ctrl-C stops.
    Watch(WatchArgs),
    /// Check SPEC §6's invariants 1–7 across the topics and both services' state.
    ///
    /// Reads every topic up to its end when the audit starts (joining no consumer group), the
    /// services' committed offsets, both schemas as the read-only auditor role
    /// (AUDIT_DATABASE_URL) and, for the fares with a dead letter or a rejection, the read APIs.
    /// Prints each violation with its fare, the stuck fares and those needing attention. Exit
    /// code 0 when clean, 1 on any violation (a stuck fare is one), 2 when it cannot run.
    Audit(AuditArgs),
    /// Load benchmark: publish N fares (as fast as possible or at --rate), follow their
    /// outcomes, report throughput, latency percentiles, per-outcome counts and the services'
    /// CPU and memory, beside a baseline of raw Kafka and PostgreSQL measured in the same run.
    ///
    /// Latency is request → outcome from broker timestamps (CreateTime of the request as
    /// acknowledged, and of its outcome). With --rate, fares are sent on schedule whatever the
    /// system does (open loop) and latency counts from each fare's intended send time, so
    /// stalls are not hidden (no coordinated omission). Exit code 1 when a fare has no outcome
    /// before --timeout, an outcome is not the one SPEC §5 calls for, or on Ctrl-C (after the
    /// report of what was measured so far).
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
    /// Warm a freshly started broker before measuring: raw messages (no fares) through the
    /// saga's consume → produce hops on a scratch topic, at --rate for --duration, printing
    /// each 10 s window's latency; the topic is deleted after.
    ///
    /// A broker's JVM compiles its hot paths in its first minute of load, and the saga's
    /// latency in that time is several times its steady value. `scripts/stack up --release`
    /// runs this (STACK_WARM_UP=0s skips it). Exit code 1 on Ctrl-C, 2 when Kafka fails.
    WarmUp(WarmUpArgs),
    /// Dead letters: list them, show one, replay one (optionally corrected) to its source
    /// topic.
    ///
    /// Ids are SERVICE:OFFSET on the service's DLQ topic, e.g. payment:17. Reads the topics
    /// without joining a consumer group. Exit code 1 for an unknown id or a dead letter
    /// replayed before (replay without --force), 2 for a malformed id, a payload that fails
    /// its checks, Kafka unreachable or a topic missing.
    #[command(subcommand, after_help = DLQ_AFTER_HELP)]
    Dlq(DlqCommand),
    /// A local web page for operators: outcomes live with their rate, a fare's timeline and
    /// state in both services, the needs_attention and stuck queues, dead letters (show,
    /// replay), a form to request a fare, and the choreography diagram.
    ///
    /// Reads the services' read APIs and the topics as the other commands do (no consumer
    /// group, no database); writes only by publishing a FareRequested or replaying a dead
    /// letter, with the code of `fares request` and `fares dlq replay`. No authentication:
    /// it listens on loopback by default and answers only requests addressed to it there.
    /// Exit code 2 when the address is invalid or taken.
    #[command(after_help = CONSOLE_AFTER_HELP)]
    Console(ConsoleArgs),
    /// Print the choreography diagram (Mermaid), generated from the step table
    /// events_schema::choreography::STEPS, between the README's markers; or --update a file's.
    Diagram(DiagramArgs),
}

const CONSOLE_AFTER_HELP: &str = "\
Examples:
  fares console                          # then open http://127.0.0.1:8089/
  fares console --addr 127.0.0.1:9000    # another port
  PAYMENT_URL=http://127.0.0.1:18081 fares console";

const DLQ_AFTER_HELP: &str = "\
Examples:
  fares dlq list                                  # the newest 50 of both DLQs
  fares dlq list --service payment --limit 10 --json
  fares dlq show payment:3
  fares dlq replay payment:3 --payload fixed.json --dry-run
  fares dlq replay payment:3 --payload fixed.json
  fares dlq replay payment:3 --force              # again, after a first replay";

const BENCH_AFTER_HELP: &str = "\
Examples:
  scripts/stack up --release
  fares bench --fares 5000                          # as fast as possible
  fares bench --rate 100 --fares 3000               # 100 fares/s offered
  fares bench --mix happy=90,fail_credit=5,fail_charge=5 --json > bench.json

CPU and RSS are those of the payment-service and accounting-service processes on this machine
whose TOPIC_SUFFIX is the bench's. The baseline creates (and deletes) a scratch topic
fares-bench-baseline.<run> and a scratch schema fares_bench_<run> in --database-url.";

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create every topic that does not exist yet (idempotent), then list them.
    Ensure,
    /// List the topics with their partitions; exit code 1 when any is missing.
    List,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Topics(TopicsCommand::Ensure) => topics::ensure(&Kafka::from_env()?).await,
            Command::Topics(TopicsCommand::List) => topics::list(&Kafka::from_env()?).await,
            Command::Request(args) => request::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::Audit(args) => audit::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::WarmUp(args) => bench::warm_up(args).await,
            Command::Dlq(command) => dlq::run(command).await,
            Command::Console(args) => console::run(args).await,
            Command::Diagram(args) => diagram::run(args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_negative_amount_reaches_the_amount_check() {
        let cli =
            Cli::try_parse_from(["fares", "request", "--customer", "3", "--amount", "-1"]).unwrap();
        assert!(matches!(cli.command, Command::Request(ref a) if a.amount == "-1"));
    }

    #[test]
    fn timeout_needs_wait() {
        let args = [
            "fares",
            "request",
            "--customer",
            "3",
            "--amount",
            "1",
            "--timeout",
            "5",
        ];
        assert!(Cli::try_parse_from(args).is_err());
    }
}
