//! The native REST API under `/coffer/v1`. Parses requests into core commands, checks that the
//! caller reaches every owner and wallet named, and renders the answers. Every handler carries
//! its OpenAPI description (`/openapi.json`).

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use coffer_core::money::{format_minor, parse_minor};
use coffer_core::*;
use coffer_store::Store;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorView};
use crate::render::{self, *};
use crate::AppState;
use coffer_app::directory::Place;

pub const PREFIX: &str = "/coffer/v1";
/// Most transfers in one batch request.
pub const MAX_BATCH: usize = 8192;
/// Largest batch request body.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/owners/{id}", get(owner))
        .route("/owners/{id}/children", get(children).post(create_child))
        .route("/owners/{id}/status", post(owner_status))
        .route("/owners/{id}/wallets", get(owner_wallets))
        .route("/owners/{id}/balances", get(owner_balances))
        .route("/wallets", post(open_wallet))
        .route("/wallets/{id}", get(wallet))
        .route("/wallets/{id}/status", post(wallet_status))
        .route("/wallets/{id}/limits", post(wallet_limits))
        .route("/wallets/{id}/holds", get(wallet_holds))
        .route("/wallets/{id}/history", get(wallet_history))
        .route("/deposits", post(deposit))
        .route("/payouts", post(payout))
        .route("/fees", post(fee))
        .route("/transfers", post(transfer))
        .route("/transfers/batch", post(transfer_batch).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BODY)))
        .route("/transactions", get(list_transactions).post(post_transaction))
        .route("/transactions/{seq}", get(transaction))
        .route("/reversals", post(reversal))
        .route("/fx/conversions", post(fx_conversion))
        .route("/holds", post(create_hold))
        .route("/holds/{id}", get(hold))
        .route("/holds/{id}/capture", post(capture_hold))
        .route("/holds/{id}/release", post(release_hold))
        .route("/incoming", post(create_incoming))
        .route("/incoming/{id}/settle", post(settle_incoming))
        .route("/incoming/{id}/cancel", post(cancel_incoming))
        .route("/api-keys", post(create_key))
        .route("/api-keys/{id}/revoke", post(revoke_key))
        .route("/api-keys/{id}/public-key", put(set_public_key))
        .route("/signing-key", get(signing_key))
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

/// `amount` (a decimal string) in the wallet's currency and exponent; `currency`, when given,
/// must be a known currency and the wallet's.
async fn money(s: &AppState, a: &Place, amount: &str, currency: Option<&str>) -> Result<Money, ApiError> {
    if let Some(c) = currency {
        let c: CurrencyCode = c.parse().map_err(|e| ApiError::from(e).param("currency"))?;
        s.store.exponent(a.platform, c).await.map_err(|e| ApiError::from(e).param("currency"))?;
        if c != a.currency {
            return Err(LedgerError::CurrencyMismatch { account: a.id, actual: a.currency, requested: c }.into());
        }
    }
    Ok(Money::new(parse_minor(amount, a.exponent).map_err(|e| ApiError::from(e).param("amount"))?, a.currency))
}

fn created<T: Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

async fn run(s: &AppState, cmd: Command) -> Result<coffer_store::Receipt, ApiError> {
    Ok(s.store.execute(cmd).await?)
}

fn internal(what: &str) -> ApiError {
    tracing::error!(what, "unexpected outcome");
    ApiError::internal()
}

async fn run_owner(s: &AppState, cmd: Command) -> Result<Response, ApiError> {
    match run(s, cmd).await?.outcome {
        Outcome::Owner(o) => Ok(created(render::owner(&o))),
        _ => Err(internal("owner")),
    }
}

async fn run_wallet(s: &AppState, cmd: Command) -> Result<Response, ApiError> {
    match run(s, cmd).await?.outcome {
        Outcome::Account(a) => Ok(created(render::account(&a))),
        _ => Err(internal("wallet")),
    }
}

/// A movement's answer as the caller sees it: 201 the first time; 200 and
/// `Idempotent-Replayed: true` for a replay.
async fn movement_response(
    s: &AppState,
    caller: &Caller,
    r: coffer_store::Receipt,
) -> Result<(StatusCode, MovementView), ApiError> {
    match &r.outcome {
        Outcome::Entry { entry, hold, incoming } => {
            let reach = caller.entry_reach(&s.store, entry).await?;
            let v = render::movement(&*s.store, entry, hold.as_ref(), incoming.as_ref(), r.replayed, &reach).await?;
            Ok((if r.replayed { StatusCode::OK } else { StatusCode::CREATED }, v))
        }
        _ => Err(internal("movement")),
    }
}

async fn movement(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    metadata: Option<BTreeMap<String, String>>,
    op: MoneyOp,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let m = Movement {
        platform: caller.acting.platform,
        idempotency_key: idempotency_key(headers)?,
        metadata: metadata.unwrap_or_default(),
        op,
    };
    let (status, v) = movement_response(s, caller, run(s, Command::Move(m)).await?).await?;
    let mut resp = (status, Json(v)).into_response();
    if status == StatusCode::OK {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

// ---- identity and owners ----

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub api_key: ApiKeyView,
    pub acting_as: OwnerView,
}

#[utoipa::path(get, path = "/me", context_path = "/coffer/v1", tag = "owners",
    responses((status = 200, body = MeView), ReadErrors))]
