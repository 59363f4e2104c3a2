//! The native API's error envelope and the one table that maps every core and store error to
//! it: `{"error": {"type", "code", "message", "param"}}`.
//!
//! | type | HTTP | when |
//! |---|---|---|
//! | `invalid_request_error` | 400 | malformed JSON, unknown fields, bad amounts, currencies, ids |
//! | `authentication_error` | 401 | missing, malformed, unknown or revoked key; owner not active |
//! | `permission_error` | 403 | a read-only key asked to change something |
//! | `not_found` | 404 | missing, or outside the caller's owner subtree (ids do not leak) |
//! | `conflict` | 409 | idempotency key reused with another request; wallet or key exists |
//! | `refused` | 422 | a ledger rule refused it (insufficient funds, frozen wallet, ...) |
//! | `rate_limit_error` | 429 | the key's request rate is exceeded; `Retry-After` says when to retry |
//! | `api_error` | 500 | Coffer failed (`internal`); details are logged, never returned |
//! | `api_error` | 503 | `unavailable`: the store is away, full or too slow; `Retry-After` |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffer_app::service::AppError;
use coffer_core::fx::FxError;
use coffer_core::{LedgerError, MoneyError};
use coffer_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The error envelope, as the OpenAPI document describes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorView {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// invalid_request_error, authentication_error, permission_error, not_found, conflict,
    /// refused, rate_limit_error or api_error.
    #[serde(rename = "type")]
    pub kind: String,
    /// A stable code (see docs/API.md).
    pub code: String,
    pub message: String,
    /// The request field or header at fault, when there is one.
    pub param: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Seconds, for a `Retry-After` header (rate limiting).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, code, message: message.into(), param: None, retry_after: None }
    }
    pub fn param(mut self, p: impl Into<String>) -> Self {
        self.param = Some(p.into());
        self
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", "unauthenticated", message)
    }
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not_found", format!("{what} {id} not found"))
    }
    /// 503 with `Retry-After: 1`: a passing condition (the store is away or full).
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", "unavailable", message);
        e.retry_after = Some(1);
        e
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal", "internal error; it has been logged")
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        use LedgerError::*;
        let (status, kind) = match &e {
            Money(_)
            | InvalidArgument { .. }
            | CurrencyMismatch { .. }
            | AmountNotPositive
            | Unbalanced { .. }
            | Overflow => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            OwnerNotFound(_) | AccountNotFound(_) | HoldNotFound(_) | IncomingNotFound(_) | EntryNotFound(_)
            | ApiKeyNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            IdempotencyConflict { .. } | WalletExists { .. } | ApiKeyExists(_) => (StatusCode::CONFLICT, "conflict"),
            OwnerNotActive { .. }
            | WalletNotActive { .. }
            | InsufficientFunds { .. }
            | BelowMinBalance { .. }
            | HoldNotOpen { .. }
            | HoldExpired { .. }
            | HoldNotDue { .. }
            | CaptureExceedsHold { .. }
            | IncomingNotPending { .. }
            | AlreadyReversed { .. }
            | NotReversible { .. }
            | WalletNotEmpty { .. }
            | InvalidTransition { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            Invariant(m) => {
                tracing::error!(invariant = %m, "internal invariant violated");
                return ApiError::internal();
            }
        };
        let param = match &e {
            InvalidArgument { field, .. } => Some(field.to_string()),
            Money(MoneyError::Malformed(_) | MoneyError::TooManyDecimals { .. } | MoneyError::OutOfRange(_)) => {
                Some("amount".to_string())
            }
            Money(MoneyError::BadCurrencyCode(_) | MoneyError::UnknownCurrency(_)) => Some("currency".to_string()),
            _ => None,
        };
        ApiError { status, kind, code: e.code(), message: e.to_string(), param, retry_after: None }
    }
}

impl From<MoneyError> for ApiError {
    fn from(e: MoneyError) -> Self {
        LedgerError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(e) => e.into(),
            StoreError::Closed => ApiError::unavailable("the service is shutting down; retry on another node"),
            StoreError::Unavailable(m) => {
                coffer_store::logs::error("store unavailable", &m);
                ApiError::unavailable("the ledger's store is unavailable; nothing was changed, retry shortly")
            }
            StoreError::Storage(m) | StoreError::Open(m) | StoreError::Conflict(m) => {
                coffer_store::logs::error("storage failure", &m);
                ApiError::internal()
            }
        }
    }
}

impl From<FxError> for ApiError {
    fn from(e: FxError) -> Self {
        let (status, kind, code) = match &e {
            FxError::MissingRate { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "rate_missing"),
            FxError::StaleRate { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "rate_stale"),
            FxError::InvalidRate(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_rate"),
            FxError::Overflow => (StatusCode::UNPROCESSABLE_ENTITY, "refused", "overflow"),
        };
        ApiError::new(status, kind, code, e.to_string())
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(e) => e.into(),
            AppError::Fx(e) => e.into(),
            AppError::Invalid { code, message } => ApiError::invalid(code, message),
            AppError::Forbidden { code, message } => {
                ApiError::new(StatusCode::FORBIDDEN, "permission_error", code, message)
            }
            AppError::NotFound { what, id } => ApiError::not_found(what, id),
            AppError::ReadOnly => coffer_app::auth::ReadOnlyKey.into(),
            AppError::At(param, e) => ApiError::from(*e).param(param),
        }
    }
}

impl ApiError {
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            kind: self.kind.into(),
            code: self.code.into(),
            message: self.message.clone(),
            param: self.param.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorView { error: self.body() };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
