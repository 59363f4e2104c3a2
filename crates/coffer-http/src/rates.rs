//! Exchange rates and display-currency overviews in the native API: parsing and rendering around
//! [`coffer_app::service::rates`], where the use-cases are (and the conversion every overview,
//! native or Onerway, goes through).
//!
//! - `POST /fx/rates` records one rate; `POST /fx/rates/import?source=ECB` records every rate of
//!   an ECB-format CSV body in one commit (a bad cell refuses the whole file, naming its line and
//!   column). Rates belong to the caller's platform: only a platform's own read-write key sets them.
//! - `GET /fx/rates?base=&quote=&at=`: the factor Coffer would use, with the quotes behind it.
//! - `GET /owners/{id}/overview?display_currency=&at=&include_descendants=`: every currency's
//!   balances (summed over the owner's wallets, and its descendants' with
//!   `include_descendants=true`) and the total of `posted` in the display currency, with the rates
//!   used. With `at`, balances and rates are those of that instant.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_app::service::rates::{self as svc, FactorView, ImportView, OverviewView};
use coffer_core::fx;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorView};
use crate::native::{parse_time, path_id, Body, ReadErrors, WriteErrors, Q};
use crate::render::RateView;
use crate::AppState;

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

#[utoipa::path(post, path = "/fx/rates", context_path = "/coffer/v1", tag = "fx", request_body = NewRate,
    description = "Record a rate of the caller's platform (platform keys only). Rates are never overwritten.",
    responses((status = 201, body = RateView), WriteErrors))]
async fn set_rate(State(s): State<AppState>, caller: Caller, Body(b): Body<NewRate>) -> Result<Response, ApiError> {
    let r = svc::NewRate {
        base: &b.base,
        quote: &b.quote,
        rate: b.rate.parse().map_err(|e| ApiError::from(e).param("rate"))?,
        source: b.source,
        effective_at: b.effective_at.as_deref().map(|t| parse_time("effective_at", t)).transpose()?,
    };
    let view = svc::set_rate(&s.store, (&caller).into(), caller.acting.platform, r).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Where the rates come from, e.g. `ECB`.
    pub source: String,
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
    let view = svc::import(&s.store, (&caller).into(), caller.acting.platform, &body, &q.source, s.fx.pivot).await?;
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

#[utoipa::path(get, path = "/fx/rates", context_path = "/coffer/v1", tag = "fx", params(RateQuery),
    responses((status = 200, body = FactorView), ReadErrors,
        (status = 422, description = "no fresh rate for the pair", body = ErrorView)))]
async fn get_rate(State(s): State<AppState>, caller: Caller, Q(q): Q<RateQuery>) -> Result<Json<FactorView>, ApiError> {
    let at = q.at.as_deref().map(|t| parse_time("at", t)).transpose()?;
    let pair = (caller.key.platform, q.base.as_str(), q.quote.as_str());
    Ok(Json(svc::factor(&s.store, (&caller).into(), s.fx_policy(), pair, at).await?))
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
    let owner = path_id("owner", &id)?;
    let r = svc::OverviewReq {
        display_currency: q.display_currency.as_deref(),
        at: q.at.as_deref().map(|t| parse_time("at", t)).transpose()?,
        include_descendants: q.include_descendants.unwrap_or(false),
    };
    Ok(Json(svc::overview(&s.store, (&caller).into(), s.fx_policy(), owner, r).await?))
}
