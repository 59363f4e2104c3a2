//! PayerMax `dayEndBalanceQuery` (old fund account; `dialect-companions.md` section 3), behind
//! the same envelope, signature, time and merchant checks as `currentBalanceQuery`
//! (`crate::payermax`).
//!
//! For a past day (`inquiryDate`, from 90 days ago to yesterday in `timezone`: `UTC`, or `CST`
//! = +08:00), per account type (`ACQUIRING`: the ACQUIRING wallet's posted; `DISBURSEMENT`, alias
//! `AVAILABLE`: the OPERATING wallet's available) and currency: the value at the day's start
//! (`initalBalance`, PayerMax's spelling), every increase and every decrease during the day,
//! gross (`inflowAmount`, `outflowAmount`: a hold placed is an outflow, released an inflow, a
//! capture neither), and the value at its end (`endBalance` = initial + inflow - outflow,
//! exactly). Rows for the wallets that existed at the day's end, `ACQUIRING` first, currencies
//! A-Z; an all-zero row is left out unless its currency was named.

use chrono::{Duration, FixedOffset, NaiveDate, TimeZone};
use coffer_app::service::statements::{self, Basis};
use coffer_core::money::format_minor_wide_trimmed;
use coffer_core::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::dialect;
use crate::payermax::Code;
use crate::AppState;

/// How far back a day may be asked for.
const MAX_DAYS_BACK: i64 = 90;
const MAX_FIELD: usize = 32;
const MAX_TYPES: usize = 8;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DayEnd {
    inquiry_date: Option<String>,
    timezone: Option<String>,
    /// A single currency code (an array, as `currentBalanceQuery` takes, is refused).
    account_currency: Option<serde_json::Value>,
    account_type: Option<Vec<String>>,
}

#[derive(Serialize)]
pub(crate) struct Answer {
    msg: &'static str,
    code: &'static str,
    data: Data,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    acct_time: String,
    timezone: &'static str,
    account_end_day_time_types: Vec<Row>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    account_type: &'static str,
    currency: CurrencyCode,
    inital_balance: Box<RawValue>,
    inflow_amount: Box<RawValue>,
    outflow_amount: Box<RawValue>,
    end_balance: Box<RawValue>,
}

/// The account types, in the order they are listed, with the wallet and value each follows.
const TYPES: [(&str, WalletType, Basis); 2] =
    [("ACQUIRING", WalletType::Acquiring, Basis::Posted), ("DISBURSEMENT", WalletType::Operating, Basis::Available)];

/// `UTC` or `CST` (China Standard Time, +08:00), any case.
fn zone(tz: Option<&str>) -> Result<(&'static str, FixedOffset), Code> {
    match tz.map(|t| t.trim().to_ascii_uppercase()).as_deref() {
        Some("UTC") => Ok(("UTC", FixedOffset::east_opt(0).expect("0 is an offset"))),
        Some("CST") => Ok(("CST", FixedOffset::east_opt(8 * 3600).expect("+08:00 is an offset"))),
        _ => Err(Code::ParamsInvalid),
    }
}

/// The day asked for, as `[start, end)` in the zone: a valid date from 90 days ago to yesterday.
fn day(
    date: Option<&str>,
    tz: FixedOffset,
    now: Timestamp,
) -> Result<(chrono::DateTime<FixedOffset>, chrono::DateTime<FixedOffset>), Code> {
    let date = date.filter(|d| d.len() <= MAX_FIELD).ok_or(Code::ParamsInvalid)?;
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| Code::ParamsInvalid)?;
    let today =
        chrono::DateTime::from_timestamp_micros(now.0).ok_or(Code::SystemError)?.with_timezone(&tz).date_naive();
    if d >= today || d < today - Duration::days(MAX_DAYS_BACK) {
        return Err(Code::ParamsInvalid);
    }
    let start =
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")).single().ok_or(Code::ParamsInvalid)?;
    Ok((start, start + Duration::days(1)))
}

/// The account types asked for (`AVAILABLE` is `DISBURSEMENT`); none: both.
fn types(asked: Option<Vec<String>>) -> Result<Vec<&'static str>, Code> {
    let asked = asked.unwrap_or_default();
    if asked.len() > MAX_TYPES {
        return Err(Code::ParamsInvalid);
    }
    let mut out = Vec::new();
    for t in &asked {
        let name = match t.as_str() {
            "ACQUIRING" => "ACQUIRING",
            "DISBURSEMENT" | "AVAILABLE" => "DISBURSEMENT",
            _ => return Err(Code::ParamsInvalid),
        };
        out.push(name);
    }
    Ok(if out.is_empty() { vec!["ACQUIRING", "DISBURSEMENT"] } else { out })
}

fn number(v: i128, exponent: u8) -> Result<Box<RawValue>, Code> {
    let text = format_minor_wide_trimmed(v, exponent).ok_or(Code::SystemError)?;
    RawValue::from_string(text).map_err(|e| dialect::internal("payermax number", e).into())
}

pub(crate) async fn answer(s: &AppState, merchant: &Owner, data: DayEnd, now: Timestamp) -> Result<Answer, Code> {
    let (zone_name, tz) = zone(data.timezone.as_deref())?;
    let (start, end) = day(data.inquiry_date.as_deref(), tz, now)?;
    let named = match data.account_currency {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(c)) if c.trim().is_empty() => None,
        Some(serde_json::Value::String(c)) if c.len() <= 3 => Some(dialect::currency(s, merchant.platform, &c).await?),
        Some(serde_json::Value::String(_)) => return Err(Code::CurrencyInvalid),
        Some(_) => return Err(Code::ParamsInvalid),
    };
    let wanted = types(data.account_type)?;
    let (from, to) = (Timestamp(start.timestamp_micros()), Timestamp(end.timestamp_micros()));
    let wallets = {
        use coffer_store::Store;
        s.store.accounts_of(merchant.id).await.map_err(dialect::Problem::from)?
    };
    let mut rows = Vec::new();
    for (name, t, basis) in TYPES.iter().filter(|(n, _, _)| wanted.contains(n)) {
        let mut of_type: Vec<&Account> = wallets
            .iter()
            .filter(|a| a.kind == AccountKind::Wallet(*t) && a.created_at.0 < to.0)
            .filter(|a| named.is_none_or(|c| a.currency == c))
            .collect();
        of_type.sort_by_key(|a| a.currency.to_string());
        for a in of_type {
            let f = statements::flows(&s.store, a, *basis, from, to).await.map_err(dialect::Problem::from)?;
            if named.is_none() && [f.opening, f.inflow, f.outflow, f.closing].iter().all(|v| *v == 0) {
                continue;
            }
            rows.push(Row {
                account_type: name,
                currency: a.currency,
                inital_balance: number(f.opening, a.exponent)?,
                inflow_amount: number(f.inflow, a.exponent)?,
                outflow_amount: number(f.outflow, a.exponent)?,
                end_balance: number(f.closing, a.exponent)?,
            });
        }
    }
    let acct_time = (end - Duration::milliseconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(Answer {
        msg: "",
        code: "APPLY_SUCCESS",
        data: Data { acct_time, timezone: zone_name, account_end_day_time_types: rows },
    })
}
