//! The figures of a run: settled fares per second, and latency percentiles from an HDR
//! histogram of microseconds.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency a histogram holds (1 hour, in µs); larger values count as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// An empty histogram of latencies in µs, 1 µs to an hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// A duration in µs as a histogram value: at least 1 (timestamps have millisecond precision,
/// so a difference can come out a little below zero).
pub fn clamp(us: i64) -> u64 {
    us.max(1) as u64
}

/// Settled fares per second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Throughput {
    /// First request's timestamp to last outcome's, in seconds.
    pub seconds: Option<f64>,
    /// First request's timestamp to first outcome's, in seconds.
    pub first_outcome_after_s: Option<f64>,
    /// Settled fares / `seconds`.
    pub settled_per_s: Option<f64>,
    /// Settled fares per second over the middle 80 % of the run's time (from 10 % to 90 % of
    /// first request → last outcome): the rate without the ramp-up and the tail. Well below
    /// `settled_per_s` when outcomes come in bursts rather than as a steady stream.
    pub sustained_per_s: Option<f64>,
}

impl Throughput {
    /// From the first request's timestamp and the sorted outcome timestamps (ms).
    pub fn from_times(first_request_ms: Option<i64>, outcomes_ms: &[i64]) -> Throughput {
        let (Some(first), Some(&earliest), Some(&last)) =
            (first_request_ms, outcomes_ms.first(), outcomes_ms.last())
        else {
            return Throughput::default();
        };
        let span_ms = (last - first) as f64;
        let settled_per_s = (span_ms > 0.0).then(|| outcomes_ms.len() as f64 * 1000.0 / span_ms);
        let (from, to) = (first as f64 + span_ms * 0.1, first as f64 + span_ms * 0.9);
        let in_middle = outcomes_ms
            .iter()
            .filter(|&&t| (from..to).contains(&(t as f64)))
            .count();
        let sustained_per_s = (outcomes_ms.len() >= 10 && span_ms > 0.0)
            .then(|| in_middle as f64 * 1000.0 / (to - from));
        Throughput {
            seconds: Some(span_ms / 1000.0),
            first_outcome_after_s: Some((earliest - first) as f64 / 1000.0),
            settled_per_s,
            sustained_per_s,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of µs; `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        })
    }
}

/// How long a window of [`LatencyWindow::over_the_run`] is.
pub const WINDOW_S: i64 = 10;

/// The latency of the fares sent in one window of the run, by send time: a warm-up, a stall
/// or a slow decline shows in them where the run's percentiles average it away.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyWindow {
    /// Seconds from the run's first send to the window's start and end.
    pub from_s: i64,
    pub to_s: i64,
    pub latency_ms: Percentiles,
}

impl LatencyWindow {
    /// The windows of [`WINDOW_S`] of `latencies` — (send time, latency), both µs — from the
    /// first send on; a window without a settled fare is left out.
    pub fn over_the_run(latencies: &[(i64, u64)]) -> Vec<LatencyWindow> {
        let Some(start) = latencies.iter().map(|(sent, _)| *sent).min() else {
            return Vec::new();
        };
        let mut windows: std::collections::BTreeMap<i64, Histogram<u64>> = Default::default();
        for (sent, latency) in latencies {
            let window = (sent - start) / (WINDOW_S * 1_000_000);
            windows
                .entry(window)
                .or_insert_with(histogram)
                .saturating_record(*latency);
        }
        windows
            .into_iter()
            .filter_map(|(window, histogram)| {
                Some(LatencyWindow {
                    from_s: window * WINDOW_S,
                    to_s: (window + 1) * WINDOW_S,
                    latency_ms: Percentiles::of(&histogram)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_over_the_run_is_by_window_of_send_time() {
        let s = 1_000_000;
        // Sent at 0 s, 9.9 s, 10 s and 35 s (µs since some epoch), settled 5, 7, 100, 3 ms later.
        let latencies = [
            (1_000 * s, 5_000),
            (1_000 * s + 9_900_000, 7_000),
            (1_010 * s, 100_000),
            (1_035 * s, 3_000),
        ];
        let windows = LatencyWindow::over_the_run(&latencies);
        let spans: Vec<(i64, i64, u64)> = windows
            .iter()
            .map(|w| (w.from_s, w.to_s, w.latency_ms.count))
            .collect();
        assert_eq!(spans, [(0, 10, 2), (10, 20, 1), (30, 40, 1)]);
        assert!(
            (windows[0].latency_ms.max - 7.0).abs() < 0.01,
            "{windows:?}"
        );
        assert!(
            (windows[1].latency_ms.p50 - 100.0).abs() < 0.1,
            "{windows:?}"
        );
        assert!(LatencyWindow::over_the_run(&[]).is_empty());
    }

    #[test]
    fn throughput_over_the_run_and_its_middle() {
        // A steady stream: one outcome every 10 ms for 1 s after the first request.
        let steady: Vec<i64> = (1..=100).map(|i| i * 10).collect();
        let t = Throughput::from_times(Some(0), &steady);
        assert_eq!(t.seconds, Some(1.0));
        assert_eq!(t.first_outcome_after_s, Some(0.01));
        assert!((t.settled_per_s.unwrap() - 100.0).abs() < 1e-9, "{t:?}");
        // From 100 ms to 900 ms: 80 outcomes in 0.8 s.
        assert!((t.sustained_per_s.unwrap() - 100.0).abs() < 1e-9, "{t:?}");

        // A burst: nothing for 900 ms, then 100 outcomes in the last 100 ms.
        let burst: Vec<i64> = (0..100).map(|i| 901 + i).collect();
        let t = Throughput::from_times(Some(0), &burst);
        assert!((t.settled_per_s.unwrap() - 100.0).abs() < 1e-9, "{t:?}");
        assert!(t.sustained_per_s.unwrap() < 2.0, "{t:?}");
        assert_eq!(t.first_outcome_after_s, Some(0.901));

        assert!(Throughput::from_times(None, &steady)
            .settled_per_s
            .is_none());
        assert!(Throughput::from_times(Some(0), &[5])
            .sustained_per_s
            .is_none());
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut h = histogram();
        for us in 1..=10_000u64 {
            h.saturating_record(us * 100);
        }
        let p = Percentiles::of(&h).unwrap();
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p99_9 && p.p99_9 <= p.max);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.0, "{p:?}");
        assert_eq!(Percentiles::of(&histogram()), None);
    }
}
