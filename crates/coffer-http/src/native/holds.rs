//! Holds (authorizations) and incoming credits.

use super::*;

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
pub(super) async fn create_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<NewHold>,
) -> Result<Response, ApiError> {
    let wallet = path_id("account", &b.wallet)?;
    let expires_at = b.expires_at.as_deref().map(|t| parse_time("expires_at", t)).transpose()?;
    let r = service::movements::WalletAmount { wallet, amount: &b.amount, currency: b.currency.as_deref() };
    let planned = service::movements::hold(&s.store, (&caller).into(), r, expires_at).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
}

#[utoipa::path(get, path = "/holds/{id}", context_path = "/coffer/v1", tag = "holds",
    params(("id" = String, Path, description = "hold id")), responses((status = 200, body = HoldView), ReadErrors))]
pub(super) async fn hold(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(service::wallets::hold(&s.store, (&caller).into(), path_id("hold", &id)?).await?))
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
pub(super) async fn capture_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Capture>,
) -> Result<Response, ApiError> {
    let hold = path_id("hold", &id)?;
    let destination = AccountRef::Id(path_id("account", &b.destination)?);
    let planned =
        service::movements::capture(&s.store, (&caller).into(), hold, b.amount.as_deref(), destination).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plain {
    pub metadata: Option<BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/holds/{id}/release", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "hold id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn release_hold(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    let planned = service::movements::release(&s.store, (&caller).into(), path_id("hold", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, planned).await
}

#[utoipa::path(post, path = "/incoming", context_path = "/coffer/v1", tag = "holds", request_body = WalletAmount,
    description = "A pending credit: counted in `incoming`, not available until settled.",
    params(IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn create_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<WalletAmount>,
) -> Result<Response, ApiError> {
    one_wallet(&s, &caller, &headers, b, OneWallet::Incoming).await
}

#[utoipa::path(post, path = "/incoming/{id}/settle", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "incoming credit id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn settle_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    incoming_done(&s, &caller, &headers, &id, b, true).await
}

#[utoipa::path(post, path = "/incoming/{id}/cancel", context_path = "/coffer/v1", tag = "holds", request_body = Plain,
    params(("id" = String, Path, description = "incoming credit id"), IdempotencyHeader),
    responses(MovementResponses, WriteErrors))]
pub(super) async fn cancel_incoming(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Plain>,
) -> Result<Response, ApiError> {
    incoming_done(&s, &caller, &headers, &id, b, false).await
}

async fn incoming_done(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
    b: Plain,
    settle: bool,
) -> Result<Response, ApiError> {
    let id = path_id("incoming credit", id)?;
    let planned = service::movements::incoming_done(&s.store, caller.into(), id, settle).await?;
    movement(s, caller, headers, b.metadata, planned).await
}
