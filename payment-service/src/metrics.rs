//! The payment-service's own gauges, read from `fares` when Prometheus scrapes: compensations
//! waiting, fares that need attention, stuck fares. Outcomes are counted by the consumer once
//! the batch writing them commits ([`crate::batch::Batch::emit_outcome`]).
//!
//! Two statements per scrape, through the `fares_status_created` index: they visit only the
//! fares in the statuses they count (all but the ordinary terminal ones), never the table's
//! history of collected and failed fares.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};
use sqlx::PgConnection;
use transactional_messaging::DatabaseGauges;

use crate::stuck;

pub struct FareGauges {
    compensations_waiting: IntGaugeVec,
    needs_attention: IntGauge,
    stuck: IntGauge,
    stuck_after: Duration,
}

impl FareGauges {
    /// The gauges, registered in `registry`; a fare is stuck after `stuck_after` without
    /// progress (`STUCK_AFTER`, see [`crate::stuck`]).
    pub fn register(registry: &Registry, stuck_after: Duration) -> prometheus::Result<FareGauges> {
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
            "Fares without an outcome and without progress for STUCK_AFTER (default 5 minutes, as fares audit --stuck-after): GET /fares?stuck=true lists them.",
        )?;
        registry.register(Box::new(compensations_waiting.clone()))?;
        registry.register(Box::new(needs_attention.clone()))?;
        registry.register(Box::new(stuck.clone()))?;
        Ok(FareGauges {
            compensations_waiting,
            needs_attention,
            stuck,
            stuck_after,
        })
    }

    async fn read(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        let row = sqlx::query!(
            r#"SELECT
                 count(*) FILTER (WHERE status = 'releasing') AS "releasing!",
                 count(*) FILTER (WHERE status = 'refunding') AS "refunding!",
                 count(*) FILTER (WHERE status = 'needs_attention') AS "needs_attention!"
               FROM fares WHERE status IN ('releasing', 'refunding', 'needs_attention')"#,
        )
        .fetch_one(&mut *conn)
        .await?;
        let stuck = stuck::count(conn, self.stuck_after).await?;
        self.compensations_waiting
            .with_label_values(&["release"])
            .set(row.releasing);
        self.compensations_waiting
            .with_label_values(&["refund"])
            .set(row.refunding);
        self.needs_attention.set(row.needs_attention);
        self.stuck.set(stuck);
        Ok(())
    }
}

impl DatabaseGauges for FareGauges {
    fn refresh<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<()>> {
        self.read(conn).boxed()
    }
}
