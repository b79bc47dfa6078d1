//! The workshop's failure markers (SPEC §5): the ending of a `customer_id` forces a failure
//! in the simulated payment gateway or in the accounting ledger. Two endings go beyond the
//! workshop: `_fail_charge_fail_release` (every release of the hold is refused, the path to
//! `ReleaseFailed`) and `_slow_gateway` (SPEC §5: the pre-authorisation answers late).

use crate::ids::CustomerId;

/// The failure a `customer_id` asks for by its ending.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailureMarker {
    /// No marker: the saga succeeds.
    None,
    /// `_fail_auth`: the gateway declines the pre-authorisation.
    FailAuth,
    /// `_fail_charge`: the gateway declines the capture.
    FailCharge,
    /// `_fail_credit`: the customer's account cannot be updated.
    FailCredit,
    /// `_fail_credit_fail_refund`: as `FailCredit`, and every refund attempt fails.
    FailCreditFailRefund,
    /// `_fail_charge_fail_release`: as `FailCharge`, and every release attempt fails.
    FailChargeFailRelease,
    /// `_slow_gateway`: the gateway answers the pre-authorisation late (`GATEWAY_SLOW_MS`),
    /// then as for success.
    SlowGateway,
}

impl FailureMarker {
    /// Every marker, `None` first.
    pub const ALL: [FailureMarker; 7] = [
        FailureMarker::None,
        FailureMarker::FailAuth,
        FailureMarker::FailCharge,
        FailureMarker::FailCredit,
        FailureMarker::FailCreditFailRefund,
        FailureMarker::FailChargeFailRelease,
        FailureMarker::SlowGateway,
    ];

    /// The marker carried by `customer_id`'s ending.
    ///
    /// The endings do not overlap (`…_fail_credit_fail_refund` ends with `_fail_refund`,
    /// not `_fail_credit`), but the longest one is tested first so that stays true if more
    /// are added.
    pub fn of(customer_id: &CustomerId) -> FailureMarker {
        Self::of_str(customer_id.as_str())
    }

    /// As [`FailureMarker::of`], on unvalidated text.
    pub fn of_str(customer_id: &str) -> FailureMarker {
        const BY_LENGTH: [FailureMarker; 6] = [
            FailureMarker::FailChargeFailRelease,
            FailureMarker::FailCreditFailRefund,
            FailureMarker::SlowGateway,
            FailureMarker::FailCharge,
            FailureMarker::FailCredit,
            FailureMarker::FailAuth,
        ];
        BY_LENGTH
            .into_iter()
            .find(|m| m.suffix().is_some_and(|s| customer_id.ends_with(s)))
            .unwrap_or(FailureMarker::None)
    }

    /// The `customer_id` ending that selects this marker; `None` for [`FailureMarker::None`].
    pub fn suffix(&self) -> Option<&'static str> {
        match self {
            FailureMarker::None => None,
            FailureMarker::FailAuth => Some("_fail_auth"),
            FailureMarker::FailCharge => Some("_fail_charge"),
            FailureMarker::FailCredit => Some("_fail_credit"),
            FailureMarker::FailCreditFailRefund => Some("_fail_credit_fail_refund"),
            FailureMarker::FailChargeFailRelease => Some("_fail_charge_fail_release"),
            FailureMarker::SlowGateway => Some("_slow_gateway"),
        }
    }

    /// Whether the gateway must decline the pre-authorisation.
    pub fn fails_auth(&self) -> bool {
        matches!(self, FailureMarker::FailAuth)
    }

    /// Whether the gateway must decline the capture.
    pub fn fails_charge(&self) -> bool {
        matches!(
            self,
            FailureMarker::FailCharge | FailureMarker::FailChargeFailRelease
        )
    }

    /// Whether every release of the hold must fail.
    pub fn fails_release(&self) -> bool {
        matches!(self, FailureMarker::FailChargeFailRelease)
    }

    /// Whether a fare of this customer ends collected.
    pub fn collects(&self) -> bool {
        matches!(self, FailureMarker::None | FailureMarker::SlowGateway)
    }

    /// Whether the gateway answers the pre-authorisation late.
    pub fn is_slow(&self) -> bool {
        matches!(self, FailureMarker::SlowGateway)
    }

    /// Whether the accounting ledger must refuse the credit.
    pub fn fails_credit(&self) -> bool {
        matches!(
            self,
            FailureMarker::FailCredit | FailureMarker::FailCreditFailRefund
        )
    }

    /// Whether every refund attempt must fail.
    pub fn fails_refund(&self) -> bool {
        matches!(self, FailureMarker::FailCreditFailRefund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(s: &str) -> FailureMarker {
        CustomerId::parse(s).unwrap().failure_marker()
    }

    #[test]
    fn every_row_of_spec_section_5() {
        assert_eq!(marker("7_fail_auth"), FailureMarker::FailAuth);
        assert_eq!(marker("7_fail_charge"), FailureMarker::FailCharge);
        assert_eq!(marker("7_fail_credit"), FailureMarker::FailCredit);
        assert_eq!(
            marker("7_fail_credit_fail_refund"),
            FailureMarker::FailCreditFailRefund
        );
        assert_eq!(marker("3"), FailureMarker::None);
        assert_eq!(
            marker("7_fail_charge_fail_release"),
            FailureMarker::FailChargeFailRelease
        );
        assert_eq!(marker("7_slow_gateway"), FailureMarker::SlowGateway);
    }

    #[test]
    fn near_misses_are_success() {
        for s in [
            "x_fail_refund",
            "_fail_auth_x",
            "fail_auth",
            "x_fail_credit_fail",
            "x_FAIL_AUTH",
            "x_fail_charged",
            "x_fail_credit_fail_refund_",
        ] {
            assert_eq!(marker(s), FailureMarker::None, "{s}");
        }
    }

    #[test]
    fn bare_suffix_and_stacked_endings() {
        assert_eq!(marker("_fail_auth"), FailureMarker::FailAuth);
        assert_eq!(marker("a_fail_charge_fail_auth"), FailureMarker::FailAuth);
        assert_eq!(
            marker("a_fail_refund_fail_credit"),
            FailureMarker::FailCredit
        );
    }

    #[test]
    fn suffix_round_trips_and_predicates() {
        for m in FailureMarker::ALL {
            let id = format!("rider{}", m.suffix().unwrap_or(""));
            assert_eq!(marker(&id), m);
        }
        assert!(FailureMarker::FailCreditFailRefund.fails_credit());
        assert!(FailureMarker::FailCreditFailRefund.fails_refund());
        assert!(!FailureMarker::FailCredit.fails_refund());
        assert!(FailureMarker::FailAuth.fails_auth());
        assert!(FailureMarker::FailCharge.fails_charge());
        assert!(FailureMarker::FailChargeFailRelease.fails_charge());
        assert!(FailureMarker::FailChargeFailRelease.fails_release());
        assert!(!FailureMarker::FailCharge.fails_release());
        assert!(FailureMarker::SlowGateway.is_slow());
        assert!(!FailureMarker::None.fails_credit());
    }
}
