//! The payment gateway simulator. It forces the workshop's failures by the ending of the
//! customer id (SPEC §5), injects transient faults at a configured rate, and keeps its own
//! records (table `gateway_operations`) outside the service's transactions, as a real gateway
//! would: a completed operation is remembered by its idempotency key and a repeated call gets
//! the same answer.

use std::time::Duration;

use events_schema::FailureMarker;
use rand::Rng;
use sqlx::PgPool;
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

#[derive(Debug, Clone)]
pub struct GatewaySimulator {
    pool: PgPool,
    faults: FaultInjection,
}

/// An operation's recorded answer.
type Recorded = (bool, Option<String>, Option<String>);

impl GatewaySimulator {
    pub fn new(pool: PgPool, faults: FaultInjection) -> Self {
        GatewaySimulator { pool, faults }
    }

    async fn call(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
    ) -> Result<String, GatewayError> {
        let mut latency = self.faults.latency;
        if operation == Operation::PreAuthorise && call.customer_id.failure_marker().is_slow() {
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
        let key = call.idempotency_key(operation);
        let answer = match self.recorded(&key).await? {
            Some(recorded) => recorded,
            None => {
                let (approved, reason) = self.decide(operation, call).await?;
                if !approved && matches!(operation, Operation::Release | Operation::Refund) {
                    // A refused compensation is not final: it is not remembered, the next
                    // attempt is decided again.
                    return Err(GatewayError::Declined(reason.unwrap_or_default()));
                }
                self.record(&key, operation, call, approved, reason).await?
            }
        };
        if self.inject_fault() {
            return Err(GatewayError::Transient(
                "simulated timeout after the gateway processed the call".to_owned(),
            ));
        }
        match answer {
            (true, Some(reference), _) => Ok(reference),
            (_, _, reason) => Err(GatewayError::Declined(
                reason.unwrap_or_else(|| "declined".to_owned()),
            )),
        }
    }

    fn inject_fault(&self) -> bool {
        self.faults.rate > 0.0 && rand::rng().random_bool(self.faults.rate.min(1.0))
    }

    /// Approve or decline: the customer id's failure marker, then the gateway's own rules
    /// (a capture needs a live authorisation, a refund a capture).
    async fn decide(
        &self,
        operation: Operation,
        call: &GatewayCall<'_>,
    ) -> Result<(bool, Option<String>), GatewayError> {
        let marker = call.customer_id.failure_marker();
        let declined = |reason: &str| Ok((false, Some(reason.to_owned())));
        match operation {
            Operation::PreAuthorise if marker == FailureMarker::FailAuth => {
                declined("card declined by the issuer")
            }
            Operation::Capture if marker.fails_charge() => {
                declined("capture declined by the issuer")
            }
            Operation::Release if marker.fails_release() => {
                declined("release refused by the issuer")
            }
            Operation::Refund if marker.fails_refund() => {
                declined("refund refused by the acquirer")
            }
            Operation::Capture | Operation::Release
                if !self
                    .approved(call.fare_id.as_str(), Operation::PreAuthorise)
                    .await? =>
            {
                declined("no such authorisation")
            }
            Operation::Capture
                if self
                    .approved(call.fare_id.as_str(), Operation::Release)
                    .await? =>
            {
                declined("the authorisation was released")
            }
            Operation::Refund
                if !self
                    .approved(call.fare_id.as_str(), Operation::Capture)
                    .await? =>
            {
                declined("no such charge")
            }
            _ => Ok((true, None)),
        }
    }

    async fn approved(&self, fare_id: &str, operation: Operation) -> Result<bool, GatewayError> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM gateway_operations
               WHERE fare_id = $1 AND operation = $2 AND approved) AS "approved!""#,
            fare_id,
            operation.as_str()
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, GatewayError> {
        let row = sqlx::query!(
            "SELECT approved, reference, decline_reason FROM gateway_operations \
             WHERE idempotency_key = $1",
            key
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|row| (row.approved, row.reference, row.decline_reason)))
    }

    /// Records the answer unless a concurrent call recorded one first; returns the one kept.
    async fn record(
        &self,
        key: &str,
        operation: Operation,
        call: &GatewayCall<'_>,
        approved: bool,
        reason: Option<String>,
    ) -> Result<Recorded, GatewayError> {
        let reference = approved.then(|| {
            let prefix = match operation {
                Operation::PreAuthorise => "auth",
                Operation::Capture => "ch",
                Operation::Release => "rel",
                Operation::Refund => "re",
            };
            format!("{prefix}_{}", Uuid::new_v4().simple())
        });
        sqlx::query!(
            "INSERT INTO gateway_operations \
             (idempotency_key, fare_id, operation, approved, reference, decline_reason, amount_minor, currency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
            key,
            call.fare_id.as_str(),
            operation.as_str(),
            approved,
            reference.as_deref(),
            reason.as_deref(),
            call.amount_minor,
            call.currency.as_str(),
        )
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.recorded(key)
            .await?
            .ok_or_else(|| GatewayError::Transient("gateway lost an operation".to_owned()))
    }
}

fn unavailable(error: sqlx::Error) -> GatewayError {
    GatewayError::Transient(format!("gateway unavailable: {error}"))
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
