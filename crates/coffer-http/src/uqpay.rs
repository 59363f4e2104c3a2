//! The UQPay dialect (seed `001_...`, wire facts in dialects.md), under the base URL `/api`.
//!
//! - `POST /api/v1/connect/token` with `x-client-id` / `x-api-key` (a Coffer API key's id and
//!   secret): `{"auth_token": <JWT>, "expired_at": <unix seconds>}`, 30 minutes ([`crate::token`]).
//! - Calls send `x-auth-token: Bearer <auth_token>` and optionally `x-on-behalf-of: <owner id>`
//!   of one of the caller's sub-merchants (its descendants; empty means the caller).
//! - `GET /api/v1/balances/{currency}` and `GET /api/v1/balances?page_size=&page_number=`. A
//!   balance is one currency of the owner: `available_balance`/`frozen_balance` are OPERATING
//!   available/held, `prepaid_balance` PREPAID posted, `margin_balance` RESERVE posted. A currency
//!   counts when the owner has an OPERATING, PREPAID or RESERVE wallet in it; `balance_id` is
//!   the OPERATING wallet's id (else the first of those wallets'), `create_time` the earliest
//!   wallet's, `last_trade_time` the latest trade (else `create_time`), `balance_status` the
//!   OPERATING wallet's status, with FROZEN shown as `PENDING` (UQPay has no frozen status).
//! - `GET /api/v1/balances/transactions` (List Balance Transactions, `dialect-companions.md`
//!   section 2): the postings to the owner's OPERATING wallets, and each incoming credit as one
//!   row (PENDING, then COMPLETED or CANCELLED), newest first, filtered on `create_time`.
//! - Errors `{"type","code","message"}`; an expired token says `token expired`, which makes the
//!   official SDK fetch a new token and retry.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_core::money::format_minor;
use coffer_core::summary::CurrencySummary;
use coffer_core::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{on_behalf_of, verify_key, AuthFailure};
use crate::dialect::{self, iso_seconds, Problem};
use crate::token::{self, TokenFailure};
use crate::AppState;

pub const AUDIENCE: &str = "uqpay";
const MAX_PAGE_SIZE: usize = 100;
const MAX_PAGE_NUMBER: usize = 1_000_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/connect/token", post(token_endpoint))
        .route("/api/v1/balances", get(list))
        .route("/api/v1/balances/transactions", get(transactions))
        .route("/api/v1/balances/{currency}", get(one))
}

/// A UQPay error: HTTP status, `type`, `code`, `message`.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "type": self.1, "code": self.2, "message": self.3 }))).into_response()
    }
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::UNAUTHORIZED, "unauthorized_error", code, message.into())
}

fn invalid(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "invalid_request_error", code, message.into())
}

fn internal() -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal_error", "internal error".into())
}

fn unavailable() -> Refusal {
    Refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        "service_unavailable",
        "service unavailable; retry shortly".into(),
    )
}

/// A refusal made before the request reached UQPay's handlers (route, method, size, time).
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    let (kind, code) = match status.as_u16() {
        404 => ("not_found", "not_found"),
        405 => ("invalid_request_error", "method_not_allowed"),
        408 => ("invalid_request_error", "request_timeout"),
        413 => ("invalid_request_error", "body_too_large"),
        415 => ("invalid_request_error", "unsupported_media_type"),
        400..=499 => ("invalid_request_error", "invalid_request"),
        503 => ("api_error", "service_unavailable"),
        _ => ("api_error", "internal_error"),
    };
    Refusal(status, kind, code, message.into()).into_response()
}

/// The one table from Coffer's reasons to UQPay's errors.
impl From<AuthFailure> for Refusal {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing => unauthorized("missing_credentials", "send x-client-id and x-api-key"),
            AuthFailure::Invalid => unauthorized("invalid_credentials", "invalid client id or api key"),
            AuthFailure::Revoked => unauthorized("credential_revoked", "the api key has been revoked"),
            AuthFailure::Suspended(_) => unauthorized("account_inactive", "the account is suspended"),
            AuthFailure::Deleted(_) => unauthorized("account_inactive", "the account is deleted"),
            AuthFailure::Internal => internal(),
            AuthFailure::Unavailable => unavailable(),
        }
    }
}

