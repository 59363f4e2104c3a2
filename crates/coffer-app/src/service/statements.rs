//! Statements: a wallet's balances at both ends of a period and its movements in between, with
//! running balances (and, when asked, totals by kind); an owner's statement lists that for each
//! of its wallets in one currency.
//!
//! A period is `[from, to)`: `from` and `to` are dates (`YYYY-MM-DD`, whole days in the
//! statement's IANA time zone, `to` included) or RFC 3339 instants. Its ends are journal
//! positions: the last entry made before `from` (opening) and before `to` (closing), never past
//! the settled position, so the closing balance minus the opening balance is exactly the sum of
//! the movements listed, whatever commits meanwhile. The cost of a page does not depend on the
//! journal's size: two position lookups, one as-of read and one page of the wallet's lines.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use coffer_core::money::{format_minor, format_minor_wide};
use coffer_core::*;
use coffer_store::{HistoryItem, Page, Store};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::journal::{item_view, HistoryItemView};
use super::{Actor, AppError};
use crate::directory::Directory;
use crate::render;

pub const DEFAULT_LINES: usize = 100;
pub const MAX_LINES: usize = 1000;
/// Longest period.
pub const MAX_DAYS: i64 = 366;
/// Lines a request with totals (or a CSV export) reads at most.
pub const MAX_TOTALED: usize = 100_000;

/// A statement's period, as instants (µs), `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
    pub tz: Tz,
}

fn bad(param: &'static str, why: impl Into<String>) -> AppError {
    AppError::invalid("invalid_argument", why.into()).at(param)
}

/// `date_or_instant` in `tz`: a date means the start of that day (plus one day for `to`).
fn instant(param: &'static str, s: &str, tz: Tz, end: bool) -> Result<Timestamp, AppError> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if end { d.succ_opt().ok_or_else(|| bad(param, "date out of range"))? } else { d };
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A day that starts inside a DST gap starts at the first instant after it.
        let start = tz
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())
            .ok_or_else(|| bad(param, "no such local time"))?;
        return Ok(Timestamp(start.with_timezone(&Utc).timestamp_micros()));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| Timestamp(d.timestamp_micros()))
        .map_err(|_| bad(param, format!("{param} must be a date (YYYY-MM-DD) or an RFC 3339 time")))
}

/// The period `from`..`to` (dates in `tz`, an IANA zone name, default UTC), at most
/// [`MAX_DAYS`] long.
pub fn period(from: &str, to: &str, tz: Option<&str>) -> Result<Period, AppError> {
    let tz: Tz = match tz {
        None => Tz::UTC,
        Some(z) => z.parse().map_err(|_| bad("tz", format!("unknown time zone {z:?} (an IANA name)")))?,
    };
    let (f, t) = (instant("from", from, tz, false)?, instant("to", to, tz, true)?);
    if t.0 <= f.0 {
        return Err(bad("to", "to must be after from"));
    }
    if t.0 - f.0 > (MAX_DAYS + 1) * 86_400_000_000 {
        return Err(bad("to", format!("a statement covers at most {MAX_DAYS} days")));
    }
    Ok(Period { from: f, to: t, tz })
}

/// A wallet's balances at one end of the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Balances {
    /// The last transaction at or before this end (0: none yet).
    pub transaction: u64,
    pub posted: String,
    pub held: String,
    pub available: String,
    pub incoming: String,
}

/// One kind of movement over the whole period.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct KindTotal {
    pub kind: String,
    pub count: u64,
    /// Sums of the lines' changes to posted: increases and decreases apart.
    pub posted_in: String,
    pub posted_out: String,
    /// Net changes to held (holds placed, released, captured) and incoming.
    pub held: String,
    pub incoming: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletStatement {
    pub wallet: Uuid,
    pub owner: Uuid,
    pub wallet_type: String,
    pub currency: String,
    /// The period: `from` included, `to` excluded (RFC 3339, UTC).
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub opening: Balances,
    pub closing: Balances,
    /// Movements in the period, newest first (a page of them; `next_cursor` for the next).
    pub movements: Vec<HistoryItemView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
    /// By kind, over the whole period (only when asked for with `totals=true`).
    pub totals: Option<Vec<KindTotal>>,
}

