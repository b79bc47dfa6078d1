//! A fare as the payment-service knows it: the registered request, where its saga stands, the
//! gateway references, and for a failed fare the reason and the compensations done.
//! Repository functions take the caller's transaction; the caller commits.

use events_schema::{Compensation, Currency, CustomerId, FareId};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use transactional_messaging::HandleError;

use crate::gateway::GatewayCall;

/// Where a fare's saga stands in the payment-service (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FareStatus {
    /// Invalid request; terminal.
    Rejected,
    PreAuthorised,
    PreAuthFailed,
    Charged,
    ChargeFailed,
    PreAuthReleased,
    Refunded,
    RefundFailed,
    /// Charged and in the customer's ledger; terminal.
    Collected,
    /// Ended without a charge, compensations done; terminal.
    Failed,
    /// A compensation failed after its retry budget: an operator must act; terminal.
    NeedsAttention,
}

impl FareStatus {
    const ALL: [FareStatus; 11] = [
        FareStatus::Rejected,
        FareStatus::PreAuthorised,
        FareStatus::PreAuthFailed,
        FareStatus::Charged,
        FareStatus::ChargeFailed,
        FareStatus::PreAuthReleased,
        FareStatus::Refunded,
        FareStatus::RefundFailed,
        FareStatus::Collected,
        FareStatus::Failed,
        FareStatus::NeedsAttention,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            FareStatus::Rejected => "rejected",
            FareStatus::PreAuthorised => "pre_authorised",
            FareStatus::PreAuthFailed => "pre_auth_failed",
            FareStatus::Charged => "charged",
            FareStatus::ChargeFailed => "charge_failed",
            FareStatus::PreAuthReleased => "pre_auth_released",
            FareStatus::Refunded => "refunded",
            FareStatus::RefundFailed => "refund_failed",
            FareStatus::Collected => "collected",
            FareStatus::Failed => "failed",
            FareStatus::NeedsAttention => "needs_attention",
        }
    }

    pub fn parse(value: &str) -> Option<FareStatus> {
        FareStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            FareStatus::Rejected
                | FareStatus::Collected
                | FareStatus::Failed
                | FareStatus::NeedsAttention
        )
    }
}

/// One row of `fares`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fare {
    pub fare_id: FareId,
    pub request_event_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(skip)]
    pub request_fingerprint: Uuid,
    pub customer_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub status: FareStatus,
    pub authorisation_id: Option<String>,
    pub charge_id: Option<String>,
    pub refund_id: Option<String>,
    pub failure_reason: Option<String>,
    pub compensations: Vec<Compensation>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Who pays how much, for a fare that passed validation.
#[derive(Debug, Clone)]
pub struct Charge {
    pub customer_id: CustomerId,
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Charge {
    /// The gateway call that acts on this charge's earlier operation `reference` (the
    /// authorisation for a capture or release, the charge for a refund).
    pub fn gateway_call<'a>(&'a self, fare_id: &'a FareId, reference: &'a str) -> GatewayCall<'a> {
        GatewayCall {
            fare_id,
            customer_id: &self.customer_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            payment_token: None,
            reference: Some(reference),
        }
    }
}

impl Fare {
    /// The validated customer and amount. A registered (non-rejected) fare always has them;
    /// their absence is a permanent error.
    pub fn charge(&self) -> Result<Charge, HandleError> {
        let missing =
            || HandleError::Permanent(format!("fare {} has no valid amount", self.fare_id));
        let customer_id = self
            .customer_id
            .as_deref()
            .and_then(|c| CustomerId::parse(c).ok())
            .ok_or_else(missing)?;
        let currency = self
            .currency
            .as_deref()
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(missing)?;
        let amount_minor = self.amount_minor.ok_or_else(missing)?;
        Ok(Charge {
            customer_id,
            amount_minor,
            currency,
        })
    }

    pub fn add_compensation(&mut self, compensation: Compensation) {
        if !self.compensations.contains(&compensation) {
            self.compensations.push(compensation);
        }
    }
}

type FareRow = (
    String,
    Uuid,
    Uuid,
    Uuid,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<String>,
    OffsetDateTime,
    OffsetDateTime,
);

const COLUMNS: &str =
    "fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
     amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
     compensations, created_at, updated_at";

fn from_row(row: FareRow) -> Result<Fare, sqlx::Error> {
    let decode =
        |what: &str| sqlx::Error::Decode(format!("fares row has an invalid {what}").into());
    Ok(Fare {
        fare_id: FareId::parse(&row.0).map_err(|_| decode("fare_id"))?,
        request_event_id: row.1,
        correlation_id: row.2,
        request_fingerprint: row.3,
        customer_id: row.4,
        amount_minor: row.5,
        currency: row.6,
        status: FareStatus::parse(&row.7).ok_or_else(|| decode("status"))?,
        authorisation_id: row.8,
        charge_id: row.9,
        refund_id: row.10,
        failure_reason: row.11,
        compensations: row
            .12
            .iter()
            .map(|c| compensation_from_str(c).ok_or_else(|| decode("compensation")))
            .collect::<Result<_, _>>()?,
        created_at: row.13,
        updated_at: row.14,
    })
}

