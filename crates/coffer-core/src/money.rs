//! Money: currency codes, exponents and exact decimal <-> minor-unit conversion.
//!
//! Amounts are `i64` minor units of a currency at a given exponent. Nothing here uses floating
//! point. Parsing accepts only the plain grammar `-?[0-9]+(\.[0-9]+)?`; more fractional digits
//! than the exponent allows is an error, never a rounding.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest absolute amount or balance the ledger accepts, in minor units.
///
/// A quarter of `i64::MAX`, so that `posted - held` and `available - min_balance` can never
/// overflow for values that passed this bound.
pub const MAX_AMOUNT: i64 = i64::MAX / 4;

/// Largest exponent a currency may have (ISO's largest is 4; platforms may raise up to this).
pub const MAX_EXPONENT: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a plain decimal number (digits, an optional '-' and '.')")]
    Malformed(String),
    #[error("amount {amount:?} has more than {max} decimal places")]
    TooManyDecimals { amount: String, max: u8 },
    #[error("amount {0:?} is out of range")]
    OutOfRange(String),
    #[error("currency code {0:?} is not three upper-case letters")]
    BadCurrencyCode(String),
    #[error("unknown currency {0}")]
    UnknownCurrency(CurrencyCode),
    #[error("arithmetic overflow")]
    Overflow,
}

/// An ISO 4217-style alphabetic code: three ASCII upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("currency code is ASCII")
    }
}

impl FromStr for CurrencyCode {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(CurrencyCode([b[0], b[1], b[2]]))
        } else {
            Err(MoneyError::BadCurrencyCode(s.chars().take(16).collect()))
        }
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl Serialize for CurrencyCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The currencies the ledger knows: ISO 4217 (via the `iso_currency` crate) plus configured
/// extras that ISO lacks (e.g. `CNH`). A platform may raise an exponent for its own wallets; that
/// override lives on the platform (see [`crate::model::Owner::currency_exponents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTable {
    extras: BTreeMap<CurrencyCode, u8>,
}

impl Default for CurrencyTable {
    /// ISO 4217 plus `CNH` (offshore renminbi, 2 decimals), which the NeoX seed uses.
    fn default() -> Self {
        let mut extras = BTreeMap::new();
        extras.insert("CNH".parse().expect("valid code"), 2);
        CurrencyTable { extras }
    }
}

impl CurrencyTable {
    /// A table with additional currencies (code, exponent). An extra overrides nothing in ISO.
    pub fn with_extras(extras: impl IntoIterator<Item = (CurrencyCode, u8)>) -> Self {
        let mut t = Self::default();
        for (c, e) in extras {
            t.extras.insert(c, e.min(MAX_EXPONENT));
        }
        t
    }

    /// The standard exponent of `code`: ISO 4217's, or a configured extra's. Currencies without
    /// minor units in ISO (gold, test codes, `XXX`) are unknown here: they are not money.
    pub fn exponent(&self, code: CurrencyCode) -> Result<u8, MoneyError> {
        if let Some(e) = iso_currency::Currency::from_code(code.as_str()).and_then(|c| c.exponent()) {
            return Ok(e as u8);
        }
        self.extras.get(&code).copied().ok_or(MoneyError::UnknownCurrency(code))
    }

    /// The exponent of `code` for a platform with these raised exponents (its
    /// `currency_exponents`): the platform's own, else the standard one. Unknown currencies are
    /// refused either way.
    pub fn exponent_in(&self, raised: &BTreeMap<CurrencyCode, u8>, code: CurrencyCode) -> Result<u8, MoneyError> {
        let standard = self.exponent(code)?;
        Ok(raised.get(&code).copied().unwrap_or(standard))
    }
}

/// Parse a decimal string exactly into minor units at `exponent`.
///
/// `"12.3"` at exponent 2 is `1230`; `"12.345"` at exponent 2 is an error. Accepts only
/// `-?[0-9]+(\.[0-9]+)?` (no `+`, exponent notation, spaces or separators).
pub fn parse_minor(s: &str, exponent: u8) -> Result<i64, MoneyError> {
    let malformed = || MoneyError::Malformed(s.chars().take(64).collect());
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(malformed());
    }
    // The grammar is checked; rust_decimal does the exact conversion (at most 28 digits).
    let d = Decimal::from_str_exact(s).map_err(|_| MoneyError::OutOfRange(s.chars().take(64).collect()))?;
    let d = d.normalize();
    if d.scale() > exponent as u32 {
        return Err(MoneyError::TooManyDecimals { amount: s.chars().take(64).collect(), max: exponent });
    }
    let scaled = d
        .checked_mul(Decimal::from(10i64.pow(exponent as u32)))
        .ok_or_else(|| MoneyError::OutOfRange(s.chars().take(64).collect()))?;
    let minor: i64 = scaled.try_into().map_err(|_| MoneyError::OutOfRange(s.chars().take(64).collect()))?;
    if minor.unsigned_abs() > MAX_AMOUNT as u64 {
        return Err(MoneyError::OutOfRange(s.chars().take(64).collect()));
    }
    Ok(minor)
}

