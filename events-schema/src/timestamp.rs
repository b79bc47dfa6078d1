//! `occurred_at` timestamps: written as RFC 3339 UTC with exactly three fractional digits and
//! `Z` (`2026-11-27T08:00:00.123Z`); any RFC 3339 is accepted on input.
//!
//! Event timestamps are kept at millisecond precision in UTC, so an event that is encoded and
//! decoded again compares equal to the original.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The current time, in UTC, cut to whole milliseconds.
pub fn now() -> OffsetDateTime {
    to_millis_utc(OffsetDateTime::now_utc())
}

/// `t` in UTC, cut to whole milliseconds.
pub fn to_millis_utc(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    utc.replace_millisecond(utc.millisecond()).unwrap_or(utc)
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub fn format(t: OffsetDateTime) -> String {
    let t = to_millis_utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses any RFC 3339 timestamp, into UTC at millisecond precision.
pub fn parse(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339).map(to_millis_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn writes_three_fraction_digits_and_z() {
        assert_eq!(
            format(datetime!(2026-11-27 08:00:00.123456789 UTC)),
            "2026-11-27T08:00:00.123Z"
        );
        assert_eq!(
            format(datetime!(2026-11-27 08:00:00 UTC)),
            "2026-11-27T08:00:00.000Z"
        );
        assert_eq!(
            format(datetime!(2026-11-27 09:30:05.5 +01:30)),
            "2026-11-27T08:00:05.500Z"
        );
        let now = format(now());
        assert_eq!(now.len(), 24, "{now}");
        assert_eq!(now.as_bytes()[19], b'.');
        assert!(now.ends_with('Z'));
    }

    #[test]
    fn reads_any_rfc3339() {
        let t = parse("2026-11-27T09:00:00.1234+01:00").unwrap();
        assert_eq!(t, datetime!(2026-11-27 08:00:00.123 UTC));
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert!(parse("2026-11-27T08:00:00Z").is_ok());
        assert!(parse("2026-11-27 08:00:00").is_err());
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn round_trips() {
        let t = now();
        assert_eq!(parse(&format(t)).unwrap(), t);
    }
}
