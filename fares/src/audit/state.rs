//! Reading both services' state for the audit, as the read-only role `wildrydes_auditor`
//! (`AUDIT_DATABASE_URL`): the fares, the gateway's records of the money that moved, the
//! ledger, both inboxes and the dead letters still in the outboxes.
//!
//! Everything is read in one `REPEATABLE READ, READ ONLY` transaction: one snapshot of both
//! schemas, so a fare, its gateway operations and its ledger entry are seen at the same moment.
//! Names are schema-qualified; the queries are compile-checked against `.sqlx/`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use events_schema::choreography::Service;
use events_schema::Topic;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use transactional_messaging::dead_letter::{
    HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use uuid::Uuid;

use super::messages::{digest, DeadLetter, Position};

/// The default of `AUDIT_DATABASE_URL`: the read-only auditor role on the native stack.
pub const DEFAULT_URL: &str =
    "postgres://wildrydes_auditor:wildrydes_auditor@localhost:5432/wildrydes";

/// One row of `payment.fares`, as far as the checks care.
#[derive(Debug, Clone)]
pub struct FareRow {
    pub status: String,
    pub request_fingerprint: Uuid,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub failure_reason: Option<String>,
    pub updated_at: OffsetDateTime,
    /// While a compensation is retried (`releasing`, `refunding`): when it is given up.
    pub compensation_deadline: Option<OffsetDateTime>,
}

/// The approved gateway operations of one kind for one fare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approved {
    pub count: i64,
    pub amount_minor: i64,
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    /// The gateway's reference of one of them (e.g. the authorisation id).
    pub reference: Option<String>,
    /// When the latest of them was made (database clock).
    pub latest_at: Option<OffsetDateTime>,
}

/// What an inbox says of one event id.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub fare_id: String,
    pub event_type: String,
    pub fingerprint: Option<Uuid>,
}

/// Both services' state, at one moment.
#[derive(Debug, Default)]
pub struct State {
    /// When the snapshot was taken (database clock).
    pub taken_at: Option<OffsetDateTime>,
    pub fares: HashMap<String, FareRow>,
    /// fare → operation (`pre_authorise`, `capture`, `release`, `refund`) → approved ones.
    pub approved: HashMap<String, BTreeMap<String, Approved>>,
    /// fare → ledger amount.
    pub ledger: HashMap<String, i64>,
    /// Each service's inbox of events (requests left out: a fare's row records those).
    pub inbox: HashMap<Service, HashMap<Uuid, InboxRow>>,
    /// Dead letters in an outbox not yet published when the audit started (in flight).
    pub unpublished_dead_letters: Vec<(Topic, DeadLetter)>,
}

/// The auditor's connection.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    /// Host, port, database and user, for messages (never the password).
    pub described: String,
}

impl Database {
    /// Connects with `url`; an error says which variable to fix or what to start.
    pub async fn connect(url: &str) -> anyhow::Result<Database> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            anyhow!(
                "AUDIT_DATABASE_URL is not a PostgreSQL URL ({}): {e}",
                transactional_messaging::config::redact_url(url)
            )
        })?;
        let described = format!(
            "{}:{}/{} as {}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)"),
            options.get_username()
        );
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to PostgreSQL at {described} — is it up? (scripts/stack up; \
                     set AUDIT_DATABASE_URL, default {DEFAULT_URL}, to the read-only auditor \
                     role: scripts/postgres/roles.sql provisions wildrydes_auditor)"
                )
            })?;
        Ok(Database { pool, described })
    }

    /// The pool, for the scan of every table.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's clock now.
    pub async fn now(&self) -> anyhow::Result<OffsetDateTime> {
        let now = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
            .fetch_one(&self.pool)
            .await
            .with_context(|| format!("cannot query PostgreSQL at {}", self.described))?;
        Ok(now)
    }

    /// Reads the state in one snapshot. `since`: when the audit took the watermarks (database
    /// clock); a dead letter published after it may be missing from what was read of the topic.
    pub async fn read(&self, since: OffsetDateTime) -> anyhow::Result<State> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let state = read_state(&mut tx, since).await.map_err(|error| {
            let hint = if is_undefined_table(&error) {
                " — the services create their tables when they first start: start them once \
                 (scripts/stack up), or point AUDIT_DATABASE_URL at their database"
            } else {
                ""
            };
            anyhow::Error::new(error).context(format!(
                "cannot read the services' state at {}{hint}",
                self.described
            ))
        })?;
        tx.rollback().await?;
        Ok(state)
    }
}

/// Whether `error` says a table does not exist (SQLSTATE 42P01).
fn is_undefined_table(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}

async fn read_state(conn: &mut PgConnection, since: OffsetDateTime) -> sqlx::Result<State> {
    let taken_at = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *conn)
        .await?;
    let mut state = State {
        taken_at: Some(taken_at),
        fares: fares(conn).await?,
        approved: approved_operations(conn).await?,
        ledger: ledger(conn).await?,
        ..State::default()
    };
    state
        .inbox
        .insert(Service::Payment, payment_inbox(conn).await?);
    state
        .inbox
        .insert(Service::Accounting, accounting_inbox(conn).await?);
    state.unpublished_dead_letters = unpublished_dead_letters(conn, since).await?;
    Ok(state)
}

