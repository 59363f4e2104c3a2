//! The Onerway dialect (seed `000_...`, wire facts in dialects.md).
//!
//! `POST /account/v1/balance/query` with header `apikey: <key>` (a full Coffer API key,
//! `ck_<id>.<secret>`) and JSON `{"requestId","requestTime","currency"}`;
//! `POST /account/v1/balance/overview` with `{"requestId","requestTime","displayCurrency"}`:
//! every currency's figures and `totalAmount`, the sum of each currency's `totalBalance`
//! converted into `displayCurrency` (default the merchant's default currency) with the
//! platform's stored rates (`crate::rates`: exact, half-even once per currency). A missing or
//! stale rate refuses the overview (`40005`, HTTP 422, naming the pair), never a partial total.
//!
//! - Figures, by the core's summary: `availableBalance` OPERATING available,
//!   `withdrawableBalance` OPERATING withdrawable, `fundOnHold` OPERATING held + OPERATING
//!   incoming + SETTLEMENT posted, `depositBalance` RESERVE posted, `totalBalance` their sum with
//!   the available; `status` the OPERATING wallet's.
//! - `requestTime` (epoch milliseconds) must be within 10 minutes of the server's clock.
//!   `requestId` (1 to 128 characters) is claimed in the store only when the request is answered,
//!   so a refused request may be sent again with its id; a second answered use, on any node, is
//!   `40006`. An id is remembered until its `requestTime` has left the window.
//! - `POST /account/v1/transactions/query` (Transactions Query, `dialect-companions.md` section 1)
//!   `{"requestId","requestTime","currency","beginTime","endTime","businessType"?,"current"?}`:
//!   one record per posting to the caller's OPERATING wallet in the currency with
//!   `beginTime <= time <= endTime` (at most 31 days), oldest first, 10 a page (`current` from 1),
//!   `total` across pages; types by [`business_type`].
//! - Errors `{"code","message","data":null}`: `40001` INVALID_PARAMETER (400), `40002`
//!   INVALID_TIME_RANGE (400), `40003` UNAUTHORIZED_ACCESS (401), `40004` RESOURCE_NOT_FOUND (404:
//!   no wallet in that currency), `40005` REQUEST_FAILED (500, or 429 over the rate limit),
//!   `40006` DUPLICATE_REQUEST (409).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use coffer_app::service::rates::convert_all;
use coffer_core::money::format_minor;
use coffer_core::summary::CurrencySummary;
use coffer_core::*;
use serde_json::{json, Value};

use crate::auth::{verify_key, AuthFailure};
use crate::dialect::{self, Problem};
use crate::AppState;

/// Largest accepted distance between `requestTime` and the server's clock.
const WINDOW_MICROS: i64 = 10 * 60 * 1_000_000;
const MAX_REQUEST_ID: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/v1/balance/query", post(balance_query))
        .route("/account/v1/balance/overview", post(balance_overview))
        .route("/account/v1/transactions/query", post(transactions_query))
}

/// An Onerway error: HTTP status, code, message.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "code": self.1, "message": self.2, "data": null }))).into_response()
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "40001", message.into())
}

fn failed() -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, "40005", "request failed".into())
}

fn unavailable() -> Refusal {
    Refusal(StatusCode::SERVICE_UNAVAILABLE, "40005", "service temporarily unavailable; retry shortly".into())
}

/// A refusal made before the request reached Onerway's handlers (route, method, size, time).
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        401 | 403 => "40003",
        404 | 405 => "40004",
        400..=499 => "40001",
        _ => "40005",
    };
    Refusal(status, code, message.into()).into_response()
}

/// The one table from Coffer's reasons to Onerway's codes.
impl From<AuthFailure> for Refusal {
    fn from(f: AuthFailure) -> Self {
        let unauthorized = |m: &str| Refusal(StatusCode::UNAUTHORIZED, "40003", m.into());
        match f {
            AuthFailure::Missing => unauthorized("missing apikey header"),
            AuthFailure::Invalid => unauthorized("invalid apikey"),
            AuthFailure::Revoked => unauthorized("apikey has been revoked"),
            AuthFailure::Suspended(_) => unauthorized("merchant is suspended"),
            AuthFailure::Deleted(_) => unauthorized("merchant is deleted"),
            AuthFailure::Internal => failed(),
            AuthFailure::Unavailable => unavailable(),
        }
    }
}