async fn me(caller: Caller) -> Json<MeView> {
    Json(MeView { api_key: render::api_key(&caller.key), acting_as: render::owner(&caller.acting) })
}

#[utoipa::path(get, path = "/owners/{id}", context_path = "/coffer/v1", tag = "owners",
    params(("id" = String, Path, description = "owner id")), responses((status = 200, body = OwnerView), ReadErrors))]
async fn owner(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<OwnerView>, ApiError> {
    Ok(Json(render::owner(&caller.owner(&s.store, path_id("owner", &id)?).await?)))
}

#[derive(Serialize, ToSchema)]
pub struct OwnersView {
    pub data: Vec<OwnerView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 200, default 25.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of a list kept in creation order (new items only ever append), after the item whose
/// id is the cursor.
fn page_of<T>(items: Vec<T>, id: impl Fn(&T) -> Uuid, q: &PageQuery) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = page_limit(q.limit)?;
    let start = match &q.cursor {
        None => 0,
        Some(c) => {
            let bad = || ApiError::invalid("invalid_cursor", "cursor is not one this API returned").param("cursor");
            let c: Uuid = c.parse().map_err(|_| bad())?;
            items.iter().position(|x| id(x) == c).ok_or_else(bad)? + 1
        }
    };
    let mut page: Vec<T> = items.into_iter().skip(start).take(limit + 1).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().map(|x| id(x).to_string()) } else { None };
    Ok((page, next))
}

#[utoipa::path(get, path = "/owners/{id}/children", context_path = "/coffer/v1", tag = "owners",
    params(("id" = String, Path, description = "owner id"), PageQuery), responses((status = 200, body = OwnersView), ReadErrors))]
async fn children(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<PageQuery>,
) -> Result<Json<OwnersView>, ApiError> {
    let o = caller.owner(&s.store, path_id("owner", &id)?).await?;
    let (page, next_cursor) = page_of(s.store.children(o.id).await?, |o| o.id.0, &q)?;
    Ok(Json(OwnersView { data: page.iter().map(render::owner).collect(), next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChild {
    pub name: String,
    /// Defaults to the parent's.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub default_currency: Option<String>,
}

#[utoipa::path(post, path = "/owners/{id}/children", context_path = "/coffer/v1", tag = "owners",
    description = "Create a merchant under a platform, or a sub-merchant under a merchant.",
    params(("id" = String, Path, description = "parent owner id")), request_body = NewChild,
    responses((status = 201, body = OwnerView), WriteErrors))]
async fn create_child(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewChild>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let parent = caller.owner(&s.store, path_id("owner", &id)?).await?;
    let default_currency =
        b.default_currency.map(|c| c.parse()).transpose().map_err(|e| ApiError::from(e).param("default_currency"))?;
    run_owner(&s, Command::CreateMerchant { parent: parent.id, name: b.name, default_currency }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStatus {
    #[schema(pattern = "^(ACTIVE|SUSPENDED|DELETED|PENDING|PROCESSING|FROZEN|CLOSED)$")]
    pub status: String,
}

#[utoipa::path(post, path = "/owners/{id}/status", context_path = "/coffer/v1", tag = "owners",
    description = "ACTIVE, SUSPENDED or DELETED (final). An owner's status is changed by an ancestor.",
    params(("id" = String, Path, description = "owner id")), request_body = NewStatus,
    responses((status = 201, body = OwnerView), WriteErrors))]
async fn owner_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewStatus>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let o = caller.owner(&s.store, path_id("owner", &id)?).await?;
    if o.id == caller.acting.id {
        return Err(ApiError::invalid("invalid_argument", "an owner cannot change its own status; its parent can")
            .param("status"));
    }
    let status = b.status.parse().map_err(bad_name("status"))?;
    run_owner(&s, Command::SetOwnerStatus { owner: o.id, status }).await
}

#[derive(Serialize, ToSchema)]
pub struct WalletsView {
    pub data: Vec<WalletView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/owners/{id}/wallets", context_path = "/coffer/v1", tag = "wallets",
    params(("id" = String, Path, description = "owner id"), PageQuery), responses((status = 200, body = WalletsView), ReadErrors))]
