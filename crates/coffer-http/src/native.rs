//! The native REST API under `/coffer/v1`. Parses requests into core commands, checks that the
//! caller reaches every owner and wallet named, and renders the answers.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_core::money::parse_minor;
use coffer_core::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{generate_key, Caller};
use crate::error::ApiError;
use crate::{render, AppState};

pub const PREFIX: &str = "/coffer/v1";
/// Most transfers in one batch request.
pub const MAX_BATCH: usize = 8192;
/// Largest batch request body.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

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
        .route("/wallets/{id}/holds", get(wallet_holds))
        .route("/wallets/{id}/history", get(wallet_history))
        .route("/transactions", get(list_transactions))
        .route("/deposits", post(deposit))
        .route("/payouts", post(payout))
        .route("/transfers", post(transfer))
        .route("/transfers/batch", post(transfer_batch).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BODY)))
        .route("/transactions", post(post_transaction))
        .route("/fx/conversions", post(fx_conversion))
        .route("/wallets/{id}/limits", post(wallet_limits))
        .route("/fees", post(fee))
        .route("/reversals", post(reversal))
        .route("/transactions/{seq}", get(transaction))
        .route("/holds", post(create_hold))
        .route("/holds/{id}", get(hold))
        .route("/holds/{id}/capture", post(capture_hold))
        .route("/holds/{id}/release", post(release_hold))
        .route("/incoming", post(create_incoming))
        .route("/incoming/{id}/settle", post(settle_incoming))
        .route("/incoming/{id}/cancel", post(cancel_incoming))
        .route("/api-keys", post(create_key))
        .route("/api-keys/{id}/revoke", post(revoke_key))
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

fn path_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what, raw.chars().take(64).collect::<String>()))
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
/// must be the wallet's.
async fn money(s: &AppState, a: &Account, amount: &str, currency: Option<&str>) -> Result<Money, ApiError> {
    if let Some(c) = currency {
        let c: CurrencyCode = c.parse().map_err(|e| ApiError::from(e).param("currency"))?;
        s.store.exponent(a.platform, c).await.map_err(|e| ApiError::from(e).param("currency"))?;
        if c != a.currency {
            return Err(LedgerError::CurrencyMismatch { account: a.id, actual: a.currency, requested: c }.into());
        }
    }
    Ok(Money::new(parse_minor(amount, a.exponent).map_err(|e| ApiError::from(e).param("amount"))?, a.currency))
}

async fn execute(state: &AppState, cmd: Command) -> Result<Response, ApiError> {
    let r = state.store.execute(cmd).await?;
    let body = render::outcome(&*state.store, &r.outcome, r.replayed).await?;
    let status = if r.replayed { StatusCode::OK } else { StatusCode::CREATED };
    let mut resp = (status, Json(body)).into_response();
    if r.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

async fn movement(
    state: &AppState,
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
    execute(state, Command::Move(m)).await
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({ "api_key": render::api_key(&caller.key), "acting_as": render::owner(&caller.acting) }))
}

async fn owner(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let o = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    Ok(Json(render::owner(&o)))
}