impl From<Problem> for Refusal {
    fn from(p: Problem) -> Self {
        match p {
            Problem::UnknownCurrency(c) => invalid(format!("unsupported currency {c:?}")),
            Problem::RateLimited(s) => {
                Refusal(StatusCode::TOO_MANY_REQUESTS, "40005", format!("too many requests; retry in {s} s"))
            }
            Problem::Internal => failed(),
            Problem::Unavailable => unavailable(),
        }
    }
}

fn answer(r: Result<Value, Refusal>) -> Response {
    match r {
        Ok(data) => Json(json!({ "code": "200", "message": "success", "data": data })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The caller's key and owner from `apikey: ck_<id>.<secret>`.
async fn caller(s: &AppState, headers: &HeaderMap) -> Result<(ApiKey, Owner), Refusal> {
    let v = headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::trim).ok_or(AuthFailure::Missing)?;
    let (id, secret) = v.split_once('.').ok_or(AuthFailure::Invalid)?;
    let (key, owner) = verify_key(&s.store, id, secret).await?;
    dialect::rate_limit(s, &key.id)?;
    Ok((key, owner))
}

/// `requestId` and `requestTime`: present, well-formed, in the window. Returns the id and when
/// it may be forgotten.
fn replay_guard(body: &Value) -> Result<(String, Timestamp), Refusal> {
    let id = match body.get("requestId") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_REQUEST_ID && !s.chars().any(char::is_control) => {
            s.clone()
        }
        Some(_) => {
            return Err(invalid(format!(
                "requestId must be a string of 1 to {MAX_REQUEST_ID} characters, none of them a control character"
            )))
        }
        None => return Err(invalid("requestId is required")),
    };
    let ms = match body.get("requestTime") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        None => return Err(invalid("requestTime is required")),
        _ => None,
    }
    .ok_or_else(|| invalid("requestTime must be epoch milliseconds"))?;
    let t = Timestamp(ms.saturating_mul(1000));
    if t.0.saturating_sub(dialect::now().0).unsigned_abs() > WINDOW_MICROS as u64 {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "40002",
            "requestTime must be within 10 minutes of server time".into(),
        ));
    }
    Ok((id, Timestamp(t.0 + WINDOW_MICROS + 1_000_000)))
}

/// Claim the request id for this owner, or refuse it as a duplicate.
async fn claim(s: &AppState, owner: &Owner, id: &str, until: Timestamp) -> Result<(), Refusal> {
    match coffer_app::service::claim_request_id(&s.store, &format!("onerway:{}", owner.id), id, until).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal(StatusCode::CONFLICT, "40006", "duplicate requestId".into())),
        Err(coffer_store::StoreError::Rejected(_)) => Err(invalid("requestId is not one Coffer can keep")),
        Err(e) => Err(Problem::from(e).into()),
    }
}

/// One currency's figures, in Onerway's field order.
fn figures(c: &CurrencySummary) -> Result<Value, Problem> {
    use WalletType::*;
    let amount = |v: i64| format_minor(v, c.exponent);
    let overflow = |e| dialect::internal("onerway figures", e);
    Ok(json!({
        "currency": c.currency,
        "withdrawableBalance": amount(c.withdrawable(Operating)),
        "availableBalance": amount(c.available(Operating)),
        "fundOnHold": amount(c.fund_on_hold().map_err(overflow)?),
        "depositBalance": amount(c.posted(Reserve)),
        "totalBalance": amount(c.onerway_total().map_err(overflow)?),
        "status": c.status().to_string(),
    }))
}

/// An authenticated request with a well-formed body, `requestId` and `requestTime`; its id is
/// claimed with [`Call::finish`] once the answer is ready.
struct Call {
    owner: Owner,
    body: Value,
    request_id: String,
    forget_at: Timestamp,
}

