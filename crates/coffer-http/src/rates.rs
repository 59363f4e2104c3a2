//! Exchange rates and display-currency overviews in the native API, and the conversion every
//! overview (native or Onerway) goes through ([`convert_all`]). The rules are the core's
//! ([`coffer_core::fx`]): exact fractions, half-even once per currency, a staleness limit, and
//! an error naming the pair rather than a partial total.
//!
//! - `POST /fx/rates` records one rate; `POST /fx/rates/import?source=ECB` records every rate of
//!   an ECB-format CSV body in one commit (a bad cell refuses the whole file, naming its line and
//!   column). Rates belong to the caller's platform: only a platform's own read-write key sets them.
//! - `GET /fx/rates?base=&quote=&at=`: the factor Coffer would use, with the quotes behind it.
//! - `GET /owners/{id}/overview?display_currency=&at=&include_descendants=`: every currency's
//!   balances (summed over the owner's wallets, and its descendants' with
//!   `include_descendants=true`) and the total of `posted` in the display currency, with the rates
//!   used. With `at`, balances and rates are those of that instant.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_core::fx::{self, Converted, FxError, Policy, RateQuote};
use coffer_core::money::format_minor;
use coffer_core::*;
use coffer_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorView};
use crate::native::{parse_time, path_id, Body, ReadErrors, WriteErrors, Q};
use crate::render::{rate_view, time, RateView};
use crate::AppState;

/// Most owners an overview with descendants adds up.
const MAX_SUBTREE: usize = 10_000;
/// Decimals of a derived (inverse or cross) rate shown or recorded on a conversion.
pub const DERIVED_RATE_PLACES: u32 = 10;

/// Largest rates file import body: the CSV limit and a little room.
pub const MAX_IMPORT_BODY: usize = fx::MAX_CSV_BYTES + 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&crate::native::at("/fx/rates"), post(set_rate).get(get_rate))
        .route(
            &crate::native::at("/fx/rates/import"),
            post(import_rates).layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BODY)),
        )
        .route(&crate::native::at("/owners/{id}/overview"), get(overview))
}

impl From<FxError> for ApiError {
    fn from(e: FxError) -> Self {
        let (status, kind, code) = match &e {
            FxError::MissingRate { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "rate_missing"),
            FxError::StaleRate { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "rate_stale"),
            FxError::InvalidRate(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_rate"),
            FxError::Overflow => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "overflow"),
        };
        ApiError::new(status, kind, code, e.to_string())
    }
}

/// The conversion policy of this node (pivot currency and staleness limit).
pub fn policy(s: &AppState) -> Policy {
    Policy { pivot: s.fx.pivot, max_age_micros: s.fx.max_rate_age.as_micros() as i64 }
}

/// Convert each `(currency, exponent, amount)` of `platform` into `display` at `at`, with the
/// platform's rates known at `at`.
pub async fn convert_all(
    s: &AppState,
    platform: OwnerId,
    amounts: &[(CurrencyCode, u8, i64)],
    display: CurrencyCode,
    at: Timestamp,
) -> Result<(Vec<Converted>, i64), ApiError> {
    let p = policy(s);
    let display_exp = s.store.exponent(platform, display).await?;
    let pairs = amounts.iter().flat_map(|(c, _, _)| fx::pairs_for(*c, display, p.pivot)).collect();
    let quotes = s.store.rates_at(platform, pairs, at).await?;
    Ok(fx::total(amounts, display, display_exp, &quotes, at, p)?)
}

/// The platform's stored rate `from -> to` now, as a decimal (exact for a direct quote, else
/// rounded half to even to [`DERIVED_RATE_PLACES`]) and its provenance.
pub async fn stored_rate(
    s: &AppState,
    platform: OwnerId,
    from: CurrencyCode,
    to: CurrencyCode,
) -> Result<(Rate, String), ApiError> {
    let (rate, used) = quote_rate(s, platform, from, to, crate::dialect::now()).await?;
    let source = used
        .iter()
        .map(|q| format!("{} {}/{} {} at {}", q.source, q.base, q.quote, q.rate, time(q.effective_at)))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((rate, source))
}

async fn quote_rate(
    s: &AppState,
    platform: OwnerId,
    base: CurrencyCode,
    quote: CurrencyCode,
    at: Timestamp,
) -> Result<(Rate, Vec<RateQuote>), ApiError> {
    let p = policy(s);
    let quotes = s.store.rates_at(platform, fx::pairs_for(base, quote, p.pivot), at).await?;
    let f = fx::factor(&quotes, base, quote, at, p)?;
    let rate = match f.used.as_slice() {
        [only] if only.base == base => only.rate,
        _ => f.to_rate(DERIVED_RATE_PLACES).ok_or(FxError::Overflow)?,
    };
    Ok((rate, f.used))
}