async fn children(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let o = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    let kids = s.store.children(o.id).await?;
    Ok(Json(json!({ "data": kids.iter().map(render::owner).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewChild {
    name: String,
    default_currency: Option<String>,
}

async fn create_child(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewChild>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let parent = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    let default_currency = b.default_currency.map(|c| c.parse()).transpose().map_err(ApiError::from)?;
    execute(&s, Command::CreateMerchant { parent: parent.id, name: b.name, default_currency }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStatus {
    status: String,
}

async fn owner_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewStatus>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let o = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    if o.id == caller.acting.id {
        return Err(ApiError::invalid("invalid_argument", "an owner cannot change its own status; its parent can")
            .param("status"));
    }
    let status = b
        .status
        .parse()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("status"))?;
    execute(&s, Command::SetOwnerStatus { owner: o.id, status }).await
}

async fn owner_wallets(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let o = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    let ws: Vec<Value> =
        s.store.accounts_of(o.id).await?.iter().filter(|a| a.is_wallet()).map(render::account).collect();
    Ok(Json(json!({ "data": ws })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceFilter {
    currency: Option<String>,
    #[serde(rename = "type")]
    wallet_type: Option<String>,
    /// RFC 3339: the balances as of this instant, consistent across all wallets.
    at: Option<String>,
}

pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 200;

fn parse_time(field: &'static str, t: &str) -> Result<Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| Timestamp(d.timestamp_micros()))
        .map_err(|_| ApiError::invalid("invalid_argument", format!("{field} must be an RFC 3339 time")).param(field))
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

/// The seq window of a time range: entries made in `[from, to]`.
async fn window(s: &AppState, from: Option<&str>, to: Option<&str>) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let after = match from {
        Some(t) => Some(s.store.seq_at(Timestamp(parse_time("from", t)?.0 - 1)).await?),
        None => None,
    };
    let before = match to {
        Some(t) => Some(s.store.seq_at(parse_time("to", t)?).await? + 1),
        None => None,
    };
    Ok((after, before))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    wallet: Option<String>,
    kind: Option<String>,
}

async fn wallet_history(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &id)?).await?;
    if q.wallet.is_some() || q.kind.is_some() {
        return Err(ApiError::invalid("invalid_argument", "history takes limit, cursor, from and to"));
    }
    let limit = page_limit(q.limit)?;
    let (after, mut before) = window(&s, q.from.as_deref(), q.to.as_deref()).await?;
    if let Some(c) = parse_cursor(q.cursor.as_deref())? {
        before = Some(before.map_or(c, |b| b.min(c)));
    }
    let items = s.store.history(a.id, coffer_store::Page { before, after, limit }).await?;
    let next = (items.len() == limit).then(|| items.last().map(|i| format!("s{}", i.seq))).flatten();
    let f = |v: i64| coffer_core::money::format_minor(v, a.exponent);
    let data: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({
                "transaction": i.seq,
                "kind": i.kind,
                "created_at": render::time(i.created_at),
                "posted": f(i.line.posted),
                "held": f(i.line.held),
                "incoming": f(i.line.incoming),
                "posted_after": f(i.line.posted_after),
                "held_after": f(i.line.held_after),
                "available_after": f(i.line.posted_after - i.line.held_after),
                "incoming_after": f(i.line.incoming_after),
            })
        })
        .collect();
    Ok(Json(json!({ "wallet": a.id, "data": data, "next_cursor": next })))
}

async fn list_transactions(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let kind: Option<EntryKind> = q
        .kind
        .map(|k| k.parse())
        .transpose()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("kind"))?;
    let (after, mut before) = window(&s, q.from.as_deref(), q.to.as_deref()).await?;
    if let Some(c) = parse_cursor(q.cursor.as_deref())? {
        before = Some(before.map_or(c, |b| b.min(c)));
    }
    let wallet = match q.wallet {
        Some(w) => Some(caller.wallet(&*s.store, path_id("account", &w)?).await?),
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
                let mut v = Vec::new();
                for h in s.store.history(a.id, page).await? {
                    if let Some(e) = s.store.entry(h.seq).await? {
                        v.push(e);
                    }
                }
                v
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
    let next = if exhausted && out.len() < limit { None } else { last.map(|s| format!("s{s}")) };
    let mut data = Vec::with_capacity(out.len());
    for e in &out {
        data.push(render::entry(&*s.store, e).await?);
    }
    Ok(Json(json!({ "data": data, "next_cursor": next })))
}

async fn owner_balances(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(f): Query<BalanceFilter>,
) -> Result<Json<Value>, ApiError> {
    let o = caller.owner(&*s.store, path_id("owner", &id)?).await?;
    let currency: Option<CurrencyCode> = f.currency.map(|c| c.parse()).transpose().map_err(ApiError::from)?;
    let wallet_type: Option<WalletType> = f
        .wallet_type
        .map(|t| t.parse())
        .transpose()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("type"))?;
    let mut ws: Vec<Account> = s
        .store
        .accounts_of(o.id)
        .await?
        .into_iter()
        .filter(|a| a.is_wallet())
        .filter(|a| currency.is_none_or(|c| a.currency == c))
        .filter(|a| wallet_type.is_none_or(|t| a.kind == AccountKind::Wallet(t)))
        .collect();
    let Some(at) = f.at else {
        return Ok(Json(json!({ "owner": o.id, "balances": ws.iter().map(render::account).collect::<Vec<_>>() })));
    };
    let t = parse_time("at", &at)?;
    let seq = s.store.seq_at(t).await?;
    ws.retain(|a| a.created_at <= t);
    let past = s.store.balances_at(ws.iter().map(|a| a.id).collect(), seq).await?;
    // Withdrawable is left out: min_balance changes are not journaled, so it cannot be told for
    // a past instant.
    let balances: Vec<Value> = ws
        .iter()
        .zip(past)
        .map(|(a, (posted, held, incoming))| {
            let f = |v: i64| coffer_core::money::format_minor(v, a.exponent);
            json!({
                "id": a.id, "type": a.kind, "currency": a.currency,
                "posted": f(posted), "held": f(held), "available": f(posted - held), "incoming": f(incoming),
            })
        })
        .collect();
    Ok(Json(json!({ "owner": o.id, "at": render::time(t), "as_of_transaction": seq, "balances": balances })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWallet {
    owner: String,
    #[serde(rename = "type")]
    wallet_type: String,
    currency: String,
    min_balance: Option<String>,
    overdraft_limit: Option<String>,
}

async fn open_wallet(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<NewWallet>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let owner = caller.owner(&*s.store, path_id("owner", &b.owner)?).await?;
    let wallet_type = b
        .wallet_type
        .parse()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("type"))?;
    let currency: CurrencyCode = b.currency.parse().map_err(ApiError::from)?;
    let exp = s.store.exponent(owner.platform, currency).await?;
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
    execute(&s, cmd).await
}

async fn wallet(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &id)?).await?;
    Ok(Json(render::account(&a)))
}

async fn wallet_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewStatus>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let a = caller.wallet(&*s.store, path_id("account", &id)?).await?;
    let status = b
        .status
        .parse()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("status"))?;
    execute(&s, Command::SetWalletStatus { account: a.id, status }).await
}

async fn wallet_holds(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &id)?).await?;
    let hs: Vec<Value> = s.store.open_holds(a.id).await?.iter().map(|h| render::hold(h, a.exponent)).collect();
    Ok(Json(json!({ "data": hs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletAmount {
    wallet: String,
    amount: String,
    currency: Option<String>,
    /// Deposits only: EXTERNAL (default) or OPENING.
    source: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

async fn deposit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &b.wallet)?).await?;
    let source = match b.source.as_deref() {
        None => SystemAccount::External,
        Some(x) => {
            x.parse().map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("source"))?
        }
    };
    let op = MoneyOp::Deposit { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?, source };
    movement(&s, &caller, &headers, b.metadata, op).await
}

async fn payout(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &b.wallet)?).await?;
    if b.source.is_some() {
        return Err(ApiError::invalid("invalid_argument", "payouts take no source").param("source"));
    }
    let op = MoneyOp::Payout { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await? };
    movement(&s, &caller, &headers, b.metadata, op).await
}