impl Call {
    async fn begin(s: &AppState, headers: &HeaderMap, b: Result<Json<Value>, JsonRejection>) -> Result<Call, Refusal> {
        let (_, owner) = caller(s, headers).await?;
        let body = match b {
            Ok(Json(v @ Value::Object(_))) => v,
            _ => return Err(invalid("the body must be a JSON object")),
        };
        let (request_id, forget_at) = replay_guard(&body)?;
        Ok(Call { owner, body, request_id, forget_at })
    }

    /// The body's `currency`: required, one the platform knows.
    async fn currency(&self, s: &AppState) -> Result<CurrencyCode, Refusal> {
        match self.body.get("currency") {
            Some(Value::String(c)) if !c.is_empty() => Ok(dialect::currency(s, self.owner.platform, c).await?),
            _ => Err(invalid("currency is required")),
        }
    }

    async fn finish(self, s: &AppState, data: Value) -> Result<Value, Refusal> {
        claim(s, &self.owner, &self.request_id, self.forget_at).await?;
        Ok(data)
    }
}

async fn balance_query(
    State(s): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    answer(
        async {
            let call = Call::begin(&s, &headers, b).await?;
            let owner = &call.owner;
            let currency = call.currency(&s).await?;
            let all = dialect::balances(&s, owner.id).await?;
            let c = all
                .iter()
                .find(|c| c.currency == currency)
                .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, "40004", format!("no {currency} account")))?;
            let data = figures(c)?;
            call.finish(&s, data).await
        }
        .await,
    )
}

async fn balance_overview(
    State(s): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    answer(
        async {
            let call = Call::begin(&s, &headers, b).await?;
            let owner = &call.owner;
            let display = match call.body.get("displayCurrency") {
                None | Some(Value::Null) => owner.default_currency,
                Some(Value::String(c)) if c.is_empty() => owner.default_currency,
                Some(Value::String(c)) => dialect::currency(&s, owner.platform, c).await?,
                Some(_) => return Err(invalid("displayCurrency must be a currency code")),
            };
            let all = dialect::balances(&s, owner.id).await?;
            let mut figures_list = Vec::with_capacity(all.len());
            let mut totals = Vec::with_capacity(all.len());
            for c in &all {
                figures_list.push(figures(c)?);
                let t = c.onerway_total().map_err(|e| dialect::internal("onerway total", e))?;
                totals.push((c.currency, c.exponent, t));
            }
            let converted = convert_all(&s.store, s.fx_policy(), owner.platform, &totals, display, dialect::now());
            let (_, total, display_exp) = converted.await.map_err(|e| {
                let e = crate::error::ApiError::from(e);
                if e.status == StatusCode::UNPROCESSABLE_ENTITY {
                    Refusal(StatusCode::UNPROCESSABLE_ENTITY, "40005", e.message)
                } else {
                    failed()
                }
            })?;
            let data = json!({
                "totalAmount": format_minor(total, display_exp),
                "displayCurrency": display,
                "currencyBalances": figures_list,
            });
            call.finish(&s, data).await
        }
        .await,
    )
}

/// Records a page holds (MyBatis-Plus `Page` default).
const PAGE_SIZE: usize = 10;
/// Longest window: 31 days.
const MAX_SPAN_MICROS: i64 = 31 * 86_400 * 1_000_000;
/// Every `businessType` a record can have.
const BUSINESS_TYPES: [&str; 10] = [
    "TOP_UP",
    "WITHDRAWAL",
    "TRANSFER",
    "DEPOSIT",
    "DEPOSIT_RELEASE",
    "FEE",
    "EXCHANGE",
    "REVERSAL",
    "SETTLEMENT",
    "ADJUSTMENT",
];

