//! Webhook endpoints: where the event feed is delivered, signed (`coffer_app::webhooks`).

use coffer_app::service::events::{self as feed, Cursor};
use coffer_app::webhooks::{self, Change, NewWebhook, WebhookView};

use super::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// https (plain http and private addresses only where the server allows them).
    pub url: String,
    /// Event types to deliver; every type when absent.
    pub types: Option<Vec<String>>,
    /// Whose events: only those of wallets this owner reaches. The acting owner by default.
    pub owner: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhooksView {
    pub data: Vec<WebhookView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long (0 to 604800 seconds) the old secret still signs deliveries; default 86400.
    pub overlap_seconds: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// Deliver again from this event (its id, `<transaction>.<index>`) on.
    pub from_event: String,
}

fn endpoint_id(raw: &str) -> Result<Uuid, ApiError> {
    path_id("webhook endpoint", raw)
}

#[utoipa::path(post, path = "/webhook-endpoints", context_path = "/coffer/v1", tag = "events", request_body = WebhookRequest,
    description = "Deliver the event feed to a URL: one signed POST per event (`Coffer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the secret>`), in journal order, at least once, from the events made after this call. The secret is shown only in this answer.",
    responses((status = 201, body = WebhookView), WriteErrors))]
pub(super) async fn create_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<WebhookRequest>,
) -> Result<Response, ApiError> {
    let owner = b.owner.as_deref().map(|o| path_id("owner", o)).transpose()?;
    let types = b.types.map(|t| feed::types(Some(&t.join(",")))).transpose()?.flatten();
    let n = NewWebhook { url: &b.url, types, owner };
    Ok(created(webhooks::create(&s.store, (&caller).into(), s.webhooks, n).await?))
}

#[utoipa::path(get, path = "/webhook-endpoints", context_path = "/coffer/v1", tag = "events",
    responses((status = 200, body = WebhooksView), ReadErrors))]
pub(super) async fn list_webhooks(State(s): State<AppState>, caller: Caller) -> Result<Json<WebhooksView>, ApiError> {
    Ok(Json(WebhooksView { data: webhooks::list(&s.store, (&caller).into(), None).await? }))
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}", context_path = "/coffer/v1", tag = "events",
    description = "The endpoint with its delivery state and its last attempts (status, latency, the start of the answer).",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), ReadErrors))]
pub(super) async fn get_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::get(&s.store, (&caller).into(), None, endpoint_id(&id)?).await?))
}

async fn apply(s: &AppState, caller: &Caller, id: &str, c: Change) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::change(&s.store, caller.into(), None, endpoint_id(id)?, c).await?))
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/disable", context_path = "/coffer/v1", tag = "events",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), WriteErrors))]
pub(super) async fn disable_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    apply(&s, &caller, &id, Change::Disable).await
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/enable", context_path = "/coffer/v1", tag = "events",
    description = "Deliver again (also after an automatic disable), from where delivery stopped.",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), WriteErrors))]
pub(super) async fn enable_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    apply(&s, &caller, &id, Change::Enable).await
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", context_path = "/coffer/v1", tag = "events", request_body = Rotation,
    description = "A new secret, shown only in this answer; deliveries carry a signature with each secret during the overlap.",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), WriteErrors))]
pub(super) async fn rotate_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<Rotation>,
) -> Result<Json<WebhookView>, ApiError> {
    apply(&s, &caller, &id, Change::Rotate { overlap_secs: b.overlap_seconds.unwrap_or(86_400) }).await
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/redeliver", context_path = "/coffer/v1", tag = "events", request_body = Redelivery,
    description = "Deliver again every event from one on (to this endpoint only, in order).",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), WriteErrors))]
pub(super) async fn redeliver_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<Redelivery>,
) -> Result<Json<WebhookView>, ApiError> {
    let bad = || {
        ApiError::invalid("invalid_argument", "from_event is an event id, <transaction>.<index>").param("from_event")
    };
    let (seq, index) = b.from_event.split_once('.').ok_or_else(bad)?;
    let from = Cursor { seq: seq.parse().map_err(|_| bad())?, index: index.parse().map_err(|_| bad())? };
    apply(&s, &caller, &id, Change::Redeliver(from)).await
}

#[utoipa::path(delete, path = "/webhook-endpoints/{id}", context_path = "/coffer/v1", tag = "events",
    params(("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookView), WriteErrors))]
pub(super) async fn delete_webhook(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    apply(&s, &caller, &id, Change::Delete).await
}
