//! Rates and conversions against hand-computed cases; each test says what it checks.

use coffer_core::fx::*;
use coffer_core::*;

const DAY: i64 = 86_400_000_000;
const NOW: Timestamp = Timestamp(1_800_000_000_000_000);

fn c(s: &str) -> CurrencyCode {
    s.parse().unwrap()
}

fn q(base: &str, quote: &str, rate: &str, effective_at: Timestamp) -> RateQuote {
    RateQuote {
        base: c(base),
        quote: c(quote),
        rate: rate.parse().unwrap(),
        source: "test".into(),
        effective_at,
        recorded_at: effective_at,
    }
}

fn policy(days: i64) -> Policy {
    Policy { pivot: c("EUR"), max_age_micros: days * DAY }
}

fn convert(quotes: &[RateQuote], from: &str, from_exp: u8, amount: i64, to: &str, to_exp: u8) -> Result<i64, FxError> {
    factor(quotes, c(from), c(to), NOW, policy(4))?.convert(amount, from_exp, to_exp)
}

#[test]
fn exact_conversions_by_hand() {
    let t = Timestamp(NOW.0 - DAY);
    let quotes = vec![
        q("USD", "JPY", "150.25", t),
        q("KWD", "USD", "3.2543", t),
        q("EUR", "USD", "1.0832", t),
        q("EUR", "JPY", "162.35", t),
        q("EUR", "CNH", "7.7123", t),
    ];
    // JPY (0 decimals) -> USD through the inverse of USD/JPY: 1000 / 150.25 = 6.65557... -> 6.66.
    assert_eq!(convert(&quotes, "JPY", 0, 1000, "USD", 2), Ok(666));
    // KWD (3 decimals) -> USD direct: 1.234 * 3.2543 = 4.0158062 -> 4.02.
    assert_eq!(convert(&quotes, "KWD", 3, 1234, "USD", 2), Ok(402));
    // USD -> KWD, inverse: 100.00 / 3.2543 = 30.7285... -> 30.729 (3 decimals).
    assert_eq!(convert(&quotes, "USD", 2, 10_000, "KWD", 3), Ok(30_729));
    // CNH (2 decimals) -> USD through the pivot: 100.00 / 7.7123 * 1.0832 = 14.04509... -> 14.05.
    assert_eq!(convert(&quotes, "CNH", 2, 10_000, "USD", 2), Ok(1405));
    // EUR -> a platform's 4-decimal USD: 10.00 * 1.0832 = 10.8320.
    assert_eq!(convert(&quotes, "EUR", 2, 1000, "USD", 4), Ok(108_320));
    // Same currency: unchanged, even across exponents.
    assert_eq!(convert(&quotes, "USD", 2, 1234, "USD", 4), Ok(123_400));
}

#[test]
fn cross_rates_go_through_the_pivot_only_when_needed() {
    let t = Timestamp(NOW.0 - DAY);
    let quotes = vec![q("EUR", "USD", "1.0832", t), q("EUR", "JPY", "162.35", t)];
    // 1000 JPY -> USD: 1000 * 1.0832 / 162.35 = 6.67200... -> 6.67, using both ECB quotes.
    let f = factor(&quotes, c("JPY"), c("USD"), NOW, policy(4)).unwrap();
    assert_eq!(f.convert(1000, 0, 2), Ok(667));
    assert_eq!(f.used.len(), 2);
    // A direct quote wins over the cross rate.
    let mut with_direct = quotes.clone();
    with_direct.push(q("JPY", "USD", "0.0066", t));
    let f = factor(&with_direct, c("JPY"), c("USD"), NOW, policy(4)).unwrap();
    assert_eq!((f.convert(1000, 0, 2), f.used.len()), (Ok(660), 1));
    // ...unless it is stale and the cross rate is fresh.
    let mut stale_direct = quotes.clone();
    stale_direct.push(q("JPY", "USD", "0.0066", Timestamp(NOW.0 - 10 * DAY)));
    let f = factor(&stale_direct, c("JPY"), c("USD"), NOW, policy(4)).unwrap();
    assert_eq!((f.convert(1000, 0, 2), f.used.len()), (Ok(667), 2));
}

#[test]
fn rounding_is_half_even_once_per_currency() {
    let t = Timestamp(NOW.0 - DAY);
    let quotes = vec![q("USD", "EUR", "0.5", t)];
    // 0.01 * 0.5 = 0.005 -> 0.00 (even); 0.03 * 0.5 = 0.015 -> 0.02 (even); negatives mirror.
    assert_eq!(convert(&quotes, "USD", 2, 1, "EUR", 2), Ok(0));
    assert_eq!(convert(&quotes, "USD", 2, 3, "EUR", 2), Ok(2));
    assert_eq!(convert(&quotes, "USD", 2, -3, "EUR", 2), Ok(-2));
    assert_eq!(convert(&quotes, "USD", 2, 5, "EUR", 2), Ok(2), "0.025 -> 0.02");
    assert_eq!(convert(&quotes, "USD", 2, 7, "EUR", 2), Ok(4), "0.035 -> 0.04");
    // The total is the sum of the rounded parts: 0.005 + 0.005 would be 0.01 exactly, but each
    // part rounds to 0.00 first.
    let (parts, sum) = total(&[(c("USD"), 2, 1), (c("USD"), 2, 1)], c("EUR"), 2, &quotes, NOW, policy(4)).unwrap();
    assert_eq!((parts[0].converted, sum), (0, 0));
    // An amount past the range is refused, never wrapped.
    assert_eq!(
        factor(&[q("USD", "EUR", "1000000", t)], c("USD"), c("EUR"), NOW, policy(4)).unwrap().convert(
            i64::MAX / 4,
            2,
            2
        ),
        Err(FxError::Overflow)
    );
}

