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
    Ok(Json(service::owners::show(&s.store, (&caller).into(), path_id("owner", &id)?).await?))
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
    let children = service::owners::children(&s.store, (&caller).into(), path_id("owner", &id)?).await?;
    let (data, next_cursor) = page_of(children, |o| o.id, &q)?;
    Ok(Json(OwnersView { data, next_cursor }))
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
    let parent = path_id("owner", &id)?;
    let v = service::owners::create_child(&s.store, (&caller).into(), parent, b.name, b.default_currency.as_deref())
        .await?;
    Ok(created(v))
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
    let id = path_id("owner", &id)?;
    let status = b.status.parse().map_err(bad_name("status"))?;
    Ok(created(service::owners::set_status(&s.store, (&caller).into(), id, status).await?))
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
    let wallets = service::wallets::of_owner(&s.store, (&caller).into(), path_id("owner", &id)?).await?;
    let (data, next_cursor) = page_of(wallets, |a| a.id, &q)?;
    Ok(Json(WalletsView { data, next_cursor }))
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
    let owner = path_id("owner", &id)?;
    let wallet_type: Option<WalletType> = f.wallet_type.map(|t| t.parse()).transpose().map_err(bad_name("type"))?;
    let at = f.at.as_deref().map(|t| parse_time("at", t)).transpose()?;
    let filter = service::balances::BalanceFilter { currency: f.currency.as_deref(), wallet_type, at };
    Ok(Json(service::balances::of_owner(&s.store, (&caller).into(), owner, filter).await?))
}
