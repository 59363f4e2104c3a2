//! Exchange rates and display-currency totals, as plain functions.
//!
//! - A [`RateQuote`] is one recorded rate: units of `quote` per unit of `base`, exact decimal,
//!   with its source, the time it is effective from and the time Coffer recorded it. Quotes are
//!   never overwritten; the rate of a pair at an instant `t` is the one with the latest
//!   `effective_at <= t` among those recorded by `t` (so a past overview is reproducible).
//! - Converting `from -> to` uses, in this order, a direct quote (`from/to`), an inverse one
//!   (`to/from`), or two legs through the pivot currency (ECB rates are all `EUR/x`): the first
//!   whose quotes are all fresh. The factor is kept as an exact fraction (256-bit integers),
//!   so an inverse or cross rate adds no rounding of its own.
//! - **Rounding rule:** each currency's amount is converted and rounded once, half to even, to
//!   the display currency's minor unit; the total is the exact sum of those rounded amounts.
//! - A missing pair, or one whose quote is older than the staleness limit, is an error naming
//!   the pair (and the age): never a partial or silently wrong total.

use ethnum::I256;

use crate::model::Timestamp;
use crate::money::{CurrencyCode, CurrencyTable, Rate, MAX_AMOUNT};

/// Most characters of a rate source.
pub const MAX_SOURCE: usize = 64;
/// Largest accepted rate (either direction): a rate above it, or below its inverse, is refused.
pub const MAX_RATE: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateQuote {
    pub base: CurrencyCode,
    pub quote: CurrencyCode,
    pub rate: Rate,
    pub source: String,
    pub effective_at: Timestamp,
    pub recorded_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("no {from}/{to} rate (neither direct, inverse, nor through {pivot})")]
    MissingRate { from: CurrencyCode, to: CurrencyCode, pivot: CurrencyCode },
    #[error(
        "the {base}/{quote} rate is stale: effective {age_secs} s before the overview's instant (limit {limit_secs} s)"
    )]
    StaleRate { base: CurrencyCode, quote: CurrencyCode, age_secs: i64, limit_secs: i64 },
    #[error("invalid rate: {0}")]
    InvalidRate(String),
    #[error("the converted amount is out of range")]
    Overflow,
}

/// Check a rate before it is recorded: distinct known currencies, a bounded positive rate, a
/// short source.
pub fn validate(q: &RateQuote, currencies: &CurrencyTable) -> Result<(), FxError> {
    let bad = |m: String| Err(FxError::InvalidRate(m));
    if q.base == q.quote {
        return bad(format!("{}/{} pairs a currency with itself", q.base, q.quote));
    }
    for c in [q.base, q.quote] {
        if currencies.exponent(c).is_err() {
            return bad(format!("unknown currency {c}"));
        }
    }
    // MAX_RATE^-1 <= rate <= MAX_RATE, compared exactly: mantissa / 10^scale.
    let (m, s) = (I256::from(q.rate.mantissa()), q.rate.scale());
    let ten_s = pow10(s).ok_or(FxError::Overflow)?;
    let max = I256::from(MAX_RATE);
    if m > max * ten_s || m * max < ten_s {
        return bad(format!("{} is outside 1/{MAX_RATE} .. {MAX_RATE}", q.rate));
    }
    if q.source.trim().is_empty() || q.source.len() > MAX_SOURCE || q.source.chars().any(char::is_control) {
        return bad(format!("the source must be 1 to {MAX_SOURCE} printable characters"));
    }
    Ok(())
}

fn pow10(e: u32) -> Option<I256> {
    I256::from(10).checked_pow(e)
}

/// `num / den` (`den > 0`), units of `to` per unit of `from`, and the quotes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    num: I256,
    den: I256,
    pub used: Vec<RateQuote>,
}

impl Factor {
    fn direct(q: &RateQuote) -> Option<Factor> {
        Some(Factor { num: I256::from(q.rate.mantissa()), den: pow10(q.rate.scale())?, used: vec![q.clone()] })
    }
    fn inverse(q: &RateQuote) -> Option<Factor> {
        let d = Factor::direct(q)?;
        Some(Factor { num: d.den, den: d.num, used: d.used })
    }
    fn then(self, next: Factor) -> Option<Factor> {
        let mut used = self.used;
        used.extend(next.used);
        Some(Factor { num: self.num.checked_mul(next.num)?, den: self.den.checked_mul(next.den)?, used })
    }

