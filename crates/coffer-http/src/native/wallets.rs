//! Wallets: opening, status, limits, holds and history (with the journal paging the transaction list shares).

use super::*;

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
pub(super) async fn open_wallet(
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
pub(super) async fn wallet(
    State(s): State<AppState>,
    creds: crate::auth::Creds,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let id = path_id("account", &id)?;
    // Authenticated on the cache and checked in the same store call as the wallet.
    let st = &s;
    let (caller, a) = s
        .store
        .exact(
            || creds.resolve(st, false),
            |c: Caller| async move {
                let (found, v) = st.store.account_versioned(id).await?;
                let a = c.wallet_found(&st.store, id, found).await?;
                Ok::<_, ApiError>((c, a, v))
            },
        )
        .await?;
    crate::auth::within_limit(&s, &caller)?;
    Ok(Json(render::account(&a)))
}

#[utoipa::path(post, path = "/wallets/{id}/status", context_path = "/coffer/v1", tag = "wallets",
    description = "ACTIVE, PENDING, PROCESSING, FROZEN, or CLOSED (final; needs zero balances).",
    params(("id" = String, Path, description = "wallet id")), request_body = NewStatus,
    responses((status = 201, body = WalletView), WriteErrors))]
pub(super) async fn wallet_status(
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
pub(super) async fn wallet_limits(
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
pub(super) async fn wallet_holds(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HoldsView>, ApiError> {
    let a = caller.wallet(&s.store, path_id("account", &id)?).await?;
    Ok(Json(HoldsView { data: s.store.open_holds(a.id).await?.iter().map(|h| render::hold(h, a.exponent)).collect() }))
}

/// Cursors are opaque to clients; inside, the seq the next page starts below.
pub(super) fn parse_cursor(c: Option<&str>) -> Result<Option<u64>, ApiError> {
    c.map(|c| {
        c.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not one this API returned").param("cursor"))
    })
    .transpose()
}

pub(super) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::invalid("invalid_argument", format!("limit must be 1 to {MAX_PAGE}")).param("limit")),
    }
}

/// The seq window `(after, before)` of entries made in `[from, to]`, narrowed by a cursor.
pub(super) async fn window(s: &AppState, q: &ListQuery) -> Result<(Option<u64>, Option<u64>), ApiError> {
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
pub(super) async fn wallet_history(
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