async fn owner_wallets(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<PageQuery>,
) -> Result<Json<WalletsView>, ApiError> {
    let o = caller.owner(&s.store, path_id("owner", &id)?).await?;
    let wallets: Vec<Account> = s.store.accounts_of(o.id).await?.into_iter().filter(|a| a.is_wallet()).collect();
    let (page, next_cursor) = page_of(wallets, |a| a.id.0, &q)?;
    Ok(Json(WalletsView { data: page.iter().map(render::account).collect(), next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceFilter {
    /// Only this currency.
    #[param(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Only this wallet type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    #[param(pattern = "^(OPERATING|ACQUIRING|SETTLEMENT|RESERVE|PREPAID|GIFT|CARD|REFUND)$")]
    pub wallet_type: Option<String>,
    /// RFC 3339: the balances as of this instant, all wallets at one journal position.
    pub at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BalanceView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub wallet_type: String,
    pub currency: String,
    pub posted: String,
    pub held: String,
    pub available: String,
    pub incoming: String,
    /// Current balances only: min_balance changes are not journaled, so it is not told for a
    /// past instant.
    pub withdrawable: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BalancesView {
    pub owner: Uuid,
    /// The instant asked for, when `at` was given.
    pub at: Option<String>,
    /// The last transaction included, when `at` was given.
    pub as_of_transaction: Option<u64>,
    pub balances: Vec<BalanceView>,
}

pub(crate) fn parse_time(field: &'static str, t: &str) -> Result<Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| Timestamp(d.timestamp_micros()))
        .map_err(|_| ApiError::invalid("invalid_argument", format!("{field} must be an RFC 3339 time")).param(field))
}

#[utoipa::path(get, path = "/owners/{id}/balances", context_path = "/coffer/v1", tag = "balances",
    params(("id" = String, Path, description = "owner id"), BalanceFilter),
    responses((status = 200, body = BalancesView), ReadErrors))]
async fn owner_balances(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(f): Q<BalanceFilter>,
) -> Result<Json<BalancesView>, ApiError> {
    let o = caller.owner(&s.store, path_id("owner", &id)?).await?;
    let currency: Option<CurrencyCode> =
        f.currency.map(|c| c.parse()).transpose().map_err(|e| ApiError::from(e).param("currency"))?;
    let wallet_type: Option<WalletType> = f.wallet_type.map(|t| t.parse()).transpose().map_err(bad_name("type"))?;
    let mut ws: Vec<Account> = s
        .store
        .accounts_of(o.id)
        .await?
        .into_iter()
        .filter(|a| a.is_wallet())
        .filter(|a| currency.is_none_or(|c| a.currency == c))
        .filter(|a| wallet_type.is_none_or(|t| a.kind == AccountKind::Wallet(t)))
        .collect();
    let view = |a: &Account, (posted, held, incoming): (i64, i64, i64), withdrawable: Option<i64>| {
        let f = |v: i64| format_minor(v, a.exponent);
        BalanceView {
            id: a.id.0,
            wallet_type: a.kind.to_string(),
            currency: a.currency.to_string(),
            posted: f(posted),
            held: f(held),
            available: f(posted - held),
            incoming: f(incoming),
            withdrawable: withdrawable.map(f),
        }
    };
    let Some(at) = f.at else {
        let balances = ws.iter().map(|a| view(a, (a.posted, a.held, a.incoming), Some(a.withdrawable()))).collect();
        return Ok(Json(BalancesView { owner: o.id.0, at: None, as_of_transaction: None, balances }));
    };
    let t = parse_time("at", &at)?;
    let seq = s.store.seq_at(t).await?;
    ws.retain(|a| a.created_at <= t);
    let past = s.store.balances_at(ws.iter().map(|a| a.id).collect(), seq).await?;
    let balances = ws.iter().zip(past).map(|(a, b)| view(a, b, None)).collect();
    Ok(Json(BalancesView { owner: o.id.0, at: Some(render::time(t)), as_of_transaction: Some(seq), balances }))
}

// ---- wallets ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWallet {
    pub owner: String,
    /// OPERATING, ACQUIRING, SETTLEMENT, RESERVE, PREPAID, GIFT, CARD or REFUND.
    #[serde(rename = "type")]
    #[schema(pattern = "^(OPERATING|ACQUIRING|SETTLEMENT|RESERVE|PREPAID|GIFT|CARD|REFUND)$")]
    pub wallet_type: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Decimal; what payouts must leave in place. Default 0.
    pub min_balance: Option<String>,
    /// Decimal; how far available may go below zero. Default 0.
    pub overdraft_limit: Option<String>,
}

#[utoipa::path(post, path = "/wallets", context_path = "/coffer/v1", tag = "wallets", request_body = NewWallet,
    responses((status = 201, body = WalletView), WriteErrors))]
async fn open_wallet(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<NewWallet>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let owner = caller.owner(&s.store, path_id("owner", &b.owner)?).await?;
    let wallet_type = b.wallet_type.parse().map_err(bad_name("type"))?;
    let currency: CurrencyCode = b.currency.parse().map_err(|e| ApiError::from(e).param("currency"))?;
    let exp = s.store.exponent(owner.platform, currency).await.map_err(|e| ApiError::from(e).param("currency"))?;
    let limit = |v: Option<String>, name: &'static str| -> Result<i64, ApiError> {
        v.map(|v| parse_minor(&v, exp).map_err(|e| ApiError::from(e).param(name))).transpose().map(|v| v.unwrap_or(0))
    };
    let cmd = Command::OpenWallet {
        owner: owner.id,
        wallet_type,
        currency,
        min_balance: limit(b.min_balance, "min_balance")?,
        overdraft_limit: limit(b.overdraft_limit, "overdraft_limit")?,
    };
    run_wallet(&s, cmd).await
}