fn compensation_as_str(compensation: Compensation) -> &'static str {
    match compensation {
        Compensation::PreAuthReleased => "pre_auth_released",
        Compensation::PaymentRefunded => "payment_refunded",
    }
}

fn compensation_names(compensations: &[Compensation]) -> Vec<&'static str> {
    compensations
        .iter()
        .map(|c| compensation_as_str(*c))
        .collect()
}

fn compensation_from_str(value: &str) -> Option<Compensation> {
    [Compensation::PreAuthReleased, Compensation::PaymentRefunded]
        .into_iter()
        .find(|c| compensation_as_str(*c) == value)
}

/// The fare, locked for the rest of the caller's transaction.
pub async fn find_for_update(
    conn: &mut PgConnection,
    fare_id: &FareId,
) -> sqlx::Result<Option<Fare>> {
    let query = format!("SELECT {COLUMNS} FROM fares WHERE fare_id = $1 FOR UPDATE");
    let row: Option<FareRow> = sqlx::query_as(&query)
        .bind(fare_id.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(from_row).transpose()
}

/// The fare, for reading.
pub async fn find(conn: &mut PgConnection, fare_id: &FareId) -> sqlx::Result<Option<Fare>> {
    let query = format!("SELECT {COLUMNS} FROM fares WHERE fare_id = $1");
    let row: Option<FareRow> = sqlx::query_as(&query)
        .bind(fare_id.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(from_row).transpose()
}

/// Registers a new fare. A second registration of the same `fare_id` is a unique violation.
pub async fn insert(conn: &mut PgConnection, fare: &Fare) -> sqlx::Result<()> {
    let compensations = compensation_names(&fare.compensations);
    sqlx::query(
        "INSERT INTO fares (fare_id, request_event_id, correlation_id, request_fingerprint, \
         customer_id, amount_minor, currency, status, authorisation_id, charge_id, refund_id, \
         failure_reason, compensations) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(fare.fare_id.as_str())
    .bind(fare.request_event_id)
    .bind(fare.correlation_id)
    .bind(fare.request_fingerprint)
    .bind(&fare.customer_id)
    .bind(fare.amount_minor)
    .bind(&fare.currency)
    .bind(fare.status.as_str())
    .bind(&fare.authorisation_id)
    .bind(&fare.charge_id)
    .bind(&fare.refund_id)
    .bind(&fare.failure_reason)
    .bind(&compensations)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves the saga progress of a fare loaded with [`find_for_update`].
pub async fn save(conn: &mut PgConnection, fare: &Fare) -> sqlx::Result<()> {
    let compensations = compensation_names(&fare.compensations);
    sqlx::query(
        "UPDATE fares SET status = $2, authorisation_id = $3, charge_id = $4, refund_id = $5, \
         failure_reason = $6, compensations = $7, updated_at = now() WHERE fare_id = $1",
    )
    .bind(fare.fare_id.as_str())
    .bind(fare.status.as_str())
    .bind(&fare.authorisation_id)
    .bind(&fare.charge_id)
    .bind(&fare.refund_id)
    .bind(&fare.failure_reason)
    .bind(&compensations)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many fares are in each status (for the read API and operators).
pub async fn count_by_status(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT status, count(*) FROM fares GROUP BY status ORDER BY status")
        .fetch_all(conn)
        .await
}

/// The ids of the fares in `status`, oldest first (at most 1000).
pub async fn ids_with_status(
    conn: &mut PgConnection,
    status: FareStatus,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT fare_id FROM fares WHERE status = $1 ORDER BY created_at LIMIT 1000")
        .bind(status.as_str())
        .fetch_all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_column_value() {
        for status in FareStatus::ALL {
            assert_eq!(FareStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(FareStatus::parse("charging"), None);
    }

    #[test]
    fn exactly_the_four_outcome_states_are_terminal() {
        let terminal: Vec<&str> = FareStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            ["rejected", "collected", "failed", "needs_attention"]
        );
    }

    #[test]
    fn compensations_round_trip_and_are_not_repeated() {
        let names =
            compensation_names(&[Compensation::PreAuthReleased, Compensation::PaymentRefunded]);
        assert_eq!(names, ["pre_auth_released", "payment_refunded"]);
        for name in names {
            assert_eq!(
                compensation_from_str(name).map(compensation_as_str),
                Some(name)
            );
        }
    }
}
