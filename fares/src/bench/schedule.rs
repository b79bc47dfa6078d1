//! The open loop's schedule: when each fare is meant to be sent, whatever the system under
//! test does. Fare `i` of a run at `R` fares/s is due `i / R` seconds after the start; a
//! sender that falls behind sends what is due at once, and latency is still counted from the
//! intended time (no coordinated omission). Without a rate every fare is due at the start.

use std::time::Duration;

/// When each of `fares` fares is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    fares: usize,
    rate: Option<f64>,
}

impl Schedule {
    /// `rate` in fares per second (`None`: as fast as possible); it must be positive.
    pub fn new(fares: usize, rate: Option<f64>) -> Schedule {
        debug_assert!(rate.is_none_or(|r| r > 0.0 && r.is_finite()));
        Schedule { fares, rate }
    }

    /// Whether fares are sent on a schedule (`--rate`).
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some()
    }

    /// When fare `i` is due, from the start of the run.
    pub fn offset(&self, i: usize) -> Duration {
        match self.rate {
            Some(rate) => Duration::from_secs_f64(i as f64 / rate),
            None => Duration::ZERO,
        }
    }

    /// How many fares are due `elapsed` after the start (fares `0..due`).
    pub fn due(&self, elapsed: Duration) -> usize {
        match self.rate {
            Some(rate) => {
                // The last fare whose offset is at most `elapsed`, guarding against a
                // rounding error just below a whole number of intervals.
                let sent = (elapsed.as_secs_f64() * rate + 1e-9).floor() as usize + 1;
                sent.min(self.fares)
            }
            None => self.fares,
        }
    }

    /// How long sending all fares takes when the sender keeps up.
    pub fn span(&self) -> Duration {
        self.offset(self.fares.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fares_are_due_at_even_intervals() {
        let s = Schedule::new(300, Some(100.0));
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(10));
        assert_eq!(s.offset(100), Duration::from_secs(1));
        assert_eq!(s.due(Duration::ZERO), 1);
        assert_eq!(s.due(Duration::from_micros(9_999)), 1);
        assert_eq!(s.due(Duration::from_millis(10)), 2);
        assert_eq!(s.due(Duration::from_secs(1)), 101);
        assert_eq!(s.span(), Duration::from_millis(2_990));
        assert!(s.is_open_loop());
    }

    #[test]
    fn a_late_sender_finds_every_missed_fare_due_and_never_more_than_the_run() {
        let s = Schedule::new(300, Some(100.0));
        // Asleep for half a second: 50 intervals passed, 51 fares are due.
        assert_eq!(s.due(Duration::from_millis(500)), 51);
        assert_eq!(s.due(Duration::from_secs(3600)), 300);
        // A fractional rate.
        let slow = Schedule::new(10, Some(0.5));
        assert_eq!(slow.offset(3), Duration::from_secs(6));
        assert_eq!(slow.due(Duration::from_millis(5_999)), 3);
        assert_eq!(slow.due(Duration::from_secs(6)), 4);
    }

    #[test]
    fn without_a_rate_everything_is_due_at_once() {
        let s = Schedule::new(5, None);
        assert_eq!(s.due(Duration::ZERO), 5);
        assert_eq!(s.offset(4), Duration::ZERO);
        assert_eq!(s.span(), Duration::ZERO);
        assert!(!s.is_open_loop());
    }
}