#[utoipa::path(get, path = "/wallets/{id}", context_path = "/coffer/v1", tag = "wallets",
    params(("id" = String, Path, description = "wallet id")), responses((status = 200, body = WalletView), ReadErrors))]
async fn wallet(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    Ok(Json(render::account(&caller.wallet(&s.store, path_id("account", &id)?).await?)))
}

#[utoipa::path(post, path = "/wallets/{id}/status", context_path = "/coffer/v1", tag = "wallets",
    description = "ACTIVE, PENDING, PROCESSING, FROZEN, or CLOSED (final; needs zero balances).",
    params(("id" = String, Path, description = "wallet id")), request_body = NewStatus,
    responses((status = 201, body = WalletView), WriteErrors))]
async fn wallet_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewStatus>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let a = caller.wallet(&s.store, path_id("account", &id)?).await?;
    let status = b.status.parse().map_err(bad_name("status"))?;
    run_wallet(&s, Command::SetWalletStatus { account: a.id, status }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLimits {
    pub min_balance: Option<String>,
    pub overdraft_limit: Option<String>,
}

#[utoipa::path(post, path = "/wallets/{id}/limits", context_path = "/coffer/v1", tag = "wallets",
    params(("id" = String, Path, description = "wallet id")), request_body = NewLimits,
    responses((status = 201, body = WalletView), WriteErrors))]
async fn wallet_limits(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewLimits>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let a = caller.wallet(&s.store, path_id("account", &id)?).await?;
    let parse = |v: Option<String>, name: &'static str| {
        v.map(|v| parse_minor(&v, a.exponent).map_err(|e| ApiError::from(e).param(name))).transpose()
    };
    let min_balance = parse(b.min_balance, "min_balance")?;
    let overdraft_limit = parse(b.overdraft_limit, "overdraft_limit")?;
    if min_balance.is_none() && overdraft_limit.is_none() {
        return Err(ApiError::invalid("invalid_argument", "give min_balance and/or overdraft_limit"));
    }
    run_wallet(&s, Command::SetWalletLimits { account: a.id, overdraft_limit, min_balance }).await
}

#[derive(Serialize, ToSchema)]
pub struct HoldsView {
    pub data: Vec<HoldView>,
}

#[utoipa::path(get, path = "/wallets/{id}/holds", context_path = "/coffer/v1", tag = "holds",
    params(("id" = String, Path, description = "wallet id")), responses((status = 200, body = HoldsView), ReadErrors))]
async fn wallet_holds(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HoldsView>, ApiError> {
    let a = caller.wallet(&s.store, path_id("account", &id)?).await?;
    Ok(Json(HoldsView { data: s.store.open_holds(a.id).await?.iter().map(|h| render::hold(h, a.exponent)).collect() }))
}

/// Cursors are opaque to clients; inside, the seq the next page starts below.
fn parse_cursor(c: Option<&str>) -> Result<Option<u64>, ApiError> {
    c.map(|c| {
        c.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not one this API returned").param("cursor"))
    })
    .transpose()
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::invalid("invalid_argument", format!("limit must be 1 to {MAX_PAGE}")).param("limit")),
    }
}

/// The seq window `(after, before)` of entries made in `[from, to]`, narrowed by a cursor.
async fn window(s: &AppState, q: &ListQuery) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let after = match &q.from {
        Some(t) => Some(s.store.seq_at(Timestamp(parse_time("from", t)?.0 - 1)).await?),
        None => None,
    };
    let mut before = match &q.to {
        Some(t) => Some(s.store.seq_at(parse_time("to", t)?).await? + 1),
        None => None,
    };
    if let Some(c) = parse_cursor(q.cursor.as_deref())? {
        before = Some(before.map_or(c, |b| b.min(c)));
    }
    Ok((after, before))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200, default 25.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// RFC 3339: entries made at or after.
    pub from: Option<String>,
    /// RFC 3339: entries made at or before.
    pub to: Option<String>,
    /// Transactions only: those touching this wallet (required unless the caller is a platform).
    pub wallet: Option<String>,
    /// Transactions only: of this kind.
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryItemView {
    pub transaction: u64,
    pub kind: String,
    pub created_at: String,
    pub posted: String,
    pub held: String,
    pub incoming: String,
    pub posted_after: String,
    pub held_after: String,
    pub available_after: String,
    pub incoming_after: String,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    pub wallet: Uuid,
    pub data: Vec<HistoryItemView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/wallets/{id}/history", context_path = "/coffer/v1", tag = "balances",
    description = "The wallet's journal lines with running balances, newest first.",
    params(("id" = String, Path, description = "wallet id"), ListQuery),
    responses((status = 200, body = HistoryView), ReadErrors))]
