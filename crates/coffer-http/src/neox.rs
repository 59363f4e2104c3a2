//! The NeoX dialect (seed `003_...`, wire facts in dialects.md).
//!
//! - `POST /v2/auth/oauth2/token` with JSON `{"grant_type":"client_credentials","client_id",
//!   "client_secret","scope"}` (a Coffer API key's id and secret; `scope`, when sent, must be
//!   `global-collection`): `{"code":1,"state":2,"message":"Successful","data":{"access_token",
//!   "token_type":"bearer","expires_in":1800,"scope"}}` ([`crate::token`]).
//! - `GET /v2/gc/accounts/balance/query?subMerchantId=&accountType=&currency=` with
//!   `Authorization: Bearer <access_token>`. `subMerchantId` is the caller or one of its
//!   descendants. Rows are the owner's OPERATING (`FUND_ACCOUNT`), CARD (`VCC_ACCOUNT`) and REFUND
//!   (`REFUND_ACCOUNT`) wallets in creation order: `availableBalance` = available, `frozenAmount`
//!   = held, `balance` = posted (= their sum), `accountNo` the wallet id (32 hex digits), `time`
//!   the query time as `yyyy-MM-dd HH:mm:ss` in UTC.
//! - `GET /v2/gc/accounts/query?currency=&accountType=&subMerchantId=` (Get Account Balance,
//!   `dialect-companions.md` section 4): one wallet (default `FUND_ACCOUNT`) of the caller or a
//!   sub-merchant as `{"code":1,"state":2,"message":"Successful","data":{...},"neoResponseId"}`,
//!   amounts as JSON numbers and `time` in ISO 8601 (the same instant and zone as the sibling);
//!   failures `{"code":2,"state":2,"message":<the reason below>,"data":null,"neoResponseId"}`
//!   with the sibling's HTTP statuses (a type and currency with no wallet: RESOURCE_NOT_FOUND).
//! - Chosen: success is `{"code":"1","msg":"Successful","success":true,"data":[...]}` (NeoX's
//!   success code); every error is `{"code","msg","success":false,"data":[]}` with `code`/`msg`:
//!   `2` INVALID_TOKEN (401: missing, wrong, expired or revoked credentials or token), `3`
//!   VALIDATION_ERROR (400), `4` RESOURCE_NOT_FOUND (404: the sub-merchant is not the caller's),
//!   `5` SUB_MERCHANT_NOT_ACTIVATED (403: it, or an owner above it, is not active), `6`
//!   TOO_MANY_REQUESTS (429), `9` SYSTEM_ERROR (500).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_core::money::{format_minor, format_minor_trimmed};
use coffer_core::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{on_behalf_of, verify_key, AuthFailure};
use crate::dialect::{self, plain_seconds, Problem};
use crate::token::{self, TokenFailure, TOKEN_TTL_SECS};
use crate::AppState;

pub const AUDIENCE: &str = "neox";
const SCOPE: &str = "global-collection";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/auth/oauth2/token", post(token_endpoint))
        .route("/v2/gc/accounts/balance/query", get(balance_query))
        .route("/v2/gc/accounts/query", get(account_query))
}

/// A NeoX error: HTTP status, code, message.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "code": self.1, "msg": self.2, "success": false, "data": [] }))).into_response()
    }
}

const INVALID_TOKEN: Refusal = Refusal(StatusCode::UNAUTHORIZED, "2", "INVALID_TOKEN");
const VALIDATION_ERROR: Refusal = Refusal(StatusCode::BAD_REQUEST, "3", "VALIDATION_ERROR");
const NOT_FOUND: Refusal = Refusal(StatusCode::NOT_FOUND, "4", "RESOURCE_NOT_FOUND");
const NOT_ACTIVATED: Refusal = Refusal(StatusCode::FORBIDDEN, "5", "SUB_MERCHANT_NOT_ACTIVATED");
const SYSTEM_ERROR: Refusal = Refusal(StatusCode::INTERNAL_SERVER_ERROR, "9", "SYSTEM_ERROR");
const UNAVAILABLE: Refusal = Refusal(StatusCode::SERVICE_UNAVAILABLE, "9", "SYSTEM_ERROR");

/// A refusal made before the request reached NeoX's handlers (route, method, size, time).
pub(crate) fn fault(status: StatusCode) -> Response {
    let r = match status.as_u16() {
        404 | 405 => NOT_FOUND,
        400..=499 => VALIDATION_ERROR,
        _ => SYSTEM_ERROR,
    };
    Refusal(status, r.1, r.2).into_response()
}

