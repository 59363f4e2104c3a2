//! The EngageLab dialect: `GET /v1/balance` (seed `002_...`, wire facts in dialects.md).
//!
//! - Auth: `Authorization: Basic base64(dev_key:dev_secret)`; the pair is a Coffer API key's id
//!   and secret, so these credentials are created and revoked like any key.
//! - `balance` is the owner's OPERATING available, `gift_balance` its GIFT available, both in the
//!   owner's default currency (product.md); a missing wallet counts as zero.
//! - `*10000` fields are exact integers (amount x 10000). An amount kept at more than 4 decimals
//!   (a platform may raise an exponent up to 8) is truncated toward zero to 1/10000, the unit
//!   the wire format has; one too large for the wire's integer is an internal error (1000),
//!   never a clamped number. The float fields are the same values written as JSON numbers.
//! - Errors `{"code": <int>, "message": "..."}`: 2001/401 missing or wrong credentials or
//!   unknown merchant; 2002/401 credential revoked or owner suspended; 2002/403 owner deleted;
//!   1000/500 internal.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use coffer_core::money::{format_minor_trimmed, rescale_up};
use coffer_core::*;
use serde_json::{json, Value};

use crate::auth::{check_key, AuthFailure};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/balance", get(balance))
}

/// An EngageLab error: its code, HTTP status and message.
struct Refusal(u16, StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.1, Json(json!({ "code": self.0, "message": self.2 }))).into_response()
    }
}

/// The one table from Coffer's reasons to EngageLab's codes.
impl From<AuthFailure> for Refusal {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing | AuthFailure::Invalid => Refusal(2001, StatusCode::UNAUTHORIZED, "invalid token"),
            AuthFailure::Revoked => Refusal(2002, StatusCode::UNAUTHORIZED, "token has been disabled"),
            AuthFailure::Suspended(_) => Refusal(2002, StatusCode::UNAUTHORIZED, "merchant has been disabled"),
            AuthFailure::Deleted(_) => Refusal(2002, StatusCode::FORBIDDEN, "merchant has been deleted"),
            AuthFailure::Internal => internal(),
            AuthFailure::Unavailable => unavailable(),
        }
    }
}

fn internal() -> Refusal {
    Refusal(1000, StatusCode::INTERNAL_SERVER_ERROR, "internal error, please try again later")
}

fn unavailable() -> Refusal {
    Refusal(1000, StatusCode::SERVICE_UNAVAILABLE, "service unavailable, please try again later")
}

/// A refusal made before the request reached EngageLab's handler (route, method, size, time):
/// EngageLab documents no code for these, so its generic 1000 with the HTTP status that says
/// what went wrong.
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "code": 1000, "message": message }))).into_response()
}

/// `dev_key` and `dev_secret` from `Authorization: Basic ...`.
fn basic(headers: &HeaderMap) -> Result<(String, String), AuthFailure> {
    let v = headers.get(axum::http::header::AUTHORIZATION).ok_or(AuthFailure::Missing)?;
    let v = v.to_str().map_err(|_| AuthFailure::Missing)?.trim();
    let b64 = v.strip_prefix("Basic ").ok_or(AuthFailure::Missing)?.trim();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| AuthFailure::Missing)?;
    let text = String::from_utf8(raw).map_err(|_| AuthFailure::Missing)?;
    let (k, s) = text.split_once(':').ok_or(AuthFailure::Missing)?;
    Ok((k.to_string(), s.to_string()))
}

/// Minor units at `exponent` as ten-thousandths, truncated toward zero past 4 decimals; `None`
/// when the result does not fit the wire's integer (never a wrong number).
fn x10000(minor: i64, exponent: u8) -> Option<i64> {
    if exponent <= 4 {
        rescale_up(minor, exponent, 4).ok()
    } else {
        Some(minor / 10i64.pow(exponent as u32 - 4))
    }
}

/// A ten-thousandths amount as a JSON number with no trailing zeros (`123456` is `12.3456`).
fn number(v10000: i64) -> Value {
    serde_json::from_str(&format_minor_trimmed(v10000, 4)).unwrap_or(Value::Null)
}

async fn balance(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match answer(&s, &headers).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn answer(s: &AppState, headers: &HeaderMap) -> Result<Value, Refusal> {
    let (dev_key, dev_secret) = basic(headers)?;
    let check = || check_key(&s.store, &dev_key, &dev_secret);
    let ((_, owner), all) = coffer_app::service::balances::exact_summary::<_, AuthFailure, _>(
        &s.store,
        check,
        |(_, o): &(ApiKey, Owner)| o.id,
    )
    .await?;
    let available = |t: WalletType| match all.iter().find(|c| c.currency == owner.default_currency) {
        Some(c) => x10000(c.available(t), c.exponent),
        None => Some(0),
    };
    let out_of_range = || {
        tracing::error!(owner = %owner.id, "engagelab balance does not fit in ten-thousandths");
        internal()
    };
    let b = available(WalletType::Operating).ok_or_else(out_of_range)?;
    let g = available(WalletType::Gift).ok_or_else(out_of_range)?;
    let t = b.checked_add(g).ok_or_else(out_of_range)?;
    Ok(json!({
        "balance10000": b,
        "gift_balance10000": g,
        "balance": number(b),
        "gift_balance": number(g),
        "total_balance10000": t,
        "total_balance": number(t),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousandths_are_exact_up_to_four_decimals() {
        assert_eq!(x10000(123456, 4), Some(123456));
        assert_eq!(x10000(1230, 2), Some(123000));
        assert_eq!(x10000(7, 0), Some(70000));
        assert_eq!(x10000(1234567, 6), Some(12345), "truncated past 4 decimals");
        assert_eq!(x10000(-1234567, 6), Some(-12345), "toward zero");
        assert_eq!(x10000(i64::MAX / 4, 0), None, "out of range is refused, never saturated");
        assert_eq!(number(123456).to_string(), "12.3456");
        assert_eq!(number(20000).to_string(), "2");
        assert_eq!(number(0).to_string(), "0");
    }
}