/// What a wallet statement asks for.
#[derive(Debug, Clone, Copy)]
pub struct StatementQuery {
    pub period: Period,
    pub limit: usize,
    /// The transaction the page starts below.
    pub cursor: Option<Seq>,
    pub totals: bool,
}

/// `limit`: 1 to [`MAX_LINES`], default [`DEFAULT_LINES`].
pub fn limit(limit: Option<usize>) -> Result<usize, AppError> {
    match limit.unwrap_or(DEFAULT_LINES) {
        n @ 1..=MAX_LINES => Ok(n),
        _ => Err(bad("limit", format!("limit must be 1 to {MAX_LINES}"))),
    }
}

/// The journal positions of the period's ends: the last entry before `from` and before `to`,
/// the latter no further than the settled position.
async fn ends(dir: &Directory, p: &Period) -> Result<(Seq, Seq), AppError> {
    let open = dir.seq_at(Timestamp(p.from.0 - 1)).await?;
    let close = dir.seq_at(Timestamp(p.to.0 - 1)).await?.min(dir.settled_seq().await?);
    Ok((open, close.max(open)))
}

fn balances(seq: Seq, (posted, held, incoming): (i64, i64, i64), x: u8) -> Balances {
    Balances {
        transaction: seq,
        posted: format_minor(posted, x),
        held: format_minor(held, x),
        available: format_minor(posted - held, x),
        incoming: format_minor(incoming, x),
    }
}

/// The statement of one wallet the caller reaches.
pub async fn wallet(
    dir: &Directory,
    actor: Actor<'_>,
    id: AccountId,
    q: StatementQuery,
) -> Result<WalletStatement, AppError> {
    let a = actor.wallet(dir, id).await?;
    let (open, close) = ends(dir, &q.period).await?;
    let at = dir.balances_at(vec![a.id], open).await?;
    let at_close = dir.balances_at(vec![a.id], close).await?;
    let before = q.cursor.map_or(close + 1, |c| c.min(close + 1));
    let items = dir.history(a.id, Page { before: Some(before), after: Some(open), limit: q.limit }).await?;
    let next_cursor = (items.len() == q.limit).then(|| items.last().map(|i| format!("s{}", i.seq))).flatten();
    let totals = match q.totals {
        true => Some(totals(dir, &a, open, close).await?),
        false => None,
    };
    Ok(WalletStatement {
        wallet: a.id.0,
        owner: a.owner.0,
        wallet_type: a.kind.wallet_type().map(|t| t.to_string()).unwrap_or_default(),
        currency: a.currency.to_string(),
        from: render::time(q.period.from),
        to: render::time(q.period.to),
        time_zone: q.period.tz.name().to_string(),
        opening: balances(open, at[0], a.exponent),
        closing: balances(close, at_close[0], a.exponent),
        movements: items.iter().map(|i| item_view(i, a.exponent)).collect(),
        next_cursor,
        totals,
    })
}

/// Every line of the wallet in `(open, close]`, newest first, at most [`MAX_TOTALED`].
pub async fn all_lines(dir: &Directory, a: &Account, open: Seq, close: Seq) -> Result<Vec<HistoryItem>, AppError> {
    let mut out: Vec<HistoryItem> = Vec::new();
    let mut before = close + 1;
    loop {
        let page = dir.history(a.id, Page { before: Some(before), after: Some(open), limit: MAX_LINES }).await?;
        let n = page.len();
        out.extend(page);
        if out.len() > MAX_TOTALED {
            return Err(AppError::invalid(
                "period_too_large",
                format!("the period has more than {MAX_TOTALED} movements: ask for a shorter one"),
            ));
        }
        match out.last() {
            Some(l) if n == MAX_LINES => before = l.seq,
            _ => return Ok(out),
        }
    }
}