/// The one table from Coffer's reasons to NeoX's errors.
impl From<AuthFailure> for Refusal {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Internal => SYSTEM_ERROR,
            AuthFailure::Unavailable => UNAVAILABLE,
            _ => INVALID_TOKEN,
        }
    }
}

impl From<TokenFailure> for Refusal {
    fn from(f: TokenFailure) -> Self {
        match f {
            TokenFailure::Credential(a) => a.into(),
            TokenFailure::Invalid | TokenFailure::Expired => INVALID_TOKEN,
        }
    }
}

impl From<coffer_store::StoreError> for Refusal {
    fn from(e: coffer_store::StoreError) -> Self {
        Problem::from(e).into()
    }
}

impl From<Problem> for Refusal {
    fn from(p: Problem) -> Self {
        match p {
            Problem::UnknownCurrency(_) => VALIDATION_ERROR,
            Problem::RateLimited(_) => Refusal(StatusCode::TOO_MANY_REQUESTS, "6", "TOO_MANY_REQUESTS"),
            Problem::Internal => SYSTEM_ERROR,
            Problem::Unavailable => UNAVAILABLE,
        }
    }
}

fn answer(r: Result<Value, Refusal>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

async fn token_endpoint(State(s): State<AppState>, body: Result<Json<TokenRequest>, JsonRejection>) -> Response {
    answer(
        async {
            let Json(b) = body.map_err(|_| VALIDATION_ERROR)?;
            if b.grant_type.as_deref() != Some("client_credentials") {
                return Err(VALIDATION_ERROR);
            }
            if b.scope.as_deref().is_some_and(|sc| !sc.is_empty() && sc != SCOPE) {
                return Err(VALIDATION_ERROR);
            }
            let (Some(id), Some(secret)) = (b.client_id, b.client_secret) else { return Err(INVALID_TOKEN) };
            let (key, owner) = verify_key(&s.store, &id, &secret).await?;
            dialect::rate_limit(&s, &key.id)?;
            let (t, _) = token::issue(&s, &key, &owner, AUDIENCE).await?;
            Ok(json!({
                "code": 1,
                "state": 2,
                "message": "Successful",
                "data": { "access_token": t, "token_type": "bearer", "expires_in": TOKEN_TTL_SECS, "scope": SCOPE },
            }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BalanceQuery {
    sub_merchant_id: Option<String>,
    account_type: Option<String>,
    currency: Option<String>,
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<&str, Refusal> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(INVALID_TOKEN)
}

/// `subMerchantId`: the caller or one of its descendants, active (else NOT_FOUND, or
/// SUB_MERCHANT_NOT_ACTIVATED when it or an owner above it is not active).
async fn sub_merchant(s: &AppState, caller: &Owner, sub: &str) -> Result<Owner, Refusal> {
    let target: OwnerId = sub.parse().map_err(|_| NOT_FOUND)?;
    match on_behalf_of(&*s.store, target, caller.id).await? {
        Some(Ok(o)) => Ok(o),
        Some(Err(_)) => Err(NOT_ACTIVATED),
        None => Err(NOT_FOUND),
    }
}

fn account_type(name: &str) -> Option<WalletType> {
    match name {
        "FUND_ACCOUNT" => Some(WalletType::Operating),
        "VCC_ACCOUNT" => Some(WalletType::Card),
        "REFUND_ACCOUNT" => Some(WalletType::Refund),
        _ => None,
    }
}

fn type_name(t: WalletType) -> Option<&'static str> {
    match t {
        WalletType::Operating => Some("FUND_ACCOUNT"),
        WalletType::Card => Some("VCC_ACCOUNT"),
        WalletType::Refund => Some("REFUND_ACCOUNT"),
        _ => None,
    }
}

async fn balance_query(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<BalanceQuery>, QueryRejection>,
) -> Response {
    answer(
        async {
            let bearer = bearer(&headers)?;
            // The token, the query, the sub-merchant and the currency are checked on the
            // directory cache, and the balances read in the same store call as the version that
            // proves those checks exact.
            let st = &s;
            let q = &q;
            let check = || async move {
                let (key, caller) = token::check_cached(st, bearer, AUDIENCE).await?;
                let Query(q) = q.as_ref().map_err(|_| VALIDATION_ERROR)?;
                fn filter(v: &Option<String>) -> Option<&str> {
                    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
                }
                let sub = filter(&q.sub_merchant_id).ok_or(VALIDATION_ERROR)?;
                let wanted_type = match filter(&q.account_type) {
                    Some(t) => Some(account_type(t).ok_or(VALIDATION_ERROR)?),
                    None => None,
                };
                let wanted_currency = match filter(&q.currency) {
                    Some(c) => Some(dialect::currency(st, caller.platform, c).await?),
                    None => None,
                };
                let owner = sub_merchant(st, &caller, sub).await?;
                Ok::<_, Refusal>((key, owner, wanted_type, wanted_currency))
            };
            type Found = (ApiKey, Owner, Option<WalletType>, Option<CurrencyCode>);
            let ((key, _, wanted_type, wanted_currency), all) =
                coffer_app::service::balances::exact_summary(&st.store, check, |f: &Found| f.1.id).await?;
            dialect::rate_limit(&s, &key.id)?;
            let time = plain_seconds(dialect::now());
            let mut rows = Vec::new();
            for c in all {
                if wanted_currency.is_some_and(|w| w != c.currency) {
                    continue;
                }
                for a in &c.wallets {
                    let AccountKind::Wallet(t) = a.kind else { continue };
                    let Some(name) = type_name(t) else { continue };
                    if wanted_type.is_some_and(|w| w != t) {
                        continue;
                    }
                    rows.push((
                        (a.created_at, a.number),
                        json!({
                            "accountNo": a.id.0.simple().to_string(),
                            "accountType": name,
                            "currency": c.currency,
                            "balance": format_minor(c.posted(t), c.exponent),
                            "availableBalance": format_minor(c.available(t), c.exponent),
                            "frozenAmount": format_minor(c.held(t), c.exponent),
                            "time": time,
                        }),
                    ));
                }
            }
            rows.sort_by_key(|(n, _)| *n);
            let data: Vec<Value> = rows.into_iter().map(|(_, v)| v).collect();
            Ok(json!({ "code": "1", "msg": "Successful", "success": true, "data": data }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountQuery {
    currency: Option<String>,
    account_type: Option<String>,
    sub_merchant_id: Option<String>,
    /// Accepted and ignored: Coffer has one wallet per owner, type and currency.
    #[allow(dead_code)]
    account_business_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OneAccount {
    account_no: String,
    account_type: &'static str,
    currency: CurrencyCode,
    balance: Box<RawValue>,
    available_balance: Box<RawValue>,
    frozen_amount: Box<RawValue>,
    time: String,
}

/// Get Account Balance's envelope, for answers and refusals alike.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    code: u8,
    state: u8,
    message: &'static str,
    data: Option<OneAccount>,
    neo_response_id: uuid::Uuid,
}

fn number(v: i64, exponent: u8) -> Result<Box<RawValue>, Refusal> {
    RawValue::from_string(format_minor_trimmed(v, exponent)).map_err(|e| dialect::internal("neox number", e).into())
}

async fn account_query(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Response {
    let found = one_account(&s, &headers, q).await;
    let (status, envelope) = match found {
        Ok(a) => (
            StatusCode::OK,
            Envelope { code: 1, state: 2, message: "Successful", data: Some(a), neo_response_id: uuid::Uuid::new_v4() },
        ),
        Err(Refusal(status, _, reason)) => {
            (status, Envelope { code: 2, state: 2, message: reason, data: None, neo_response_id: uuid::Uuid::new_v4() })
        }
    };
    (status, Json(envelope)).into_response()
}

async fn one_account(
    s: &AppState,
    headers: &HeaderMap,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<OneAccount, Refusal> {
    let bearer = bearer(headers)?;
    s.store.refresh().await?;
    let (key, caller) = token::check_cached(s, bearer, AUDIENCE).await?;
    dialect::rate_limit(s, &key.id)?;
    let Query(q) = q.map_err(|_| VALIDATION_ERROR)?;
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let currency = given(&q.currency).ok_or(VALIDATION_ERROR)?;
    let currency = dialect::currency(s, caller.platform, &currency).await?;
    let t = match given(&q.account_type) {
        Some(t) => account_type(&t).ok_or(VALIDATION_ERROR)?,
        None => WalletType::Operating,
    };
    let owner = match given(&q.sub_merchant_id) {
        None => caller,
        Some(sub) => sub_merchant(s, &caller, &sub).await?,
    };
    let all = dialect::balances(s, owner.id).await?;
    let c = all.iter().find(|c| c.currency == currency).ok_or(NOT_FOUND)?;
    let a = c.wallet(t).ok_or(NOT_FOUND)?;
    let time = chrono::DateTime::from_timestamp_micros(dialect::now().0).unwrap_or_default();
    Ok(OneAccount {
        account_no: a.id.0.simple().to_string(),
        account_type: type_name(t).unwrap_or("FUND_ACCOUNT"),
        currency,
        balance: number(c.posted(t), c.exponent)?,
        available_balance: number(c.available(t), c.exponent)?,
        frozen_amount: number(c.held(t), c.exponent)?,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}
