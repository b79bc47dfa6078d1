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
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use transactional_messaging::database::OwnConnection;
use transactional_messaging::work_queue::{next_batch, SharedReceiver};

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
/// Batches recorded at once (each a statement and a commit of its own). One: the calls made
/// while it records are its next batch. Four made batches half as big, for more statements and
/// commits, and a slower saga at 500 fares/s (README, "Performance").
const RECORDERS: usize = 1;

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
        let pending = Arc::new(Mutex::new(pending));
        for _ in 0..RECORDERS {
            tokio::spawn(record_calls(pool.clone(), pending.clone()));
        }
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
async fn record_calls(pool: PgPool, pending: SharedReceiver<Pending>) {
    let mut connection = OwnConnection::like(&pool);
    loop {
        let Some(batch) = next_batch(&pending, RECORD_BATCH).await else {
            connection.close().await;
            return;
        };
        let decided = match connection.get().await {
            Ok(conn) => decide_and_record(conn, &batch).await,
            Err(error) => Err(error),
        };
        match connection.check(decided) {
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

/// An operation on the gateway's record.
struct Known {
    idempotency_key: String,
    fare_id: String,
    operation: String,
    approved: bool,
    reference: Option<String>,
    decline_reason: Option<String>,
}

impl Known {
    /// Its key and the answer a call with that key gets.
    fn answer(self) -> (String, Recorded) {
        let record = Record {
            approved: self.approved,
            reference: self.reference,
            decline_reason: self.decline_reason,
        };
        (self.idempotency_key, record.answer())
    }
}

/// What the gateway decides (and records) of one operation.
struct Record {
    approved: bool,
    reference: Option<String>,
    decline_reason: Option<String>,
}

impl Record {
    fn answer(self) -> Recorded {
        match (self.approved, self.reference) {
            (true, Some(reference)) => Ok(reference),
            _ => Err(self.decline_reason.unwrap_or_else(|| "declined".to_owned())),
        }
    }
}

/// Each call's answer: the one recorded before under its key, or a new decision, recorded
/// unless it is a refused compensation — in two statements for the whole batch (what the
/// gateway knows of the batch's fares; what it records now), plus one to read back an answer
/// a concurrent call recorded first. The gateway's own rules: a capture needs an approved
/// pre-authorisation that was not released, a release one that was not captured (a release
/// with no pre-authorisation voids the fare's authorisation: a later one is refused), a refund
/// an approved capture.
async fn decide_and_record(
    conn: &mut PgConnection,
    batch: &[Pending],
) -> sqlx::Result<HashMap<String, Recorded>> {
    let fares: Vec<String> = batch.iter().map(|c| c.fare_id.clone()).collect();
    let known = sqlx::query_as!(
        Known,
        "SELECT idempotency_key, fare_id, operation, approved, reference, decline_reason \
         FROM gateway_operations WHERE fare_id = ANY($1)",
        &fares
    )
    .fetch_all(&mut *conn)
    .await?;
    let approved: HashSet<(String, String)> = known
        .iter()
        .filter(|op| op.approved)
        .map(|op| (op.fare_id.clone(), op.operation.clone()))
        .collect();
    let mut answers: HashMap<String, Recorded> = known.into_iter().map(Known::answer).collect();
    let mut new: Vec<(&Pending, Record)> = Vec::new();
    for call in batch {
        if answers.contains_key(&call.key) || new.iter().any(|(c, _)| c.key == call.key) {
            continue;
        }
        let has = |operation: Operation| {
            approved.contains(&(call.fare_id.clone(), operation.as_str().to_owned()))
        };
        let decline = call.marker_decline.or(match call.operation {
            // A release of a pre-authorisation never answered voids it: it is refused later.
            Operation::PreAuthorise if has(Operation::Release) => {
                Some("the authorisation was voided")
            }
            Operation::Capture if !has(Operation::PreAuthorise) => Some("no such authorisation"),
            Operation::Capture if has(Operation::Release) => Some("the authorisation was released"),
            Operation::Release if has(Operation::Capture) => Some("the authorisation was captured"),
            Operation::Refund if !has(Operation::Capture) => Some("no such charge"),
            _ => None,
        });
        let record = Record {
            approved: decline.is_none(),
            reference: decline.is_none().then(|| reference(call.operation)),
            decline_reason: decline.map(str::to_owned),
        };
        new.push((call, record));
    }
    // A refused compensation is not remembered: the next attempt is decided again.
    let (refused, to_record): (Vec<_>, Vec<_>) = new.into_iter().partition(|(call, record)| {
        !record.approved && matches!(call.operation, Operation::Release | Operation::Refund)
    });
    for (call, record) in refused {
        answers.insert(call.key.clone(), record.answer());
    }
    if !to_record.is_empty() {
        let column = |f: &dyn Fn(&Pending, &Record) -> String| {
            to_record.iter().map(|(c, r)| f(c, r)).collect::<Vec<_>>()
        };
        let keys = column(&|c, _| c.key.clone());
        let approvals: Vec<bool> = to_record.iter().map(|(_, r)| r.approved).collect();
        let references: Vec<Option<String>> =
            to_record.iter().map(|(_, r)| r.reference.clone()).collect();
        let reasons: Vec<Option<String>> = to_record
            .iter()
            .map(|(_, r)| r.decline_reason.clone())
            .collect();
        let amounts: Vec<i64> = to_record.iter().map(|(c, _)| c.amount_minor).collect();
        let recorded: HashSet<String> = sqlx::query_scalar!(
            "INSERT INTO gateway_operations (idempotency_key, fare_id, operation, approved, \
             reference, decline_reason, amount_minor, currency) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], \
             $6::text[], $7::bigint[], $8::text[]) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            &keys,
            &column(&|c, _| c.fare_id.clone()),
            &column(&|c, _| c.operation.as_str().to_owned()),
            &approvals,
            &references as &[Option<String>],
            &reasons as &[Option<String>],
            &amounts,
            &column(&|c, _| c.currency.clone()),
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let mut raced = Vec::new();
        for (call, record) in to_record {
            if recorded.contains(&call.key) {
                answers.insert(call.key.clone(), record.answer());
            } else {
                raced.push(call.key.clone());
            }
        }
        if !raced.is_empty() {
            // A concurrent call (another instance) recorded these first: theirs is the answer.
            let first = sqlx::query_as!(
                Known,
                "SELECT idempotency_key, fare_id, operation, approved, reference, decline_reason \
                 FROM gateway_operations WHERE idempotency_key = ANY($1)",
                &raced
            )
            .fetch_all(&mut *conn)
            .await?;
            answers.extend(first.into_iter().map(Known::answer));
        }
    }
    Ok(answers)
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