/// The platform whose rates the caller may set: its own, and only with a platform key.
fn platform_of(caller: &Caller) -> Result<OwnerId, ApiError> {
    caller.require_write()?;
    if caller.acting.kind != OwnerKind::Platform {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "platform_only",
            "exchange rates are set by the platform's own key",
        ));
    }
    Ok(caller.acting.id)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRate {
    #[schema(pattern = "^[A-Z]{3}$")]
    pub base: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub quote: String,
    /// Units of `quote` per unit of `base`: a positive decimal within 1e-9 .. 1e9.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub rate: String,
    /// Where the rate comes from (e.g. `ECB`, `Bloomberg`), 1 to 64 characters.
    pub source: String,
    /// RFC 3339; default now.
    pub effective_at: Option<String>,
}

fn currency(field: &'static str, v: &str) -> Result<CurrencyCode, ApiError> {
    v.parse().map_err(|e| ApiError::from(e).param(field))
}

#[utoipa::path(post, path = "/fx/rates", context_path = "/coffer/v1", tag = "fx", request_body = NewRate,
    description = "Record a rate of the caller's platform (platform keys only). Rates are never overwritten.",
    responses((status = 201, body = RateView), WriteErrors))]
async fn set_rate(State(s): State<AppState>, caller: Caller, Body(b): Body<NewRate>) -> Result<Response, ApiError> {
    let platform = platform_of(&caller)?;
    let q = RateQuote {
        base: currency("base", &b.base)?,
        quote: currency("quote", &b.quote)?,
        rate: b.rate.parse().map_err(|e| ApiError::from(e).param("rate"))?,
        source: b.source,
        effective_at: match b.effective_at {
            Some(t) => parse_time("effective_at", &t)?,
            None => crate::dialect::now(),
        },
        recorded_at: Timestamp(0),
    };
    let table = s.store.currency_table(); // a platform raises exponents, it adds no currencies
    fx::validate(&q, &table)?;
    let recorded = s.store.record_rates(platform, vec![q]).await?;
    Ok((StatusCode::CREATED, Json(rate_view(&recorded[0]))).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Where the rates come from, e.g. `ECB`.
    pub source: String,
}

/// What an import recorded.
#[derive(Serialize, ToSchema)]
pub struct ImportView {
    pub imported: usize,
    pub first_effective_at: Option<String>,
    pub last_effective_at: Option<String>,
}

#[utoipa::path(post, path = "/fx/rates/import", context_path = "/coffer/v1", tag = "fx",
    request_body(content = String, content_type = "text/csv",
        description = "ECB reference-rate format: `Date,USD,JPY,...` then `YYYY-MM-DD,1.0832,...` (rates per EUR)"),
    params(ImportQuery),
    responses((status = 201, body = ImportView), WriteErrors))]
async fn import_rates(
    State(s): State<AppState>,
    caller: Caller,
    Q(q): Q<ImportQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let platform = platform_of(&caller)?;
    let table = s.store.currency_table(); // a platform raises exponents, it adds no currencies
    let quotes = fx::parse_ecb_csv(&body, s.fx.pivot, &q.source, Timestamp(0), &table)
        .map_err(|e| ApiError::invalid("invalid_rates_file", e.to_string()))?;
    let first = quotes.iter().map(|q| q.effective_at).min();
    let last = quotes.iter().map(|q| q.effective_at).max();
    let imported = quotes.len();
    if imported > 0 {
        s.store.record_rates(platform, quotes).await?;
    }
    let view = ImportView { imported, first_effective_at: first.map(time), last_effective_at: last.map(time) };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RateQuery {
    #[param(pattern = "^[A-Z]{3}$")]
    pub base: String,
    #[param(pattern = "^[A-Z]{3}$")]
    pub quote: String,
    /// RFC 3339; default now.
    pub at: Option<String>,
}

/// The factor Coffer would use to convert `base` into `quote`, and the quotes behind it.
#[derive(Serialize, ToSchema)]
pub struct FactorView {
    pub base: String,
    pub quote: String,
    /// Units of `quote` per unit of `base`; exact for a direct quote, else rounded half to even
    /// to 10 decimals (conversions use the exact fraction).
    pub rate: String,
    pub at: String,
    pub rates_used: Vec<RateView>,
}

#[utoipa::path(get, path = "/fx/rates", context_path = "/coffer/v1", tag = "fx", params(RateQuery),
    responses((status = 200, body = FactorView), ReadErrors,
        (status = 422, description = "no fresh rate for the pair", body = ErrorView)))]
