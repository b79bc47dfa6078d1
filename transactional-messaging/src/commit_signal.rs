//! "A transaction that may have written outbox rows or due work just committed": the consumer
//! loop announces it after each message, and the tasks that act on such rows (the outbox
//! relay, a service's compensation retrier) wake up at once instead of waiting for their next
//! poll. An announcement made while a listener is busy is not lost: it wakes it right after.

use std::sync::Arc;

use tokio::sync::watch;

/// The announcing side; cheap to clone.
#[derive(Debug, Clone)]
pub struct CommitSignal(Arc<watch::Sender<u64>>);

impl Default for CommitSignal {
    fn default() -> Self {
        CommitSignal(Arc::new(watch::channel(0).0))
    }
}

impl CommitSignal {
    pub fn notify(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A listener that sees every announcement made from now on.
    pub fn subscribe(&self) -> CommitWatch {
        CommitWatch(self.0.subscribe())
    }
}

/// The listening side of a [`CommitSignal`].
#[derive(Debug)]
pub struct CommitWatch(watch::Receiver<u64>);

impl CommitWatch {
    /// Completes at the next announcement (at once if one came since the last call). Never
    /// completes once every [`CommitSignal`] is dropped.
    pub async fn committed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_announcement_made_while_busy_wakes_the_listener_later() {
        let signal = CommitSignal::default();
        let mut watch = signal.subscribe();
        signal.notify();
        tokio::time::timeout(Duration::from_secs(1), watch.committed())
            .await
            .expect("woken by the earlier announcement");
        let waited = tokio::time::timeout(Duration::from_millis(20), watch.committed()).await;
        assert!(waited.is_err(), "no announcement, no wake-up");
    }
}