/// Format minor units as a decimal string with exactly `exponent` fractional digits
/// (`1230` at 2 is `"12.30"`; at 0 it is `"1230"`).
pub fn format_minor(minor: i64, exponent: u8) -> String {
    Decimal::new(minor, exponent as u32).to_string()
}

/// [`format_minor`] of a sum wider than i64 (totals over many lines); `None` past 96 bits.
pub fn format_minor_wide(minor: i128, exponent: u8) -> Option<String> {
    Decimal::try_from_i128_with_scale(minor, exponent as u32).ok().map(|d| d.to_string())
}

/// [`format_minor_trimmed`] of a sum wider than i64; `None` past 96 bits.
pub fn format_minor_wide_trimmed(minor: i128, exponent: u8) -> Option<String> {
    Decimal::try_from_i128_with_scale(minor, exponent as u32).ok().map(|d| d.normalize().to_string())
}

/// Format minor units with trailing fractional zeros removed (`1230` at 2 is `"12.3"`,
/// `10026540300` at 2 is `"100265403"`): the shape of a JSON number as PayerMax writes it.
pub fn format_minor_trimmed(minor: i64, exponent: u8) -> String {
    Decimal::new(minor, exponent as u32).normalize().to_string()
}

/// Rescale minor units from one exponent to a larger one (exact), e.g. to express a 2-decimal
/// amount in ten-thousandths.
pub fn rescale_up(minor: i64, from: u8, to: u8) -> Result<i64, MoneyError> {
    if to < from {
        return Err(MoneyError::Overflow);
    }
    let f = 10i64.checked_pow((to - from) as u32).ok_or(MoneyError::Overflow)?;
    minor.checked_mul(f).ok_or(MoneyError::Overflow)
}

/// An amount in minor units together with its currency, as carried in commands. The ledger
/// checks the currency against the account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: CurrencyCode,
}

impl Money {
    pub fn new(minor: i64, currency: CurrencyCode) -> Self {
        Money { minor, currency }
    }
}

/// An exchange rate as an exact decimal: `mantissa / 10^scale` units of the quote currency per
/// unit of the base currency. Always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    mantissa: i128,
    scale: u32,
}

/// Bound on a rate's mantissa (18 significant digits), so that `amount * mantissa` fits i128.
const MAX_RATE_MANTISSA: i128 = 1_000_000_000_000_000_000;

impl Rate {
    pub fn mantissa(&self) -> i128 {
        self.mantissa
    }
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Convert `amount` minor units at exponent `from_exp` into minor units at `to_exp`,
    /// rounding half to even once, at the target's minor unit.
    pub fn convert(&self, amount: i64, from_exp: u8, to_exp: u8) -> Result<i64, MoneyError> {
        // result = amount * mantissa * 10^to_exp / (10^scale * 10^from_exp)
        let mut num = (amount as i128).checked_mul(self.mantissa).ok_or(MoneyError::Overflow)?;
        let mut den: i128 = 10i128.checked_pow(self.scale).ok_or(MoneyError::Overflow)?;
        if to_exp >= from_exp {
            num = num.checked_mul(10i128.pow((to_exp - from_exp) as u32)).ok_or(MoneyError::Overflow)?;
        } else {
            den = den.checked_mul(10i128.pow((from_exp - to_exp) as u32)).ok_or(MoneyError::Overflow)?;
        }
        let q = div_round_half_even(num, den);
        let out: i64 = q.try_into().map_err(|_| MoneyError::Overflow)?;
        if out.unsigned_abs() > MAX_AMOUNT as u64 {
            return Err(MoneyError::Overflow);
        }
        Ok(out)
    }
}

/// `num / den` rounded half to even; `den > 0`.
pub fn div_round_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den); // 0 <= r < den; value = q + r/den
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

impl Rate {
    /// `mantissa / 10^scale`, normalised (no trailing zeros); positive and within the bounds
    /// parsing enforces.
    pub fn from_parts(mantissa: i128, scale: u32) -> Result<Rate, MoneyError> {
        let out = || MoneyError::OutOfRange(format!("{mantissa}e-{scale}"));
        if mantissa <= 0 || mantissa >= MAX_RATE_MANTISSA || scale > 28 {
            return Err(out());
        }
        let (mut m, mut s) = (mantissa, scale);
        while s > 0 && m % 10 == 0 {
            m /= 10;
            s -= 1;
        }
        Ok(Rate { mantissa: m, scale: s })
    }
}