/// The one table from a movement to Onerway's `businessType` (`dialect-companions.md` section 0;
/// general postings, which it does not list, are `ADJUSTMENT`).
fn business_type(r: &coffer_app::service::rows::Row) -> &'static str {
    use coffer_app::service::rows::Other;
    let transfer = || match r.other {
        Other::Own(WalletType::Reserve) if r.amount < 0 => "DEPOSIT",
        Other::Own(WalletType::Reserve) => "DEPOSIT_RELEASE",
        _ => "TRANSFER",
    };
    match r.kind {
        EntryKind::Deposit => "TOP_UP",
        EntryKind::Payout => "WITHDRAWAL",
        EntryKind::Transfer => transfer(),
        EntryKind::Fee => "FEE",
        EntryKind::FxConversion => "EXCHANGE",
        EntryKind::Reversal => "REVERSAL",
        EntryKind::IncomingSettle => "SETTLEMENT",
        EntryKind::HoldCapture if r.amount < 0 => match r.other {
            Other::System(SystemAccount::External) => "WITHDRAWAL",
            Other::System(SystemAccount::Fees) => "FEE",
            _ => transfer(),
        },
        EntryKind::HoldCapture => transfer(),
        _ => "ADJUSTMENT",
    }
}

/// `beginTime` / `endTime`: RFC 3339 with any offset and 0 to 9 fractional digits.
fn time_field(body: &Value, name: &str) -> Result<Timestamp, Refusal> {
    match body.get(name) {
        Some(Value::String(t)) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| Timestamp(d.timestamp_micros()))
            .map_err(|_| invalid(format!("{name} must be an ISO-8601 time such as 2026-04-01T00:00:00Z"))),
        None | Some(Value::Null) => Err(invalid(format!("{name} is required"))),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

/// `current`: a page number from 1, default 1.
fn page_number(body: &Value) -> Result<usize, Refusal> {
    match body.get("current") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= 1 && *n <= 1_000_000)
            .map(|n| n as usize)
            .ok_or_else(|| invalid("current must be a page number from 1")),
    }
}

fn record(r: &coffer_app::service::rows::Row, currency: CurrencyCode, exponent: u8) -> Value {
    let t = chrono::DateTime::from_timestamp_micros(r.created_at.0).unwrap_or_default();
    json!({
        "currency": currency,
        "acntTxnId": r.seq * 1024 + r.index as u64,
        "serviceId": r.seq,
        "balanceUpdDate": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "amount": format_minor(r.amount, exponent),
        "remark": r.description.clone().unwrap_or_default(),
        "businessType": business_type(r),
    })
}

async fn transactions_query(
    State(s): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    use coffer_app::service::{rows, statements};
    answer(
        async {
            let call = Call::begin(&s, &headers, b).await?;
            let owner = &call.owner;
            let currency = call.currency(&s).await?;
            let (begin, end) = (time_field(&call.body, "beginTime")?, time_field(&call.body, "endTime")?);
            let wanted = match call.body.get("businessType") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) if t.is_empty() => None,
                Some(Value::String(t)) if BUSINESS_TYPES.contains(&t.as_str()) => Some(t.clone()),
                Some(_) => return Err(invalid(format!("businessType must be one of {}", BUSINESS_TYPES.join(", ")))),
            };
            let current = page_number(&call.body)?;
            if end.0 < begin.0 || end.0 - begin.0 > MAX_SPAN_MICROS {
                return Err(Refusal(StatusCode::BAD_REQUEST, "40002", "Invalid query time range".into()));
            }
            let wallet = dialect::wallet_of(&s, owner.id, WalletType::Operating, currency).await?;
            let records: Vec<Value> = match &wallet {
                None => Vec::new(),
                Some(w) => {
                    let (after, through) = dialect::positions(&s, begin, end).await?;
                    let rows = rows::posted(&s.store, w, after, through).await.map_err(|e| match e {
                        coffer_app::service::AppError::Invalid { code: "period_too_large", .. } => invalid(format!(
                            "the window has more than {} records: ask for a shorter one",
                            statements::MAX_TOTALED
                        )),
                        e => Refusal::from(Problem::from(e)),
                    })?;
                    rows.iter()
                        .filter(|r| wanted.as_deref().is_none_or(|t| t == business_type(r)))
                        .map(|r| record(r, currency, w.exponent))
                        .collect()
                }
            };
            let total = records.len();
            let page: Vec<Value> = records.into_iter().skip((current - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
            let data = json!({ "total": total, "size": PAGE_SIZE, "current": current, "records": page });
            call.finish(&s, data).await
        }
        .await,
    )
}
