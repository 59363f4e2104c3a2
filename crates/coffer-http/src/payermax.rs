//! The PayerMax dialect (seed `004_...`, wire facts in dialects.md).
//!
//! `POST /aggregate-pay/api/gateway/currentBalanceQuery`, JSON. Order of checks (the first that
//! fails answers, HTTP 200 `{"code","msg"}`):
//! 1. the body is a JSON object with `appId`, `version`, `keyVersion` "1", `requestTime`, `data`
//!    (`PARAMS_INVALID`);
//! 2. `appId` is an active Coffer API key id with a registered RSA public key, of an active owner
//!    (`MERCHANT_APP_INVALID`; suspended or deleted owner: `MERCHANT_INVALID`);
//! 3. header `sign` = Base64(RSASSA-PKCS1-v1_5(SHA-256(raw body bytes))) under that public key,
//!    verified over the bytes as received (`SIGN_VERIFY_FAILED`);
//! 4. `requestTime` (RFC 3339, any fraction digits, `Z` or an offset) within 2 minutes of the
//!    server's clock (`REQ_TIME_OVER_TIME`);
//! 5. the merchant: `merchantNo` (an owner id, with or without dashes) when given, else the key's
//!    owner; with `spMerchantNo` (the key's owner, acting as service provider) `merchantNo` is
//!    required; either way the merchant is the key's owner or one of its descendants, active
//!    (`MERCHANT_INVALID`);
//! 6. `data.accountType[]` names (`PARAMS_INVALID`) and `data.accountCurrency[]` codes
//!    (`CURRENCY_INVALID`); the per-key rate limit (`TOO_MANY_REQUEST`).
//!
//! Accounts, by the core's summary: `ACQUIRING` ACQUIRING posted, `DISBURSEMENT` OPERATING
//! available, `FREEZE` held over all the currency's wallets, `SETTLE` SETTLEMENT posted, `REVERSE`
//! RESERVE posted; listed in that type order, currencies in the order of their first wallet. An
//! account exists when its wallet does (`FREEZE`: any wallet of the currency); zero balances are
//! left out unless `plainSign` is true. `balance` is an exact JSON number (never through a float).
//! Every answer once the key is known is signed with the platform's own key (header `sign`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use coffer_core::money::format_minor_trimmed;
use coffer_core::summary::CurrencySummary;
use coffer_core::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::{key_standing, on_behalf_of, AuthFailure};
use crate::dialect::{self, rfc3339_millis, Problem};
use crate::AppState;

pub const PATH: &str = "/aggregate-pay/api/gateway/currentBalanceQuery";
/// Largest accepted distance between `requestTime` and the server's clock.
const WINDOW_MICROS: i64 = 2 * 60 * 1_000_000;
/// Most entries in `accountType` or `accountCurrency`.
const MAX_FILTER: usize = 64;

pub const DAY_END_PATH: &str = "/aggregate-pay/api/gateway/dayEndBalanceQuery";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, post(query)).route(DAY_END_PATH, post(day_end))
}

/// Which query a request is.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Current,
    DayEnd,
}

/// A PayerMax business error (always HTTP 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    SignVerifyFailed,
    ReqTimeOverTime,
    ParamsInvalid,
    MerchantInvalid,
    MerchantAppInvalid,
    CurrencyInvalid,
    TooManyRequest,
    SystemError,
    /// The store is away: SYSTEM_ERROR, answered 503 with Retry-After.
    Unavailable,
}

impl Code {
    /// The one table of PayerMax's codes and messages.
    fn wire(self) -> (&'static str, &'static str) {
        match self {
            Code::SignVerifyFailed => ("SIGN_VERIFY_FAILED", "Signature verification failed."),
            Code::ReqTimeOverTime => ("REQ_TIME_OVER_TIME", "requestTime is more than 2 minutes from server time."),
            Code::ParamsInvalid => ("PARAMS_INVALID", "Invalid parameters."),
            Code::MerchantInvalid => ("MERCHANT_INVALID", "Merchant is invalid."),
            Code::MerchantAppInvalid => ("MERCHANT_APP_INVALID", "Merchant app is invalid."),
            Code::CurrencyInvalid => ("CURRENCY_INVALID", "Currency is invalid."),
            Code::TooManyRequest => ("TOO_MANY_REQUEST", "Too many requests."),
            Code::SystemError => ("SYSTEM_ERROR", "System error."),
            Code::Unavailable => ("SYSTEM_ERROR", "System busy, please retry later."),
        }
    }
}

impl From<AuthFailure> for Code {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing | AuthFailure::Invalid | AuthFailure::Revoked => Code::MerchantAppInvalid,
            AuthFailure::Suspended(_) | AuthFailure::Deleted(_) => Code::MerchantInvalid,
            AuthFailure::Internal => Code::SystemError,
            AuthFailure::Unavailable => Code::Unavailable,
        }
    }
}

