//! `fares console`: a local web page for operators — live outcomes and throughput, a fare's
//! timeline and state in both services, the `needs_attention` and stuck queues, the dead
//! letters (shown, replayed), a form to request a fare, and the choreography diagram
//! generated from the step table.
//!
//! There is no coordinator to host such a page: the console is one more client of what the
//! CLI reads — the services' read APIs and the topics, joining no consumer group — and writes
//! only as the CLI does, by publishing a `FareRequested` ([`crate::request`]) or replaying a
//! dead letter ([`crate::dlq::replay`]). Every answer passes through the read APIs' card-number
//! mask. It has no authentication: it listens on loopback by default, refuses requests whose
//! `Host` is not the address it listens on (a web page elsewhere cannot reach it through DNS
//! rebinding), and takes its writes only as JSON (which a cross-site form cannot send).
//!
//! - [`routes`]: the page and the JSON endpoints;
//! - [`live`]: `fare-outcomes` followed from its latest messages, counts and rate;
//! - [`health`]: whether each service and Kafka answer, checked in the background;
//! - [`queues`]: the payment-service's `needs_attention` and stuck fares, paged;
//! - [`page`]: the HTML, CSS and JavaScript, built into the binary.

mod health;
mod live;
mod page;
mod queues;
mod routes;

use std::net::SocketAddr;

use anyhow::Context;
use transactional_messaging::shutdown;

use crate::broker::Kafka;
use crate::services::{read_apis, ReadApi};

/// `fares console`
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Where the page listens. Loopback by default: the console has no authentication.
    #[arg(long, default_value = "127.0.0.1:8089", value_name = "IP:PORT")]
    pub addr: SocketAddr,
    /// The payment-service's read API. Default: http:// + PAYMENT_HTTP_ADDR when set, else
    /// http://127.0.0.1:8081.
    #[arg(long, env = "PAYMENT_URL", value_name = "URL")]
    pub payment_url: Option<String>,
    /// The accounting-service's read API. Default: http:// + ACCOUNTING_HTTP_ADDR when set,
    /// else http://127.0.0.1:8082.
    #[arg(long, env = "ACCOUNTING_URL", value_name = "URL")]
    pub accounting_url: Option<String>,
}

/// What every handler reads.
#[derive(Debug, Clone)]
pub struct Console {
    pub kafka: Kafka,
    pub payment: ReadApi,
    pub accounting: ReadApi,
    pub live: live::Live,
    pub health: health::Health,
    /// The address listened on (for the `Host` check).
    pub addr: SocketAddr,
}

/// Serves the console until Ctrl-C / SIGTERM.
pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let kafka = Kafka::from_env()?;
    let (payment, accounting) =
        read_apis(args.payment_url.as_deref(), args.accounting_url.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|error| cannot_listen(args.addr, &error))?;
    let addr = listener
        .local_addr()
        .context("cannot read the address listened on")?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: the console listens on {addr}, not on loopback: anyone who reaches it can \
             read every fare and dead letter, request fares and replay dead letters — it has no \
             authentication (use the default 127.0.0.1, or put it behind your own proxy)"
        );
    }
    let live = live::Live::start(kafka.clone());
    let health = health::Health::start(kafka.clone(), payment.clone(), accounting.clone());
    let console = Console {
        kafka,
        payment,
        accounting,
        live,
        health,
        addr,
    };
    eprintln!(
        "fares console on http://{addr}/ (payment-service {}, accounting-service {}, Kafka {}); Ctrl-C to stop",
        console.payment.base_url,
        console.accounting.base_url,
        console.kafka.bootstrap()
    );
    axum::serve(listener, routes::router(console))
        .with_graceful_shutdown(shutdown::signal())
        .await
        .context("the console's HTTP server failed")
}

/// Why the console cannot listen on `addr`, and what to do.
fn cannot_listen(addr: SocketAddr, error: &std::io::Error) -> anyhow::Error {
    let why = match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the address is taken (another console, or another program) — choose another with --addr"
                .to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address — use 127.0.0.1".to_owned()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (a port below 1024?) — choose another with --addr".to_owned()
        }
        _ => format!("{error}"),
    };
    anyhow::anyhow!("cannot listen on {addr}: {why}")
}
