//! Exchange rates and display-currency overviews. The rules are the core's
//! ([`coffer_core::fx`]): exact fractions, half-even once per currency, a staleness limit, and
//! an error naming the pair rather than a partial total. Rates belong to a platform: only its
//! own read-write key (or the operator) records them.

use std::collections::BTreeMap;

use coffer_core::fx::{self, Converted, FxError, Policy, RateQuote};
use coffer_core::money::format_minor;
use coffer_core::*;
use coffer_store::Store;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, AppError, At};
use crate::directory::Directory;
use crate::render::{rate_view, time, RateView};

/// Most owners an overview with descendants adds up.
pub const MAX_SUBTREE: usize = 10_000;
/// Decimals of a derived (inverse or cross) rate shown or recorded on a conversion.
pub const DERIVED_RATE_PLACES: u32 = 10;

/// Convert each `(currency, exponent, amount)` of `platform` into `display` at `at`, with the
/// platform's rates known at `at`: each converted amount, their total, and the display
/// currency's exponent. Every overview (native and Onerway) goes through here.
pub async fn convert_all(
    dir: &Directory,
    p: Policy,
    platform: OwnerId,
    amounts: &[(CurrencyCode, u8, i64)],
    display: CurrencyCode,
    at: Timestamp,
) -> Result<(Vec<Converted>, i64, u8), AppError> {
    let display_exp = dir.exponent(platform, display).await?;
    let pairs = amounts.iter().flat_map(|(c, _, _)| fx::pairs_for(*c, display, p.pivot)).collect();
    let quotes = dir.rates_at(platform, pairs, at).await?;
    let (converted, total) = fx::total(amounts, display, display_exp, &quotes, at, p)?;
    Ok((converted, total, display_exp))
}

/// The platform's stored rate `from -> to` now, as a decimal (exact for a direct quote, else
/// rounded half to even to [`DERIVED_RATE_PLACES`]) and its provenance.
pub async fn stored_rate(
    dir: &Directory,
    p: Policy,
    platform: OwnerId,
    from: CurrencyCode,
    to: CurrencyCode,
) -> Result<(Rate, String), AppError> {
    let (rate, used) = quote_rate(dir, p, platform, from, to, crate::now()).await?;
    let source = used
        .iter()
        .map(|q| format!("{} {}/{} {} at {}", q.source, q.base, q.quote, q.rate, time(q.effective_at)))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((rate, source))
}

async fn quote_rate(
    dir: &Directory,
    p: Policy,
    platform: OwnerId,
    base: CurrencyCode,
    quote: CurrencyCode,
    at: Timestamp,
) -> Result<(Rate, Vec<RateQuote>), AppError> {
    let quotes = dir.rates_at(platform, fx::pairs_for(base, quote, p.pivot), at).await?;
    let f = fx::factor(&quotes, base, quote, at, p)?;
    let rate = match f.used.as_slice() {
        [only] if only.base == base => only.rate,
        _ => f.to_rate(DERIVED_RATE_PLACES).ok_or(FxError::Overflow)?,
    };
    Ok((rate, f.used))
}

/// The platform whose rates the actor may record: a key's own platform, and only with a
/// read-write key of the platform itself; the operator names an existing platform.
async fn rate_platform(dir: &Directory, actor: Actor<'_>, named: OwnerId) -> Result<OwnerId, AppError> {
    actor.require_write()?;
    match actor {
        Actor::Key(c) if c.acting.kind != OwnerKind::Platform => Err(AppError::Forbidden {
            code: "platform_only",
            message: "exchange rates are set by the platform's own key".into(),
        }),
        Actor::Key(c) => Ok(c.acting.id),
        Actor::Operator => actor.platform(dir, named).await,
    }
}

/// A rate as a request gives it; the currencies are checked here.
pub struct NewRate<'a> {
    pub base: &'a str,
    pub quote: &'a str,
    pub rate: Rate,
    pub source: String,
    /// Default now.
    pub effective_at: Option<Timestamp>,
}

/// Record one rate of a platform; rates are never overwritten.
pub async fn set_rate(
    dir: &Directory,
    actor: Actor<'_>,
    platform: OwnerId,
    r: NewRate<'_>,
) -> Result<RateView, AppError> {
    let platform = rate_platform(dir, actor, platform).await?;
    let q = RateQuote {
        base: r.base.parse().at("base")?,
        quote: r.quote.parse().at("quote")?,
        rate: r.rate,
        source: r.source,
        effective_at: r.effective_at.unwrap_or_else(crate::now),
        recorded_at: Timestamp(0),
    };
    let table = dir.currency_table(); // a platform raises exponents, it adds no currencies
    fx::validate(&q, &table)?;
    let recorded = dir.record_rates(platform, vec![q]).await?;
    Ok(rate_view(&recorded[0]))
}

/// What an import recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub imported: usize,
    pub first_effective_at: Option<String>,
    pub last_effective_at: Option<String>,
}

/// Record every rate of an ECB-format CSV file (rates per `pivot`) in one commit; a bad cell
/// refuses the whole file, naming its line and column.
pub async fn import(
    dir: &Directory,
    actor: Actor<'_>,
    platform: OwnerId,
    csv: &[u8],
    source: &str,
    pivot: CurrencyCode,
) -> Result<ImportView, AppError> {
    let platform = rate_platform(dir, actor, platform).await?;
    let table = dir.currency_table();
    let quotes = fx::parse_ecb_csv(csv, pivot, source, Timestamp(0), &table)
        .map_err(|e| AppError::invalid("invalid_rates_file", e.to_string()))?;
    let first = quotes.iter().map(|q| q.effective_at).min();
    let last = quotes.iter().map(|q| q.effective_at).max();
    let imported = quotes.len();
    if imported > 0 {
        dir.record_rates(platform, quotes).await?;
    }
    Ok(ImportView { imported, first_effective_at: first.map(time), last_effective_at: last.map(time) })
}

