//! Stuck sagas (ARCHITECTURE.md, "Stuck sagas"): a fare with no outcome that has made no
//! progress for `STUCK_AFTER` (default 5 min) — its row unchanged and, for a pending
//! compensation, its next attempt that long overdue, or its budget spent that long ago (the
//! attempts the gateway does not answer go on past the budget: they are not progress).
//!
//! What a stuck fare waits for decides what is done about it. The two gateway calls of the
//! saga's forward path stop waiting by themselves after `GATEWAY_ANSWER_TIMEOUT`
//! ([`crate::saga::Reply::Unanswered`]), and the compensations give up after their budget
//! when the gateway refuses them (one it does not answer goes on: it may have been made);
//! everything else — a `Charged` the accounting-service never answers, the service's own events
//! it has not consumed yet — is never decided by the clock, because acting on silence would
//! move money twice (a refund for a charge the ledger may still credit). Such a fare is shown,
//! here, to whoever must act: in the read API (`GET /fares?stuck=true`, and `stuck` in
//! `GET /fares/{fare_id}`), a warning log line once per stall ([`watch`]), the
//! `wildrydes_fares_stuck` gauge, `fares status` and `fares audit`.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use transactional_messaging::Stopping;

use crate::fare::{FareStatus, ListPosition};

/// A stuck fare: where it stands, since when nothing happened, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StuckFare {
    pub fare_id: String,
    pub status: FareStatus,
    /// Its last progress: the row's last change, or the compensation attempt it waits for.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub idle_secs: i64,
    pub waiting_for: &'static str,
    #[serde(skip)]
    pub position: ListPosition,
}

/// What a fare in `status` waits for; `None` for a terminal status.
pub fn waiting_for(status: FareStatus) -> Option<&'static str> {
    Some(match status {
        FareStatus::PreAuthorising => {
            "the gateway's answer to the pre-authorisation (given up after GATEWAY_ANSWER_TIMEOUT)"
        }
        FareStatus::PreAuthorised => {
            "the capture: payment-service consuming its PreAuthorised, then the gateway's answer"
        }
        FareStatus::Charged => {
            "accounting-service's answer to Charged (AccountUpdated or AccountUpdateFailed): \
             is it running, is Charged in its dead letters?"
        }
        FareStatus::ChargeFailed => {
            "payment-service consuming its ChargeFailed, to release the hold"
        }
        FareStatus::Releasing => {
            "the next attempt of the release (the compensator); past its budget, the gateway's \
             answer: it refuses (given up) or does not answer (asked again)"
        }
        FareStatus::Refunding => {
            "the next attempt of the refund (the compensator); past its budget, the gateway's \
             answer: it refuses (given up) or does not answer (asked again)"
        }
        FareStatus::PreAuthFailed
        | FareStatus::PreAuthReleased
        | FareStatus::ReleaseFailed
        | FareStatus::Refunded
        | FareStatus::RefundFailed => {
            "payment-service consuming its own last event, to publish the outcome"
        }
        FareStatus::Rejected
        | FareStatus::Collected
        | FareStatus::Failed
        | FareStatus::NeedsAttention => return None,
    })
}

/// The statuses a fare can be stuck in: every one that is not terminal.
fn waiting_statuses() -> Vec<String> {
    FareStatus::ALL
        .iter()
        .filter(|status| waiting_for(**status).is_some())
        .map(|status| status.as_str().to_owned())
        .collect()
}

/// Up to `limit` stuck fares, oldest first (by `created_at`, then `fare_id`, the read API's
/// paging order), after the fare `after` is the position of.
pub async fn list(
    conn: &mut PgConnection,
    stuck_after: Duration,
    after: Option<&ListPosition>,
    limit: i64,
) -> sqlx::Result<Vec<StuckFare>> {
    select(conn, stuck_after, None, after, limit).await
}

/// `fare_id`, if it is stuck.
pub async fn of_fare(
    conn: &mut PgConnection,
    stuck_after: Duration,
    fare_id: &str,
) -> sqlx::Result<Option<StuckFare>> {
    Ok(select(conn, stuck_after, Some(fare_id), None, 1)
        .await?
        .pop())
}

