//! The marker mix of a benchmark: which share of the fares ends how (SPEC §5's `customer_id`
//! endings), how it is written on the command line (`happy=90,fail_credit=5,fail_charge=5`),
//! and which marker each fare of a run gets — exact counts, spread evenly over the run.

use std::fmt;

use events_schema::FailureMarker;

use super::outcome::OutcomeKind;

/// The weights of each marker, as given (relative: they need not add up to 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(FailureMarker, u32)>,
}

impl Default for Mix {
    /// Every fare happy.
    fn default() -> Self {
        Mix {
            weights: vec![(FailureMarker::None, 100)],
        }
    }
}

/// The name of `marker` in a mix: `happy`, or its ending without the underscore.
pub fn marker_name(marker: FailureMarker) -> &'static str {
    match marker.suffix() {
        None => "happy",
        Some(suffix) => &suffix[1..],
    }
}

fn marker_named(name: &str) -> Option<FailureMarker> {
    FailureMarker::ALL
        .into_iter()
        .find(|m| marker_name(*m) == name)
}

fn known_names() -> String {
    FailureMarker::ALL
        .into_iter()
        .map(marker_name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// `happy=90,fail_credit=5,fail_charge=5`: whole-number weights per marker name.
    fn from_str(text: &str) -> Result<Mix, String> {
        let mut weights: Vec<(FailureMarker, u32)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not NAME=WEIGHT (e.g. happy=90)"))?;
            let (name, weight) = (name.trim(), weight.trim());
            let marker = marker_named(name)
                .ok_or_else(|| format!("unknown marker {name:?} (one of: {})", known_names()))?;
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("the weight of {name} ({weight:?}) is not a whole number"))?;
            if weights.iter().any(|(m, _)| *m == marker) {
                return Err(format!("{name} is given twice"));
            }
            weights.push((marker, weight));
        }
        weights.retain(|(_, w)| *w > 0);
        if weights.is_empty() {
            return Err(format!(
                "the mix gives no fare a weight above 0 (e.g. happy=90,fail_credit=10; names: {})",
                known_names()
            ));
        }
        Ok(Mix { weights })
    }
}

impl fmt::Display for Mix {
    /// `happy 90% · fail_credit 5% · fail_charge 5%`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u32 = self.weights.iter().map(|(_, w)| w).sum();
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(m, w)| {
                let share = f64::from(*w) * 100.0 / f64::from(total);
                format!("{} {}%", marker_name(*m), trim_float(share))
            })
            .collect();
        f.write_str(&parts.join(" · "))
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").unwrap_or(&text).to_owned()
}

impl Mix {
    /// How many of `n` fares get each marker: shares of the weights, rounded by largest
    /// remainder so that they add up to `n` exactly.
    pub fn counts(&self, n: usize) -> Vec<(FailureMarker, usize)> {
        let total: u64 = self.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        let n64 = n as u64;
        let mut counts: Vec<(FailureMarker, usize, u64)> = self
            .weights
            .iter()
            .map(|(m, w)| {
                let exact = n64 * u64::from(*w);
                (*m, (exact / total) as usize, exact % total)
            })
            .collect();
        let mut left = n - counts.iter().map(|(_, c, _)| c).sum::<usize>();
        let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
        by_remainder.sort_by_key(|&i| std::cmp::Reverse(counts[i].2));
        for i in by_remainder {
            if left == 0 {
                break;
            }
            counts[i].1 += 1;
            left -= 1;
        }
        counts.into_iter().map(|(m, c, _)| (m, c)).collect()
    }

    /// The marker of each of `n` fares: [`Mix::counts`] exactly, interleaved by smooth
    /// weighted round robin so that every stretch of the run has about the mix's shares.
    pub fn assign(&self, n: usize) -> Vec<FailureMarker> {
        let counts = self.counts(n);
        let mut credit: Vec<i64> = vec![0; counts.len()];
        let mut markers = Vec::with_capacity(n);
        for _ in 0..n {
            for (c, (_, count)) in credit.iter_mut().zip(&counts) {
                *c += *count as i64;
            }
            let pick = (0..counts.len())
                .max_by_key(|&i| (credit[i], std::cmp::Reverse(i)))
                .expect("a mix has at least one marker");
            credit[pick] -= n as i64;
            markers.push(counts[pick].0);
        }
        markers
    }
}

/// The outcome a fare with `marker` must end in (SPEC §5).
pub fn expected_outcome(marker: FailureMarker) -> OutcomeKind {
    match marker {
        FailureMarker::None | FailureMarker::SlowGateway => OutcomeKind::Collected,
        FailureMarker::FailAuth => OutcomeKind::Failed,
        FailureMarker::FailCharge => OutcomeKind::FailedReleased,
        FailureMarker::FailCredit => OutcomeKind::FailedRefunded,
        FailureMarker::FailCreditFailRefund | FailureMarker::FailChargeFailRelease => {
            OutcomeKind::NeedsAttention
        }
    }
}

