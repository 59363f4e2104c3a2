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
    let a = caller.wallet_ref(&s.store, path_id("account", &b.wallet)?).await?;
    let expires_at = b.expires_at.as_deref().map(|t| parse_time("expires_at", t)).transpose()?;
    let op = MoneyOp::HoldCreate {
        account: a.id,
        amount: money(&s, &a, &b.amount, b.currency.as_deref()).await?,
        expires_at,
    };
    movement(&s, &caller, &headers, b.metadata, op).await
}

#[utoipa::path(get, path = "/holds/{id}", context_path = "/coffer/v1", tag = "holds",
    params(("id" = String, Path, description = "hold id")), responses((status = 200, body = HoldView), ReadErrors))]
pub(super) async fn hold(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HoldView>, ApiError> {
    let (h, a) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    Ok(Json(render::hold(&h, a.exponent)))
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
    let (h, a) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    let dest = caller.wallet_ref(&s.store, path_id("account", &b.destination)?).await?;
    let amount = match b.amount {
        Some(x) => Some(money(&s, &Place::from(&a), &x, None).await?),
        None => None,
    };
    let op = MoneyOp::HoldCapture { hold: h.id, amount, destination: AccountRef::Id(dest.id) };
    movement(&s, &caller, &headers, b.metadata, op).await
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
    let (h, _) = caller.hold(&s.store, path_id("hold", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::HoldRelease { hold: h.id }).await
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
    let (a, amount) = plain_amount(&s, &caller, &b, "incoming credits").await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingCreate { account: a.id, amount }).await
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
    let i = caller.incoming(&s.store, path_id("incoming credit", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingSettle { incoming: i.id }).await
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
    let i = caller.incoming(&s.store, path_id("incoming credit", &id)?).await?;
    movement(&s, &caller, &headers, b.metadata, MoneyOp::IncomingCancel { incoming: i.id }).await
}
