//! Balance alerts on wallets: what crosses them shows in the event feed.

use coffer_app::service::alerts::{self, AlertView, AlertsView, NewAlert};

use super::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    pub wallet: String,
    /// available or posted.
    #[schema(pattern = "^(available|posted)$")]
    pub field: String,
    /// below or above: the side of the threshold on which the alert fires.
    #[schema(pattern = "^(below|above)$")]
    pub direction: String,
    /// Decimal in the wallet's currency (may be negative).
    #[schema(pattern = "^-?[0-9]+(\\.[0-9]+)?$")]
    pub threshold: String,
}

#[utoipa::path(post, path = "/alerts", context_path = "/coffer/v1", tag = "events", request_body = AlertRequest,
    description = "Watch a wallet's available or posted balance: `alert.triggered` when a movement takes it across the threshold to the watched side, `alert.cleared` when one takes it back (in the event feed), once per crossing. It watches the movements made after it is set.",
    responses((status = 201, body = AlertView), WriteErrors))]
pub(super) async fn create_alert(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<AlertRequest>,
) -> Result<Response, ApiError> {
    let wallet = path_id("account", &b.wallet)?;
    let n = NewAlert { wallet, field: &b.field, direction: &b.direction, threshold: &b.threshold };
    Ok(created(alerts::create(&s.store, (&caller).into(), n).await?))
}

#[utoipa::path(get, path = "/wallets/{id}/alerts", context_path = "/coffer/v1", tag = "events",
    params(("id" = String, Path, description = "wallet id")),
    responses((status = 200, body = AlertsView), ReadErrors))]
pub(super) async fn wallet_alerts(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertsView>, ApiError> {
    let wallet = path_id("account", &id)?;
    Ok(Json(alerts::list(&s.store, (&caller).into(), wallet).await?))
}

#[utoipa::path(delete, path = "/alerts/{id}", context_path = "/coffer/v1", tag = "events",
    description = "Stop an alert: it watches no movement made after this. Deleting it again answers it as it is.",
    params(("id" = String, Path, description = "alert id")),
    responses((status = 200, body = AlertView), WriteErrors))]
pub(super) async fn delete_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let id = path_id("alert", &id)?;
    Ok(Json(alerts::delete(&s.store, (&caller).into(), None, id).await?))
}
