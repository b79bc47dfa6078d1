//! The payment gateway simulator. It forces the workshop's failures by the ending of the
//! customer id (SPEC §5), injects transient faults at a configured rate, and keeps its own
//! records (table `gateway_operations`) outside the service's transactions, as a real gateway
//! would: a completed operation is remembered by its idempotency key and a repeated call gets
//! the same answer. A refused release or refund is not remembered: the next attempt is
//! decided again.
//!
//! Like a real gateway's, its answer is durable before it is given. Calls made at the same time
//! are decided and recorded together, in one statement (group commit): the simulator's book
//! keeping costs one round trip per handful of calls, not three per call.

use std::time::Duration;

use events_schema::FailureMarker;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{GatewayCall, GatewayError, Operation, PaymentGateway};

/// Transient faults the simulator injects: with probability `rate` a call fails with a
/// timeout or a 5xx — half of them before the gateway did anything, half after it completed
/// the operation (the answer is lost, the operation is not). Every call first waits `latency`;
/// the pre-authorisation of a `_slow_gateway` customer waits `slow` more.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultInjection {
    pub rate: f64,
    pub latency: Duration,
    pub slow: Duration,
}

/// Calls recorded together at most.
const RECORD_BATCH: usize = 500;

#[derive(Debug, Clone)]
pub struct GatewaySimulator {
    faults: FaultInjection,
    records: mpsc::UnboundedSender<Pending>,
}

/// An operation's answer: approved with a reference, or declined with a reason.
type Recorded = Result<String, String>;

/// A call waiting to be decided and recorded.
struct Pending {
    key: String,
    fare_id: String,
    operation: Operation,
    /// The failure marker's decline, decided before the database is asked.
    marker_decline: Option<&'static str>,
    amount_minor: i64,
    currency: String,
    reply: oneshot::Sender<Result<Recorded, String>>,
}

impl GatewaySimulator {
    /// A simulator keeping its records through `pool`; its recorder runs until the simulator
    /// is dropped.
    pub fn new(pool: PgPool, faults: FaultInjection) -> Self {
        let (records, pending) = mpsc::unbounded_channel();
        tokio::spawn(record_calls(pool, pending));
        GatewaySimulator { faults, records }
    }

