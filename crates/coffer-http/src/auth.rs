//! The native API's credentials: `Authorization: Bearer <key>` and the optional
//! `Coffer-On-Behalf-Of: <owner id>` header. What a key is and who it acts as is decided in
//! [`coffer_app::auth`]; this module reads the headers and answers in the native envelope.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
pub use coffer_app::auth::*;
use coffer_core::*;

use crate::error::ApiError;
use crate::AppState;

pub const ON_BEHALF_OF: &str = "coffer-on-behalf-of";

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

impl From<ReadOnlyKey> for ApiError {
    fn from(_: ReadOnlyKey) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", "read_only_key", "this API key is read-only")
    }
}

/// The native credentials of a request, read from its headers but not yet checked.
pub struct Creds {
    id: String,
    secret: String,
    on_behalf_of: Option<OwnerId>,
}

impl Creds {
    pub fn of(parts: &Parts) -> Result<Creds, ApiError> {
        let token = bearer(parts)?;
        let (id, secret) = token.split_once('.').ok_or(AuthFailure::Invalid)?;
        let on_behalf_of = match parts.headers.get(ON_BEHALF_OF) {
            None => None,
            Some(v) => {
                let raw = v
                    .to_str()
                    .map_err(|_| {
                        ApiError::invalid("invalid_header", format!("{ON_BEHALF_OF} is not text")).param(ON_BEHALF_OF)
                    })?
                    .trim();
                if raw.is_empty() {
                    None
                } else {
                    Some(raw.parse().map_err(|_| {
                        ApiError::invalid("invalid_header", format!("{ON_BEHALF_OF} is not an owner id"))
                            .param(ON_BEHALF_OF)
                    })?)
                }
            }
        };
        Ok(Creds { id: id.to_string(), secret: secret.to_string(), on_behalf_of })
    }

    /// Who the request acts as. `fresh`: refresh the directory cache first (the classic
    /// order); otherwise only inside [`coffer_app::Directory::exact`], which checks the cache
    /// in the same store call as the data.
    pub async fn resolve(&self, s: &AppState, fresh: bool) -> Result<Caller, ApiError> {
        let (key, owner) = match fresh {
            true => verify_key(&s.store, &self.id, &self.secret).await?,
            false => check_key(&s.store, &self.id, &self.secret).await?,
        };
        crate::note_key(&key.id);
        let Some(id) = self.on_behalf_of else { return Ok(Caller { key, acting: owner }) };
        match on_behalf_of(&*s.store, id, owner.id).await? {
            Some(Ok(acting)) => Ok(Caller { key, acting }),
            Some(Err(o)) => Err(ApiError::unauthenticated(format!("owner {} is {}", o.id, o.status))),
            None => Err(LedgerError::OwnerNotFound(id).into()),
        }
    }
}

impl FromRequestParts<AppState> for Creds {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Creds::of(parts)
    }
}

pub async fn authenticate(s: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    Creds::of(parts)?.resolve(s, true).await
}

/// Refused with 429 when the caller's key is over its rate limit.
pub fn within_limit(s: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let Some(wait) = s.over_limit(&caller.key.id) else { return Ok(()) };
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limited",
        "too many requests for this API key; retry after the time in Retry-After",
    );
    e.retry_after = Some(wait);
    Err(e)
}

/// The caller of a native request, within its key's rate limit. The edge may have
/// authenticated it already (before reading a large body); then that answer is used.
pub async fn caller(s: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(c) = parts.extensions.get::<Caller>() {
        return Ok(c.clone());
    }
    let caller = authenticate(s, parts).await?;
    within_limit(s, &caller)?;
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state, parts).await
    }
}
