//! API keys and who a request acts as.
//!
//! A key is `ck_<20 hex>.<64 hex>`: a public id and a 256-bit secret. Only the secret's SHA-256
//! is stored; the comparison is constant-time. A request acts as the key's owner, or, with
//! on-behalf-of (a header in the native API, a field in some dialects), as a descendant of it.
//! It may reach the acting owner and its descendants, nothing else (see [`crate::reach`]).
//! Keys of a suspended or deleted owner (or of an owner under one) are refused.
//!
//! Every check starts with [`Directory::refresh`], so the cached keys and owners it reads are
//! exact as of the request's arrival: a revoked key or a suspended owner is refused by the
//! next request, on every node.

use coffer_core::*;
use coffer_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::directory::Directory;

/// A freshly generated key: `full` is shown once; only `hash` is stored.
pub struct NewKey {
    pub id: String,
    pub full: String,
    pub hash: String,
}

/// A new key id and secret from the operating system's randomness.
pub fn generate_key() -> Result<NewKey, getrandom::Error> {
    let mut id = [0u8; 10];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
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

/// A read-only key asked to change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnlyKey;

impl Caller {
    pub fn require_write(&self) -> Result<(), ReadOnlyKey> {
        match self.key.scope {
            KeyScope::ReadWrite => Ok(()),
            KeyScope::ReadOnly => Err(ReadOnlyKey),
        }
    }
}

/// `target`, if it is `acting` or one of its descendants and it and every owner between them
/// are active: the owner an on-behalf-of names. `Ok(Some(Err(owner)))` names the inactive
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
pub async fn ancestry(store: &dyn Store, owner: OwnerId, ancestor: OwnerId) -> Result<Option<Vec<Owner>>, StoreError> {
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

/// Why a credential was refused. Each API reports these in its own envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential, or not in the API's form.
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
pub async fn verify_key(dir: &Directory, id: &str, secret: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    dir.refresh().await?;
    check_key(dir, id, secret).await
}

/// [`verify_key`] on the cache as it is, without refreshing it: only for use inside
/// [`Directory::exact`], which checks the cache in the same call as the data.
pub async fn check_key(dir: &Directory, id: &str, secret: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    if !coffer_core::text::is_key_id(id) || secret.len() > 128 {
        return Err(AuthFailure::Invalid);
    }
    let key = match dir.api_key(id).await {
        Ok(Some(k)) => k,
        Ok(None) => return Err(AuthFailure::Invalid),
        Err(e) => return Err(e.into()),
    };
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    if !bool::from(hash.as_bytes().ct_eq(key.secret_hash.as_bytes())) {
        return Err(AuthFailure::Invalid);
    }
    standing(dir, key).await
}

/// A key found without its secret (by a signed token or a signature): it is still active and
/// its owner and every owner above it are active. Checked on every request, so revoking a key
/// or suspending an owner takes effect at once, also for tokens already issued.
pub async fn key_standing(dir: &Directory, id: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    dir.refresh().await?;
    check_standing(dir, id).await
}

/// [`key_standing`] on the cache as it is: only inside [`Directory::exact`].
pub async fn check_standing(dir: &Directory, id: &str) -> Result<(ApiKey, Owner), AuthFailure> {
    if !coffer_core::text::is_key_id(id) {
        return Err(AuthFailure::Invalid);
    }
    match dir.api_key(id).await {
        Ok(Some(k)) => standing(dir, k).await,
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