impl From<TokenFailure> for Refusal {
    fn from(f: TokenFailure) -> Self {
        match f {
            TokenFailure::Invalid => unauthorized("invalid_token", "invalid token"),
            TokenFailure::Expired => unauthorized("token_expired", "token expired"),
            TokenFailure::Credential(a) => a.into(),
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
            Problem::UnknownCurrency(c) => invalid("invalid_currency", format!("currency {c:?} is not supported")),
            Problem::RateLimited(secs) => Refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_request_error",
                "too_many_requests",
                format!("too many requests; retry in {secs} s"),
            ),
            Problem::Internal => internal(),
            Problem::Unavailable => unavailable(),
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn answer(r: Result<Value, Refusal>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn token_endpoint(State(s): State<AppState>, headers: HeaderMap) -> Response {
    answer(issue(&s, &headers).await)
}

async fn issue(s: &AppState, headers: &HeaderMap) -> Result<Value, Refusal> {
    let (Some(id), Some(secret)) = (header(headers, "x-client-id"), header(headers, "x-api-key")) else {
        return Err(AuthFailure::Missing.into());
    };
    let (key, owner) = verify_key(&s.store, id, secret).await?;
    dialect::rate_limit(s, &key.id)?;
    let (t, exp) = token::issue(s, &key, &owner, AUDIENCE).await?;
    Ok(json!({ "auth_token": t, "expired_at": exp }))
}

/// The owner a call acts as: the token's owner, or the sub-merchant named by `x-on-behalf-of`.
/// The key and the owner a request acts as (on behalf of a connected account when it names
/// one), on the directory cache as it is: only inside [`coffer_app::Directory::exact`].
async fn caller_cached(s: &AppState, headers: &HeaderMap) -> Result<(ApiKey, Owner), Refusal> {
    let raw = header(headers, "x-auth-token").ok_or_else(|| unauthorized("missing_token", "send x-auth-token"))?;
    let jwt = raw
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or_else(|| unauthorized("invalid_token", "x-auth-token must be 'Bearer <auth_token>'"))?;
    let (key, owner) = token::check_cached(s, jwt, AUDIENCE).await?;
    let owner = acting(s, headers, owner).await?;
    Ok((key, owner))
}

/// A request's caller and every wallet of the owner it acts as, grouped by currency: the
/// credential checked on the directory cache and the wallets read in the same store call as
/// the version that proves the check exact. Within the key's rate limit.
async fn caller_balances(s: &AppState, headers: &HeaderMap) -> Result<(Owner, Vec<CurrencySummary>), Refusal> {
    let ((key, owner), all) = coffer_app::service::balances::exact_summary(
        &s.store,
        || caller_cached(s, headers),
        |(_, o): &(ApiKey, Owner)| o.id,
    )
    .await?;
    dialect::rate_limit(s, &key.id)?;
    Ok((owner, all))
}

/// `owner`, or the connected account `x-on-behalf-of` names.
async fn acting(s: &AppState, headers: &HeaderMap, owner: Owner) -> Result<Owner, Refusal> {
    let Some(target) = header(headers, "x-on-behalf-of") else { return Ok(owner) };
    let not_found =
        || Refusal(StatusCode::NOT_FOUND, "not_found", "account_not_found", "connected account not found".into());
    let id: OwnerId = target.parse().map_err(|_| not_found())?;
    match on_behalf_of(&*s.store, id, owner.id).await? {
        Some(Ok(o)) => Ok(o),
        Some(Err(o)) => {
            Err(unauthorized("account_inactive", format!("the connected account is {}", o.status).to_lowercase()))
        }
        None => Err(not_found()),
    }
}

/// The UQPay balance of one currency, if the owner has a wallet UQPay shows in it.
fn balance(c: &CurrencySummary) -> Option<Value> {
    use WalletType::*;
    let shown = [Operating, Prepaid, Reserve];
    let wallets: Vec<&Account> = shown.iter().filter_map(|t| c.wallet(*t)).collect();
    let first = c.wallet(Operating).or_else(|| wallets.iter().min_by_key(|a| (a.created_at, a.number)).copied())?;
    let created = wallets.iter().map(|a| a.created_at).min()?;
    let traded = wallets.iter().filter_map(|a| a.last_trade_at).max().unwrap_or(created);
    let status = match c.status() {
        WalletStatus::Frozen => "PENDING".to_string(),
        s => s.to_string(),
    };
    let amount = |v: i64| format_minor(v, c.exponent);
    Some(json!({
        "balance_id": first.id,
        "currency": c.currency,
        "available_balance": amount(c.available(Operating)),
        "prepaid_balance": amount(c.posted(Prepaid)),
        "margin_balance": amount(c.posted(Reserve)),
        "frozen_balance": amount(c.held(Operating)),
        "create_time": iso_seconds(created),
        "last_trade_time": iso_seconds(traded),
        "balance_status": status,
    }))
}

async fn one(State(s): State<AppState>, headers: HeaderMap, Path(currency): Path<String>) -> Response {
    answer(
        async {
            let (owner, all) = caller_balances(&s, &headers).await?;
            let cur = dialect::currency(&s, owner.platform, &currency).await?;
            all.iter().filter(|c| c.currency == cur).find_map(balance).ok_or_else(|| {
                Refusal(StatusCode::NOT_FOUND, "not_found", "balance_not_found", format!("no {cur} balance"))
            })
        }
        .await,
    )
}

#[derive(Deserialize)]
struct Paging {
    page_size: Option<String>,
    page_number: Option<String>,
}

fn number(v: Option<&str>, name: &str, default: usize, max: usize) -> Result<usize, Refusal> {
    let Some(v) = v.filter(|v| !v.is_empty()) else { return Ok(default) };
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid("invalid_parameter", format!("{name} must be an integer from 1 to {max}"))),
    }
}

async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
) -> Response {
    answer(
        async {
            let (_, all) = caller_balances(&s, &headers).await?;
            let Query(q) = q.map_err(|_| invalid("invalid_parameter", "malformed query string"))?;
            let size = number(q.page_size.as_deref(), "page_size", 10, MAX_PAGE_SIZE)?;
            let page = number(q.page_number.as_deref(), "page_number", 1, MAX_PAGE_NUMBER)?;
            let all: Vec<Value> = all.iter().filter_map(balance).collect();
            let items: Vec<Value> = all.iter().skip((page - 1) * size).take(size).cloned().collect();
            Ok(json!({
                "total_pages": all.len().div_ceil(size),
                "total_items": all.len(),
                "data": items,
            }))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct TxnQuery {
    page_size: Option<String>,
    page_number: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    currency: Option<String>,
    transaction_type: Option<String>,
    transaction_status: Option<String>,
}

const TRANSACTION_TYPES: [&str; 9] =
    ["PAYIN", "DEPOSIT", "PAYOUT", "TRANSFER", "CONVERSION", "FEE", "REFUND", "ADJUSTMENT", "INVOICE"];
const TRANSACTION_STATUSES: [&str; 3] = ["COMPLETED", "PENDING", "FAILED"];

/// An enum filter, case-insensitive; `ALL` or empty: none.
fn filter(v: Option<&str>, name: &str, allowed: &[&str]) -> Result<Option<String>, Refusal> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("ALL")) else { return Ok(None) };
    let up = v.to_ascii_uppercase();
    if allowed.contains(&up.as_str()) {
        Ok(Some(up))
    } else {
        Err(invalid("invalid_parameter", format!("{name} must be one of ALL, {}", allowed.join(", "))))
    }
}

/// An ISO 8601 time with an offset; a `+` the client did not encode arrives as a space.
fn time_param(v: Option<&str>, name: &str) -> Result<Option<Timestamp>, Refusal> {
    let Some(v) = v.filter(|v| !v.is_empty()) else { return Ok(None) };
    let fixed = match v.len().checked_sub(6).map(|i| v.split_at(i)) {
        Some((head, tail)) if tail.starts_with(' ') && tail[1..].contains(':') => format!("{head}+{}", &tail[1..]),
        _ => v.to_string(),
    };
    chrono::DateTime::parse_from_rfc3339(&fixed)
        .map(|d| Some(Timestamp(d.timestamp_micros())))
        .map_err(|_| invalid("invalid_parameter", format!("{name} must be an ISO 8601 time with an offset")))
}

/// A UUID derived from the platform and a name: the same row always has the same id.
fn derived(platform: OwnerId, name: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&platform.0, name.as_bytes())
}