/// Totals by kind of the wallet's lines in `(open, close]`.
async fn totals(dir: &Directory, a: &Account, open: Seq, close: Seq) -> Result<Vec<KindTotal>, AppError> {
    Ok(sum_by_kind(&all_lines(dir, a, open, close).await?, a.exponent))
}

/// Totals by kind, kinds in the order of their names, summed in i128 (no sum of at most
/// [`MAX_TOTALED`] i64 values overflows it, nor the 96 bits a decimal holds).
pub fn sum_by_kind(lines: &[HistoryItem], x: u8) -> Vec<KindTotal> {
    let mut by: std::collections::BTreeMap<String, (u64, i128, i128, i128, i128)> = Default::default();
    for l in lines {
        let t = by.entry(l.kind.to_string()).or_default();
        let p = l.line.posted as i128;
        t.0 += 1;
        if p >= 0 {
            t.1 += p;
        } else {
            t.2 -= p;
        }
        t.3 += l.line.held as i128;
        t.4 += l.line.incoming as i128;
    }
    let f = |v: i128| format_minor_wide(v, x).expect("at most 100,000 i64 values fit in 96 bits");
    by.into_iter()
        .map(|(kind, (count, pin, pout, held, incoming))| KindTotal {
            kind,
            count,
            posted_in: f(pin),
            posted_out: f(pout),
            held: f(held),
            incoming: f(incoming),
        })
        .collect()
}

/// One wallet in an owner's statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEnds {
    pub wallet: Uuid,
    pub wallet_type: String,
    pub opening: Balances,
    pub closing: Balances,
    /// Closing minus opening posted.
    pub posted_change: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerStatement {
    pub owner: Uuid,
    pub currency: String,
    pub from: String,
    pub to: String,
    pub time_zone: String,
    /// Each wallet of the owner in the currency, by wallet type; its movements are in the
    /// wallet's own statement.
    pub wallets: Vec<WalletEnds>,
}

/// An owner's wallets in one currency at both ends of the period (one as-of read per end).
pub async fn owner(
    dir: &Directory,
    actor: Actor<'_>,
    id: OwnerId,
    currency: CurrencyCode,
    period: Period,
) -> Result<OwnerStatement, AppError> {
    let o = actor.owner(dir, id).await?;
    let mut wallets: Vec<Account> =
        dir.accounts_of(o.id).await?.into_iter().filter(|a| a.is_wallet() && a.currency == currency).collect();
    wallets.sort_by_key(|a| a.kind.wallet_type().map(|t| t.to_string()));
    let (open, close) = ends(dir, &period).await?;
    let ids: Vec<AccountId> = wallets.iter().map(|a| a.id).collect();
    let at_open = dir.balances_at(ids.clone(), open).await?;
    let at_close = dir.balances_at(ids, close).await?;
    let wallets = wallets
        .iter()
        .zip(at_open.into_iter().zip(at_close))
        .map(|(a, (o, c))| WalletEnds {
            wallet: a.id.0,
            wallet_type: a.kind.wallet_type().map(|t| t.to_string()).unwrap_or_default(),
            opening: balances(open, o, a.exponent),
            closing: balances(close, c, a.exponent),
            posted_change: format_minor_wide(c.0 as i128 - o.0 as i128, a.exponent).unwrap_or_default(),
        })
        .collect();
    Ok(OwnerStatement {
        owner: o.id.0,
        currency: currency.to_string(),
        from: render::time(period.from),
        to: render::time(period.to),
        time_zone: period.tz.name().to_string(),
        wallets,
    })
}

