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
    let owner = match b.owner {
        Some(o) => caller.owner(&s.store, path_id("owner", &o)?).await?,
        None => caller.acting.clone(),
    };
    let scope = b.scope.parse().map_err(bad_name("scope"))?;
    let k = crate::auth::new_key()?;
    match run(&s, Command::CreateApiKey { owner: owner.id, id: k.id, secret_hash: k.hash, scope }).await?.outcome {
        Outcome::ApiKey(key) => Ok(created(ApiKeyView { key: Some(k.full), ..render::api_key(&key) })),
        _ => Err(internal("api key")),
    }
}

#[utoipa::path(post, path = "/api-keys/{id}/revoke", context_path = "/coffer/v1", tag = "credentials",
    params(("id" = String, Path, description = "API key id")), responses((status = 201, body = ApiKeyView), WriteErrors))]
pub(super) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_write()?;
    match s.store.api_key(&id).await? {
        Some(k) if caller.reaches(&s.store, k.owner).await? => {}
        _ => return Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into()),
    }
    match run(&s, Command::RevokeApiKey { id }).await?.outcome {
        Outcome::ApiKey(key) => Ok(created(render::api_key(&key))),
        _ => Err(internal("api key")),
    }
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
    caller.require_write()?;
    match s.store.api_key(&id).await? {
        Some(k) if caller.reaches(&s.store, k.owner).await? => {}
        _ => return Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into()),
    }
    let public_key = match b.public_key {
        Some(text) => Some(
            crate::secrets::parse_public_key(&text)
                .map_err(|m| ApiError::invalid("invalid_public_key", m).param("public_key"))?,
        ),
        None => None,
    };
    match run(&s, Command::SetKeyPublicKey { id, public_key }).await?.outcome {
        Outcome::ApiKey(key) => Ok(Json(render::api_key(&key)).into_response()),
        _ => Err(internal("api key")),
    }
}

/// The public half of the caller's platform's response-signing key (PayerMax `sign` header).
#[derive(Serialize, ToSchema)]
pub struct SigningKeyView {
    pub platform: Uuid,
    /// PEM, `-----BEGIN PUBLIC KEY-----`.
    pub public_key_pem: String,
    /// Base64 of the SubjectPublicKeyInfo DER (the form PayerMax hands out).
    pub public_key: String,
}

#[utoipa::path(get, path = "/signing-key", context_path = "/coffer/v1", tag = "credentials",
    responses((status = 200, body = SigningKeyView), ReadErrors))]
pub(super) async fn signing_key(State(s): State<AppState>, caller: Caller) -> Result<Json<SigningKeyView>, ApiError> {
    let key = s.secrets.signing_key(&*s.store, caller.key.platform).await?;
    Ok(Json(SigningKeyView {
        platform: caller.key.platform.0,
        public_key_pem: crate::secrets::public_pem(&key),
        public_key: crate::secrets::signer_public_base64(&key),
    }))
}