/// The one table from a movement to UQPay's `transaction_type` (`dialect-companions.md` section
/// 0; general postings are `ADJUSTMENT`).
fn transaction_type(r: &coffer_app::service::rows::Row) -> &'static str {
    use coffer_app::service::rows::Other;
    match r.kind {
        EntryKind::Deposit | EntryKind::IncomingCreate | EntryKind::IncomingSettle => "DEPOSIT",
        EntryKind::Payout => "PAYOUT",
        EntryKind::Transfer => "TRANSFER",
        EntryKind::Fee => "FEE",
        EntryKind::FxConversion => "CONVERSION",
        EntryKind::Reversal if r.reverses.is_some_and(|(_, k)| k == EntryKind::Payout) => "REFUND",
        EntryKind::HoldCapture if r.amount < 0 => match r.other {
            Other::System(SystemAccount::External) => "PAYOUT",
            Other::System(SystemAccount::Fees) => "FEE",
            _ => "TRANSFER",
        },
        EntryKind::HoldCapture => "TRANSFER",
        _ => "ADJUSTMENT",
    }
}

/// One row as UQPay shows it, with its create time (for the filter and the order).
async fn txn_row(
    s: &AppState,
    owner: &Owner,
    w: &Account,
    r: &coffer_app::service::rows::Row,
) -> Result<(Timestamp, Value), Refusal> {
    use coffer_store::Store;
    let (status, complete, reference) = match r.incoming {
        Some(id) => {
            let i = s.store.incoming(id).await?;
            match i.map(|i| (i.status, i.closed_at)) {
                Some((IncomingStatus::Settled, Some(t))) => ("COMPLETED", Some(t), id.0),
                Some((IncomingStatus::Cancelled, Some(t))) => ("CANCELLED", Some(t), id.0),
                _ => ("PENDING", None, id.0),
            }
        }
        None => {
            // A reversal refers to the transaction it reverses.
            let of = r.reverses.map_or(r.seq, |(seq, _)| seq);
            ("COMPLETED", Some(r.created_at), derived(owner.platform, &format!("transaction:{of}")))
        }
    };
    let v = json!({
        "transaction_id": derived(owner.platform, &format!("row:{}:{}", r.seq, r.index)),
        "account_id": owner.id,
        "account_name": owner.name,
        "balance_id": w.id,
        "transaction_type": transaction_type(r),
        "currency": w.currency,
        "amount": format_minor(r.amount.abs(), w.exponent),
        "credit_debit_type": if r.amount > 0 { "C" } else { "D" },
        "create_time": iso_seconds(r.created_at),
        "complete_time": complete.map(iso_seconds),
        "reference_id": reference,
        "transaction_status": status,
        "transaction_way": "API",
    });
    Ok((r.created_at, v))
}