    async fn call(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
    ) -> Result<String, GatewayError> {
        let marker = call.customer_id.failure_marker();
        let mut latency = self.faults.latency;
        if operation == Operation::PreAuthorise && marker.is_slow() {
            latency += self.faults.slow;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.inject_fault() {
            return Err(GatewayError::Transient(
                "simulated 503 before the gateway processed the call".to_owned(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: call.idempotency_key(operation),
            fare_id: call.fare_id.as_str().to_owned(),
            operation,
            marker_decline: marker_decline(operation, marker),
            amount_minor: call.amount_minor,
            currency: call.currency.as_str().to_owned(),
            reply,
        };
        self.records
            .send(pending)
            .map_err(|_| GatewayError::Transient("gateway recorder stopped".to_owned()))?;
        let recorded = answer
            .await
            .map_err(|_| GatewayError::Transient("gateway recorder stopped".to_owned()))?
            .map_err(|error| GatewayError::Transient(format!("gateway unavailable: {error}")))?;
        if self.inject_fault() {
            return Err(GatewayError::Transient(
                "simulated timeout after the gateway processed the call".to_owned(),
            ));
        }
        recorded.map_err(GatewayError::Declined)
    }

    fn inject_fault(&self) -> bool {
        self.faults.rate > 0.0 && rand::rng().random_bool(self.faults.rate.min(1.0))
    }
}

/// The decline a customer's failure marker forces on `operation`, if any (SPEC §5).
fn marker_decline(operation: Operation, marker: FailureMarker) -> Option<&'static str> {
    match operation {
        Operation::PreAuthorise if marker.fails_auth() => Some("card declined by the issuer"),
        Operation::Capture if marker.fails_charge() => Some("capture declined by the issuer"),
        Operation::Release if marker.fails_release() => Some("release refused by the issuer"),
        Operation::Refund if marker.fails_refund() => Some("refund refused by the acquirer"),
        _ => None,
    }
}

/// Decides and records the waiting calls, a batch at a time, until the simulator is gone.
async fn record_calls(pool: PgPool, mut pending: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match decide_and_record(&pool, &batch).await {
            Ok(mut answers) => {
                for call in batch {
                    let answer = answers
                        .remove(&call.key)
                        .ok_or_else(|| "the gateway lost an operation".to_owned());
                    let _ = call.reply.send(answer);
                }
            }
            Err(error) => {
                for call in batch {
                    let _ = call.reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

/// One statement for the whole batch: each call's answer — the one recorded before under its
/// key, or a new decision, recorded unless it is a refused compensation. The gateway's own
/// rules: a capture or release needs an approved pre-authorisation, a capture one that was not
/// released, a refund an approved capture.
async fn decide_and_record(
    pool: &PgPool,
    batch: &[Pending],
) -> sqlx::Result<std::collections::HashMap<String, Recorded>> {
    let keys: Vec<String> = batch.iter().map(|c| c.key.clone()).collect();
    let fares: Vec<String> = batch.iter().map(|c| c.fare_id.clone()).collect();
    let operations: Vec<String> = batch
        .iter()
        .map(|c| c.operation.as_str().to_owned())
        .collect();
    let marker_declines: Vec<Option<String>> = batch
        .iter()
        .map(|c| c.marker_decline.map(str::to_owned))
        .collect();
    let amounts: Vec<i64> = batch.iter().map(|c| c.amount_minor).collect();
    let currencies: Vec<String> = batch.iter().map(|c| c.currency.clone()).collect();
    let references: Vec<String> = batch.iter().map(|c| reference(c.operation)).collect();
    let rows = sqlx::query!(
        r#"WITH calls AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                  $6::text[], $7::text[])
               AS c(idempotency_key, fare_id, operation, marker_decline, amount_minor, currency,
                    reference)
           ), decided AS (
             SELECT c.*, CASE
               WHEN c.marker_decline IS NOT NULL THEN c.marker_decline
               WHEN c.operation IN ('capture', 'release') AND NOT EXISTS (
                 SELECT 1 FROM gateway_operations g WHERE g.fare_id = c.fare_id
                 AND g.operation = 'pre_authorise' AND g.approved) THEN 'no such authorisation'
               WHEN c.operation = 'capture' AND EXISTS (
                 SELECT 1 FROM gateway_operations g WHERE g.fare_id = c.fare_id
                 AND g.operation = 'release' AND g.approved) THEN 'the authorisation was released'
               WHEN c.operation = 'refund' AND NOT EXISTS (
                 SELECT 1 FROM gateway_operations g WHERE g.fare_id = c.fare_id
                 AND g.operation = 'capture' AND g.approved) THEN 'no such charge'
             END AS decline_reason
             FROM calls c
           ), recorded AS (
             INSERT INTO gateway_operations (idempotency_key, fare_id, operation, approved,
                                             reference, decline_reason, amount_minor, currency)
             SELECT idempotency_key, fare_id, operation, decline_reason IS NULL,
                    CASE WHEN decline_reason IS NULL THEN reference END, decline_reason,
                    amount_minor, currency
             FROM decided
             WHERE decline_reason IS NULL OR operation NOT IN ('release', 'refund')
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING idempotency_key, approved, reference, decline_reason
           )
           SELECT d.idempotency_key AS "key!",
                  COALESCE(r.approved, g.approved, d.decline_reason IS NULL) AS "approved!",
                  COALESCE(r.reference, g.reference) AS reference,
                  COALESCE(r.decline_reason, g.decline_reason, d.decline_reason) AS decline_reason
           FROM decided d
           LEFT JOIN recorded r ON r.idempotency_key = d.idempotency_key
           LEFT JOIN gateway_operations g ON g.idempotency_key = d.idempotency_key"#,
        &keys,
        &fares,
        &operations,
        &marker_declines as &[Option<String>],
        &amounts,
        &currencies,
        &references,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let answer = match (row.approved, row.reference) {
                (true, Some(reference)) => Ok(reference),
                _ => Err(row.decline_reason.unwrap_or_else(|| "declined".to_owned())),
            };
            (row.key, answer)
        })
        .collect())
}

/// A new reference for an approved operation, e.g. `ch_…` for a capture.
fn reference(operation: Operation) -> String {
    let prefix = match operation {
        Operation::PreAuthorise => "auth",
        Operation::Capture => "ch",
        Operation::Release => "rel",
        Operation::Refund => "re",
    };
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

impl PaymentGateway for GatewaySimulator {
    async fn pre_authorise(&self, call: &GatewayCall<'_>) -> Result<String, GatewayError> {
        self.call(Operation::PreAuthorise, call).await
    }

    async fn capture(&self, call: &GatewayCall<'_>) -> Result<String, GatewayError> {
        self.call(Operation::Capture, call).await
    }

    async fn release(&self, call: &GatewayCall<'_>) -> Result<String, GatewayError> {
        self.call(Operation::Release, call).await
    }

    async fn refund(&self, call: &GatewayCall<'_>) -> Result<String, GatewayError> {
        self.call(Operation::Refund, call).await
    }
}