/// The statement as CSV, oldest first: a header row, an opening row, one row per movement (the
/// whole period, at most [`MAX_TOTALED`]) and a closing row.
pub async fn wallet_csv(dir: &Directory, actor: Actor<'_>, id: AccountId, period: Period) -> Result<String, AppError> {
    let a = actor.wallet(dir, id).await?;
    let (open, close) = ends(dir, &period).await?;
    let mut lines = all_lines(dir, &a, open, close).await?;
    lines.reverse();
    let at = dir.balances_at(vec![a.id], open).await?[0];
    let end = dir.balances_at(vec![a.id], close).await?[0];
    let mut w = csv::Writer::from_writer(Vec::new());
    let f = |v: i64| format_minor(v, a.exponent);
    let csv_err = |e: csv::Error| AppError::Store(coffer_store::StoreError::Storage(e.to_string()));
    w.write_record([
        "row",
        "transaction",
        "kind",
        "created_at",
        "posted",
        "held",
        "incoming",
        "posted_after",
        "held_after",
        "available_after",
        "incoming_after",
    ])
    .map_err(csv_err)?;
    let edge = |name: &str, seq: Seq, t: Timestamp, (p, h, i): (i64, i64, i64)| {
        vec![
            name.to_string(),
            seq.to_string(),
            String::new(),
            render::time(t),
            String::new(),
            String::new(),
            String::new(),
            f(p),
            f(h),
            f(p - h),
            f(i),
        ]
    };
    w.write_record(edge("opening", open, period.from, at)).map_err(csv_err)?;
    for l in &lines {
        let v = item_view(l, a.exponent);
        w.write_record([
            "movement",
            &v.transaction.to_string(),
            &v.kind,
            &v.created_at,
            &v.posted,
            &v.held,
            &v.incoming,
            &v.posted_after,
            &v.held_after,
            &v.available_after,
            &v.incoming_after,
        ])
        .map_err(csv_err)?;
    }
    w.write_record(edge("closing", close, period.to, end)).map_err(csv_err)?;
    let bytes = w.into_inner().map_err(|e| csv_err(e.into_error().into()))?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8"))
}

/// Which balance of a wallet a day-end report follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Posted,
    /// Posted minus held.
    Available,
}

impl Basis {
    fn of(self, (posted, held, _): (i64, i64, i64)) -> i128 {
        match self {
            Basis::Posted => posted as i128,
            Basis::Available => posted as i128 - held as i128,
        }
    }
    fn change(self, l: &Line) -> i128 {
        match self {
            Basis::Posted => l.posted as i128,
            Basis::Available => l.posted as i128 - l.held as i128,
        }
    }
}

/// A wallet's basis at both ends of `[from, to)` and its gross flows in between: every line
/// adds its increase to `inflow` or its decrease to `outflow`, never netted, so that
/// `closing == opening + inflow - outflow` exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flows {
    pub opening: i128,
    pub inflow: i128,
    pub outflow: i128,
    pub closing: i128,
}

/// [`Flows`] of `wallet`'s `basis` over `[from, to)` (positions as in statements).
pub async fn flows(
    dir: &Directory,
    wallet: &Account,
    basis: Basis,
    from: Timestamp,
    to: Timestamp,
) -> Result<Flows, AppError> {
    let (open, close) = ends(dir, &Period { from, to, tz: Tz::UTC }).await?;
    let at = dir.balances_at(vec![wallet.id], open).await?[0];
    let end = dir.balances_at(vec![wallet.id], close).await?[0];
    let (mut inflow, mut outflow) = (0i128, 0i128);
    for l in all_lines(dir, wallet, open, close).await? {
        match basis.change(&l.line) {
            d if d > 0 => inflow += d,
            d => outflow -= d,
        }
    }
    let f = Flows { opening: basis.of(at), inflow, outflow, closing: basis.of(end) };
    // The journal's lines must account for the change between the two as-of reads.
    if f.closing != f.opening + f.inflow - f.outflow {
        return Err(
            coffer_store::StoreError::Storage(format!("wallet {} flows do not add up: {f:?}", wallet.id.0)).into()
        );
    }
    Ok(f)
}