async fn fee(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &b.wallet)?).await?;
    if b.source.is_some() {
        return Err(ApiError::invalid("invalid_argument", "fees take no source").param("source"));
    }
    let op = MoneyOp::Fee { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await? };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransfer {
    from: String,
    to: String,
    amount: String,
    currency: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

async fn transfer(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransfer>,
) -> Result<Response, ApiError> {
    let from = caller.wallet(&*s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet(&*s.store, path_id("account", &b.to)?).await?;
    let op = MoneyOp::Transfer {
        from: from.id,
        to: to.id,
        amount: money(&s, &from, &b.amount, b.currency.as_deref()).await?,
    };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchTransfer {
    idempotency_key: String,
    from: String,
    to: String,
    amount: String,
    currency: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    transfers: Vec<BatchTransfer>,
}

/// One command of a batch, checked: the caller reaches both wallets and the amount parses.
async fn batch_command(s: &AppState, caller: &Caller, t: BatchTransfer) -> Result<Command, ApiError> {
    let from = caller.wallet(&*s.store, path_id("account", &t.from)?).await?;
    let to = caller.wallet(&*s.store, path_id("account", &t.to)?).await?;
    let amount = money(s, &from, &t.amount, t.currency.as_deref()).await?;
    Ok(Command::Move(Movement {
        platform: caller.acting.platform,
        idempotency_key: t.idempotency_key,
        metadata: t.metadata.unwrap_or_default(),
        op: MoneyOp::Transfer { from: from.id, to: to.id, amount },
    }))
}

fn error_json(e: &ApiError) -> Value {
    json!({ "type": e.kind, "code": e.code, "message": e.message, "param": e.param })
}

/// Many transfers in one request, each accepted or refused on its own (with its own
/// idempotency key). They are submitted together, so they share group commits.
async fn transfer_batch(State(s): State<AppState>, caller: Caller, Body(b): Body<Batch>) -> Result<Response, ApiError> {
    caller.require_write()?;
    let n = b.transfers.len();
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::invalid("invalid_argument", format!("a batch holds 1 to {MAX_BATCH} transfers"))
            .param("transfers"));
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in b.transfers.into_iter().enumerate() {
        let (s, caller) = (s.clone(), caller.clone());
        set.spawn(async move {
            let r = match batch_command(&s, &caller, t).await {
                Ok(cmd) => s.store.execute(cmd).await.map_err(ApiError::from),
                Err(e) => Err(e),
            };
            let v = match r {
                Ok(r) => match render::outcome(&*s.store, &r.outcome, r.replayed).await {
                    Ok(mut v) => {
                        v["index"] = json!(i);
                        v["status"] = json!("accepted");
                        v
                    }
                    Err(e) => json!({ "index": i, "status": "refused", "error": error_json(&ApiError::from(e)) }),
                },
                Err(e) => json!({ "index": i, "status": "refused", "error": error_json(&e) }),
            };
            (i, v)
        });
    }
    let mut results = vec![Value::Null; n];
    while let Some(done) = set.join_next().await {
        let (i, v) = done.map_err(|e| {
            tracing::error!(error = %e, "batch item task failed");
            ApiError::internal()
        })?;
        results[i] = v;
    }
    let accepted = results.iter().filter(|r| r["status"] == "accepted").count();
    Ok((StatusCode::OK, Json(json!({ "accepted": accepted, "refused": n - accepted, "results": results })))
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostingReq {
    /// A wallet id, or SYSTEM_<KIND>:<CUR> (platform callers only).
    account: String,
    /// Signed decimal: negative debits, positive credits.
    amount: String,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransaction {
    postings: Vec<PostingReq>,
    metadata: Option<BTreeMap<String, String>>,
}

async fn post_transaction(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewTransaction>,
) -> Result<Response, ApiError> {
    if b.postings.is_empty() || b.postings.len() > coffer_core::command::limits::MAX_POSTINGS {
        return Err(ApiError::invalid(
            "invalid_argument",
            format!("a transaction holds 1 to {} postings", coffer_core::command::limits::MAX_POSTINGS),
        )
        .param("postings"));
    }
    let mut postings = Vec::with_capacity(b.postings.len());
    for p in b.postings {
        let currency: CurrencyCode = p.currency.parse().map_err(|e| ApiError::from(e).param("currency"))?;
        let (account, exp) = match p.account.strip_prefix("SYSTEM_") {
            Some(rest) => {
                if caller.acting.id != caller.acting.platform {
                    return Err(LedgerError::AccountNotFound(AccountId(uuid::Uuid::nil())).into());
                }
                let (kind, cur) = rest.split_once(':').unwrap_or((rest, ""));
                let kind: SystemAccount = kind
                    .parse()
                    .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("account"))?;
                let cur: CurrencyCode = cur.parse().map_err(|e| ApiError::from(e).param("account"))?;
                (AccountRef::System(kind, cur), s.store.exponent(caller.acting.platform, cur).await?)
            }
            None => {
                let a = caller.wallet(&*s.store, path_id("account", &p.account)?).await?;
                (AccountRef::Id(a.id), a.exponent)
            }
        };
        let minor = parse_minor(&p.amount, exp).map_err(|e| ApiError::from(e).param("amount"))?;
        postings.push(Posting { account, amount: Money::new(minor, currency) });
    }
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Postings { postings }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConversion {
    from: String,
    to: String,
    /// In the source wallet's currency.
    amount: String,
    /// Target units per source unit, an exact decimal.
    rate: String,
    metadata: Option<BTreeMap<String, String>>,
}

async fn fx_conversion(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewConversion>,
) -> Result<Response, ApiError> {
    let from = caller.wallet(&*s.store, path_id("account", &b.from)?).await?;
    let to = caller.wallet(&*s.store, path_id("account", &b.to)?).await?;
    let rate: Rate = b.rate.parse().map_err(|e| ApiError::from(e).param("rate"))?;
    let op = MoneyOp::FxConvert { from: from.id, to: to.id, amount: money(&s, &from, &b.amount, None).await?, rate };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLimits {
    min_balance: Option<String>,
    overdraft_limit: Option<String>,
}

async fn wallet_limits(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewLimits>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let a = caller.wallet(&*s.store, path_id("account", &id)?).await?;
    let parse = |v: Option<String>, name: &'static str| {
        v.map(|v| parse_minor(&v, a.exponent).map_err(|e| ApiError::from(e).param(name))).transpose()
    };
    let min_balance = parse(b.min_balance, "min_balance")?;
    let overdraft_limit = parse(b.overdraft_limit, "overdraft_limit")?;
    if min_balance.is_none() && overdraft_limit.is_none() {
        return Err(ApiError::invalid("invalid_argument", "give min_balance and/or overdraft_limit"));
    }
    execute(&s, Command::SetWalletLimits { account: a.id, overdraft_limit, min_balance }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReversal {
    transaction: u64,
    metadata: Option<BTreeMap<String, String>>,
}

/// Whether the caller may see (or reverse) a journal entry: it is in the caller's platform, and
/// the caller is the platform or reaches one of the wallets it touched.
async fn entry_visible(s: &AppState, caller: &Caller, e: &Entry) -> Result<bool, ApiError> {
    if e.platform != caller.acting.platform {
        return Ok(false);
    }
    if caller.acting.id == caller.acting.platform {
        return Ok(true);
    }
    for l in &e.lines {
        if let Some(a) = s.store.account(l.account).await? {
            if a.is_wallet() && caller.reaches(&*s.store, a.owner).await? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

async fn reversal(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewReversal>,
) -> Result<Response, ApiError> {
    match s.store.entry(b.transaction).await? {
        Some(e) if entry_visible(&s, &caller, &e).await? => {}
        _ => return Err(LedgerError::EntryNotFound(b.transaction).into()),
    }
    movement(&s, &caller, &headers, b.metadata, MoneyOp::Reverse { seq: b.transaction }).await
}

async fn transaction(
    State(s): State<AppState>,
    caller: Caller,
    Path(seq): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let seq: u64 = path_id("transaction", &seq)?;
    match s.store.entry(seq).await? {
        Some(e) if entry_visible(&s, &caller, &e).await? => Ok(Json(render::entry(&*s.store, &e).await?)),
        _ => Err(LedgerError::EntryNotFound(seq).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHold {
    wallet: String,
    amount: String,
    currency: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

async fn create_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewHold>,
) -> Result<Response, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &b.wallet)?).await?;
    let expires_at = b
        .expires_at
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t).map(|d| Timestamp(d.timestamp_micros())).map_err(|_| {
                ApiError::invalid("invalid_argument", "expires_at must be an RFC 3339 time").param("expires_at")
            })
        })
        .transpose()?;
    let op = MoneyOp::HoldCreate {
        account: a.id,
        amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?,
        expires_at,
    };
    movement(&s, &caller, &headers, b.metadata, op).await
}

/// The hold and its wallet, if the caller reaches the wallet.
async fn reachable_hold(s: &AppState, caller: &Caller, raw: &str) -> Result<(Hold, Account), ApiError> {
    let id: HoldId = path_id("hold", raw)?;
    if let Some(h) = s.store.hold(id).await? {
        if let Ok(a) = caller.wallet(&*s.store, h.account).await {
            return Ok((h, a));
        }
    }
    Err(LedgerError::HoldNotFound(id).into())
}

async fn hold(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (h, a) = reachable_hold(&s, &caller, &id).await?;
    Ok(Json(render::hold(&h, a.exponent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Capture {
    /// All of the hold when absent.
    amount: Option<String>,
    /// A wallet id.
    destination: String,
    metadata: Option<BTreeMap<String, String>>,
}

async fn capture_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Capture>,
) -> Result<Response, ApiError> {
    let (h, a) = reachable_hold(&s, &caller, &id).await?;
    let dest = caller.wallet(&*s.store, path_id("account", &b.destination)?).await?;
    let amount = match b.amount {
        Some(x) => Some(money(&s, &a, &x, None).await?),
        None => None,
    };
    let op = MoneyOp::HoldCapture { hold: h.id, amount, destination: AccountRef::Id(dest.id) };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Plain {
    metadata: Option<BTreeMap<String, String>>,
}

async fn release_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let (h, _) = reachable_hold(&s, &caller, &id).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::HoldRelease { hold: h.id }).await
}

async fn create_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    let a = caller.wallet(&*s.store, path_id("account", &b.wallet)?).await?;
    if b.source.is_some() {
        return Err(ApiError::invalid("invalid_argument", "incoming credits take no source").param("source"));
    }
    let op = MoneyOp::IncomingCreate { account: a.id, amount: money(&s, &a, &b.amount, b.currency.as_deref()).await? };
    movement(&s, &caller, &headers, b.metadata, op).await
}

async fn reachable_incoming(s: &AppState, caller: &Caller, raw: &str) -> Result<Incoming, ApiError> {
    let id: IncomingId = path_id("incoming credit", raw)?;
    if let Some(i) = s.store.incoming(id).await? {
        if caller.wallet(&*s.store, i.account).await.is_ok() {
            return Ok(i);
        }
    }
    Err(LedgerError::IncomingNotFound(id).into())
}

async fn settle_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let i = reachable_incoming(&s, &caller, &id).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingSettle { incoming: i.id }).await
}

async fn cancel_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let i = reachable_incoming(&s, &caller, &id).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingCancel { incoming: i.id }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// Defaults to the acting owner.
    owner: Option<String>,
    /// READ_ONLY or READ_WRITE.
    scope: String,
}

async fn create_key(State(s): State<AppState>, caller: Caller, Body(b): Body<NewKey>) -> Result<Response, ApiError> {
    caller.require_write()?;
    let owner = match b.owner {
        Some(o) => caller.owner(&*s.store, path_id("owner", &o)?).await?,
        None => caller.acting.clone(),
    };
    let scope = b
        .scope
        .parse()
        .map_err(|e: UnknownName| ApiError::invalid("invalid_argument", e.to_string()).param("scope"))?;
    let k = generate_key()?;
    let r = s.store.execute(Command::CreateApiKey { owner: owner.id, id: k.id, secret_hash: k.hash, scope }).await?;
    let Outcome::ApiKey(key) = r.outcome else { return Err(ApiError::internal()) };
    let mut body = render::api_key(&key);
    body["key"] = Value::String(k.full);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke_key(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require_write()?;
    match s.store.api_key(&id).await? {
        Some(k) if caller.reaches(&*s.store, k.owner).await? => {}
        _ => return Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into()),
    }
    execute(&s, Command::RevokeApiKey { id }).await
}