    /// `amount` minor units at `from_exp` in minor units at `to_exp`, rounded half to even once.
    pub fn convert(&self, amount: i64, from_exp: u8, to_exp: u8) -> Result<i64, FxError> {
        let ov = || FxError::Overflow;
        let num = I256::from(amount).checked_mul(self.num).ok_or_else(ov)?;
        let num = num.checked_mul(pow10(to_exp as u32).ok_or_else(ov)?).ok_or_else(ov)?;
        let den = self.den.checked_mul(pow10(from_exp as u32).ok_or_else(ov)?).ok_or_else(ov)?;
        let q = num.div_euclid(den);
        let r = num.rem_euclid(den);
        let q = match (r * 2).cmp(&den) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & I256::ONE),
        };
        let out: i64 = q.try_into().map_err(|_| ov())?;
        if out.unsigned_abs() > MAX_AMOUNT as u64 {
            return Err(ov());
        }
        Ok(out)
    }

    /// The factor as a decimal rate rounded half to even to `places` decimals (for recording on
    /// an FX conversion); `None` if it rounds to zero or out of range.
    pub fn to_rate(&self, places: u32) -> Option<Rate> {
        let scaled = self.num.checked_mul(pow10(places)?)?;
        let q = scaled.div_euclid(self.den);
        let r = scaled.rem_euclid(self.den);
        let q = match (r * 2).cmp(&self.den) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & I256::ONE),
        };
        let m: i128 = q.try_into().ok()?;
        Rate::from_parts(m, places).ok()
    }
}

/// How conversions look rates up and judge them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub pivot: CurrencyCode,
    /// Largest accepted age of a quote (`at - effective_at`), in microseconds.
    pub max_age_micros: i64,
}

/// The quote of `base/quote` at `at` among `quotes` (latest effective, then latest recorded;
/// only those effective and recorded by `at`).
pub fn quote_at(quotes: &[RateQuote], base: CurrencyCode, quote: CurrencyCode, at: Timestamp) -> Option<&RateQuote> {
    quotes
        .iter()
        .filter(|q| q.base == base && q.quote == quote && q.effective_at <= at && q.recorded_at <= at)
        .max_by_key(|q| (q.effective_at, q.recorded_at))
}

/// The pairs whose quotes a conversion `from -> to` may use: what a store must load.
pub fn pairs_for(from: CurrencyCode, to: CurrencyCode, pivot: CurrencyCode) -> Vec<(CurrencyCode, CurrencyCode)> {
    vec![(from, to), (to, from), (from, pivot), (pivot, from), (pivot, to), (to, pivot)]
}

/// The factor converting `from` into `to` at `at` (see the module comment for the order).
pub fn factor(
    quotes: &[RateQuote],
    from: CurrencyCode,
    to: CurrencyCode,
    at: Timestamp,
    p: Policy,
) -> Result<Factor, FxError> {
    if from == to {
        return Ok(Factor { num: I256::ONE, den: I256::ONE, used: Vec::new() });
    }
    let leg = |a: CurrencyCode, b: CurrencyCode| -> Option<Factor> {
        match (quote_at(quotes, a, b, at), quote_at(quotes, b, a, at)) {
            (Some(q), _) => Factor::direct(q),
            (None, Some(q)) => Factor::inverse(q),
            _ => None,
        }
    };
    let mut candidates = Vec::new();
    candidates.extend(leg(from, to));
    if from != p.pivot && to != p.pivot {
        if let (Some(a), Some(b)) = (leg(from, p.pivot), leg(p.pivot, to)) {
            candidates.extend(a.then(b));
        }
    }
    let stale = |f: &Factor| f.used.iter().find(|q| at.0 - q.effective_at.0 > p.max_age_micros).cloned();
    let mut first_stale = None;
    for f in candidates {
        match stale(&f) {
            None => return Ok(f),
            Some(q) => {
                first_stale.get_or_insert(q);
            }
        }
    }
    match first_stale {
        Some(q) => Err(FxError::StaleRate {
            base: q.base,
            quote: q.quote,
            age_secs: (at.0 - q.effective_at.0) / 1_000_000,
            limit_secs: p.max_age_micros / 1_000_000,
        }),
        None => Err(FxError::MissingRate { from, to, pivot: p.pivot }),
    }
}

/// One currency's part of a total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub currency: CurrencyCode,
    /// In the currency's own minor units.
    pub amount: i64,
    /// In the display currency's minor units, rounded once (half to even).
    pub converted: i64,
    pub used: Vec<RateQuote>,
}

