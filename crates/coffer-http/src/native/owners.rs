//! Identity (`/me`), owners, their children, wallets and balances.

use super::*;

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub api_key: ApiKeyView,
    pub acting_as: OwnerView,
}

#[utoipa::path(get, path = "/me", context_path = "/coffer/v1", tag = "owners",
    responses((status = 200, body = MeView), ReadErrors))]
pub(super) async fn me(caller: Caller) -> Json<MeView> {
    Json(MeView { api_key: render::api_key(&caller.key), acting_as: render::owner(&caller.acting) })
}

#[utoipa::path(get, path = "/owners/{id}", context_path = "/coffer/v1", tag = "owners",
    params(("id" = String, Path, description = "owner id")), responses((status = 200, body = OwnerView), ReadErrors))]
pub(super) async fn owner(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OwnerView>, ApiError> {
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
pub(super) fn page_of<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> Uuid,
    q: &PageQuery,
) -> Result<(Vec<T>, Option<String>), ApiError> {
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
pub(super) async fn children(
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
pub(super) async fn create_child(
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
pub(super) async fn owner_status(
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
pub(super) async fn owner_wallets(
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
pub(super) async fn owner_balances(
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
