//! A fare as the payment-service knows it: the registered request, where its saga stands, the
//! gateway references, and for a failed fare the reason and the compensations done.
//! Repository functions take the caller's transaction; the caller commits.

use std::collections::HashMap;
use std::time::Duration;

use events_schema::{Compensation, Currency, CustomerId, FareId};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use transactional_messaging::HandleError;

use crate::gateway::{GatewayRequest, Operation};

/// Where a fare's saga stands in the payment-service (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FareStatus {
    /// Invalid request; terminal.
    Rejected,
    /// Registered; the gateway is being asked to pre-authorise (outside any transaction).
    PreAuthorising,
    PreAuthorised,
    PreAuthFailed,
    Charged,
    ChargeFailed,
    /// Releasing the hold after a failed capture: attempted off the consumer's path, retried
    /// with backoff until it succeeds or its budget (`compensation_deadline`) is spent.
    Releasing,
    PreAuthReleased,
    /// The release was still refused when its budget was spent.
    ReleaseFailed,
    /// Refunding the charge after a failed ledger update, as for `Releasing`.
    Refunding,
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
    pub const ALL: [FareStatus; 15] = [
        FareStatus::Rejected,
        FareStatus::PreAuthorising,
        FareStatus::PreAuthorised,
        FareStatus::PreAuthFailed,
        FareStatus::Charged,
        FareStatus::ChargeFailed,
        FareStatus::Releasing,
        FareStatus::PreAuthReleased,
        FareStatus::ReleaseFailed,
        FareStatus::Refunding,
        FareStatus::Refunded,
        FareStatus::RefundFailed,
        FareStatus::Collected,
        FareStatus::Failed,
        FareStatus::NeedsAttention,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            FareStatus::Rejected => "rejected",
            FareStatus::PreAuthorising => "pre_authorising",
            FareStatus::PreAuthorised => "pre_authorised",
            FareStatus::PreAuthFailed => "pre_auth_failed",
            FareStatus::Charged => "charged",
            FareStatus::ChargeFailed => "charge_failed",
            FareStatus::Releasing => "releasing",
            FareStatus::PreAuthReleased => "pre_auth_released",
            FareStatus::ReleaseFailed => "release_failed",
            FareStatus::Refunding => "refunding",
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
    /// Attempts of the pending (or last) compensation.
    pub compensation_attempts: i32,
    /// When the pending compensation is next attempted (database clock). Written only by the
    /// scheduling functions below, never by [`save`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_compensation_at: Option<OffsetDateTime>,
    /// When the pending compensation is given up (database clock); as `next_compensation_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub compensation_deadline: Option<OffsetDateTime>,
    /// When the compensation attempt under way was claimed (database clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub compensation_claimed_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub compensation_cause: Option<Uuid>,
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
    /// The gateway call `operation` of this charge for `fare_id`: on the card `payment_token`
    /// (a pre-authorisation), or on its earlier operation `reference` (the authorisation for a
    /// capture or release, the charge for a refund).
    pub fn request(
        self,
        operation: Operation,
        fare_id: &FareId,
        payment_token: Option<String>,
        reference: Option<String>,
    ) -> GatewayRequest {
        GatewayRequest {
            operation,
            fare_id: fare_id.clone(),
            customer_id: self.customer_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            payment_token,
            reference,
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

/// A `fares` row as stored.
struct FareRow {
    fare_id: String,
    request_event_id: Uuid,
    correlation_id: Uuid,
    request_fingerprint: Uuid,
    customer_id: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    status: String,
    authorisation_id: Option<String>,
    charge_id: Option<String>,
    refund_id: Option<String>,
    failure_reason: Option<String>,
    compensations: Vec<String>,
    compensation_attempts: i32,
    next_compensation_at: Option<OffsetDateTime>,
    compensation_deadline: Option<OffsetDateTime>,
    compensation_claimed_at: Option<OffsetDateTime>,
    compensation_cause: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn from_row(row: FareRow) -> Result<Fare, sqlx::Error> {
    let decode =
        |what: &str| sqlx::Error::Decode(format!("fares row has an invalid {what}").into());
    Ok(Fare {
        fare_id: FareId::parse(&row.fare_id).map_err(|_| decode("fare_id"))?,
        request_event_id: row.request_event_id,
        correlation_id: row.correlation_id,
        request_fingerprint: row.request_fingerprint,
        customer_id: row.customer_id,
        amount_minor: row.amount_minor,
        currency: row.currency,
        status: FareStatus::parse(&row.status).ok_or_else(|| decode("status"))?,
        authorisation_id: row.authorisation_id,
        charge_id: row.charge_id,
        refund_id: row.refund_id,
        failure_reason: row.failure_reason,
        compensations: row
            .compensations
            .iter()
            .map(|c| compensation_from_str(c).ok_or_else(|| decode("compensation")))
            .collect::<Result<_, _>>()?,
        compensation_attempts: row.compensation_attempts,
        next_compensation_at: row.next_compensation_at,
        compensation_deadline: row.compensation_deadline,
        compensation_claimed_at: row.compensation_claimed_at,
        compensation_cause: row.compensation_cause,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn compensation_as_str(compensation: Compensation) -> &'static str {
    match compensation {
        Compensation::PreAuthReleased => "pre_auth_released",
        Compensation::PaymentRefunded => "payment_refunded",
    }
}

/// The column values of `compensations`.
fn compensation_names(compensations: &[Compensation]) -> Vec<String> {
    compensations
        .iter()
        .map(|c| compensation_as_str(*c).to_owned())
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
    let row = sqlx::query_as!(
        FareRow,
        "SELECT fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
         amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
         compensations, compensation_attempts, next_compensation_at, compensation_deadline, \
         compensation_claimed_at, compensation_cause, created_at, updated_at \
         FROM fares WHERE fare_id = $1 FOR UPDATE",
        fare_id.as_str()
    )
    .fetch_optional(conn)
    .await?;
    row.map(from_row).transpose()
}

/// The fare, for reading.
pub async fn find(conn: &mut PgConnection, fare_id: &FareId) -> sqlx::Result<Option<Fare>> {
    let row = sqlx::query_as!(
        FareRow,
        "SELECT fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
         amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
         compensations, compensation_attempts, next_compensation_at, compensation_deadline, \
         compensation_claimed_at, compensation_cause, created_at, updated_at \
         FROM fares WHERE fare_id = $1",
        fare_id.as_str()
    )
    .fetch_optional(conn)
    .await?;
    row.map(from_row).transpose()
}

/// The fares `ids` that exist, locked for the rest of the caller's transaction (in `fare_id`
/// order, so that concurrent transactions never deadlock on them), by id.
pub async fn lock_many(
    conn: &mut PgConnection,
    ids: &[String],
) -> sqlx::Result<HashMap<String, Fare>> {
    let rows = sqlx::query_as!(
        FareRow,
        "SELECT fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
         amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
         compensations, compensation_attempts, next_compensation_at, compensation_deadline, \
         compensation_claimed_at, compensation_cause, created_at, updated_at \
         FROM fares WHERE fare_id = ANY($1) ORDER BY fare_id FOR UPDATE",
        ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| from_row(row).map(|fare| (fare.fare_id.as_str().to_owned(), fare)))
        .collect()
}

/// Registers new fares, in one statement. A second registration of the same `fare_id` is a
/// unique violation.
pub async fn insert_many(conn: &mut PgConnection, fares: &[Fare]) -> sqlx::Result<()> {
    if fares.is_empty() {
        return Ok(());
    }
    let c = Columns::of(fares);
    sqlx::query!(
        "INSERT INTO fares (fare_id, request_event_id, correlation_id, request_fingerprint, \
         customer_id, amount_minor, currency, status, authorisation_id, charge_id, refund_id, \
         failure_reason, compensations, compensation_attempts, compensation_cause) \
         SELECT fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
         amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
         string_to_array(compensations, ','), compensation_attempts, compensation_cause \
         FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::bigint[], \
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
         $14::int[], $15::uuid[]) AS f(fare_id, request_event_id, correlation_id, \
         request_fingerprint, customer_id, amount_minor, currency, status, authorisation_id, \
         charge_id, refund_id, failure_reason, compensations, compensation_attempts, \
         compensation_cause)",
        &c.fare_id,
        &c.request_event_id,
        &c.correlation_id,
        &c.request_fingerprint,
        &c.customer_id as &[Option<String>],
        &c.amount_minor as &[Option<i64>],
        &c.currency as &[Option<String>],
        &c.status,
        &c.authorisation_id as &[Option<String>],
        &c.charge_id as &[Option<String>],
        &c.refund_id as &[Option<String>],
        &c.failure_reason as &[Option<String>],
        &c.compensations,
        &c.compensation_attempts,
        &c.compensation_cause as &[Option<Uuid>],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves the saga progress of fares locked by the caller, in one statement. The compensation's
/// schedule (`next_compensation_at`, `compensation_deadline`) is not written here: only the
/// functions below set it, from the database's clock.
pub async fn save_many(conn: &mut PgConnection, fares: &[Fare]) -> sqlx::Result<()> {
    if fares.is_empty() {
        return Ok(());
    }
    let c = Columns::of(fares);
    sqlx::query!(
        "UPDATE fares SET status = u.status, authorisation_id = u.authorisation_id, \
         charge_id = u.charge_id, refund_id = u.refund_id, failure_reason = u.failure_reason, \
         compensations = string_to_array(u.compensations, ','), \
         compensation_attempts = u.compensation_attempts, \
         compensation_cause = u.compensation_cause, updated_at = now() \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::int[], $9::uuid[]) AS u(fare_id, status, authorisation_id, charge_id, \
         refund_id, failure_reason, compensations, compensation_attempts, compensation_cause) \
         WHERE fares.fare_id = u.fare_id",
        &c.fare_id,
        &c.status,
        &c.authorisation_id as &[Option<String>],
        &c.charge_id as &[Option<String>],
        &c.refund_id as &[Option<String>],
        &c.failure_reason as &[Option<String>],
        &c.compensations,
        &c.compensation_attempts,
        &c.compensation_cause as &[Option<Uuid>],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves one fare's progress (see [`save_many`]).
pub async fn save(conn: &mut PgConnection, fare: &Fare) -> sqlx::Result<()> {
    save_many(conn, std::slice::from_ref(fare)).await
}

/// Fares as the columns of a multi-row statement.
struct Columns {
    fare_id: Vec<String>,
    request_event_id: Vec<Uuid>,
    correlation_id: Vec<Uuid>,
    request_fingerprint: Vec<Uuid>,
    customer_id: Vec<Option<String>>,
    amount_minor: Vec<Option<i64>>,
    currency: Vec<Option<String>>,
    status: Vec<String>,
    authorisation_id: Vec<Option<String>>,
    charge_id: Vec<Option<String>>,
    refund_id: Vec<Option<String>>,
    failure_reason: Vec<Option<String>>,
    /// Comma-separated: a multi-row statement cannot pass an array per row.
    compensations: Vec<String>,
    compensation_attempts: Vec<i32>,
    compensation_cause: Vec<Option<Uuid>>,
}

impl Columns {
    fn of(fares: &[Fare]) -> Self {
        Columns {
            fare_id: fares
                .iter()
                .map(|f| f.fare_id.as_str().to_owned())
                .collect(),
            request_event_id: fares.iter().map(|f| f.request_event_id).collect(),
            correlation_id: fares.iter().map(|f| f.correlation_id).collect(),
            request_fingerprint: fares.iter().map(|f| f.request_fingerprint).collect(),
            customer_id: fares.iter().map(|f| f.customer_id.clone()).collect(),
            amount_minor: fares.iter().map(|f| f.amount_minor).collect(),
            currency: fares.iter().map(|f| f.currency.clone()).collect(),
            status: fares.iter().map(|f| f.status.as_str().to_owned()).collect(),
            authorisation_id: fares.iter().map(|f| f.authorisation_id.clone()).collect(),
            charge_id: fares.iter().map(|f| f.charge_id.clone()).collect(),
            refund_id: fares.iter().map(|f| f.refund_id.clone()).collect(),
            failure_reason: fares.iter().map(|f| f.failure_reason.clone()).collect(),
            compensations: fares
                .iter()
                .map(|f| compensation_names(&f.compensations).join(","))
                .collect(),
            compensation_attempts: fares.iter().map(|f| f.compensation_attempts).collect(),
            compensation_cause: fares.iter().map(|f| f.compensation_cause).collect(),
        }
    }
}

/// Starts the pending compensations of `fares`: due now, given up `budget` from now.
pub async fn start_compensations(
    conn: &mut PgConnection,
    fares: &[String],
    budget: Duration,
) -> sqlx::Result<()> {
    if fares.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE fares SET next_compensation_at = now(), \
         compensation_deadline = now() + make_interval(secs => $2) WHERE fare_id = ANY($1)",
        fares,
        budget.as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Schedules the next attempt of the fare's pending compensation `after` from now; `None`:
/// no further attempt (it succeeded or was given up).
pub async fn schedule_compensation(
    conn: &mut PgConnection,
    fare_id: &FareId,
    after: Option<Duration>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE fares SET next_compensation_at = now() + make_interval(secs => $2) \
         WHERE fare_id = $1",
        fare_id.as_str(),
        after.map(|after| after.as_secs_f64()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records one compensation attempt of `fare` (claimed at `compensation_claimed_at`, finished
/// now) with its `outcome` (`approved`, `refused`, `given_up`).
pub async fn record_compensation_attempt(
    conn: &mut PgConnection,
    fare: &Fare,
    operation: &str,
    outcome: &str,
    detail: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO compensation_attempts (fare_id, operation, attempt, started_at, outcome, detail) \
         VALUES ($1, $2, $3, COALESCE($4, now()), $5, $6)",
        fare.fare_id.as_str(),
        operation,
        fare.compensation_attempts,
        fare.compensation_claimed_at,
        outcome,
        detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the budget of the fare's pending compensation is spent (database clock).
pub async fn compensation_overdue(conn: &mut PgConnection, fare_id: &FareId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(compensation_deadline <= now(), true) AS "overdue!" FROM fares
           WHERE fare_id = $1"#,
        fare_id.as_str(),
    )
    .fetch_one(conn)
    .await
}

/// Claims up to `limit` fares whose compensation attempt is due, the longest waiting first:
/// each one's next attempt moves `lease` later, so that no other retrier (another instance)
/// attempts it meanwhile; the attempt's outcome then sets the real next time. An attempt that
/// never reports (a crash) is made again once its lease runs out.
pub async fn claim_due_compensations(
    conn: &mut PgConnection,
    limit: i64,
    lease: Duration,
) -> sqlx::Result<Vec<Fare>> {
    let rows = sqlx::query_as!(
        FareRow,
        "UPDATE fares SET next_compensation_at = now() + make_interval(secs => $2), \
         compensation_claimed_at = now() \
         WHERE fare_id IN (SELECT fare_id FROM fares \
             WHERE status IN ('releasing', 'refunding') AND next_compensation_at <= now() \
             ORDER BY next_compensation_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING fare_id, request_event_id, correlation_id, request_fingerprint, customer_id, \
         amount_minor, currency, status, authorisation_id, charge_id, refund_id, failure_reason, \
         compensations, compensation_attempts, next_compensation_at, compensation_deadline, \
         compensation_claimed_at, compensation_cause, created_at, updated_at",
        limit,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// How many fares are in each status (for the read API and operators).
pub async fn count_by_status(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "count!" FROM fares GROUP BY status ORDER BY status"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.status, row.count))
        .collect())
}

/// Up to `limit` fares in `status`, oldest first (by `created_at`, then `fare_id`), starting
/// after the fare `after` is the position of, or from the oldest. One page of the read API's
/// list; each page is an index range (`fares_status_created`).
pub async fn ids_with_status(
    conn: &mut PgConnection,
    status: FareStatus,
    after: Option<&ListPosition>,
    limit: i64,
) -> sqlx::Result<Vec<ListPosition>> {
    // Without a position, start before every fare: one query shape, always an index range.
    let start = ListPosition {
        created_at: OffsetDateTime::UNIX_EPOCH,
        fare_id: String::new(),
    };
    let after = after.unwrap_or(&start);
    sqlx::query_as!(
        ListPosition,
        "SELECT created_at, fare_id FROM fares \
         WHERE status = $1 AND (created_at, fare_id) > ($2, $3) \
         ORDER BY created_at, fare_id LIMIT $4",
        status.as_str(),
        after.created_at,
        after.fare_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Where a fare stands in the lists of [`ids_with_status`]: they are ordered by these two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    pub created_at: OffsetDateTime,
    pub fare_id: String,
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
    fn the_status_check_of_the_latest_migration_lists_every_status() {
        let migrations = [
            include_str!("../migrations/0001_payment.sql"),
            include_str!("../migrations/0002_compensations_in_time.sql"),
            include_str!("../migrations/0003_read_api_paging.sql"),
            include_str!("../migrations/0004_compensation_attempts.sql"),
            include_str!("../migrations/0005_concurrent_pipeline.sql"),
        ];
        let latest = migrations
            .iter()
            .rev()
            .find_map(|sql| sql.split_once("CHECK (status IN ("))
            .map(|(_, rest)| rest.split_once("))").unwrap().0)
            .unwrap();
        let listed: Vec<&str> = latest
            .split(',')
            .map(|name| name.trim().trim_matches('\''))
            .collect();
        let statuses: Vec<&str> = FareStatus::ALL.iter().map(FareStatus::as_str).collect();
        assert_eq!(listed, statuses);
    }

    #[test]
    fn compensations_round_trip_through_their_column_values() {
        let names =
            compensation_names(&[Compensation::PreAuthReleased, Compensation::PaymentRefunded]);
        assert_eq!(names, ["pre_auth_released", "payment_refunded"]);
        for name in &names {
            assert_eq!(
                compensation_from_str(name).map(compensation_as_str),
                Some(name.as_str())
            );
        }
    }
}