/// Convert each `(currency, exponent, amount)` into `display` and total them. Fails on the first
/// missing or stale rate; never returns a partial total.
pub fn total(
    amounts: &[(CurrencyCode, u8, i64)],
    display: CurrencyCode,
    display_exp: u8,
    quotes: &[RateQuote],
    at: Timestamp,
    p: Policy,
) -> Result<(Vec<Converted>, i64), FxError> {
    let mut out = Vec::with_capacity(amounts.len());
    let mut sum: i64 = 0;
    for &(currency, exp, amount) in amounts {
        let f = factor(quotes, currency, display, at, p)?;
        let converted = f.convert(amount, exp, display_exp)?;
        sum = sum.checked_add(converted).ok_or(FxError::Overflow)?;
        out.push(Converted { currency, amount, converted, used: f.used });
    }
    Ok((out, sum))
}

/// A bad line of a rates file: the 1-based line, the column (its header, or its number) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct CsvError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// Largest rates file accepted (the ECB's full history since 1999 is about 1.5 MB).
pub const MAX_CSV_BYTES: usize = 8 * 1024 * 1024;

/// Parse a file in the ECB reference-rate format: a header `Date,USD,JPY,...` (one column per
/// currency, a trailing empty column allowed), then one line per day `YYYY-MM-DD,1.0832,...`
/// with rates in units of the currency per 1 `pivot` (EUR); `N/A` or an empty cell means no
/// rate that day. Each rate becomes a `pivot/currency` quote effective at 00:00 UTC of its day.
/// Every cell is checked; the first bad one is reported with its line and column.
pub fn parse_ecb_csv(
    text: &[u8],
    pivot: CurrencyCode,
    source: &str,
    recorded_at: Timestamp,
    currencies: &CurrencyTable,
) -> Result<Vec<RateQuote>, CsvError> {
    let err = |line: u64, column: &str, reason: String| CsvError { line, column: column.into(), reason };
    if text.len() > MAX_CSV_BYTES {
        return Err(err(0, "-", format!("the file is larger than {MAX_CSV_BYTES} bytes")));
    }
    let mut rd = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text);
    let mut rows = rd.records();
    let header = match rows.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(err(1, "-", e.to_string())),
        None => return Err(err(1, "-", "the file is empty".into())),
    };
    if !header.get(0).is_some_and(|d| d.eq_ignore_ascii_case("date")) {
        return Err(err(1, "1", "the first column must be Date".into()));
    }
    let mut columns: Vec<Option<CurrencyCode>> = Vec::new();
    for (i, name) in header.iter().enumerate().skip(1) {
        if name.is_empty() {
            columns.push(None); // the ECB's trailing comma
            continue;
        }
        let c: CurrencyCode = name.parse().map_err(|_| err(1, name, "not a currency code".into()))?;
        if currencies.exponent(c).is_err() {
            return Err(err(1, name, format!("unknown currency {c}")));
        }
        if c == pivot || columns.contains(&Some(c)) {
            return Err(err(1, name, format!("column {} repeats a currency or names the pivot", i + 1)));
        }
        columns.push(Some(c));
    }
    let mut out = Vec::new();
    for (n, row) in rows.enumerate() {
        let line = n as u64 + 2;
        let row = row.map_err(|e| err(line, "-", e.to_string()))?;
        if row.iter().all(str::is_empty) {
            continue;
        }
        let date = row.get(0).unwrap_or("");
        let day = parse_date(date).ok_or_else(|| err(line, "Date", format!("{date:?} is not a date (YYYY-MM-DD)")))?;
        if row.len() > columns.len() + 1 {
            return Err(err(line, &(columns.len() + 2).to_string(), "more cells than the header has columns".into()));
        }
        for (i, cell) in row.iter().enumerate().skip(1) {
            let Some(quote) = columns[i - 1] else {
                if cell.is_empty() {
                    continue;
                }
                return Err(err(line, &(i + 1).to_string(), "a value under an empty header".into()));
            };
            if cell.is_empty() || cell.eq_ignore_ascii_case("N/A") {
                continue;
            }
            let rate: Rate = cell
                .parse()
                .map_err(|_| err(line, quote.as_str(), format!("{cell:?} is not a positive decimal rate")))?;
            let q = RateQuote { base: pivot, quote, rate, source: source.into(), effective_at: day, recorded_at };
            validate(&q, currencies).map_err(|e| err(line, quote.as_str(), e.to_string()))?;
            out.push(q);
        }
    }
    Ok(out)
}

/// `YYYY-MM-DD` at 00:00 UTC.
fn parse_date(s: &str) -> Option<Timestamp> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(Timestamp(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros()))
}
