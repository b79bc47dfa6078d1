//! Exponential backoff with full jitter, for retrying transient failures.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The delay before retry number `attempt` (1 = the first retry): a random duration in
    /// `[ceiling/2, ceiling]` where `ceiling = min(max, base * 2^(attempt-1))`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.max);
        let ceiling_ms = ceiling.as_millis().max(1) as u64;
        let jittered = rand::rng().random_range(ceiling_ms / 2..=ceiling_ms);
        Duration::from_millis(jittered)
    }

    pub async fn sleep(&self, attempt: u32) {
        tokio::time::sleep(self.delay(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_exponentially_and_is_capped() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..50 {
            let first = backoff.delay(1).as_millis();
            assert!((50..=100).contains(&first), "first retry {first}ms");
            let third = backoff.delay(3).as_millis();
            assert!((200..=400).contains(&third), "third retry {third}ms");
            let tenth = backoff.delay(10).as_millis();
            assert!((500..=1000).contains(&tenth), "tenth retry {tenth}ms");
        }
    }
}
