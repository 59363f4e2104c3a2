//! API keys and who a request acts as.
//!
//! A key is `ck_<20 hex>.<64 hex>`: a public id and a 256-bit secret. Only the secret's SHA-256
//! is stored; the comparison is constant-time. A request acts as the key's owner, or, with the
//! header `Coffer-On-Behalf-Of: <owner id>`, as a descendant of it. It may reach the acting
//! owner and its descendants, nothing else: anything outside answers 404, like a missing id.
//! Keys of a suspended or deleted owner (or of an owner under one) are refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use coffer_core::*;
use coffer_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

pub const ON_BEHALF_OF: &str = "coffer-on-behalf-of";

/// A freshly generated key: `full` is shown once; only `hash` is stored.
pub struct NewKey {
    pub id: String,
    pub full: String,
    pub hash: String,
}

pub fn generate_key() -> Result<NewKey, ApiError> {
    let mut id = [0u8; 10];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).and_then(|_| getrandom::fill(&mut secret)).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a key");
        ApiError::internal()
    })?;
    let id = format!("ck_{}", hex::encode(id));
    let secret = hex::encode(secret);
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    Ok(NewKey { full: format!("{id}.{secret}"), id, hash })
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    /// The owner the request acts as: the key's owner or a descendant named on-behalf-of.
    pub acting: Owner,
}

impl Caller {
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.key.scope != KeyScope::ReadWrite {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "read_only_key",
                "this API key is read-only",
            ));
        }
        Ok(())
    }
}

/// `target`, if it is `acting` or one of its descendants and it and every owner between them
/// are active: the owner a dialect's on-behalf-of names. `Ok(Err(owner))` names the inactive
/// owner; `Ok(None)`: not reachable (or no such owner).
pub async fn on_behalf_of(
    store: &dyn Store,
    target: OwnerId,
    acting: OwnerId,
) -> Result<Option<Result<Owner, Owner>>, AuthFailure> {
    let chain = match ancestry(store, target, acting).await {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if let Some(o) = chain.iter().find(|o| o.status != OwnerStatus::Active) {
        return Ok(Some(Err(o.clone())));
    }
    Ok(chain.into_iter().next().map(Ok))
}

/// The chain from `owner` up to `ancestor` (inclusive), if `ancestor` is `owner` or above it.
pub(crate) async fn ancestry(
    store: &dyn Store,
    owner: OwnerId,
    ancestor: OwnerId,
) -> Result<Option<Vec<Owner>>, StoreError> {
    let mut chain = Vec::new();
    let mut cur = Some(owner);
    while let Some(id) = cur {
        let Some(o) = store.owner(id).await? else { return Ok(None) };
        cur = o.parent;
        let top = o.id == ancestor;
        chain.push(o);
        if top {
            return Ok(Some(chain));
        }
    }
    Ok(None)
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("send an API key: Authorization: Bearer <key>"))?;
    let v = h.to_str().map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
    v.trim()
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be Bearer <key>"))
}

/// Why a credential was refused. Each dialect reports these in its own envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential, or not in the dialect's form.
    Missing,
    /// Unknown id or wrong secret (not told apart, so that ids cannot be probed).
    Invalid,
    Revoked,
    /// The owner, or one above it, is suspended.
    Suspended(OwnerId),
    /// The owner, or one above it, is deleted.
    Deleted(OwnerId),
    /// The store failed; logged.
    Internal,
    /// The store is away, full or too slow (503): retry shortly.
    Unavailable,
}

impl From<StoreError> for AuthFailure {
    /// Logged (at most once per interval for a repeated error).
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            coffer_store::logs::error("store unavailable while authenticating", &e);
            AuthFailure::Unavailable
        } else {
            coffer_store::logs::error("credential lookup failed", &e);
            AuthFailure::Internal
        }
    }
}