impl FromStr for Rate {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed(s.chars().take(64).collect());
        if s.starts_with('-') {
            return Err(malformed());
        }
        // Same grammar as amounts; zero and negative rates are refused.
        parse_grammar_only(s).ok_or_else(malformed)?;
        let d =
            Decimal::from_str_exact(s).map_err(|_| MoneyError::OutOfRange(s.chars().take(64).collect()))?.normalize();
        let mantissa = d.mantissa();
        if mantissa <= 0 || mantissa >= MAX_RATE_MANTISSA {
            return Err(MoneyError::OutOfRange(s.chars().take(64).collect()));
        }
        Ok(Rate { mantissa, scale: d.scale() })
    }
}

fn parse_grammar_only(s: &str) -> Option<()> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (digits(int) && frac.is_none_or(digits)).then_some(())
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // mantissa < 10^18 fits i64.
        write!(f, "{}", Decimal::new(self.mantissa as i64, self.scale))
    }
}
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    #[test]
    fn exponents_come_from_iso_plus_extras() {
        let t = CurrencyTable::default();
        // (code, expected exponent or None for unknown)
        let cases = [
            ("USD", Some(2)),
            ("JPY", Some(0)),
            ("KWD", Some(3)),
            ("CNH", Some(2)),
            ("IDR", Some(2)),
            ("XAU", None),
            ("XXX", None),
            ("ZZZ", None),
        ];
        for (code, want) in cases {
            assert_eq!(t.exponent(c(code)).ok(), want, "{code}");
        }
    }

    #[test]
    fn parse_table() {
        // (input, exponent, expected minor units or the error's name)
        let cases: &[(&str, u8, Result<i64, &str>)] = &[
            ("12.30", 2, Ok(1230)),
            ("12.3", 2, Ok(1230)),
            ("12", 2, Ok(1200)),
            ("0.01", 2, Ok(1)),
            ("-5.5", 2, Ok(-550)),
            ("12.3456", 4, Ok(123456)),
            ("100265403", 2, Ok(10026540300)),
            ("7", 0, Ok(7)),
            ("1.000", 2, Ok(100)), // trailing zeros beyond the exponent are exact, not rounding
            ("12.345", 2, Err("TooManyDecimals")),
            ("0.5", 0, Err("TooManyDecimals")),
            ("1.0001", 3, Err("TooManyDecimals")),
            ("", 2, Err("Malformed")),
            ("-", 2, Err("Malformed")),
            (".5", 2, Err("Malformed")),
            ("5.", 2, Err("Malformed")),
            ("+5", 2, Err("Malformed")),
            ("1e3", 2, Err("Malformed")),
            ("1_000", 2, Err("Malformed")),
            (" 1", 2, Err("Malformed")),
            ("1,5", 2, Err("Malformed")),
            ("NaN", 2, Err("Malformed")),
            ("99999999999999999999999999999999", 2, Err("OutOfRange")),
            ("2305843009213693952", 0, Err("OutOfRange")), // MAX_AMOUNT + 1
            ("23058430092136939.52", 2, Err("OutOfRange")),
        ];
        for (input, exp, want) in cases {
            let got = parse_minor(input, *exp);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, *w, "{input}"),
                (Err(e), Err(name)) => {
                    assert!(format!("{e:?}").starts_with(name), "{input}: {e:?}")
                }
                (g, w) => panic!("{input}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn format_table() {
        let cases = [
            (1230, 2, "12.30"),
            (0, 2, "0.00"),
            (-5, 2, "-0.05"),
            (123456, 4, "12.3456"),
            (7, 0, "7"),
            (1, 3, "0.001"),
        ];
        for (minor, exp, want) in cases {
            assert_eq!(format_minor(minor, exp), want);
        }
        assert_eq!(format_minor_trimmed(10026540300, 2), "100265403");
        assert_eq!(format_minor_trimmed(59, 2), "0.59");
        assert_eq!(format_minor_trimmed(1610, 2), "16.1");
    }

    #[test]
    fn rate_conversion_rounds_half_even_once() {
        let r: Rate = "1.5".parse().unwrap();
        assert_eq!(r.convert(101, 2, 2).unwrap(), 152); // 151.5 -> 152
        assert_eq!(r.convert(103, 2, 2).unwrap(), 154); // 154.5 -> 154
        let jpy: Rate = "150.25".parse().unwrap(); // USD -> JPY
        assert_eq!(jpy.convert(1001, 2, 0).unwrap(), 1504); // 10.01 * 150.25 = 1504.0025
        let kwd: Rate = "0.30705".parse().unwrap(); // USD -> KWD
        assert_eq!(kwd.convert(10000, 2, 3).unwrap(), 30705);
        assert!("0".parse::<Rate>().is_err());
        assert!("-1".parse::<Rate>().is_err());
        assert!("1e2".parse::<Rate>().is_err());
        assert_eq!("1.2500".parse::<Rate>().unwrap().to_string(), "1.25");
    }

    #[test]
    fn half_even_division() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(-7, 2), -4);
        assert_eq!(div_round_half_even(-6, 4), -2);
        assert_eq!(div_round_half_even(1, 3), 0);
        assert_eq!(div_round_half_even(2, 3), 1);
    }
}