/// The factor Coffer would use to convert `base` into `quote`, and the quotes behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorView {
    pub base: String,
    pub quote: String,
    /// Units of `quote` per unit of `base`; exact for a direct quote, else rounded half to even
    /// to 10 decimals (conversions use the exact fraction).
    pub rate: String,
    pub at: String,
    pub rates_used: Vec<RateView>,
}

/// The factor of a pair of the caller's platform (the operator names one) at `at` (default now).
pub async fn factor(
    dir: &Directory,
    actor: Actor<'_>,
    p: Policy,
    (platform, base, quote): (OwnerId, &str, &str),
    at: Option<Timestamp>,
) -> Result<FactorView, AppError> {
    let (base, quote): (CurrencyCode, CurrencyCode) = (base.parse().at("base")?, quote.parse().at("quote")?);
    let platform = actor.platform(dir, platform).await?;
    let at = at.unwrap_or_else(crate::now);
    let (rate, used) = quote_rate(dir, p, platform, base, quote, at).await?;
    Ok(FactorView {
        base: base.to_string(),
        quote: quote.to_string(),
        rate: rate.to_string(),
        at: time(at),
        rates_used: used.iter().map(rate_view).collect(),
    })
}

/// The rate of the pair itself (no inverse or cross) that was in effect at `at`, as recorded.
pub async fn recorded(
    dir: &Directory,
    actor: Actor<'_>,
    platform: OwnerId,
    (base, quote): (&str, &str),
    at: Timestamp,
) -> Result<Option<RateQuote>, AppError> {
    let platform = actor.platform(dir, platform).await?;
    let pair = (base.parse().at("base")?, quote.parse().at("quote")?);
    Ok(dir.rates_at(platform, vec![pair], at).await?.into_iter().next())
}

/// One currency of an overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewCurrency {
    pub currency: String,
    pub posted: String,
    pub held: String,
    pub available: String,
    pub incoming: String,
    /// `posted` in the display currency, rounded half to even once.
    pub converted: String,
    pub rates_used: Vec<RateView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewView {
    pub owner: Uuid,
    pub display_currency: String,
    /// The instant of the balances and rates.
    pub at: String,
    pub include_descendants: bool,
    pub currencies: Vec<OverviewCurrency>,
    /// Sum of `converted`.
    pub total: String,
    /// How amounts were rounded.
    pub rounding: String,
}

/// What an overview asks for.
pub struct OverviewReq<'a> {
    /// Default: the owner's default currency.
    pub display_currency: Option<&'a str>,
    /// Balances and rates as of this instant; default now.
    pub at: Option<Timestamp>,
    pub include_descendants: bool,
}

/// Every currency's balances of an owner (and its descendants', when asked), and the total of
/// `posted` in the display currency, with the rates used.
pub async fn overview(
    dir: &Directory,
    actor: Actor<'_>,
    p: Policy,
    owner: OwnerId,
    q: OverviewReq<'_>,
) -> Result<OverviewView, AppError> {
    let o = actor.owner(dir, owner).await?;
    let display: CurrencyCode = match q.display_currency {
        Some(c) => c.parse().at("display_currency")?,
        None => o.default_currency,
    };
    let display_exp = dir.exponent(o.platform, display).await.at("display_currency")?;
    let at = q.at.unwrap_or_else(crate::now);
    let owners = if q.include_descendants { subtree(dir, o.id).await? } else { vec![o.id] };
    let sums = super::balances::sums_by_currency(dir, &owners, q.at).await?;
    let amounts: Vec<(CurrencyCode, u8, i64)> = sums.iter().map(|(c, e, v)| (*c, *e, v[0])).collect();
    let (converted, total, _) = convert_all(dir, p, o.platform, &amounts, display, at).await?;
    let by_currency: BTreeMap<CurrencyCode, &Converted> = converted.iter().map(|c| (c.currency, c)).collect();
    let overflow = || AppError::from(LedgerError::Overflow);
    let mut currencies = Vec::new();
    for (c, e, [posted, held, incoming]) in &sums {
        let conv = by_currency.get(c).ok_or_else(overflow)?;
        let f = |v: i64| format_minor(v, *e);
        currencies.push(OverviewCurrency {
            currency: c.to_string(),
            posted: f(*posted),
            held: f(*held),
            available: f(posted.checked_sub(*held).ok_or_else(overflow)?),
            incoming: f(*incoming),
            converted: format_minor(conv.converted, display_exp),
            rates_used: conv.used.iter().map(rate_view).collect(),
        });
    }
    Ok(OverviewView {
        owner: o.id.0,
        display_currency: display.to_string(),
        at: time(at),
        include_descendants: q.include_descendants,
        currencies,
        total: format_minor(total, display_exp),
        rounding: "each currency converted exactly, then rounded half to even to the display currency's minor unit; \
                   the total is the sum of the rounded amounts"
            .into(),
    })
}

/// `owner` and every owner below it, at most [`MAX_SUBTREE`].
async fn subtree(dir: &Directory, owner: OwnerId) -> Result<Vec<OwnerId>, AppError> {
    let mut owners = vec![owner];
    let mut i = 0;
    while i < owners.len() {
        for c in dir.children(owners[i]).await? {
            owners.push(c.id);
        }
        if owners.len() > MAX_SUBTREE {
            return Err(AppError::invalid("too_many_owners", format!("more than {MAX_SUBTREE} owners to add up")));
        }
        i += 1;
    }
    Ok(owners)
}
