//! Customer accounts and their append-only ledger. An account (per customer and currency) is
//! created on first use; every credit appends an entry carrying the running balance. One fare
//! is credited at most once (unique `fare_id`). Functions take the caller's transaction.

use std::collections::{HashMap, HashSet};

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
pub struct Credit {
    pub fare_id: FareId,
    pub customer_id: CustomerId,
    pub amount_minor: i64,
    pub currency: Currency,
    pub charge_event_id: EventId,
}

/// Which of `fares` were credited or refused before (a duplicate `Charged` under another id).
pub async fn settled(conn: &mut PgConnection, fares: &[String]) -> sqlx::Result<HashSet<String>> {
    let settled = sqlx::query_scalar!(
        r#"SELECT fare_id AS "fare_id!" FROM ledger_entries WHERE fare_id = ANY($1)
           UNION SELECT fare_id FROM credit_failures WHERE fare_id = ANY($1)"#,
        fares
    )
    .fetch_all(conn)
    .await?;
    Ok(settled.into_iter().collect())
}

/// Appends `credits` to their customers' ledgers (creating accounts on first use), in order,
/// and returns each one's entry with the balance after it. The accounts are locked in one
/// order (customer, currency), so concurrent batches never deadlock on them.
pub async fn credit_many(
    conn: &mut PgConnection,
    credits: &[Credit],
) -> sqlx::Result<Vec<LedgerEntry>> {
    if credits.is_empty() {
        return Ok(Vec::new());
    }
    let customers: Vec<String> = credits
        .iter()
        .map(|c| c.customer_id.as_str().to_owned())
        .collect();
    let currencies: Vec<String> = credits
        .iter()
        .map(|c| c.currency.as_str().to_owned())
        .collect();
    sqlx::query!(
        "INSERT INTO accounts (customer_id, currency) \
         SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) ORDER BY 1, 2 \
         ON CONFLICT (customer_id, currency) DO NOTHING",
        &customers,
        &currencies,
    )
    .execute(&mut *conn)
    .await?;
    let locked = sqlx::query!(
        "SELECT a.customer_id, a.currency, a.balance_minor FROM accounts a \
         JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS c(customer_id, currency) \
           ON a.customer_id = c.customer_id AND a.currency = c.currency \
         ORDER BY a.customer_id, a.currency FOR UPDATE OF a",
        &customers,
        &currencies,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut balances: HashMap<(String, String), i64> = locked
        .into_iter()
        .map(|row| ((row.customer_id, row.currency), row.balance_minor))
        .collect();
    let balances_after: Vec<i64> = credits
        .iter()
        .map(|c| {
            let balance = balances
                .entry((
                    c.customer_id.as_str().to_owned(),
                    c.currency.as_str().to_owned(),
                ))
                .or_default();
            *balance += c.amount_minor;
            *balance
        })
        .collect();
    let (account_customers, account_currencies, account_balances): (Vec<_>, Vec<_>, Vec<_>) =
        balances
            .into_iter()
            .map(|((customer, currency), balance)| (customer, currency, balance))
            .fold(
                (vec![], vec![], vec![]),
                |(mut a, mut b, mut c), (x, y, z)| {
                    a.push(x);
                    b.push(y);
                    c.push(z);
                    (a, b, c)
                },
            );
    sqlx::query!(
        "UPDATE accounts SET balance_minor = u.balance_minor, updated_at = now() \
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(customer_id, currency, balance_minor) \
         WHERE accounts.customer_id = u.customer_id AND accounts.currency = u.currency",
        &account_customers,
        &account_currencies,
        &account_balances,
    )
    .execute(&mut *conn)
    .await?;
    let fares: Vec<String> = credits
        .iter()
        .map(|c| c.fare_id.as_str().to_owned())
        .collect();
    let amounts: Vec<i64> = credits.iter().map(|c| c.amount_minor).collect();
    let charges: Vec<Uuid> = credits
        .iter()
        .map(|c| c.charge_event_id.as_uuid())
        .collect();
    let mut entries = sqlx::query_as!(
        LedgerEntry,
        "INSERT INTO ledger_entries (customer_id, currency, fare_id, amount_minor, \
         balance_after_minor, charge_event_id) \
         SELECT customer_id, currency, fare_id, amount_minor, balance_after_minor, charge_event_id \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::uuid[]) \
           WITH ORDINALITY AS e(customer_id, currency, fare_id, amount_minor, balance_after_minor, \
           charge_event_id, position) \
         ORDER BY position \
         RETURNING id, customer_id, currency, fare_id, amount_minor, balance_after_minor, \
         charge_event_id, created_at",
        &customers,
        &currencies,
        &fares,
        &amounts,
        &balances_after,
        &charges,
    )
    .fetch_all(conn)
    .await?;
    entries.sort_by_key(|entry| entry.id);
    Ok(entries)
}

/// Records that `credits` could not be made, and why, in one statement.
pub async fn record_failures(
    conn: &mut PgConnection,
    credits: &[Credit],
    reason: &str,
) -> sqlx::Result<()> {
    if credits.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Credit) -> String| credits.iter().map(f).collect::<Vec<_>>();
    let amounts: Vec<i64> = credits.iter().map(|c| c.amount_minor).collect();
    let charges: Vec<Uuid> = credits
        .iter()
        .map(|c| c.charge_event_id.as_uuid())
        .collect();
    sqlx::query!(
        "INSERT INTO credit_failures (fare_id, customer_id, amount_minor, currency, reason, \
         charge_event_id) \
         SELECT fare_id, customer_id, amount_minor, currency, $5, charge_event_id \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $6::uuid[]) \
           AS f(fare_id, customer_id, amount_minor, currency, charge_event_id)",
        &column(|c| c.fare_id.as_str().to_owned()),
        &column(|c| c.customer_id.as_str().to_owned()),
        &amounts,
        &column(|c| c.currency.as_str().to_owned()),
        reason,
        &charges,
    )
    .execute(conn)
    .await?;
    Ok(())
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
