//! Money: integer minor units plus an ISO 4217 [`Currency`]; never floating point (SPEC §3).
//!
//! Events carry money as two flat fields, `amount_minor: i64` and `currency`.
//!
//! The accepted currencies are the ISO 4217 codes of currencies in circulation as of
//! November 2026. Deliberately left out:
//! - withdrawn codes: `ANG` (replaced by `XCG`, 2025), `BGN` (Bulgaria joined the euro,
//!   2026), `HRK` (euro, 2023), `CUC`, `SLL` (replaced by `SLE`), `ZWL` (replaced by `ZWG`);
//! - codes that are not a currency a rider can pay in: fund codes (`BOV`, `CHE`, `CHW`,
//!   `CLF`, `COU`, `MXV`, `USN`, `UYI`, `UYW`), precious metals (`XAU`, `XAG`, `XPD`, `XPT`),
//!   accounting units (`XDR`, `XSU`, `XUA`, `XBA`–`XBD`), the testing code `XTS` and
//!   "no currency" `XXX`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The largest fare, in minor units. A valid fare amount is `1..=MAX_FARE_MINOR`.
pub const MAX_FARE_MINOR: i64 = 1_000_000;

/// The smallest fare, in minor units.
pub const MIN_FARE_MINOR: i64 = 1;

/// Whether `amount_minor` is an acceptable fare amount (SPEC §4).
pub fn is_valid_fare_amount(amount_minor: i64) -> bool {
    (MIN_FARE_MINOR..=MAX_FARE_MINOR).contains(&amount_minor)
}

/// Active ISO 4217 codes with their number of minor-unit digits, sorted by code.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2),
    ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2), ("CLP", 0), ("CNY", 2),
    ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2),
    ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2),
    ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2),
    ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3),
    ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0),
    ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2),
    ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2),
    ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2),
    ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2),
    ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2),
    ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0),
    ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2),
    ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("UYU", 2),
    ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2),
];

/// A code that is not in the list of active ISO 4217 currencies.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown currency {shown:?}: not an active ISO 4217 code (upper-case, e.g. \"USD\")")]
pub struct UnknownCurrency {
    shown: String,
}

impl UnknownCurrency {
    /// The rejected code, cut to 16 characters.
    pub fn code(&self) -> &str {
        &self.shown
    }
}

/// An active ISO 4217 alphabetic currency code, e.g. `USD`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_digits: u8,
}

impl Currency {
    /// Looks `code` up in the active ISO 4217 list. Codes are upper-case; `"usd"` is unknown.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        CURRENCIES
            .binary_search_by(|(c, _)| (*c).cmp(code))
            .ok()
            .and_then(|i| CURRENCIES.get(i))
            .map(|&(code, minor_digits)| Self { code, minor_digits })
            .ok_or_else(|| UnknownCurrency {
                shown: code.chars().take(16).collect(),
            })
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &'static str {
        self.code
    }

    /// The number of minor-unit digits ISO 4217 gives this currency (2 for USD, 0 for JPY).
    pub fn minor_unit_digits(&self) -> u8 {
        self.minor_digits
    }

    /// Every accepted currency, sorted by code.
    pub fn all() -> impl Iterator<Item = Currency> {
        CURRENCIES
            .iter()
            .map(|&(code, minor_digits)| Self { code, minor_digits })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        json_schema!({
            "type": "string",
            "description": "An active ISO 4217 alphabetic currency code.",
            "enum": codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_and_well_formed() {
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (code, digits) in CURRENCIES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(*digits <= 3, "{code}");
        }
        assert!(CURRENCIES.len() > 150);
    }

    #[test]
    fn parses_active_codes() {
        for code in ["USD", "EUR", "GBP", "JPY", "XCG", "ZWG", "SLE", "VED"] {
            assert_eq!(Currency::parse(code).unwrap().as_str(), code);
        }
        assert_eq!(Currency::parse("JPY").unwrap().minor_unit_digits(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_unit_digits(), 3);
        assert_eq!(Currency::parse("USD").unwrap().minor_unit_digits(), 2);
    }

    #[test]
    fn rejects_unknown_withdrawn_and_non_currency_codes() {
        for code in [
            "XXX", "XTS", "XAU", "ANG", "HRK", "BGN", "usd", "", "US", "USDD",
        ] {
            assert!(Currency::parse(code).is_err(), "{code}");
        }
        let e = Currency::parse("XXX").unwrap_err();
        assert!(e.to_string().contains("\"XXX\""), "{e}");
        let long = "A".repeat(100);
        assert_eq!(Currency::parse(&long).unwrap_err().code().len(), 16);
    }

    #[test]
    fn serde_as_code() {
        let c: Currency = serde_json::from_str("\"USD\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"USD\"");
        assert!(serde_json::from_str::<Currency>("\"XXX\"").is_err());
        assert!(serde_json::from_str::<Currency>("840").is_err());
    }

    #[test]
    fn fare_amount_bounds() {
        assert!(!is_valid_fare_amount(0));
        assert!(!is_valid_fare_amount(-5));
        assert!(is_valid_fare_amount(1));
        assert!(is_valid_fare_amount(MAX_FARE_MINOR));
        assert!(!is_valid_fare_amount(MAX_FARE_MINOR + 1));
    }
}