impl From<Problem> for Code {
    fn from(p: Problem) -> Self {
        match p {
            Problem::UnknownCurrency(_) => Code::CurrencyInvalid,
            Problem::RateLimited(_) => Code::TooManyRequest,
            Problem::Internal => Code::SystemError,
            Problem::Unavailable => Code::Unavailable,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    app_id: Option<String>,
    version: Option<String>,
    key_version: Option<String>,
    request_time: Option<String>,
    merchant_no: Option<String>,
    sp_merchant_no: Option<String>,
    /// Each query's own fields (`Filters`, `crate::payermax_day_end::DayEnd`).
    data: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filters {
    plain_sign: Option<bool>,
    account_type: Option<Vec<String>>,
    account_currency: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Success {
    msg: &'static str,
    code: &'static str,
    data: Data,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    account_real_time_types: Vec<Row>,
    inquiry_time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    balance: Box<RawValue>,
    account_type: &'static str,
    currency: CurrencyCode,
}

#[derive(Serialize)]
struct Failure {
    code: &'static str,
    msg: &'static str,
}

/// PayerMax's account types in the order they are listed.
const TYPES: [&str; 5] = ["ACQUIRING", "DISBURSEMENT", "FREEZE", "SETTLE", "REVERSE"];

/// A PayerMax account of one currency: `None` when it does not exist.
fn account(c: &CurrencySummary, name: &str) -> Result<Option<i64>, MoneyError> {
    use WalletType::*;
    let of = |t: WalletType, v: fn(&CurrencySummary, WalletType) -> i64| c.has(t).then(|| v(c, t));
    Ok(match name {
        "ACQUIRING" => of(Acquiring, CurrencySummary::posted),
        "DISBURSEMENT" => of(Operating, CurrencySummary::available),
        "FREEZE" => Some(c.held_all()?),
        "SETTLE" => of(Settlement, CurrencySummary::posted),
        "REVERSE" => of(Reserve, CurrencySummary::posted),
        _ => None,
    })
}

async fn query(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    respond(&s, &headers, &body, Endpoint::Current).await
}

async fn day_end(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    respond(&s, &headers, &body, Endpoint::DayEnd).await
}

/// The answer's body and, once the key is known, the platform that signs it.
async fn respond(s: &AppState, headers: &HeaderMap, body: &Bytes, ep: Endpoint) -> Response {
    let (platform, result) = answer(s, headers, body, ep).await;
    let busy = matches!(result, Err(Code::Unavailable));
    let text = match result {
        Ok(v) => Ok(v),
        Err(code) => {
            let (code, msg) = code.wire();
            serde_json::to_vec(&Failure { code, msg })
        }
    }
    .unwrap_or_else(|_| br#"{"code":"SYSTEM_ERROR","msg":"System error."}"#.to_vec());
    let status = if busy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut resp = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], text.clone()).into_response();
    if let Some(p) = platform {
        match s.secrets.signing_key(&*s.store, p).await {
            Ok(key) => {
                let signed = crate::cpu::run(move || key.sign(&text)).await.flatten();
                let b64 = signed.map(|sig| base64::engine::general_purpose::STANDARD.encode(sig));
                if let Some(v) = b64.and_then(|b| HeaderValue::from_str(&b).ok()) {
                    resp.headers_mut().insert("sign", v);
                }
            }
            Err(e) => tracing::error!(error = %e, platform = %p, "no response-signing key"),
        }
    }
    resp
}

/// A refusal made before the request reached the handler (route, method, size, time): PayerMax's
/// way, HTTP 200 and `PARAMS_INVALID`, unsigned since no key is known yet; a fault of Coffer's
/// is `SYSTEM_ERROR` with its HTTP status (503 with Retry-After when the store is away).
pub(crate) fn fault(status: StatusCode) -> Response {
    let (code, status) = if status.is_server_error() {
        (if status == StatusCode::SERVICE_UNAVAILABLE { Code::Unavailable } else { Code::SystemError }, status)
    } else {
        (Code::ParamsInvalid, StatusCode::OK)
    };
    let (code, msg) = code.wire();
    (status, Json(Failure { code, msg })).into_response()
}

async fn answer(
    s: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    ep: Endpoint,
) -> (Option<OwnerId>, Result<Vec<u8>, Code>) {
    let Ok(req) = serde_json::from_slice::<Request>(body) else { return (None, Err(Code::ParamsInvalid)) };
    let Some(app_id) = req.app_id.as_deref().filter(|a| !a.is_empty()) else {
        return (None, Err(Code::ParamsInvalid));
    };
    let (key, owner) = match key_standing(&s.store, app_id).await {
        Ok(k) => k,
        Err(f) => return (None, Err(f.into())),
    };
    (Some(key.platform), checked(s, headers, body, req, key, owner, ep).await)
}

async fn checked(
    s: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    req: Request,
    key: ApiKey,
    owner: Owner,
    ep: Endpoint,
) -> Result<Vec<u8>, Code> {
    let public = key.public_key.as_deref().ok_or(Code::MerchantAppInvalid)?;
    let sign = headers.get("sign").and_then(|v| v.to_str().ok()).ok_or(Code::SignVerifyFailed)?;
    let verifier = s.secrets.verifier(public).ok_or(Code::SignVerifyFailed)?;
    let (sign, signed) = (sign.trim().to_string(), body.clone());
    match crate::cpu::run(move || signature_ok(&verifier, &sign, &signed)).await {
        Some(true) => {}
        Some(false) => return Err(Code::SignVerifyFailed),
        None => return Err(Code::SystemError),
    }
    if req.version.as_deref().is_none_or(str::is_empty) || req.key_version.as_deref() != Some("1") {
        return Err(Code::ParamsInvalid);
    }
    let t = req.request_time.as_deref().ok_or(Code::ParamsInvalid)?;
    let t = chrono::DateTime::parse_from_rfc3339(t.trim()).map_err(|_| Code::ParamsInvalid)?;
    let now = dialect::now();
    if (t.timestamp_micros() - now.0).abs() > WINDOW_MICROS {
        return Err(Code::ReqTimeOverTime);
    }
    let merchant = merchant(s, &owner, req.merchant_no.as_deref(), req.sp_merchant_no.as_deref()).await?;
    let data = req.data.ok_or(Code::ParamsInvalid)?;
    let out = match ep {
        Endpoint::Current => {
            let data: Filters = serde_json::from_value(data).map_err(|_| Code::ParamsInvalid)?;
            serde_json::to_vec(&current(s, &key, &merchant, data, now).await?)
        }
        Endpoint::DayEnd => {
            let data = serde_json::from_value(data).map_err(|_| Code::ParamsInvalid)?;
            dialect::rate_limit(s, &key.id)?;
            serde_json::to_vec(&crate::payermax_day_end::answer(s, &merchant, data, now).await?)
        }
    };
    out.map_err(|e| dialect::internal("payermax answer", e).into())
}

/// `currentBalanceQuery`'s answer.
async fn current(s: &AppState, key: &ApiKey, merchant: &Owner, data: Filters, now: Timestamp) -> Result<Success, Code> {
    let types = data.account_type.unwrap_or_default();
    let currencies = data.account_currency.unwrap_or_default();
    if types.len() > MAX_FILTER || currencies.len() > MAX_FILTER {
        return Err(Code::ParamsInvalid);
    }
    if types.iter().any(|t| !TYPES.contains(&t.as_str())) {
        return Err(Code::ParamsInvalid);
    }
    let mut wanted = Vec::new();
    for c in &currencies {
        wanted.push(dialect::currency(s, merchant.platform, c).await?);
    }
    dialect::rate_limit(s, &key.id)?;
    let all = dialect::balances(s, merchant.id).await?;
    let plain = data.plain_sign.unwrap_or(false);
    let mut rows = Vec::new();
    for name in TYPES.iter().filter(|n| types.is_empty() || types.iter().any(|t| t == *n)) {
        for c in all.iter().filter(|c| wanted.is_empty() || wanted.contains(&c.currency)) {
            let v = account(c, name).map_err(|e| dialect::internal("payermax balance", e))?;
            let Some(v) = v.filter(|v| plain || *v != 0) else { continue };
            let balance = RawValue::from_string(format_minor_trimmed(v, c.exponent))
                .map_err(|e| dialect::internal("payermax number", e))?;
            rows.push(Row { balance, account_type: name, currency: c.currency });
        }
    }
    Ok(Success {
        msg: "",
        code: "APPLY_SUCCESS",
        data: Data { account_real_time_types: rows, inquiry_time: rfc3339_millis(now) },
    })
}

fn signature_ok(public: &aws_lc_rs::signature::ParsedPublicKey, sign_b64: &str, body: &[u8]) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sign_b64) else { return false };
    public.verify_sig(body, &sig).is_ok()
}

/// The merchant whose balances are asked for (see the module comment, step 5).
async fn merchant(s: &AppState, owner: &Owner, merchant_no: Option<&str>, sp: Option<&str>) -> Result<Owner, Code> {
    let parse = |v: &str| v.trim().parse::<OwnerId>().map_err(|_| Code::MerchantInvalid);
    let merchant_no = merchant_no.filter(|m| !m.trim().is_empty());
    if let Some(sp) = sp.filter(|m| !m.trim().is_empty()) {
        if parse(sp)? != owner.id || merchant_no.is_none() {
            return Err(Code::MerchantInvalid);
        }
    }
    let Some(m) = merchant_no else { return Ok(owner.clone()) };
    match on_behalf_of(&*s.store, parse(m)?, owner.id).await? {
        Some(Ok(o)) => Ok(o),
        _ => Err(Code::MerchantInvalid),
    }
}
