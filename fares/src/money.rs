//! Amounts as people type and read them ("20.00 USD") and as events carry them (integer minor
//! units). Conversion is exact decimal arithmetic on the digits; never floating point.

use std::fmt;

use events_schema::Currency;

/// An amount the user typed that is not an exact, positive decimal in the currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountError {
    text: String,
    problem: String,
}

impl AmountError {
    /// What is wrong, without the amount: `is negative; …`.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "amount {:?} {}", self.text, self.problem)
    }
}

impl std::error::Error for AmountError {}

/// Parses a decimal amount such as `20`, `20.5` or `20.00` into minor units of `currency`:
/// `"20.00"` USD is 2000, `"500"` JPY is 500.
///
/// Rejects signs, exponents, grouping, and more significant decimal places than the currency
/// has (`"20.001"` USD); extra trailing zeros (`"20.000"`) are exact and accepted. Zero is
/// returned as 0: whether it is a valid fare is the caller's rule.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, AmountError> {
    let text = text.trim();
    let invalid = |problem: String| AmountError {
        text: text.to_owned(),
        problem,
    };
    let code = currency.as_str();
    let digits = usize::from(currency.minor_unit_digits());
    let example = example(currency);
    if text.is_empty() {
        return Err(invalid(format!("is empty; write it like {example}")));
    }
    if text.starts_with('-') {
        return Err(invalid(format!(
            "is negative; a fare is a positive amount such as {example}"
        )));
    }
    if text.contains(',') {
        return Err(invalid(format!(
            "contains a comma; use a decimal point and no grouping, e.g. {example}"
        )));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Err(invalid(format!(
            "is not a decimal number; write it like {example} (digits, optionally a point and up to {digits} decimal places)"
        )));
    }
    let fraction = fraction.unwrap_or("");
    let significant = fraction.trim_end_matches('0');
    if significant.len() > digits {
        return Err(invalid(format!(
            "is more precise than {code} allows: {code} has {digits} decimal places"
        )));
    }
    let too_large = || invalid(format!("is too large to be a fare in {code}"));
    let scale = 10_i64.checked_pow(digits as u32).ok_or_else(too_large)?;
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let minor_fraction: i64 = if digits == 0 {
        0
    } else {
        // Pad to exactly `digits` places: "5" of USD is 50 cents.
        format!("{significant:0<digits$}")
            .parse()
            .map_err(|_| too_large())?
    };
    whole
        .checked_mul(scale)
        .and_then(|m| m.checked_add(minor_fraction))
        .ok_or_else(too_large)
}

/// `amount_minor` of `currency` as people read it: `"20.00 USD"`, `"500 JPY"`, `"-1.500 KWD"`.
pub fn format_amount(amount_minor: i64, currency: Currency) -> String {
    let digits = u32::from(currency.minor_unit_digits());
    let sign = if amount_minor < 0 { "-" } else { "" };
    let magnitude = amount_minor.unsigned_abs();
    let scale = 10_u64.pow(digits);
    let code = currency.as_str();
    if digits == 0 {
        format!("{sign}{magnitude} {code}")
    } else {
        let width = digits as usize;
        format!(
            "{sign}{}.{:0width$} {code}",
            magnitude / scale,
            magnitude % scale
        )
    }
}

/// As [`format_amount`], for a currency code read from a service's JSON, which may be one this
/// build does not know: then the minor units are shown as they are.
pub fn format_raw(amount_minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(currency) => format_amount(amount_minor, currency),
        Err(_) => format!("{amount_minor} minor units of {currency}"),
    }
}

