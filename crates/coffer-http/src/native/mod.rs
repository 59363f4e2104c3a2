//! The native REST API under `/coffer/v1`. Parses requests into core commands, checks that the
//! caller reaches every owner and wallet named, and renders the answers. Every handler carries
//! its OpenAPI description (`/openapi.json`).

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use coffer_app::service::balances::BalancesView;
use coffer_app::service::journal::{page_limit, HistoryView, TransactionsView, Window};
use coffer_app::service::keys::SigningKeyView;
use coffer_app::service::movements::{OneWallet, RateChoice};
use coffer_app::service::{self, Moved, Planned};
use coffer_core::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorView};
use crate::render::{self, *};
use crate::AppState;

mod alerts;
mod events;
mod holds;
mod keys;
mod movements;
mod owners;
mod reference;
mod statements;
mod wallets;
mod webhooks;

use movements::{one_wallet, WalletAmount};
pub(crate) use owners::parse_time;
use owners::NewStatus;
use reference::Reference;
use wallets::{window, ListQuery};

pub const PREFIX: &str = "/coffer/v1";
/// Most transfers in one batch request.
pub const MAX_BATCH: usize = 8192;
/// Largest batch request body.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `path` under [`PREFIX`]. The routes carry their full paths (no `nest`, which would
/// rewrite every request's URI).
pub(crate) fn at(path: &str) -> String {
    format!("{PREFIX}{path}")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&at("/me"), get(owners::me))
        .route(&at("/owners/{id}"), get(owners::owner))
        .route(&at("/owners/{id}/children"), get(owners::children).post(owners::create_child))
        .route(&at("/owners/{id}/status"), post(owners::owner_status))
        .route(&at("/owners/{id}/wallets"), get(owners::owner_wallets))
        .route(&at("/owners/{id}/balances"), get(owners::owner_balances))
        .route(&at("/wallets"), post(wallets::open_wallet))
        .route(&at("/wallets/{id}"), get(wallets::wallet))
        .route(&at("/wallets/{id}/status"), post(wallets::wallet_status))
        .route(&at("/wallets/{id}/limits"), post(wallets::wallet_limits))
        .route(&at("/wallets/{id}/holds"), get(wallets::wallet_holds))
        .route(&at("/wallets/{id}/incoming"), get(wallets::wallet_incoming))
        .route(&at("/wallets/{id}/history"), get(wallets::wallet_history))
        .route(&at("/wallets/{id}/statement"), get(statements::wallet_statement))
        .route(&at("/owners/{id}/statement"), get(statements::owner_statement))
        .route(&at("/deposits"), post(movements::deposit))
        .route(&at("/payouts"), post(movements::payout))
        .route(&at("/fees"), post(movements::fee))
        .route(&at("/transfers"), post(movements::transfer))
        .route(
            &at("/transfers/batch"),
            post(movements::transfer_batch).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BODY)),
        )
        .route(&at("/transactions"), get(movements::list_transactions).post(movements::post_transaction))
        .route(&at("/transactions/{seq}"), get(movements::transaction))
        .route(&at("/reversals"), post(movements::reversal))
        .route(&at("/fx/conversions"), post(movements::fx_conversion))
        .route(&at("/holds"), post(holds::create_hold))
        .route(&at("/holds/{id}"), get(holds::hold))
        .route(&at("/holds/{id}/capture"), post(holds::capture_hold))
        .route(&at("/holds/{id}/release"), post(holds::release_hold))
        .route(&at("/incoming"), post(holds::create_incoming))
        .route(&at("/incoming/{id}/settle"), post(holds::settle_incoming))
        .route(&at("/incoming/{id}/cancel"), post(holds::cancel_incoming))
        .route(&at("/api-keys"), post(keys::create_key))
        .route(&at("/api-keys/{id}/revoke"), post(keys::revoke_key))
        .route(&at("/api-keys/{id}/public-key"), put(keys::set_public_key))
        .route(&at("/signing-key"), get(keys::signing_key))
        .route(&at("/events"), get(events::events))
        .route(&at("/events/stream"), get(events::stream))
        .route(&at("/alerts"), post(alerts::create_alert))
        .route(&at("/alerts/{id}"), delete(alerts::delete_alert))
        .route(&at("/wallets/{id}/alerts"), get(alerts::wallet_alerts))
        .route(&at("/webhook-endpoints"), post(webhooks::create_webhook).get(webhooks::list_webhooks))
        .route(&at("/webhook-endpoints/{id}"), get(webhooks::get_webhook).delete(webhooks::delete_webhook))
        .route(&at("/webhook-endpoints/{id}/disable"), post(webhooks::disable_webhook))
        .route(&at("/webhook-endpoints/{id}/enable"), post(webhooks::enable_webhook))
        .route(&at("/webhook-endpoints/{id}/rotate-secret"), post(webhooks::rotate_webhook))
        .route(&at("/webhook-endpoints/{id}/redeliver"), post(webhooks::redeliver_webhook))
        .merge(crate::rates::routes())
}

// ---- the refusals every operation can meet, for the OpenAPI document ----