#[test]
fn missing_and_stale_rates_name_the_pair() {
    let quotes = vec![q("EUR", "USD", "1.0832", Timestamp(NOW.0 - 5 * DAY))];
    assert_eq!(
        convert(&quotes, "EUR", 2, 100, "USD", 2),
        Err(FxError::StaleRate { base: c("EUR"), quote: c("USD"), age_secs: 5 * 86_400, limit_secs: 4 * 86_400 })
    );
    let msg = convert(&quotes, "EUR", 2, 100, "USD", 2).unwrap_err().to_string();
    assert!(msg.contains("EUR/USD") && msg.contains("432000"), "{msg}");
    assert_eq!(
        convert(&quotes, "GBP", 2, 100, "USD", 2),
        Err(FxError::MissingRate { from: c("GBP"), to: c("USD"), pivot: c("EUR") })
    );
    // A total fails as a whole: no partial sum.
    let fresh = vec![q("EUR", "USD", "1.0832", NOW)];
    assert!(total(&[(c("EUR"), 2, 100), (c("GBP"), 2, 100)], c("USD"), 2, &fresh, NOW, policy(4)).is_err());
}

#[test]
fn past_instants_use_the_quotes_known_then() {
    let monday = Timestamp(NOW.0 - 3 * DAY);
    let tuesday = Timestamp(NOW.0 - 2 * DAY);
    let mut corrected = q("EUR", "USD", "1.2000", monday);
    corrected.recorded_at = NOW; // a correction of Monday's rate, recorded today
    let quotes = vec![q("EUR", "USD", "1.1000", monday), q("EUR", "USD", "1.3000", tuesday), corrected];
    let at = |t: Timestamp| factor(&quotes, c("EUR"), c("USD"), t, policy(4)).unwrap().convert(100, 2, 2).unwrap();
    assert_eq!(at(Timestamp(monday.0 + 1)), 110, "Monday, before the correction was recorded");
    assert_eq!(at(Timestamp(tuesday.0 + 1)), 130, "Tuesday's rate");
    assert_eq!(at(NOW), 130, "Tuesday's rate is still the latest effective one");
    assert!(factor(&quotes, c("EUR"), c("USD"), Timestamp(monday.0 - 1), policy(4)).is_err(), "none yet");
}

#[test]
fn rates_are_validated() {
    let table = CurrencyTable::default();
    let ok = q("EUR", "USD", "1.0832", NOW);
    assert_eq!(validate(&ok, &table), Ok(()));
    let bad = |f: &dyn Fn(&mut RateQuote)| {
        let mut x = ok.clone();
        f(&mut x);
        validate(&x, &table).is_err()
    };
    assert!(bad(&|x| x.quote = c("EUR")), "a currency with itself");
    assert!(bad(&|x| x.quote = c("QQQ")), "unknown currency");
    assert!(bad(&|x| x.rate = "1000000001".parse().unwrap()), "above the bound");
    assert!(bad(&|x| x.rate = "0.0000000001".parse().unwrap()), "below the inverse bound");
    assert!(bad(&|x| x.source = String::new()), "no source");
    assert!(bad(&|x| x.source = "x".repeat(65)), "long source");
    assert!("0".parse::<Rate>().is_err() && "-1.2".parse::<Rate>().is_err() && "1e3".parse::<Rate>().is_err());
}

fn csv(text: &str) -> Result<Vec<RateQuote>, CsvError> {
    parse_ecb_csv(text.as_bytes(), c("EUR"), "ECB", NOW, &CurrencyTable::default())
}

#[test]
fn ecb_csv_files() {
    let good = "Date,USD,JPY,BGN,\n2026-11-20,1.0832,162.35,N/A,\n2026-11-19, 1.0801 ,161.9,,\n";
    let rates = csv(good).unwrap();
    assert_eq!(rates.len(), 4);
    assert_eq!((rates[0].base, rates[0].quote, rates[0].rate.to_string()), (c("EUR"), c("USD"), "1.0832".into()));
    assert_eq!(rates[2].rate.to_string(), "1.0801", "cells are trimmed");
    assert_eq!(rates[1].effective_at.0 - rates[3].effective_at.0, DAY);
    assert_eq!(rates[0].effective_at, Timestamp(1_795_132_800_000_000), "2026-11-20T00:00:00Z");

    let err = |text: &str| csv(text).unwrap_err();
    let e = err("Date,USD\n2026-11-20,1.08\n2026-13-01,1.07\n");
    assert_eq!((e.line, e.column.as_str()), (3, "Date"), "{e}");
    let e = err("Date,USD,JPY\n2026-11-20,1.08,16x\n");
    assert_eq!((e.line, e.column.as_str()), (2, "JPY"), "{e}");
    let e = err("Date,USD,JPY\n2026-11-20,-1.08,160\n");
    assert_eq!((e.line, e.column.as_str()), (2, "USD"), "{e}");
    let e = err("Date,USD,QQQ\n2026-11-20,1.08,1\n");
    assert_eq!((e.line, e.column.as_str()), (1, "QQQ"), "{e}");
    let e = err("Day,USD\n");
    assert_eq!((e.line, e.column.as_str()), (1, "1"), "{e}");
    let e = err("Date,USD\n2026-11-20,1.08,2.0\n");
    assert_eq!(e.line, 2, "{e}");
    let e = err("Date,USD\n2026-11-20,0\n");
    assert_eq!((e.line, e.column.as_str()), (2, "USD"), "a zero rate: {e}");
    let e = err("Date,EUR\n");
    assert_eq!((e.line, e.column.as_str()), (1, "EUR"), "the pivot itself: {e}");
    assert!(err("").to_string().contains("empty"));
}
