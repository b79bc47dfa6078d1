//! Customer accounts and their append-only ledger. An account (per customer and currency) is
//! created on first use; every credit appends an entry carrying the running balance. One fare
//! is credited at most once (unique `fare_id`). Functions take the caller's transaction.

use events_schema::{Currency, CustomerId, EventId, FareId};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub customer_id: String,
    pub currency: String,
    pub fare_id: String,
    pub amount_minor: i64,
    pub balance_after_minor: i64,
    pub charge_event_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CreditFailure {
    pub fare_id: String,
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub charge_event_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Account {
    pub customer_id: String,
    pub currency: String,
    pub balance_minor: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A credit to make: the fare's captured amount, for the customer's account.
#[derive(Debug, Clone)]
pub struct Credit<'a> {
    pub fare_id: &'a FareId,
    pub customer_id: &'a CustomerId,
    pub amount_minor: i64,
    pub currency: Currency,
    pub charge_event_id: EventId,
}

/// Appends the credit to the customer's ledger (creating the account on first use) and returns
/// the entry with the new balance.
pub async fn credit(conn: &mut PgConnection, credit: &Credit<'_>) -> sqlx::Result<LedgerEntry> {
    sqlx::query!(
        "INSERT INTO accounts (customer_id, currency) VALUES ($1, $2) \
         ON CONFLICT (customer_id, currency) DO NOTHING",
        credit.customer_id.as_str(),
        credit.currency.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    let balance = sqlx::query_scalar!(
        "UPDATE accounts SET balance_minor = balance_minor + $3, updated_at = now() \
         WHERE customer_id = $1 AND currency = $2 RETURNING balance_minor",
        credit.customer_id.as_str(),
        credit.currency.as_str(),
        credit.amount_minor,
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query_as!(
        LedgerEntry,
        "INSERT INTO ledger_entries (customer_id, currency, fare_id, amount_minor, \
         balance_after_minor, charge_event_id) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, customer_id, currency, fare_id, amount_minor, balance_after_minor, \
         charge_event_id, created_at",
        credit.customer_id.as_str(),
        credit.currency.as_str(),
        credit.fare_id.as_str(),
        credit.amount_minor,
        balance,
        credit.charge_event_id.as_uuid(),
    )
    .fetch_one(conn)
    .await
}

/// Records that the credit could not be made, and why.
pub async fn record_failure(
    conn: &mut PgConnection,
    credit: &Credit<'_>,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO credit_failures (fare_id, customer_id, amount_minor, currency, reason, charge_event_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        credit.fare_id.as_str(),
        credit.customer_id.as_str(),
        credit.amount_minor,
        credit.currency.as_str(),
        reason,
        credit.charge_event_id.as_uuid(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the fare was already credited or refused (a duplicate `Charged` under another id).
pub async fn already_settled(conn: &mut PgConnection, fare_id: &FareId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT (EXISTS (SELECT 1 FROM ledger_entries WHERE fare_id = $1)
               OR EXISTS (SELECT 1 FROM credit_failures WHERE fare_id = $1)) AS "settled!""#,
        fare_id.as_str()
    )
    .fetch_one(conn)
    .await
}

pub async fn entry_for_fare(
    conn: &mut PgConnection,
    fare_id: &FareId,
) -> sqlx::Result<Option<LedgerEntry>> {
    sqlx::query_as!(
        LedgerEntry,
        "SELECT id, customer_id, currency, fare_id, amount_minor, balance_after_minor, \
         charge_event_id, created_at FROM ledger_entries WHERE fare_id = $1",
        fare_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

pub async fn failure_for_fare(
    conn: &mut PgConnection,
    fare_id: &FareId,
) -> sqlx::Result<Option<CreditFailure>> {
    sqlx::query_as!(
        CreditFailure,
        "SELECT fare_id, customer_id, amount_minor, currency, reason, charge_event_id, created_at \
         FROM credit_failures WHERE fare_id = $1",
        fare_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// The customer's accounts (one per currency; a handful, not paged).
pub async fn accounts(
    conn: &mut PgConnection,
    customer_id: &CustomerId,
) -> sqlx::Result<Vec<Account>> {
    sqlx::query_as!(
        Account,
        "SELECT customer_id, currency, balance_minor, created_at, updated_at FROM accounts \
         WHERE customer_id = $1 ORDER BY currency",
        customer_id.as_str()
    )
    .fetch_all(conn)
    .await
}

/// Up to `limit` of the customer's ledger entries, newest first, starting after (older than)
/// entry `before_id`, or from the newest. One page of the read API's list; each page is an
/// index range (`ledger_entries_customer`).
pub async fn entries(
    conn: &mut PgConnection,
    customer_id: &CustomerId,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<LedgerEntry>> {
    sqlx::query_as!(
        LedgerEntry,
        "SELECT id, customer_id, currency, fare_id, amount_minor, balance_after_minor, \
         charge_event_id, created_at FROM ledger_entries WHERE customer_id = $1 AND id < $2 \
         ORDER BY id DESC LIMIT $3",
        customer_id.as_str(),
        before_id.unwrap_or(i64::MAX),
        limit,
    )
    .fetch_all(conn)
    .await
}
