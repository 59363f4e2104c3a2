//! API keys, their registered public keys (PayerMax), and a platform's response-signing key.

use coffer_core::*;
use coffer_store::Store;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{run, unexpected, Actor, AppError};
use crate::directory::Directory;
use crate::render::{self, ApiKeyView};
use crate::secrets::{self, Secrets};

async fn key_outcome(dir: &Directory, actor: Actor<'_>, cmd: Command) -> Result<ApiKeyView, AppError> {
    match run(dir, actor, cmd).await? {
        Outcome::ApiKey(k) => Ok(render::api_key(&k)),
        _ => Err(unexpected("api key")),
    }
}

/// A new key for `owner` (default: the acting owner); the answer holds the key, shown once.
pub async fn create(
    dir: &Directory,
    actor: Actor<'_>,
    owner: Option<OwnerId>,
    scope: KeyScope,
) -> Result<ApiKeyView, AppError> {
    actor.require_write()?;
    let owner = match (owner, actor) {
        (Some(o), _) => actor.owner(dir, o).await?.id,
        (None, Actor::Key(c)) => c.acting.id,
        (None, Actor::Operator) => {
            return Err(AppError::invalid("invalid_argument", "name the key's owner").at("owner"))
        }
    };
    let k = crate::auth::generate_key().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a key");
        AppError::Store(coffer_store::StoreError::Storage("no randomness for a key".into()))
    })?;
    let view = key_outcome(dir, actor, Command::CreateApiKey { owner, id: k.id, secret_hash: k.hash, scope }).await?;
    Ok(ApiKeyView { key: Some(k.full), ..view })
}

/// The key, if the actor reaches its owner; "not found" otherwise.
async fn reached_key(dir: &Directory, actor: Actor<'_>, id: &str) -> Result<(), AppError> {
    let reached = match dir.api_key(id).await? {
        Some(k) => match actor {
            Actor::Key(c) => c.reaches(dir, k.owner).await?,
            Actor::Operator => true,
        },
        None => false,
    };
    if reached {
        Ok(())
    } else {
        Err(LedgerError::ApiKeyNotFound(id.chars().take(64).collect()).into())
    }
}

pub async fn revoke(dir: &Directory, actor: Actor<'_>, id: String) -> Result<ApiKeyView, AppError> {
    actor.require_write()?;
    reached_key(dir, actor, &id).await?;
    key_outcome(dir, actor, Command::RevokeApiKey { id }).await
}

/// Register the RSA public key (PEM or base64 DER, >= 2048 bits) a key signs PayerMax requests
/// with; `None` removes it.
pub async fn set_public_key(
    dir: &Directory,
    actor: Actor<'_>,
    id: String,
    text: Option<&str>,
) -> Result<ApiKeyView, AppError> {
    actor.require_write()?;
    reached_key(dir, actor, &id).await?;
    let public_key = match text {
        Some(t) => Some(
            secrets::parse_public_key(t).map_err(|m| AppError::invalid("invalid_public_key", m).at("public_key"))?,
        ),
        None => None,
    };
    key_outcome(dir, actor, Command::SetKeyPublicKey { id, public_key }).await
}

/// The public half of a platform's response-signing key (PayerMax `sign` header).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    pub platform: Uuid,
    /// PEM, `-----BEGIN PUBLIC KEY-----`.
    pub public_key_pem: String,
    /// Base64 of the SubjectPublicKeyInfo DER (the form PayerMax hands out).
    pub public_key: String,
}

/// The caller's platform's signing key (the operator names a platform), created at first use.
pub async fn signing_key(
    dir: &Directory,
    actor: Actor<'_>,
    secrets: &Secrets,
    platform: OwnerId,
) -> Result<SigningKeyView, AppError> {
    let platform = actor.platform(dir, platform).await?;
    let key = secrets.signing_key(dir, platform).await?;
    Ok(SigningKeyView {
        platform: platform.0,
        public_key_pem: secrets::public_pem(&key),
        public_key: secrets::signer_public_base64(&key),
    })
}
