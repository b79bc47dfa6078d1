//! Whether a service is doing its work, for `GET /health`: one place that every part of the
//! runtime reports to, and that answers with the first reason the service is not ready.
//!
//! Not ready while:
//! - the consumer has not joined its group, or lost its partitions (a rebalance, or an
//!   eviction the broker told it about);
//! - the consumer loop has not polled Kafka for longer than `max.poll.interval.ms` — the broker
//!   has then evicted it from its group, even if nothing told the service yet;
//! - the outbox relay has been failing for longer than [`RELAY_FAILING_FOR`] (a row the broker
//!   keeps rejecting, the broker unreachable);
//! - batches have been failing, with no batch committed, for longer than
//!   [`PROCESSING_FAILING_FOR`] (the database down, read-only, out of space: the work is
//!   retried, and nothing is lost, but nothing gets done);
//! - one of the service's tasks ended or panicked (the service then stops: no zombie process
//!   keeps answering).
//!
//! The database is checked by the health route itself, at each request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the relay may fail before the service reports not ready.
pub const RELAY_FAILING_FOR: Duration = Duration::from_secs(5);
/// How long batches may fail, with none committed, before the service reports not ready.
pub const PROCESSING_FAILING_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct State {
    joined: bool,
    partitions: usize,
    /// Why the consumer is out of its group, when it is.
    left_group: Option<String>,
    /// When the consumer loop took the message it is still processing (it polls again after).
    busy_since: Option<Instant>,
    relay_failing: Option<(Instant, String)>,
    /// Since when batches have failed with none committed, and the last error.
    processing_failing: Option<(Instant, String)>,
    ended_task: Option<String>,
    messages_processed: u64,
}

/// Shared by the consumer, its group membership, the relay, the task supervisor and `/health`.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: Arc<Mutex<State>>,
    max_poll_interval: Duration,
}

/// What `/health` shows besides ready / not ready.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Activity {
    /// Partitions assigned to this instance's consumer.
    pub partitions: usize,
    /// Messages this instance processed (changed state or caused events) since it started.
    pub messages_processed: u64,
}

impl Readiness {
    /// `max_poll_interval`: the consumer's `max.poll.interval.ms`.
    pub fn new(max_poll_interval: Duration) -> Self {
        Readiness {
            state: Arc::default(),
            max_poll_interval,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent: every field is
        // written whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The consumer received its (possibly empty) share of the partitions.
    pub fn assigned(&self, partitions: usize) {
        let mut state = self.state();
        state.joined = true;
        state.partitions = partitions;
        state.left_group = None;
    }

    /// The consumer lost its partitions: `why` (a rebalance, an eviction).
    pub fn revoked(&self, why: &str) {
        let mut state = self.state();
        state.joined = false;
        state.partitions = 0;
        state.left_group = Some(why.to_owned());
    }

    /// The consumer loop took a message and stops polling until [`Readiness::polling`].
    pub fn busy(&self) {
        self.state().busy_since = Some(Instant::now());
    }

    /// The consumer loop is back to polling Kafka.
    pub fn polling(&self) {
        self.state().busy_since = None;
    }

    /// A message changed state or caused events.
    pub fn processed(&self) {
        self.state().messages_processed += 1;
    }

    pub fn relay_succeeded(&self) {
        self.state().relay_failing = None;
    }

    /// A row has not been published since `since`, because of `error` (the relay reports the
    /// row failing the longest).
    pub fn relay_failing(&self, since: Instant, error: &str) {
        self.state().relay_failing = Some((since, error.to_owned()));
    }

    /// A batch committed: processing works.
    pub fn batch_committed(&self) {
        let mut state = self.state();
        if state.processing_failing.is_some() {
            state.processing_failing = None;
        }
    }

    /// A batch failed with a retryable `error` (it is retried).
    pub fn batch_failed(&self, error: &str) {
        let mut state = self.state();
        let since = state
            .processing_failing
            .as_ref()
            .map_or_else(Instant::now, |(since, _)| *since);
        state.processing_failing = Some((since, error.to_owned()));
    }

    /// A task of the service ended before shutdown: the service is stopping with an error.
    pub fn task_ended(&self, why: &str) {
        self.state().ended_task = Some(why.to_owned());
    }

    /// Why the service is not ready, or `None` when it is.
    pub fn problem(&self) -> Option<String> {
        let state = self.state();
        if let Some(why) = &state.ended_task {
            return Some(format!("stopping: {why}"));
        }
        if !state.joined {
            return Some(match &state.left_group {
                Some(why) => format!("the Kafka consumer is out of its group: {why}"),
                None => "the Kafka consumer has not joined its group yet".to_owned(),
            });
        }
        if let Some(since) = state.busy_since {
            let busy = since.elapsed();
            if busy > self.max_poll_interval {
                return Some(format!(
                    "the Kafka consumer has not polled for {:.0}s (max.poll.interval.ms is {}): \
                     it is evicted from its group",
                    busy.as_secs_f64(),
                    self.max_poll_interval.as_millis()
                ));
            }
        }
        if let Some((since, error)) = &state.processing_failing {
            if since.elapsed() > PROCESSING_FAILING_FOR {
                return Some(format!(
                    "no batch committed for {:.0}s, every one failed: {error}",
                    since.elapsed().as_secs_f64()
                ));
            }
        }
        if let Some((since, error)) = &state.relay_failing {
            if since.elapsed() > RELAY_FAILING_FOR {
                return Some(format!(
                    "the outbox relay has been failing for {:.0}s: {error}",
                    since.elapsed().as_secs_f64()
                ));
            }
        }
        None
    }

    pub fn activity(&self) -> Activity {
        let state = self.state();
        Activity {
            partitions: state.partitions,
            messages_processed: state.messages_processed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_condition_makes_the_service_not_ready() {
        let readiness = Readiness::new(Duration::from_millis(50));
        assert!(readiness.problem().unwrap().contains("not joined"));
        readiness.assigned(3);
        assert_eq!(readiness.problem(), None);

        readiness.revoked("evicted");
        assert!(readiness.problem().unwrap().contains("evicted"));
        readiness.assigned(3);

        readiness.busy();
        assert_eq!(readiness.problem(), None, "busy within max.poll.interval");
        readiness.state().busy_since = Some(Instant::now() - Duration::from_millis(60));
        assert!(readiness.problem().unwrap().contains("has not polled"));
        readiness.polling();
        assert_eq!(readiness.problem(), None);

        readiness.relay_failing(Instant::now(), "broker rejected a message");
        assert_eq!(
            readiness.problem(),
            None,
            "a short relay failure is tolerated"
        );
        readiness.relay_failing(
            Instant::now() - RELAY_FAILING_FOR - Duration::from_secs(1),
            "broker rejected a message",
        );
        assert!(readiness.problem().unwrap().contains("outbox relay"));
        readiness.relay_succeeded();
        assert_eq!(readiness.problem(), None);

        readiness.batch_failed("database is read-only");
        assert_eq!(readiness.problem(), None, "a short failure is tolerated");
        readiness.state().processing_failing = Some((
            Instant::now() - PROCESSING_FAILING_FOR - Duration::from_secs(1),
            "x".into(),
        ));
        readiness.batch_failed("cannot execute INSERT in a read-only transaction");
        let problem = readiness.problem().unwrap();
        assert!(problem.contains("no batch committed"), "{problem}");
        assert!(problem.contains("read-only transaction"), "{problem}");
        readiness.batch_committed();
        assert_eq!(readiness.problem(), None);

        readiness.task_ended("task relay panicked");
        assert!(readiness.problem().unwrap().contains("relay panicked"));
    }
}
