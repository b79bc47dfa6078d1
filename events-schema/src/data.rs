//! The `data` of each event type (SPEC §3–§4), one struct per [`EventType`](crate::EventType).
//!
//! Money is two flat fields: `amount_minor` (integer minor units) and `currency`.
//! Unknown fields are ignored on input, so a newer producer may add fields.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::CustomerId;
use crate::money::Currency;

/// A rider asks for a fare to be collected (topic `fare-requests`).
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FareRequested {
    /// The rider to charge.
    pub customer_id: CustomerId,
    /// The fare, in minor units of `currency`: 1 to 1 000 000.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The tokenised card, as issued by the rider's app; never a raw card number.
    #[schemars(length(min = 1, max = 255))]
    pub payment_token: String,
}

/// Hand-written so that logging an event never prints the payment token.
impl fmt::Debug for FareRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FareRequested")
            .field("customer_id", &self.customer_id)
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .field("payment_token", &"<redacted>")
            .finish()
    }
}

/// The request was invalid; every problem found is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FareRejected {
    /// Every problem found in the request, one sentence each.
    pub reasons: Vec<String>,
}

/// The gateway holds the amount on the rider's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreAuthorised {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount held, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The gateway's id of the hold.
    pub authorisation_id: String,
}

/// The gateway declined the pre-authorisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreAuthFailed {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount asked for, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// Why the gateway declined.
    pub reason: String,
}

/// The pre-authorised amount was captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Charged {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount captured, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The hold that was captured.
    pub authorisation_id: String,
    /// The gateway's id of the capture.
    pub charge_id: String,
}

/// The gateway declined the capture; the hold will be released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChargeFailed {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount that could not be captured, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The hold that could not be captured.
    pub authorisation_id: String,
    /// Why the gateway declined.
    pub reason: String,
}

/// Compensation of a failed capture: the hold was released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreAuthReleased {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount released, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The hold that was released.
    pub authorisation_id: String,
}

/// The release of the hold still failed after its retry budget; the fare needs an operator
/// (the hold stays on the card until the issuer lets it expire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReleaseFailed {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount still held, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The hold that could not be released.
    pub authorisation_id: String,
    /// How many release attempts were made.
    pub attempts: u32,
    /// The last attempt's error.
    pub reason: String,
}

/// Compensation of a failed ledger update: the charge was refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefunded {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount refunded, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The capture that was refunded.
    pub charge_id: String,
    /// The gateway's id of the refund.
    pub refund_id: String,
    /// How many refund attempts it took (1 = first try).
    pub attempts: u32,
}

/// The refund still failed after its retry budget; the fare needs an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefundFailed {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount that could not be refunded, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The capture that could not be refunded.
    pub charge_id: String,
    /// How many refund attempts were made.
    pub attempts: u32,
    /// The last attempt's error.
    pub reason: String,
}

/// The customer's ledger recorded the fare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountUpdated {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount recorded, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// The ledger entry written.
    pub ledger_entry_id: i64,
    /// The account balance after the entry, in minor units.
    pub balance_minor: i64,
}

/// The customer's ledger could not record the fare; the charge will be refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountUpdateFailed {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount that could not be recorded, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
    /// Why the ledger refused.
    pub reason: String,
}

/// Terminal outcome: the fare was collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FareCollected {
    /// The rider.
    pub customer_id: CustomerId,
    /// The amount collected, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: Currency,
}

/// Terminal outcome: the fare was not collected.
///
/// For a rejected request the customer, amount or currency may be unknown; those fields are
/// then left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FareCollectionFailed {
    /// The rider, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    /// The fare amount in minor units, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// ISO 4217 currency code, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Why the fare was not collected.
    pub reason: String,
    /// The compensations that were completed, in order.
    pub compensations: Vec<Compensation>,
    /// True when a compensation failed for good and an operator must act (`RefundFailed`, `ReleaseFailed`).
    pub needs_attention: bool,
}

/// A completed compensating step of a failed fare.
#[derive(Copy, Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compensation {
    /// The pre-authorisation hold was released.
    PreAuthReleased,
    /// The charge was refunded.
    PaymentRefunded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensation_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&[Compensation::PreAuthReleased, Compensation::PaymentRefunded])
                .unwrap(),
            r#"["pre_auth_released","payment_refunded"]"#
        );
    }

    #[test]
    fn debug_hides_the_payment_token() {
        let d = FareRequested {
            customer_id: CustomerId::parse("3").unwrap(),
            amount_minor: 2000,
            currency: Currency::parse("USD").unwrap(),
            payment_token: "tok_secret_visa".into(),
        };
        let text = format!("{d:?}");
        assert!(!text.contains("tok_secret_visa"), "{text}");
        assert!(text.contains("2000"), "{text}");
    }

    #[test]
    fn failed_outcome_omits_unknown_fields() {
        let d = FareCollectionFailed {
            customer_id: None,
            amount_minor: None,
            currency: None,
            reason: "rejected".into(),
            compensations: vec![],
            needs_attention: false,
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reason":"rejected","compensations":[],"needs_attention":false})
        );
        assert_eq!(
            serde_json::from_value::<FareCollectionFailed>(json).unwrap(),
            d
        );
    }
}