async fn transactions(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<TxnQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use coffer_app::service::rows;
    answer(
        async {
            s.store.refresh().await?;
            let (key, owner) = caller_cached(&s, &headers).await?;
            dialect::rate_limit(&s, &key.id)?;
            let Query(q) = q.map_err(|_| invalid("invalid_parameter", "malformed query string"))?;
            let size = number(q.page_size.as_deref(), "page_size", 10, MAX_PAGE_SIZE)?;
            let page = number(q.page_number.as_deref(), "page_number", 1, MAX_PAGE_NUMBER)?;
            let (start, end) =
                (time_param(q.start_time.as_deref(), "start_time")?, time_param(q.end_time.as_deref(), "end_time")?);
            if let (Some(a), Some(b)) = (start, end) {
                if a.0 > b.0 {
                    return Err(invalid("invalid_parameter", "start_time must not be after end_time"));
                }
            }
            let currency = match q.currency.as_deref().filter(|c| !c.is_empty()) {
                Some(c) => Some(dialect::currency(&s, owner.platform, c).await?),
                None => None,
            };
            let kind = filter(q.transaction_type.as_deref(), "transaction_type", &TRANSACTION_TYPES)?;
            let status = filter(q.transaction_status.as_deref(), "transaction_status", &TRANSACTION_STATUSES)?;
            let (after, through) =
                dialect::positions(&s, start.unwrap_or(Timestamp(1)), end.unwrap_or(dialect::now())).await?;
            let wallets: Vec<Account> = {
                use coffer_store::Store;
                let all = s.store.accounts_of(owner.id).await?;
                all.into_iter()
                    .filter(|a| a.kind == AccountKind::Wallet(WalletType::Operating))
                    .filter(|a| currency.is_none_or(|c| a.currency == c))
                    .collect()
            };
            let mut rows_out: Vec<(Timestamp, Value)> = Vec::new();
            for w in &wallets {
                let rows = rows::with_incoming(&s.store, w, after, through).await.map_err(|e| match e {
                    coffer_app::service::AppError::Invalid { code: "period_too_large", .. } => {
                        invalid("invalid_parameter", "the window holds more than 100,000 rows: ask for a shorter one")
                    }
                    e => Refusal::from(Problem::from(e)),
                })?;
                // A settled credit is its creation's row, now COMPLETED: not a row of its own.
                for r in rows.iter().filter(|r| r.kind != EntryKind::IncomingSettle) {
                    let (t, v) = txn_row(&s, &owner, w, r).await?;
                    let keep = kind.as_deref().is_none_or(|k| v["transaction_type"] == k)
                        && status.as_deref().is_none_or(|st| v["transaction_status"] == st);
                    if keep {
                        rows_out.push((t, v));
                    }
                }
            }
            rows_out.sort_by(|(ta, a), (tb, b)| {
                (tb.0, b["transaction_id"].as_str()).cmp(&(ta.0, a["transaction_id"].as_str()))
            });
            let total = rows_out.len();
            let data: Vec<Value> = rows_out.into_iter().skip((page - 1) * size).take(size).map(|(_, v)| v).collect();
            Ok(json!({ "total_pages": total.div_ceil(size), "total_items": total, "data": data }))
        }
        .await,
    )
}
