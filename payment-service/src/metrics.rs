//! The payment-service's own gauges, read from `fares` when Prometheus scrapes: compensations
//! waiting, fares that need attention, stuck fares. Outcomes are counted by the consumer once
//! the batch writing them commits ([`crate::batch::Batch::emit_outcome`]).
//!
//! One statement per scrape, through the `fares_status_created` index: it visits only the
//! fares in the statuses it counts (all but the three ordinary terminal ones), never the
//! table's history of collected and failed fares.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};
use sqlx::PgConnection;
use transactional_messaging::DatabaseGauges;

use crate::fare::FareStatus;

/// A fare not terminal whose row has not changed for this long is stuck (as `fares audit
/// --stuck-after`'s default).
pub const STUCK_AFTER: Duration = Duration::from_secs(300);

pub struct FareGauges {
    compensations_waiting: IntGaugeVec,
    needs_attention: IntGauge,
    stuck: IntGauge,
}

impl FareGauges {
    /// The gauges, registered in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<FareGauges> {
        let compensations_waiting = IntGaugeVec::new(
            Opts::new(
                "wildrydes_compensations_waiting",
                "Fares whose compensation (release or refund) is pending: retried by the compensator until done or its budget is spent.",
            ),
            &["compensation"],
        )?;
        let needs_attention = IntGauge::new(
            "wildrydes_fares_needs_attention",
            "Fares whose compensation was given up: an operator must act (GET /fares?status=needs_attention).",
        )?;
        let stuck = IntGauge::new(
            "wildrydes_fares_stuck",
            "Fares without an outcome whose row has not changed for 5 minutes (as fares audit --stuck-after 5m).",
        )?;
        registry.register(Box::new(compensations_waiting.clone()))?;
        registry.register(Box::new(needs_attention.clone()))?;
        registry.register(Box::new(stuck.clone()))?;
        Ok(FareGauges {
            compensations_waiting,
            needs_attention,
            stuck,
        })
    }

    async fn read(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        let counted: Vec<String> = [
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
            FareStatus::NeedsAttention,
        ]
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
        let stuck_after = STUCK_AFTER.as_secs_f64();
        let row = sqlx::query!(
            r#"SELECT
                 count(*) FILTER (WHERE status = 'releasing') AS "releasing!",
                 count(*) FILTER (WHERE status = 'refunding') AS "refunding!",
                 count(*) FILTER (WHERE status = 'needs_attention') AS "needs_attention!",
                 count(*) FILTER (WHERE status <> 'needs_attention'
                   AND updated_at < now() - make_interval(secs => $2)) AS "stuck!"
               FROM fares WHERE status = ANY($1)"#,
            &counted,
            stuck_after,
        )
        .fetch_one(conn)
        .await?;
        self.compensations_waiting
            .with_label_values(&["release"])
            .set(row.releasing);
        self.compensations_waiting
            .with_label_values(&["refund"])
            .set(row.refunding);
        self.needs_attention.set(row.needs_attention);
        self.stuck.set(row.stuck);
        Ok(())
    }
}

impl DatabaseGauges for FareGauges {
    fn refresh<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<()>> {
        self.read(conn).boxed()
    }
}
