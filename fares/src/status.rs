//! `fares status <fare_id>`: one saga's timeline across both services, from their read APIs —
//! every event in causal order with its key detail, the fare's status, the gateway operations
//! and the ledger entry (or the refused credit).

use anyhow::anyhow;
use events_schema::FareId;
use serde_json::Value;

use crate::exit;
use crate::report::{json_report, render, Accounting};
use crate::services::{read_apis, ReadApi};
use crate::timeline;

/// `fares status`
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The fare (saga) id, as printed by `fares request`.
    #[arg(value_name = "FARE_ID", allow_hyphen_values = true)]
    pub fare_id: String,
    /// Print one JSON object instead of the table:
    /// {fare_id, status, outcome, stuck, timeline, payment, accounting}.
    #[arg(long)]
    pub json: bool,
    /// The payment-service's read API. Default: http:// + PAYMENT_HTTP_ADDR when set, else
    /// http://127.0.0.1:8081.
    #[arg(long, env = "PAYMENT_URL", value_name = "URL")]
    pub payment_url: Option<String>,
    /// The accounting-service's read API. Default: http:// + ACCOUNTING_HTTP_ADDR when set,
    /// else http://127.0.0.1:8082.
    #[arg(long, env = "ACCOUNTING_URL", value_name = "URL")]
    pub accounting_url: Option<String>,
}

/// Fetches both views and prints the timeline.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let fare_id = parse_fare_id(&args.fare_id)?;
    let (payment, accounting) =
        read_apis(args.payment_url.as_deref(), args.accounting_url.as_deref())?;
    let Views {
        payment: payment_view,
        accounting: accounting_view,
    } = views(&fare_id, &payment, &accounting).await?;
    let accounting_view = match accounting_view {
        Ok(view) => view,
        Err(error) if !args.json => {
            // What the payment-service knows still helps, e.g. while accounting is down.
            let timeline = timeline::merge(&payment_view, None);
            print!(
                "{}",
                render(&fare_id, &payment_view, Accounting::Unreachable, &timeline)
            );
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let timeline = timeline::merge(&payment_view, accounting_view.as_ref());
    if args.json {
        let report = json_report(&fare_id, &payment_view, accounting_view.as_ref(), &timeline);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!(
            "{}",
            render(
                &fare_id,
                &payment_view,
                Accounting::answered(accounting_view.as_ref()),
                &timeline
            )
        );
    }
    Ok(())
}

/// `text` as a fare id, or what is wrong with it.
pub fn parse_fare_id(text: &str) -> anyhow::Result<FareId> {
    FareId::parse(text).map_err(|e| anyhow!("{text:?} is not a fare id: it {}", e.problem()))
}

/// Both services' views of one fare.
#[derive(Debug)]
pub struct Views {
    /// The payment-service's view.
    pub payment: Value,
    /// The accounting-service's: `Ok(None)` when it has not seen the fare, `Err` when it could
    /// not be asked (the payment-service's view still tells most of the story).
    pub accounting: anyhow::Result<Option<Value>>,
}

/// Asks both services about `fare_id` at once. A negative answer (exit code 1) when the
/// payment-service does not know the fare; an error when it cannot be asked.
pub async fn views(
    fare_id: &FareId,
    payment: &ReadApi,
    accounting: &ReadApi,
) -> anyhow::Result<Views> {
    let (payment_view, accounting_view) =
        tokio::join!(payment.fare(fare_id), accounting.fare(fare_id));
    let Some(payment_view) = payment_view? else {
        return Err(exit::negative(format!(
            "unknown fare {fare_id}: the payment-service at {} has not registered it — check the id; \
             a request published a moment ago may not be consumed yet",
            payment.base_url
        )));
    };
    Ok(Views {
        payment: payment_view,
        accounting: accounting_view,
    })
}