async fn select(
    conn: &mut PgConnection,
    stuck_after: Duration,
    only: Option<&str>,
    after: Option<&ListPosition>,
    limit: i64,
) -> sqlx::Result<Vec<StuckFare>> {
    let start = ListPosition {
        created_at: OffsetDateTime::UNIX_EPOCH,
        fare_id: String::new(),
    };
    let after = after.unwrap_or(&start);
    // The last progress: greatest() ignores a NULL next_compensation_at (a compensation
    // waiting for its next attempt is not stuck before that attempt is overdue); least() ends a
    // compensation's progress at its deadline (past it, only a refusal or an approval moves
    // it on; unanswered attempts do not).
    let rows = sqlx::query!(
        r#"SELECT fare_id, status, created_at, since AS "since!",
                  extract(epoch FROM now() - since)::bigint AS "idle_secs!"
           FROM (SELECT fare_id, status, created_at,
                        CASE WHEN status IN ('releasing', 'refunding')
                             THEN least(greatest(updated_at, next_compensation_at),
                                        compensation_deadline)
                             ELSE greatest(updated_at, next_compensation_at) END AS since
                 FROM fares WHERE status = ANY($1)) AS waiting
           WHERE since < now() - make_interval(secs => $2)
             AND (created_at, fare_id) > ($3, $4)
             AND ($6::text IS NULL OR fare_id = $6)
           ORDER BY created_at, fare_id LIMIT $5"#,
        &waiting_statuses(),
        stuck_after.as_secs_f64(),
        after.created_at,
        after.fare_id,
        limit,
        only,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let status = FareStatus::parse(&row.status)?;
            Some(StuckFare {
                position: ListPosition {
                    created_at: row.created_at,
                    fare_id: row.fare_id.clone(),
                },
                fare_id: row.fare_id,
                status,
                since: row.since,
                idle_secs: row.idle_secs,
                waiting_for: waiting_for(status)?,
            })
        })
        .collect())
}

/// How many fares are stuck (for the `wildrydes_fares_stuck` gauge).
pub async fn count(conn: &mut PgConnection, stuck_after: Duration) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM fares
           WHERE status = ANY($1)
             AND CASE WHEN status IN ('releasing', 'refunding')
                      THEN least(greatest(updated_at, next_compensation_at), compensation_deadline)
                      ELSE greatest(updated_at, next_compensation_at) END
                 < now() - make_interval(secs => $2)"#,
        &waiting_statuses(),
        stuck_after.as_secs_f64(),
    )
    .fetch_one(conn)
    .await
}

/// How often the watch looks for fares that became stuck.
fn watch_interval(stuck_after: Duration) -> Duration {
    (stuck_after / 5).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// At most this many stuck fares are logged one by one each look; the rest are counted.
const LOGGED_PER_LOOK: i64 = 100;

/// Logs a warning for each fare that became stuck, once per stall (a fare that moves and
/// stalls again is logged again), and how many are stuck in all, until `stopping`.
pub async fn watch(pool: PgPool, stuck_after: Duration, stopping: Stopping) -> anyhow::Result<()> {
    let stopping = stopping.wait();
    tokio::pin!(stopping);
    let mut logged: HashMap<String, OffsetDateTime> = HashMap::new();
    loop {
        match look(&pool, stuck_after, &mut logged).await {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(error = %error, "could not look for stuck fares; trying again")
            }
        }
        tokio::select! {
            () = &mut stopping => return Ok(()),
            () = tokio::time::sleep(watch_interval(stuck_after)) => {}
        }
    }
}

async fn look(
    pool: &PgPool,
    stuck_after: Duration,
    logged: &mut HashMap<String, OffsetDateTime>,
) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    let total = count(&mut conn, stuck_after).await?;
    if total == 0 {
        logged.clear();
        return Ok(());
    }
    let stuck = list(&mut conn, stuck_after, None, LOGGED_PER_LOOK).await?;
    let mut newly = 0;
    for fare in &stuck {
        if logged.get(&fare.fare_id) == Some(&fare.since) {
            continue;
        }
        newly += 1;
        tracing::warn!(
            fare_id = %fare.fare_id,
            status = fare.status.as_str(),
            idle_secs = fare.idle_secs,
            waiting_for = fare.waiting_for,
            "fare stuck: no progress for longer than STUCK_AFTER"
        );
    }
    if newly > 0 && total > LOGGED_PER_LOOK {
        tracing::warn!(
            stuck = total,
            "stuck fares: the first {LOGGED_PER_LOOK} are logged; GET /fares?stuck=true lists them all"
        );
    }
    *logged = stuck
        .into_iter()
        .map(|fare| (fare.fare_id, fare.since))
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_statuses_without_an_outcome_can_be_stuck() {
        for status in FareStatus::ALL {
            assert_eq!(
                waiting_for(status).is_none(),
                status.is_terminal(),
                "{}",
                status.as_str()
            );
        }
    }

    #[test]
    fn the_watch_looks_often_enough_and_not_too_often() {
        assert_eq!(
            watch_interval(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            watch_interval(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        assert_eq!(
            watch_interval(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
