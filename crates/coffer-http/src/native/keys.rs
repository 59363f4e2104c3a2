//! API keys, their public keys (PayerMax), and the platform's response-signing key.

use super::*;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Defaults to the acting owner.
    pub owner: Option<String>,
    /// READ_ONLY or READ_WRITE.
    #[schema(pattern = "^(READ_ONLY|READ_WRITE)$")]
    pub scope: String,
}

#[utoipa::path(post, path = "/api-keys", context_path = "/coffer/v1", tag = "credentials", request_body = NewKey,
    description = "The answer holds the key (`key`); it is never shown again.",
    responses((status = 201, body = ApiKeyView), WriteErrors))]
pub(super) async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    Body(b): Body<NewKey>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    let owner = b.owner.as_deref().map(|o| path_id("owner", o)).transpose()?;
    let scope = b.scope.parse().map_err(bad_name("scope"))?;
    Ok(created(service::keys::create(&s.store, (&caller).into(), owner, scope).await?))
}

#[utoipa::path(post, path = "/api-keys/{id}/revoke", context_path = "/coffer/v1", tag = "credentials",
    params(("id" = String, Path, description = "API key id")), responses((status = 201, body = ApiKeyView), WriteErrors))]
pub(super) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(created(service::keys::revoke(&s.store, (&caller).into(), id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyBody {
    /// The RSA public key (at least 2048 bits) the credential signs PayerMax requests with: PEM
    /// (`-----BEGIN PUBLIC KEY-----`) or base64 of the SubjectPublicKeyInfo DER. `null` removes it.
    pub public_key: Option<String>,
}

#[utoipa::path(put, path = "/api-keys/{id}/public-key", context_path = "/coffer/v1", tag = "credentials",
    request_body = PublicKeyBody, params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), WriteErrors))]
pub(super) async fn set_public_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<PublicKeyBody>,
) -> Result<Response, ApiError> {
    let v = service::keys::set_public_key(&s.store, (&caller).into(), id, b.public_key.as_deref()).await?;
    Ok(Json(v).into_response())
}

#[utoipa::path(get, path = "/signing-key", context_path = "/coffer/v1", tag = "credentials",
    responses((status = 200, body = SigningKeyView), ReadErrors))]
pub(super) async fn signing_key(State(s): State<AppState>, caller: Caller) -> Result<Json<SigningKeyView>, ApiError> {
    let platform = caller.key.platform;
    Ok(Json(service::keys::signing_key(&s.store, (&caller).into(), &s.secrets, platform).await?))
}