async fn wallet_history(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<ListQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let a = caller.wallet(&s.store, path_id("account", &id)?).await?;
    if q.wallet.is_some() || q.kind.is_some() {
        return Err(ApiError::invalid("invalid_argument", "history takes limit, cursor, from and to"));
    }
    let limit = page_limit(q.limit)?;
    let (after, before) = window(&s, &q).await?;
    let items = s.store.history(a.id, coffer_store::Page { before, after, limit }).await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|i| format!("s{}", i.seq))).flatten();
    let f = |v: i64| format_minor(v, a.exponent);
    let data = items
        .iter()
        .map(|i| HistoryItemView {
            transaction: i.seq,
            kind: i.kind.to_string(),
            created_at: render::time(i.created_at),
            posted: f(i.line.posted),
            held: f(i.line.held),
            incoming: f(i.line.incoming),
            posted_after: f(i.line.posted_after),
            held_after: f(i.line.held_after),
            available_after: f(i.line.posted_after - i.line.held_after),
            incoming_after: f(i.line.incoming_after),
        })
        .collect();
    Ok(Json(HistoryView { wallet: a.id.0, data, next_cursor }))
}

// ---- movements ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletAmount {
    pub wallet: String,
    /// Decimal string in the wallet's currency.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    /// Optional; must be the wallet's currency.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Deposits only: EXTERNAL (default) or OPENING.
    pub source: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/deposits", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn deposit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    let source = match b.source.as_deref() {
        None => SystemAccount::External,
        Some(x) => x.parse().map_err(bad_name("source"))?,
    };
    let op = MoneyOp::Deposit { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?, source };
    movement(&s, &caller, &headers, b.metadata, op).await
}

/// `wallet` and `amount` of a request that takes no `source`.
async fn plain_amount(s: &AppState, caller: &Caller, b: &WalletAmount, what: &str) -> Result<(Place, Money), ApiError> {
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    if b.source.is_some() {
        return Err(ApiError::invalid("invalid_argument", format!("{what} take no source")).param("source"));
    }
    let m = money(s, &a, &b.amount, b.currency.as_deref()).await?;
    Ok((a, m))
}

#[utoipa::path(post, path = "/payouts", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn payout(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let (a, amount) = plain_amount(&s, &caller, &b, "payouts").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Payout { account: a.id, amount }).await
}

#[utoipa::path(post, path = "/fees", context_path = "/coffer/v1", tag = "movements", request_body = WalletAmount,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn fee(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let (a, amount) = plain_amount(&s, &caller, &b, "fees").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Fee { account: a.id, amount }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub from: String,
    pub to: String,
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/transfers", context_path = "/coffer/v1", tag = "movements", request_body = NewTransfer,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn transfer(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransfer>,
) -> Result<Response, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &b.to)?).await?;
    let amount = money(&s, &from, &b.amount, b.currency.as_deref()).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Transfer { from: from.id, to: to.id, amount }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchTransfer {
    pub idempotency_key: String,
    pub from: String,
    pub to: String,
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 8192 transfers.
    pub transfers: Vec<BatchTransfer>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchItemView {
    pub index: usize,
    /// accepted or refused.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<MovementView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub accepted: usize,
    pub refused: usize,
    /// In request order.
    pub results: Vec<BatchItemView>,
}

/// One command of a batch, checked: the caller reaches both wallets and the amount parses.
async fn batch_command(s: &AppState, caller: &Caller, t: BatchTransfer) -> Result<Command, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &t.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &t.to)?).await?;
    let amount = money(s, &from, &t.amount, t.currency.as_deref()).await?;
    Ok(Command::Move(Movement {
        platform: caller.acting.platform,
        idempotency_key: t.idempotency_key,
        metadata: t.metadata.unwrap_or_default(),
        op: MoneyOp::Transfer { from: from.id, to: to.id, amount },
    }))
}

async fn batch_item(s: AppState, caller: Caller, t: BatchTransfer) -> Result<MovementView, ApiError> {
    let cmd = batch_command(&s, &caller, t).await?;
    Ok(movement_response(&s, &caller, run(&s, cmd).await?).await?.1)
}

#[utoipa::path(post, path = "/transfers/batch", context_path = "/coffer/v1", tag = "movements", request_body = Batch,
    description = "Up to 8192 transfers, each with its own idempotency key, each accepted or refused on its own.",
    responses((status = 200, body = BatchView), WriteErrors))]