async fn get_rate(State(s): State<AppState>, caller: Caller, Q(q): Q<RateQuery>) -> Result<Json<FactorView>, ApiError> {
    let (base, quote) = (currency("base", &q.base)?, currency("quote", &q.quote)?);
    let at = match q.at {
        Some(t) => parse_time("at", &t)?,
        None => crate::dialect::now(),
    };
    let (rate, used) = quote_rate(&s, caller.key.platform, base, quote, at).await?;
    Ok(Json(FactorView {
        base: base.to_string(),
        quote: quote.to_string(),
        rate: rate.to_string(),
        at: time(at),
        rates_used: used.iter().map(rate_view).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Default: the owner's default currency.
    #[param(pattern = "^[A-Z]{3}$")]
    pub display_currency: Option<String>,
    /// RFC 3339: balances and rates as of this instant.
    pub at: Option<String>,
    /// Add up the owner's descendants too.
    pub include_descendants: Option<bool>,
}

/// One currency of an overview.
#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
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

#[utoipa::path(get, path = "/owners/{id}/overview", context_path = "/coffer/v1", tag = "balances",
    params(("id" = String, Path, description = "owner id"), OverviewQuery),
    responses((status = 200, body = OverviewView), ReadErrors,
        (status = 422, description = "a rate is missing or stale (the message names the pair)", body = ErrorView)))]
async fn overview(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<OverviewQuery>,
) -> Result<Json<OverviewView>, ApiError> {
    let o = caller.owner(&s.store, path_id("owner", &id)?).await?;
    let display = match &q.display_currency {
        Some(c) => currency("display_currency", c)?,
        None => o.default_currency,
    };
    s.store.exponent(o.platform, display).await.map_err(|e| ApiError::from(e).param("display_currency"))?;
    let past = q.at.as_deref().map(|t| parse_time("at", t)).transpose()?;
    let at = past.unwrap_or_else(crate::dialect::now);
    let subtree = q.include_descendants.unwrap_or(false);
    let mut owners = vec![o.id];
    if subtree {
        let mut i = 0;
        while i < owners.len() {
            for c in s.store.children(owners[i]).await? {
                owners.push(c.id);
            }
            if owners.len() > MAX_SUBTREE {
                return Err(ApiError::invalid("too_many_owners", format!("more than {MAX_SUBTREE} owners to add up")));
            }
            i += 1;
        }
    }
    let mut wallets = Vec::new();
    for id in &owners {
        wallets.extend(s.store.accounts_of(*id).await?.into_iter().filter(|a| a.is_wallet()));
    }
    let balances: Vec<(i64, i64, i64)> = match past {
        None => wallets.iter().map(|a| (a.posted, a.held, a.incoming)).collect(),
        Some(t) => {
            wallets.retain(|a| a.created_at <= t);
            let seq = s.store.seq_at(t).await?;
            s.store.balances_at(wallets.iter().map(|a| a.id).collect(), seq).await?
        }
    };
    // Per currency (in order of first wallet): posted, held, incoming.
    let mut sums: Vec<(CurrencyCode, u8, [i64; 3])> = Vec::new();
    let overflow = || ApiError::from(LedgerError::Overflow);
    for (a, (p, h, i)) in wallets.iter().zip(balances) {
        let at = match sums.iter().position(|x| x.0 == a.currency) {
            Some(k) => k,
            None => {
                sums.push((a.currency, a.exponent, [0; 3]));
                sums.len() - 1
            }
        };
        let v = &mut sums[at].2;
        for (slot, x) in v.iter_mut().zip([p, h, i]) {
            *slot = slot.checked_add(x).ok_or_else(overflow)?;
        }
    }
    let amounts: Vec<(CurrencyCode, u8, i64)> = sums.iter().map(|(c, e, v)| (*c, *e, v[0])).collect();
    let (converted, total) = convert_all(&s, o.platform, &amounts, display, at).await?;
    let display_exp = s.store.exponent(o.platform, display).await?;
    let by_currency: BTreeMap<CurrencyCode, &Converted> = converted.iter().map(|c| (c.currency, c)).collect();
    let mut currencies = Vec::new();
    for (c, e, [p, h, i]) in &sums {
        let conv = by_currency.get(c).ok_or_else(overflow)?;
        let f = |v: i64| format_minor(v, *e);
        currencies.push(OverviewCurrency {
            currency: c.to_string(),
            posted: f(*p),
            held: f(*h),
            available: f(p.checked_sub(*h).ok_or_else(overflow)?),
            incoming: f(*i),
            converted: format_minor(conv.converted, display_exp),
            rates_used: conv.used.iter().map(rate_view).collect(),
        });
    }
    Ok(Json(OverviewView {
        owner: o.id.0,
        display_currency: display.to_string(),
        at: time(at),
        include_descendants: subtree,
        currencies,
        total: format_minor(total, display_exp),
        rounding: "each currency converted exactly, then rounded half to even to the display currency's minor unit; \
                   the total is the sum of the rounded amounts"
            .into(),
    }))
}