/// The events the services publish for one fare with `marker` (SPEC §5's terminal events,
/// outcome included). Each is written in its own local transaction (SPEC §4), so this is
/// also the saga's count of local transactions.
pub fn events_per_saga(marker: FailureMarker) -> u32 {
    match marker {
        // PreAuthFailed, FareCollectionFailed
        FailureMarker::FailAuth => 2,
        // PreAuthorised, Charged, AccountUpdated, FareCollected
        FailureMarker::None | FailureMarker::SlowGateway => 4,
        // PreAuthorised, ChargeFailed, PreAuthReleased / ReleaseFailed, FareCollectionFailed
        FailureMarker::FailCharge | FailureMarker::FailChargeFailRelease => 4,
        // PreAuthorised, Charged, AccountUpdateFailed, PaymentRefunded / RefundFailed,
        // FareCollectionFailed
        FailureMarker::FailCredit | FailureMarker::FailCreditFailRefund => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(text: &str) -> Mix {
        text.parse().unwrap()
    }

    #[test]
    fn parses_names_and_weights() {
        let m = mix("happy=90, fail_credit=5,fail_charge=5");
        assert_eq!(
            m.counts(20),
            [
                (FailureMarker::None, 18),
                (FailureMarker::FailCredit, 1),
                (FailureMarker::FailCharge, 1)
            ]
        );
        assert_eq!(m.to_string(), "happy 90% · fail_credit 5% · fail_charge 5%");
        let every =
            mix("fail_auth=1,fail_credit_fail_refund=1,fail_charge_fail_release=1,slow_gateway=1");
        assert_eq!(every.counts(4).iter().filter(|(_, c)| *c == 1).count(), 4);
        assert_eq!(
            mix("happy=1,fail_auth=2").to_string(),
            "happy 33.3% · fail_auth 66.7%"
        );
    }

    #[test]
    fn rejects_what_is_not_a_mix() {
        for (text, says) in [
            ("happy", "NAME=WEIGHT"),
            ("happy=90,fail_cedit=10", "unknown marker \"fail_cedit\""),
            ("happy=9.5", "not a whole number"),
            ("happy=-1", "not a whole number"),
            ("happy=1,happy=2", "given twice"),
            ("happy=0", "no fare a weight"),
            ("", "no fare a weight"),
        ] {
            let error = text.parse::<Mix>().unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
        }
        let error = "x=1".parse::<Mix>().unwrap_err();
        assert!(error.contains("happy, fail_auth, fail_charge"), "{error}");
    }

    #[test]
    fn counts_are_exact_and_add_up() {
        let m = mix("happy=90,fail_credit=5,fail_charge=5");
        assert_eq!(
            m.counts(200),
            [
                (FailureMarker::None, 180),
                (FailureMarker::FailCredit, 10),
                (FailureMarker::FailCharge, 10)
            ]
        );
        let thirds = mix("happy=1,fail_auth=1,fail_charge=1");
        let counts = thirds.counts(10);
        assert_eq!(counts.iter().map(|(_, c)| c).sum::<usize>(), 10);
        assert!(
            counts.iter().all(|(_, c)| (3..=4).contains(c)),
            "{counts:?}"
        );
        assert_eq!(Mix::default().counts(7), [(FailureMarker::None, 7)]);
    }

    #[test]
    fn assignment_has_the_counts_and_is_spread() {
        let m = mix("happy=90,fail_credit=5,fail_charge=5");
        let markers = m.assign(200);
        for (marker, count) in m.counts(200) {
            assert_eq!(markers.iter().filter(|x| **x == marker).count(), count);
        }
        // Every stretch of 20 fares has one of each failure: the mix is even over the run.
        for window in markers.chunks(20) {
            assert_eq!(
                window
                    .iter()
                    .filter(|m| **m == FailureMarker::FailCredit)
                    .count(),
                1,
                "{window:?}"
            );
        }
    }

    #[test]
    fn every_marker_has_its_outcome_and_event_count() {
        assert_eq!(
            expected_outcome(FailureMarker::None),
            OutcomeKind::Collected
        );
        assert_eq!(
            expected_outcome(FailureMarker::FailCharge),
            OutcomeKind::FailedReleased
        );
        assert_eq!(events_per_saga(FailureMarker::None), 4);
        assert_eq!(events_per_saga(FailureMarker::FailAuth), 2);
        assert_eq!(events_per_saga(FailureMarker::FailCredit), 5);
    }
}
