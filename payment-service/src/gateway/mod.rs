//! The payment gateway, behind a trait so a real one can replace the simulator. Every call
//! carries the fare's idempotency key (`<fare_id>:<operation>`): repeating a call after a crash
//! returns the first answer and never moves money twice (SPEC §4).

mod simulator;

use std::future::Future;

use events_schema::{Currency, CustomerId, FareId};

pub use simulator::{FaultInjection, GatewaySimulator};

/// The four gateway operations of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PreAuthorise,
    Capture,
    Release,
    Refund,
}

impl Operation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::PreAuthorise => "pre_authorise",
            Operation::Capture => "capture",
            Operation::Release => "release",
            Operation::Refund => "refund",
        }
    }
    /// The name of a call's span.
    pub fn span_name(&self) -> &'static str {
        match self {
            Operation::PreAuthorise => "gateway pre_authorise",
            Operation::Capture => "gateway capture",
            Operation::Release => "gateway release",
            Operation::Refund => "gateway refund",
        }
    }
}

/// One gateway call: which fare, whose card, how much.
#[derive(Debug, Clone)]
pub struct GatewayCall<'a> {
    pub fare_id: &'a FareId,
    pub customer_id: &'a CustomerId,
    pub amount_minor: i64,
    pub currency: Currency,
    /// The card token: only [`PaymentGateway::pre_authorise`] needs it. Never logged.
    pub payment_token: Option<&'a str>,
    /// The gateway's reference of the operation this one acts on (the authorisation for a
    /// capture or release, the charge for a refund).
    pub reference: Option<&'a str>,
}

impl GatewayCall<'_> {
    /// The key that makes the call idempotent.
    pub fn idempotency_key(&self, operation: Operation) -> String {
        idempotency_key(self.fare_id, operation)
    }
}

/// The idempotency key of `fare_id`'s `operation`.
pub fn idempotency_key(fare_id: &FareId, operation: Operation) -> String {
    format!("{fare_id}:{}", operation.as_str())
}

/// A gateway call to make later, outside any transaction: the operation and everything it
/// needs, owned.
#[derive(Clone)]
pub struct GatewayRequest {
    pub operation: Operation,
    pub fare_id: FareId,
    pub customer_id: CustomerId,
    pub amount_minor: i64,
    pub currency: Currency,
    /// Only for a pre-authorisation. Never logged.
    pub payment_token: Option<String>,
    pub reference: Option<String>,
}

impl GatewayRequest {
    pub fn call(&self) -> GatewayCall<'_> {
        GatewayCall {
            fare_id: &self.fare_id,
            customer_id: &self.customer_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            payment_token: self.payment_token.as_deref(),
            reference: self.reference.as_deref(),
        }
    }
}

/// Hand-written so that logging a request never prints its payment token.
impl std::fmt::Debug for GatewayRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRequest")
            .field("operation", &self.operation)
            .field("fare_id", &self.fare_id)
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// How a gateway call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway said no (card declined, refund refused). A decline of a pre-authorisation
    /// or capture is final; a refused refund may be tried again.
    #[error("declined: {0}")]
    Declined(String),
    /// Timeout or 5xx: the call may or may not have happened; repeat it with the same key.
    #[error("transient gateway failure: {0}")]
    Transient(String),
}

/// A payment gateway. Returns the gateway's reference for the operation.
pub trait PaymentGateway: Send + Sync + 'static {
    fn pre_authorise(
        &self,
        call: &GatewayCall<'_>,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
    fn capture(
        &self,
        call: &GatewayCall<'_>,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
    fn release(
        &self,
        call: &GatewayCall<'_>,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
    fn refund(
        &self,
        call: &GatewayCall<'_>,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_the_fare_and_the_operation() {
        let fare_id = FareId::parse("wr_563").unwrap();
        let customer_id = CustomerId::parse("3").unwrap();
        let call = GatewayCall {
            fare_id: &fare_id,
            customer_id: &customer_id,
            amount_minor: 2000,
            currency: Currency::parse("USD").unwrap(),
            payment_token: Some("tok_visa"),
            reference: None,
        };
        assert_eq!(
            call.idempotency_key(Operation::PreAuthorise),
            "wr_563:pre_authorise"
        );
        assert_eq!(call.idempotency_key(Operation::Refund), "wr_563:refund");
    }
}