async fn transfer_batch(State(s): State<AppState>, caller: Caller, Body(b): Body<Batch>) -> Result<Response, ApiError> {
    caller.require_write()?;
    let n = b.transfers.len();
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::invalid("invalid_argument", format!("a batch holds 1 to {MAX_BATCH} transfers"))
            .param("transfers"));
    }
    // Submitted together, so they share group commits.
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in b.transfers.into_iter().enumerate() {
        let (s, caller) = (s.clone(), caller.clone());
        set.spawn(async move { (i, batch_item(s, caller, t).await) });
    }
    let mut results: Vec<Option<BatchItemView>> = (0..n).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (i, r) = done.map_err(|e| {
            tracing::error!(error = %e, "batch item task failed");
            ApiError::internal()
        })?;
        results[i] = Some(match r {
            Ok(v) => BatchItemView { index: i, status: "accepted".into(), result: Some(v), error: None },
            Err(e) => BatchItemView { index: i, status: "refused".into(), result: None, error: Some(e.body()) },
        });
    }
    let results: Vec<BatchItemView> = results.into_iter().flatten().collect();
    let accepted = results.iter().filter(|r| r.result.is_some()).count();
    Ok(Json(BatchView { accepted, refused: n - accepted, results }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingReq {
    /// A wallet id, or SYSTEM_<EXTERNAL|FEES|FX_CLEARING|OPENING>:<CUR> (platform keys only).
    pub account: String,
    /// Signed decimal: negative debits, positive credits.
    #[schema(pattern = "^-?[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransaction {
    /// 1 to 64 postings summing to zero per currency.
    pub postings: Vec<PostingReq>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/transactions", context_path = "/coffer/v1", tag = "movements", request_body = NewTransaction,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn post_transaction(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransaction>,
) -> Result<Response, ApiError> {
    let max = coffer_core::command::limits::MAX_POSTINGS;
    if b.postings.is_empty() || b.postings.len() > max {
        return Err(
            ApiError::invalid("invalid_argument", format!("a transaction holds 1 to {max} postings")).param("postings")
        );
    }
    let mut postings = Vec::with_capacity(b.postings.len());
    for p in b.postings {
        let currency: CurrencyCode = p.currency.parse().map_err(|e| ApiError::from(e).param("currency"))?;
        let (account, exp) = match p.account.strip_prefix("SYSTEM_") {
            Some(rest) => {
                if caller.acting.id != caller.acting.platform {
                    return Err(ApiError::not_found("account", &p.account));
                }
                let (kind, cur) = rest.split_once(':').unwrap_or((rest, ""));
                let kind: SystemAccount = kind.parse().map_err(bad_name("account"))?;
                let cur: CurrencyCode = cur.parse().map_err(|e| ApiError::from(e).param("account"))?;
                let exp = s
                    .store
                    .exponent(caller.acting.platform, cur)
                    .await
                    .map_err(|e| ApiError::from(e).param("account"))?;
                (AccountRef::System(kind, cur), exp)
            }
            None => {
                let a = caller.wallet_ref(&s.store, path_id("account", &p.account)?).await?;
                (AccountRef::Id(a.id), a.exponent)
            }
        };
        let minor = parse_minor(&p.amount, exp).map_err(|e| ApiError::from(e).param("amount"))?;
        postings.push(Posting { account, amount: Money::new(minor, currency) });
    }
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Postings { postings }).await
}

#[derive(Serialize, ToSchema)]
pub struct TransactionsView {
    pub data: Vec<TransactionView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/transactions", context_path = "/coffer/v1", tag = "movements",
    description = "Journal entries, newest first: of one wallet, or (platform keys) of the whole platform.",
    params(ListQuery), responses((status = 200, body = TransactionsView), ReadErrors))]
async fn list_transactions(
    State(s): State<AppState>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<TransactionsView>, ApiError> {
    let limit = page_limit(q.limit)?;
    let kind: Option<EntryKind> = q.kind.as_ref().map(|k| k.parse()).transpose().map_err(bad_name("kind"))?;
    let (after, mut before) = window(&s, &q).await?;
    let wallet = match &q.wallet {
        Some(w) => Some(caller.wallet_ref(&s.store, path_id("account", w)?).await?),
        None if caller.acting.id == caller.acting.platform => None,
        None => {
            return Err(ApiError::invalid(
                "invalid_argument",
                "give wallet=<id>; only a platform lists all its transactions",
            )
            .param("wallet"))
        }
    };
    // Fetch pages until `limit` entries of the kind are found or the window is exhausted; the
    // cursor is the last seq examined, so filtered pages never skip or repeat.
    let mut out = Vec::new();
    let mut last = None;
    let mut exhausted = false;
    for _ in 0..20 {
        let page = coffer_store::Page { before, after, limit };
        let batch: Vec<Entry> = match &wallet {
            Some(a) => {
                let seqs = s.store.history(a.id, page).await?.iter().map(|h| h.seq).collect();
                s.store.entries_at(seqs).await?
            }
            None => s.store.entries(caller.acting.platform, page).await?,
        };
        let n = batch.len();
        for e in batch {
            last = Some(e.seq);
            before = Some(e.seq);
            if kind.is_none_or(|k| e.kind == k) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        if n < limit {
            exhausted = true;
            break;
        }
        if out.len() == limit {
            break;
        }
    }
    let next_cursor = if exhausted && out.len() < limit { None } else { last.map(|s| format!("s{s}")) };
    let mut data = Vec::with_capacity(out.len());
    for e in &out {
        let reach = caller.entry_reach(&s.store, e).await?;
        data.push(render::entry(&*s.store, e, &reach).await?);
    }
    Ok(Json(TransactionsView { data, next_cursor }))
}

#[utoipa::path(get, path = "/transactions/{seq}", context_path = "/coffer/v1", tag = "movements",
    params(("seq" = String, Path, description = "transaction sequence number")),
    responses((status = 200, body = TransactionView), ReadErrors))]
