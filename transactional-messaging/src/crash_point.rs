//! Crash points: the fault-injection switch of the crash tests (README "Crash points"). A
//! service started with `CRASH_POINT=<name>` aborts — no destructor runs, nothing is flushed,
//! as under SIGKILL — the `CRASH_POINT_AFTER`-th time (default 1) it reaches the point of that
//! name. In a normal run the variable is unset, nothing is armed, and reaching a point costs one
//! read of a value set once at start-up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::config::ConfigError;

/// A named place where a crash tests the saga's recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// A gateway call (pre-authorise, capture) answered; its answer not recorded yet.
    GatewayAnswered,
    /// A batch's statements written, its transaction not committed.
    MidBatch,
    /// A batch committed; its messages' offsets not stored, its outbox rows not handed over.
    BatchCommitted,
    /// The broker acknowledged an outbox row; the row not marked published.
    OutboxAcknowledged,
    /// A compensation's gateway call (release, refund) answered; the attempt not recorded.
    CompensationAnswered,
}

impl CrashPoint {
    /// Every crash point.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::GatewayAnswered,
        CrashPoint::MidBatch,
        CrashPoint::BatchCommitted,
        CrashPoint::OutboxAcknowledged,
        CrashPoint::CompensationAnswered,
    ];

    /// The name `CRASH_POINT` takes.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::GatewayAnswered => "gateway-answered",
            CrashPoint::MidBatch => "mid-batch",
            CrashPoint::BatchCommitted => "batch-committed",
            CrashPoint::OutboxAcknowledged => "outbox-acknowledged",
            CrashPoint::CompensationAnswered => "compensation-answered",
        }
    }

    fn named(name: &str) -> Option<CrashPoint> {
        CrashPoint::ALL.into_iter().find(|p| p.name() == name)
    }
}

struct Armed {
    point: CrashPoint,
    /// Times the point may still be passed before the crash.
    passes_left: AtomicU64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

/// Reads `CRASH_POINT` and `CRASH_POINT_AFTER` once; a name that is not a crash point is an
/// error that lists them. Later calls change nothing.
pub fn arm_from_env() -> Result<(), ConfigError> {
    if ARMED.get().is_some() {
        return Ok(());
    }
    let armed = match std::env::var("CRASH_POINT").ok().filter(|v| !v.is_empty()) {
        None => None,
        Some(name) => {
            let point = CrashPoint::named(&name).ok_or_else(|| ConfigError::Invalid {
                name: "CRASH_POINT",
                reason: format!(
                    "{name:?} is not a crash point; one of: {}",
                    CrashPoint::ALL.map(CrashPoint::name).join(", ")
                ),
            })?;
            let after: u64 = crate::config::env_parse("CRASH_POINT_AFTER", 1)?;
            tracing::warn!(
                crash_point = point.name(),
                after,
                "CRASH_POINT is set: this process aborts the {after}th time it reaches it"
            );
            Some(Armed {
                point,
                passes_left: AtomicU64::new(after.max(1)),
            })
        }
    };
    let _ = ARMED.set(armed);
    Ok(())
}

/// Marks `point` reached: aborts the process if it is the armed point's turn.
pub fn reached(point: CrashPoint) {
    let Some(Some(armed)) = ARMED.get() else {
        return;
    };
    if armed.point == point && armed.passes_left.fetch_sub(1, Ordering::SeqCst) == 1 {
        eprintln!("crash point {} reached: aborting", point.name());
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_found_by_its_name() {
        for point in CrashPoint::ALL {
            assert_eq!(CrashPoint::named(point.name()), Some(point));
        }
        assert_eq!(CrashPoint::named("after-commit"), None);
    }
}
