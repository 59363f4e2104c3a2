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
    let w = service::wallets::NewWallet {
        owner: path_id("owner", &b.owner)?,
        wallet_type: b.wallet_type.parse().map_err(bad_name("type"))?,
        currency: &b.currency,
        min_balance: b.min_balance.as_deref(),
        overdraft_limit: b.overdraft_limit.as_deref(),
    };
    Ok(created(service::wallets::open(&s.store, (&caller).into(), w).await?))
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
    let (caller, a) = service::balances::exact_wallet::<ApiError, _>(&s.store, || creds.resolve(&s, false), id).await?;
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
    let id = path_id("account", &id)?;
    let status = b.status.parse().map_err(bad_name("status"))?;
    Ok(created(service::wallets::set_status(&s.store, (&caller).into(), id, status).await?))
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
    let (id, min, overdraft) = (path_id("account", &id)?, b.min_balance.as_deref(), b.overdraft_limit.as_deref());
    Ok(created(service::wallets::set_limits(&s.store, (&caller).into(), id, min, overdraft).await?))
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
    Ok(Json(HoldsView { data: service::wallets::holds(&s.store, (&caller).into(), path_id("account", &id)?).await? }))
}

#[derive(Serialize, ToSchema)]
pub struct IncomingsView {
    pub data: Vec<IncomingView>,
}

#[utoipa::path(get, path = "/wallets/{id}/incoming", context_path = "/coffer/v1", tag = "holds",
    description = "The wallet's pending incoming credits (announced, not yet settled or cancelled), oldest first.",
    params(("id" = String, Path, description = "wallet id")), responses((status = 200, body = IncomingsView), ReadErrors))]
pub(super) async fn wallet_incoming(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncomingsView>, ApiError> {
    let data = service::wallets::incomings(&s.store, (&caller).into(), path_id("account", &id)?).await?;
    Ok(Json(IncomingsView { data }))
}

/// The journal window a list query asks for: its page size, times and cursor.
pub(super) fn window(q: &ListQuery, limit: usize) -> Result<Window, ApiError> {
    Ok(Window {
        limit,
        from: q.from.as_deref().map(|t| parse_time("from", t)).transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        cursor: service::journal::parse_cursor(q.cursor.as_deref())?,
    })
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
    /// Transactions only: whose metadata has this key (with `metadata_value`), found through
    /// an index.
    pub metadata_key: Option<String>,
    pub metadata_value: Option<String>,
    /// Transactions only: an external reference, the metadata key `reference`.
    pub reference: Option<String>,
    /// Transactions of a wallet only: decimal bounds (included) on the wallet's change.
    pub min_amount: Option<String>,
    pub max_amount: Option<String>,
}

impl ListQuery {
    /// Whether a transactions-only parameter is given.
    pub fn searches(&self) -> bool {
        self.wallet.is_some()
            || self.kind.is_some()
            || self.metadata_key.is_some()
            || self.metadata_value.is_some()
            || self.reference.is_some()
            || self.min_amount.is_some()
            || self.max_amount.is_some()
    }
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
    let id = path_id("account", &id)?;
    if q.searches() {
        return Err(ApiError::invalid("invalid_argument", "history takes limit, cursor, from and to"));
    }
    let w = window(&q, page_limit(q.limit)?)?;
    Ok(Json(service::journal::history(&s.store, (&caller).into(), id, w).await?))
}