/// Refusals of any authenticated read.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    #[response(status = 400, description = "invalid request")]
    Invalid(#[to_schema] ErrorView),
    #[response(status = 401, description = "missing, invalid or revoked API key")]
    Unauthenticated(ErrorView),
    #[response(status = 404, description = "not found, or not reachable with this key")]
    NotFound(ErrorView),
    #[response(status = 429, description = "rate limited; see Retry-After")]
    RateLimited(ErrorView),
}

/// Refusals of any authenticated change.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    #[response(status = 400, description = "invalid request")]
    Invalid(#[to_schema] ErrorView),
    #[response(status = 401, description = "missing, invalid or revoked API key")]
    Unauthenticated(ErrorView),
    #[response(status = 403, description = "read-only API key")]
    Forbidden(ErrorView),
    #[response(status = 404, description = "not found, or not reachable with this key")]
    NotFound(ErrorView),
    #[response(status = 409, description = "idempotency key reused with another request, or already exists")]
    Conflict(ErrorView),
    #[response(status = 413, description = "request body too large")]
    TooLarge(ErrorView),
    #[response(status = 415, description = "the body is not application/json")]
    MediaType(ErrorView),
    #[response(status = 422, description = "refused by a ledger rule")]
    Refused(ErrorView),
    #[response(status = 429, description = "rate limited; see Retry-After")]
    RateLimited(ErrorView),
}

/// The answers of a money movement, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum MovementResponses {
    #[response(status = 201, description = "recorded")]
    Created(#[to_schema] MovementView),
    #[response(status = 200, description = "the first result, replayed for a repeated Idempotency-Key")]
    Replayed(MovementView),
}

/// The header every money movement needs, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyHeader {
    /// Scoped to the platform: 1 to 255 printable ASCII characters.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: String,
}

/// A JSON body whose every refusal (syntax, unknown field, wrong type, too large) is answered
/// in the API's error envelope.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rej) => {
                let status = match rej.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    s => s,
                };
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "invalid_json",
                };
                Err(ApiError::new(status, "invalid_request_error", code, rej.body_text()))
            }
        }
    }
}

/// A query string whose refusals are answered in the API's error envelope.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|rej| ApiError::invalid("invalid_query", rej.body_text()))
    }
}

pub(crate) fn path_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what, raw.chars().take(64).collect::<String>()))
}

fn bad_name(field: &'static str) -> impl Fn(UnknownName) -> ApiError {
    move |e| ApiError::invalid("invalid_argument", e.to_string()).param(field)
}

fn idempotency_key(h: &HeaderMap) -> Result<String, ApiError> {
    let v = h.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::invalid("missing_idempotency_key", "money movements need an Idempotency-Key header")
            .param("Idempotency-Key")
    })?;
    Ok(v.to_str()
        .map_err(|_| {
            ApiError::invalid("invalid_header", "Idempotency-Key must be printable ASCII").param("Idempotency-Key")
        })?
        .to_string())
}

fn created<T: Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// Commit a planned movement under the request's `Idempotency-Key`.
async fn movement(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    metadata: Option<BTreeMap<String, String>>,
    planned: Planned,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let key = idempotency_key(headers)?;
    Ok(moved(service::commit(&s.store, caller.into(), planned, key, metadata.unwrap_or_default()).await?))
}

/// A movement's answer: 201 the first time; 200 and `Idempotent-Replayed: true` for a replay.
fn moved(m: Moved) -> Response {
    if !m.replayed {
        return created(m.view);
    }
    let mut resp = (StatusCode::OK, Json(m.view)).into_response();
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// The OpenAPI document of this API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Coffer native API", description = "A multi-currency balance ledger. Amounts are decimal strings; every request needs `Authorization: Bearer <key>`; money movements need an `Idempotency-Key` header."),
    paths(
        owners::me, owners::owner, owners::children, owners::create_child, owners::owner_status, owners::owner_wallets, owners::owner_balances,
        wallets::open_wallet, wallets::wallet, wallets::wallet_status, wallets::wallet_limits, wallets::wallet_holds, wallets::wallet_incoming, wallets::wallet_history,
        statements::wallet_statement, statements::owner_statement,
        movements::deposit, movements::payout, movements::fee, movements::transfer, movements::transfer_batch, movements::post_transaction, movements::list_transactions, movements::transaction, movements::reversal,
        movements::fx_conversion, holds::create_hold, holds::hold, holds::capture_hold, holds::release_hold, holds::create_incoming, holds::settle_incoming, holds::cancel_incoming,
        keys::create_key, keys::revoke_key, keys::set_public_key, keys::signing_key, events::events, events::stream,
        alerts::create_alert, alerts::wallet_alerts, alerts::delete_alert,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::get_webhook, webhooks::disable_webhook,
        webhooks::enable_webhook, webhooks::rotate_webhook, webhooks::redeliver_webhook, webhooks::delete_webhook,
        crate::rates::set_rate, crate::rates::import_rates, crate::rates::get_rate, crate::rates::overview,
    ),
    components(schemas(ErrorView, crate::error::ErrorBody)),
    modifiers(&Security, &Reference),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct Security;
impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
