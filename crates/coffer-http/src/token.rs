//! Bearer tokens of the UQPay and NeoX dialects: JWTs (HS256) signed with the server's token key
//! ([`crate::secrets`]), valid [`TOKEN_TTL_SECS`], for one dialect (`aud`).
//!
//! A token names the API key it was issued for (`sub`); every call re-checks that key and its
//! owners ([`crate::auth::check_standing`], on the directory cache made exact for the
//! request), so a revoked key or a suspended merchant loses its tokens at once. Nothing about tokens is kept per node: any node verifies any node's token.
//! UQPay's SDK reads the claims `entity_id`, `short_entity_id` and `parent_entity_id`.

use coffer_core::*;
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::{check_standing, AuthFailure};
use crate::AppState;

pub const TOKEN_TTL_SECS: i64 = 30 * 60;
/// Longest token accepted (a Coffer token is about 400 bytes).
const MAX_TOKEN: usize = 2048;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The API key the token was issued for.
    pub sub: String,
    /// The dialect the token is for.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub entity_id: String,
    pub short_entity_id: String,
    pub parent_entity_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// Not a token of ours (bad form, signature or audience).
    Invalid,
    Expired,
    /// The token is fine but its key or owner is not (revoked, suspended, deleted).
    Credential(AuthFailure),
}

impl From<AuthFailure> for TokenFailure {
    fn from(f: AuthFailure) -> Self {
        TokenFailure::Credential(f)
    }
}

/// A short, stable, human-facing id of an owner: the last 10 hex digits of its id (the random
/// part of a UUIDv7).
pub fn short_id(o: OwnerId) -> String {
    let s = o.0.simple().to_string().to_ascii_uppercase();
    s[s.len() - 10..].to_string()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token for `key` (owned by `owner`) and the unix time it expires at.
pub async fn issue(s: &AppState, key: &ApiKey, owner: &Owner, audience: &str) -> Result<(String, i64), AuthFailure> {
    let secret = s.secrets.token_key(&*s.store).await.map_err(AuthFailure::from)?;
    let iat = unix_now();
    let claims = Claims {
        sub: key.id.clone(),
        aud: audience.into(),
        iat,
        exp: iat + TOKEN_TTL_SECS,
        entity_id: owner.id.to_string(),
        short_entity_id: short_id(owner.id),
        parent_entity_id: owner.parent.map(|p| p.to_string()).unwrap_or_default(),
    };
    let t = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&secret)).map_err(|e| {
        tracing::error!(error = %e, "token signing");
        AuthFailure::Internal
    })?;
    Ok((t, claims.exp))
}

/// The key and owner a token stands for, on the directory cache as it is: only inside
/// [`coffer_app::Directory::exact`], which makes the check exact for the request.
pub async fn check_cached(s: &AppState, token: &str, audience: &str) -> Result<(ApiKey, Owner), TokenFailure> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(TokenFailure::Invalid);
    }
    let secret = s.secrets.token_key(&*s.store).await.map_err(|e| TokenFailure::Credential(AuthFailure::from(e)))?;
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = match decode::<Claims>(token, &DecodingKey::from_secret(&secret), &v) {
        Ok(d) => d.claims,
        Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => return Err(TokenFailure::Expired),
        Err(_) => return Err(TokenFailure::Invalid),
    };
    let (key, owner) = check_standing(&s.store, &claims.sub).await?;
    if owner.id.to_string() != claims.entity_id {
        return Err(TokenFailure::Invalid);
    }
    Ok((key, owner))
}