async fn transaction(
    State(s): State<AppState>,
    caller: Caller,
    Path(seq): Path<String>,
) -> Result<Json<TransactionView>, ApiError> {
    let seq: u64 = path_id("transaction", &seq)?;
    let (e, reach) = caller.entry(&s.store, seq).await?;
    Ok(Json(render::entry(&*s.store, &e, &reach).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReversal {
    /// The sequence number of the transaction to reverse.
    pub transaction: u64,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/reversals", context_path = "/coffer/v1", tag = "movements", request_body = NewReversal,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn reversal(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewReversal>,
) -> Result<Response, ApiError> {
    caller.entry_to_change(&s.store, b.transaction).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Reverse { seq: b.transaction }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversion {
    pub from: String,
    pub to: String,
    /// In the source wallet's currency.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    /// Target units per source unit, an exact decimal. Omitted: the platform's stored rate now
    /// (direct, inverse or through the pivot; a derived rate is rounded half to even to 10
    /// decimals), recorded on the transaction with its source. A missing or stale stored rate
    /// refuses the conversion (422 `rate_missing` / `rate_stale`).
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub rate: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/fx/conversions", context_path = "/coffer/v1", tag = "movements", request_body = NewConversion,
    description = "Between two wallets of one owner; the target amount is rounded half to even at its minor unit.",
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn fx_conversion(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewConversion>,
) -> Result<Response, ApiError> {
    let from = caller.wallet_ref(&s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet_ref(&s.store, path_id("account", &b.to)?).await?;
    let amount = money(&s, &from, &b.amount, None).await?;
    let (rate, rate_source) = match b.rate {
        Some(r) => (r.parse().map_err(|e| ApiError::from(e).param("rate"))?, None),
        None => {
            let (rate, source) = crate::rates::stored_rate(&s, from.platform, from.currency, to.currency).await?;
            (rate, Some(source))
        }
    };
    let op = MoneyOp::FxConvert { from: from.id, to: to.id, amount, rate, rate_source };
    movement(&s, &caller, &headers, b.metadata, op).await
}

// ---- holds and incoming credits ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub wallet: String,
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// RFC 3339, within a year; the hold expires by itself then.
    pub expires_at: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/holds", context_path = "/coffer/v1", tag = "holds", request_body = NewHold,
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn create_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewHold>,
) -> Result<Response, ApiError> {
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    let expires_at = b.expires_at.as_deref().map(|t| parse_time("expires_at", t)).transpose()?;
    let op = MoneyOp::HoldCreate {
        account: a.id,
        amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?,
        expires_at,
    };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[utoipa::path(get, path = "/holds/{id}", context_path = "/coffer/v1", tag = "holds",
    params(("id" = String, Path, description = "hold id")), responses((status = 200, body = HoldView), ReadErrors))]
async fn hold(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<HoldView>, ApiError> {
    let (h, a) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    Ok(Json(render::hold(&h, a.exponent)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// All of the hold when absent; the rest is released.
    #[schema(pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub amount: Option<String>,
    /// A wallet id.
    pub destination: String,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/holds/{id}/capture", context_path = "/coffer/v1", tag = "holds", request_body = Capture,
    params(("id" = String, Path, description = "hold id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn capture_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Capture>,
) -> Result<Response, ApiError> {
    let (h, a) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    let dest = caller.wallet_ref(&s.store, path_id("account", &b.destination)?).await?;
    let amount = match b.amount {
        Some(x) => Some(money(&s, &Place::from(&a), &x, None).await?),
        None => None,
    };
    let op = MoneyOp::HoldCapture { hold: h.id, amount, destination: AccountRef::Id(dest.id) };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plain {
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/holds/{id}/release", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "hold id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn release_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let (h, _) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::HoldRelease { hold: h.id }).await
}

#[utoipa::path(post, path = "/incoming", context_path = "/coffer/v1", tag = "holds", request_body = WalletAmount,
    description = "A pending credit: counted in `incoming`, not available until settled.",
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn create_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let (a, amount) = plain_amount(&s, &caller, &b, "incoming credits").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingCreate { account: a.id, amount }).await
}

#[utoipa::path(post, path = "/incoming/{id}/settle", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "incoming credit id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn settle_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let i = caller.incoming(&s.store, path_id("incoming credit", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingSettle { incoming: i.id }).await
}

#[utoipa::path(post, path = "/incoming/{id}/cancel", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "incoming credit id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
async fn cancel_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let i = caller.incoming(&s.store, path_id("incoming credit", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingCancel { incoming: i.id }).await
}

// ---- credentials ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Defaults to the acting owner.
    pub owner: Option<String>,
    /// READ_ONLY or READ_WRITE.
    #[schema(pattern = "^(READ_ONLY|READ_WRITE)$")]
    pub scope: String,
}

#[utoipa::path(post, path = "/api-keys", context_path = "/coffer/v1", tag = "credentials", request_body = NewKey,
    description = "The answer holds the key (`key`); it is never shown again.",
    responses((status = 201, body = ApiKeyView), WriteErrors))]
async fn create_key(State(s): State<AppState>, caller: Caller, Body(b): Body<NewKey>) -> Result<Response, ApiError> {
    caller.require_write()?;
    let owner = match b.owner {
        Some(o) => caller.owner(&s.store, path_id("owner", &o)?).await?,
        None => caller.acting.clone(),
    };
    let scope = b.scope.parse().map_err(bad_name("scope"))?;
    let k = crate::auth::new_key()?;
    match run(&s, Command::CreateApiKey { owner: owner.id, id: k.id, secret_hash: k.hash, scope }).await?.outcome {
        Outcome::ApiKey(key) => Ok(created(ApiKeyView { key: Some(k.full), ..render::api_key(&key) })),
        _ => Err(internal("api key")),
    }
}

#[utoipa::path(post, path = "/api-keys/{id}/revoke", context_path = "/coffer/v1", tag = "credentials",
    params(("id" = String, Path, description = "API key id")), responses((status = 201, body = ApiKeyView), WriteErrors))]
async fn revoke_key(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require_write()?;
    match s.store.api_key(&id).await? {
        Some(k) if caller.reaches(&s.store, k.owner).await? => {}
        _ => return Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into()),
    }
    match run(&s, Command::RevokeApiKey { id }).await?.outcome {
        Outcome::ApiKey(key) => Ok(created(render::api_key(&key))),
        _ => Err(internal("api key")),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyBody {
    /// The RSA public key (at least 2048 bits) the credential signs PayerMax requests with: PEM
    /// (`-----BEGIN PUBLIC KEY-----`) or base64 of the SubjectPublicKeyInfo DER. `null` removes it.
    pub public_key: Option<String>,
}

#[utoipa::path(put, path = "/api-keys/{id}/public-key", context_path = "/coffer/v1", tag = "credentials",
    request_body = PublicKeyBody, params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), WriteErrors))]