/// Check a key's id and secret: the key exists, the secret matches (constant time), the key is
/// active, and its owner and every owner above it are active. Returns the key and its owner.
pub async fn verify_key(store: &dyn Store, id: &str, secret: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    if !coffer_core::text::is_key_id(id) || secret.len() > 128 {
        return Err(AuthFailure::Invalid);
    }
    let key = match store.api_key(id).await {
        Ok(Some(k)) => k,
        Ok(None) => return Err(AuthFailure::Invalid),
        Err(e) => return Err(e.into()),
    };
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    if !bool::from(hash.as_bytes().ct_eq(key.secret_hash.as_bytes())) {
        return Err(AuthFailure::Invalid);
    }
    standing(store, key).await
}

/// A key found without its secret (by a signed token or a signature): it is still active and
/// its owner and every owner above it are active. Checked on every request, so revoking a key
/// or suspending an owner takes effect at once, also for tokens already issued.
pub async fn key_standing(store: &dyn Store, id: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    if !coffer_core::text::is_key_id(id) {
        return Err(AuthFailure::Invalid);
    }
    match store.api_key(id).await {
        Ok(Some(k)) => standing(store, k).await,
        Ok(None) => Err(AuthFailure::Invalid),
        Err(e) => Err(e.into()),
    }
}

async fn standing(store: &dyn Store, key: ApiKey) -> Result<(ApiKey, Owner), AuthFailure> {
    if key.status != KeyStatus::Active {
        return Err(AuthFailure::Revoked);
    }
    let chain = match ancestry(store, key.owner, key.platform).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(AuthFailure::Invalid),
        Err(e) => return Err(e.into()),
    };
    if let Some(o) = chain.iter().find(|o| o.status == OwnerStatus::Deleted) {
        return Err(AuthFailure::Deleted(o.id));
    }
    if let Some(o) = chain.iter().find(|o| o.status == OwnerStatus::Suspended) {
        return Err(AuthFailure::Suspended(o.id));
    }
    let owner = chain.into_iter().next().ok_or(AuthFailure::Invalid)?;
    Ok((key, owner))
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing => ApiError::unauthenticated("send an API key: Authorization: Bearer <key>"),
            AuthFailure::Invalid => ApiError::unauthenticated("invalid API key"),
            AuthFailure::Revoked => ApiError::unauthenticated("this API key has been revoked"),
            AuthFailure::Suspended(o) => ApiError::unauthenticated(format!("owner {o} is SUSPENDED")),
            AuthFailure::Deleted(o) => ApiError::unauthenticated(format!("owner {o} is DELETED")),
            AuthFailure::Internal => ApiError::internal(),
            AuthFailure::Unavailable => ApiError::unavailable("the ledger's store is unavailable; retry shortly"),
        }
    }
}

pub async fn authenticate(store: &dyn Store, parts: &Parts) -> Result<Caller, ApiError> {
    let token = bearer(parts)?;
    let (id, secret) = token.split_once('.').ok_or(AuthFailure::Invalid)?;
    let (key, owner) = verify_key(store, id, secret).await?;
    let acting = match parts.headers.get(ON_BEHALF_OF) {
        None => owner,
        Some(v) => {
            let raw = v
                .to_str()
                .map_err(|_| {
                    ApiError::invalid("invalid_header", format!("{ON_BEHALF_OF} is not text")).param(ON_BEHALF_OF)
                })?
                .trim();
            if raw.is_empty() {
                owner
            } else {
                let id: OwnerId = raw.parse().map_err(|_| {
                    ApiError::invalid("invalid_header", format!("{ON_BEHALF_OF} is not an owner id"))
                        .param(ON_BEHALF_OF)
                })?;
                let chain = ancestry(store, id, owner.id)
                    .await?
                    .ok_or_else(|| ApiError::from(LedgerError::OwnerNotFound(id)))?;
                if let Some(o) = chain.iter().find(|o| o.status != OwnerStatus::Active) {
                    return Err(ApiError::unauthenticated(format!("owner {} is {}", o.id, o.status)));
                }
                chain.into_iter().next().ok_or(AuthFailure::Invalid)?
            }
        }
    };
    Ok(Caller { key, acting })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(&*state.store, parts).await?;
        if let Some(wait) = state.over_limit(&caller.key.id) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
                "too many requests for this API key; retry after the time in Retry-After",
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        Ok(caller)
    }
}