async fn fares(conn: &mut PgConnection) -> sqlx::Result<HashMap<String, FareRow>> {
    let rows = sqlx::query!(
        "SELECT fare_id, status, request_fingerprint, amount_minor, currency, failure_reason, \
         updated_at, compensation_deadline FROM payment.fares"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let fare = FareRow {
                status: row.status,
                request_fingerprint: row.request_fingerprint,
                amount_minor: row.amount_minor,
                currency: row.currency,
                failure_reason: row.failure_reason,
                updated_at: row.updated_at,
                compensation_deadline: row.compensation_deadline,
            };
            (row.fare_id, fare)
        })
        .collect())
}

async fn approved_operations(
    conn: &mut PgConnection,
) -> sqlx::Result<HashMap<String, BTreeMap<String, Approved>>> {
    let rows = sqlx::query!(
        r#"SELECT fare_id AS "fare_id!", operation AS "operation!",
                  count(*) AS "count!",
                  COALESCE(sum(amount_minor), 0)::bigint AS "amount_minor!",
                  min(amount_minor) AS min_amount, max(amount_minor) AS max_amount,
                  min(reference) AS reference, max(created_at) AS latest_at
           FROM payment.gateway_operations WHERE approved
           GROUP BY fare_id, operation"#
    )
    .fetch_all(conn)
    .await?;
    let mut approved: HashMap<String, BTreeMap<String, Approved>> = HashMap::new();
    for row in rows {
        approved.entry(row.fare_id).or_default().insert(
            row.operation,
            Approved {
                count: row.count,
                amount_minor: row.amount_minor,
                min_amount: row.min_amount,
                max_amount: row.max_amount,
                reference: row.reference,
                latest_at: row.latest_at,
            },
        );
    }
    Ok(approved)
}

async fn ledger(conn: &mut PgConnection) -> sqlx::Result<HashMap<String, i64>> {
    let rows = sqlx::query!("SELECT fare_id, amount_minor FROM accounting.ledger_entries")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.fare_id, row.amount_minor))
        .collect())
}

async fn payment_inbox(conn: &mut PgConnection) -> sqlx::Result<HashMap<Uuid, InboxRow>> {
    let rows = sqlx::query!(
        "SELECT event_id, event_type, fare_id, fingerprint FROM payment.inbox \
         WHERE event_type <> 'FareRequested'"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let inbox = InboxRow {
                fare_id: row.fare_id,
                event_type: row.event_type,
                fingerprint: row.fingerprint,
            };
            (row.event_id, inbox)
        })
        .collect())
}

async fn accounting_inbox(conn: &mut PgConnection) -> sqlx::Result<HashMap<Uuid, InboxRow>> {
    let rows = sqlx::query!(
        "SELECT event_id, event_type, fare_id, fingerprint FROM accounting.inbox \
         WHERE event_type <> 'FareRequested'"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let inbox = InboxRow {
                fare_id: row.fare_id,
                event_type: row.event_type,
                fingerprint: row.fingerprint,
            };
            (row.event_id, inbox)
        })
        .collect())
}

/// Dead letters both outboxes hold that were not published before `since`.
async fn unpublished_dead_letters(
    conn: &mut PgConnection,
    since: OffsetDateTime,
) -> sqlx::Result<Vec<(Topic, DeadLetter)>> {
    let payment = sqlx::query!(
        "SELECT message_key, payload, headers FROM payment.outbox \
         WHERE topic = $1 AND (published_at IS NULL OR published_at >= $2)",
        Topic::PaymentDlq.base_name(),
        since
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .filter_map(|row| {
        let letter = outbox_dead_letter(row.message_key, &row.payload, &row.headers)?;
        Some((Topic::PaymentDlq, letter))
    });
    let accounting = sqlx::query!(
        "SELECT message_key, payload, headers FROM accounting.outbox \
         WHERE topic = $1 AND (published_at IS NULL OR published_at >= $2)",
        Topic::AccountingDlq.base_name(),
        since
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .filter_map(|row| {
        let letter = outbox_dead_letter(row.message_key, &row.payload, &row.headers)?;
        Some((Topic::AccountingDlq, letter))
    });
    Ok(payment.chain(accounting).collect())
}

/// The dead letter an outbox row will publish; `None` without the `dlq.source.*` headers.
fn outbox_dead_letter(
    key: Option<String>,
    payload: &[u8],
    headers: &serde_json::Value,
) -> Option<DeadLetter> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Some(DeadLetter {
        source_topic: header(HEADER_SOURCE_TOPIC)?,
        source: Position {
            partition: header(HEADER_SOURCE_PARTITION)?.parse().ok()?,
            offset: header(HEADER_SOURCE_OFFSET)?.parse().ok()?,
        },
        digest: digest(payload),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_outbox_row_names_the_position_its_dead_letter_stands_for() {
        let headers = json!({
            "dlq.source.topic": "fare-requests.t",
            "dlq.source.partition": "2",
            "dlq.source.offset": "17",
            "dlq.error": "not JSON",
            "dlq.service": "payment-service"
        });
        let letter = outbox_dead_letter(Some("wr_1".into()), b"x", &headers).unwrap();
        assert_eq!(letter.source_topic, "fare-requests.t");
        assert_eq!(
            letter.source,
            Position {
                partition: 2,
                offset: 17
            }
        );
        assert_eq!(letter.digest, digest(b"x"));
        assert!(outbox_dead_letter(None, b"x", &json!({})).is_none());
    }
}