async fn set_public_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<PublicKeyBody>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    match s.store.api_key(&id).await? {
        Some(k) if caller.reaches(&s.store, k.owner).await? => {}
        _ => return Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into()),
    }
    let public_key = match b.public_key {
        Some(text) => Some(
            crate::secrets::parse_public_key(&text)
                .map_err(|m| ApiError::invalid("invalid_public_key", m).param("public_key"))?,
        ),
        None => None,
    };
    match run(&s, Command::SetKeyPublicKey { id, public_key }).await?.outcome {
        Outcome::ApiKey(key) => Ok(Json(render::api_key(&key)).into_response()),
        _ => Err(internal("api key")),
    }
}

/// The public half of the caller's platform's response-signing key (PayerMax `sign` header).
#[derive(Serialize, ToSchema)]
pub struct SigningKeyView {
    pub platform: Uuid,
    /// PEM, `-----BEGIN PUBLIC KEY-----`.
    pub public_key_pem: String,
    /// Base64 of the SubjectPublicKeyInfo DER (the form PayerMax hands out).
    pub public_key: String,
}

#[utoipa::path(get, path = "/signing-key", context_path = "/coffer/v1", tag = "credentials",
    responses((status = 200, body = SigningKeyView), ReadErrors))]
async fn signing_key(State(s): State<AppState>, caller: Caller) -> Result<Json<SigningKeyView>, ApiError> {
    let key = s.secrets.signing_key(&*s.store, caller.key.platform).await?;
    Ok(Json(SigningKeyView {
        platform: caller.key.platform.0,
        public_key_pem: crate::secrets::public_pem(&key),
        public_key: crate::secrets::signer_public_base64(&key),
    }))
}

/// The OpenAPI document of this API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Coffer native API", description = "A multi-currency balance ledger. Amounts are decimal strings; every request needs `Authorization: Bearer <key>`; money movements need an `Idempotency-Key` header."),
    paths(
        me, owner, children, create_child, owner_status, owner_wallets, owner_balances,
        open_wallet, wallet, wallet_status, wallet_limits, wallet_holds, wallet_history,
        deposit, payout, fee, transfer, transfer_batch, post_transaction, list_transactions, transaction, reversal,
        fx_conversion, create_hold, hold, capture_hold, release_hold, create_incoming, settle_incoming, cancel_incoming,
        create_key, revoke_key, set_public_key, signing_key,
        crate::rates::set_rate, crate::rates::import_rates, crate::rates::get_rate, crate::rates::overview,
    ),
    components(schemas(ErrorView, crate::error::ErrorBody)),
    modifiers(&Security),
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