/// An example amount in `currency`'s format, for error messages: `20.00`, `500`.
fn example(currency: Currency) -> String {
    match currency.minor_unit_digits() {
        0 => "500".to_owned(),
        digits => format!("20.{}", "0".repeat(usize::from(digits))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn jpy() -> Currency {
        Currency::parse("JPY").unwrap()
    }

    fn kwd() -> Currency {
        Currency::parse("KWD").unwrap()
    }

    #[test]
    fn parses_exact_decimals_into_minor_units() {
        assert_eq!(parse_amount("20.00", usd()), Ok(2000));
        assert_eq!(parse_amount("20", usd()), Ok(2000));
        assert_eq!(parse_amount("20.5", usd()), Ok(2050));
        assert_eq!(parse_amount("0.01", usd()), Ok(1));
        assert_eq!(parse_amount(" 7.10 ", usd()), Ok(710));
        assert_eq!(parse_amount("20.000", usd()), Ok(2000));
        assert_eq!(parse_amount("0", usd()), Ok(0));
        assert_eq!(parse_amount("500", jpy()), Ok(500));
        assert_eq!(parse_amount("500.0", jpy()), Ok(500));
        assert_eq!(parse_amount("1.234", kwd()), Ok(1234));
        assert_eq!(parse_amount("007", usd()), Ok(700));
    }

    #[test]
    fn rejects_more_places_than_the_currency_has() {
        let e = parse_amount("20.001", usd()).unwrap_err().to_string();
        assert!(e.contains("USD has 2 decimal places"), "{e}");
        let e = parse_amount("500.5", jpy()).unwrap_err().to_string();
        assert!(e.contains("JPY has 0 decimal places"), "{e}");
        let e = parse_amount("1.2345", kwd()).unwrap_err().to_string();
        assert!(e.contains("KWD has 3 decimal places"), "{e}");
    }

    #[test]
    fn rejects_negative_and_malformed_amounts() {
        let e = parse_amount("-1", usd()).unwrap_err().to_string();
        assert!(e.contains("negative"), "{e}");
        for text in [
            "abc", "20.", ".5", "1e3", "+5", "20.0.0", "2 0", "NaN", "0x10", "٣",
        ] {
            let e = parse_amount(text, usd()).unwrap_err().to_string();
            assert!(e.contains("not a decimal number"), "{text}: {e}");
            assert!(e.contains("20.00"), "{text}: {e}");
        }
        let e = parse_amount("", usd()).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse_amount("1,000.00", usd()).unwrap_err().to_string();
        assert!(e.contains("comma"), "{e}");
        let e = parse_amount("abc", jpy()).unwrap_err().to_string();
        assert!(e.contains("like 500"), "{e}");
    }

    #[test]
    fn rejects_amounts_that_overflow() {
        let e = parse_amount("92233720368547758.08", usd())
            .unwrap_err()
            .to_string();
        assert!(e.contains("too large"), "{e}");
        let e = parse_amount("99999999999999999999999", jpy())
            .unwrap_err()
            .to_string();
        assert!(e.contains("too large"), "{e}");
        assert_eq!(parse_amount("92233720368547758.07", usd()), Ok(i64::MAX));
    }

    #[test]
    fn formats_minor_units_with_the_currency_digits() {
        assert_eq!(format_amount(2000, usd()), "20.00 USD");
        assert_eq!(format_amount(2050, usd()), "20.50 USD");
        assert_eq!(format_amount(5, usd()), "0.05 USD");
        assert_eq!(format_amount(0, usd()), "0.00 USD");
        assert_eq!(format_amount(-150, usd()), "-1.50 USD");
        assert_eq!(format_amount(500, jpy()), "500 JPY");
        assert_eq!(format_amount(1234, kwd()), "1.234 KWD");
        assert_eq!(format_amount(i64::MIN, jpy()), "-9223372036854775808 JPY");
    }

    #[test]
    fn format_and_parse_round_trip() {
        for minor in [1, 9, 10, 99, 100, 2000, 123_456, 1_000_000] {
            for currency in [usd(), jpy(), kwd()] {
                let text = format_amount(minor, currency);
                let number = text.split(' ').next().unwrap();
                assert_eq!(parse_amount(number, currency), Ok(minor), "{text}");
            }
        }
    }

    #[test]
    fn formats_unknown_codes_raw() {
        assert_eq!(format_raw(2000, "USD"), "20.00 USD");
        assert_eq!(format_raw(2000, "XXX"), "2000 minor units of XXX");
    }
}
