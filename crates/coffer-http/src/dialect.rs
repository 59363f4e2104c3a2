//! What the provider dialects share: reading an owner's balances through the core's
//! [`summary`](coffer_core::summary) (the one mapping from wallets to dialect figures), currency
//! checks, per-key rate limits, and times in the providers' formats. Each dialect turns the
//! [`Problem`]s here into its own envelope in one table.

use chrono::{DateTime, SecondsFormat, Utc};
use coffer_app::service;
use coffer_core::summary::CurrencySummary;
use coffer_core::*;
use coffer_store::StoreError;

use crate::auth::AuthFailure;
use crate::AppState;

/// Why a dialect request was refused, before the dialect names it in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The currency is not a 3-letter code the platform knows.
    UnknownCurrency(String),
    /// The caller made too many requests; retry after this many seconds.
    RateLimited(u64),
    /// A store failure or an amount out of the wire format's range; already logged.
    Internal,
    /// The store is away, full or too slow: retry shortly (503 where the dialect has statuses).
    Unavailable,
}

impl From<StoreError> for Problem {
    /// Logged (at most once per interval for a repeated error).
    fn from(e: StoreError) -> Self {
        match AuthFailure::from(e) {
            AuthFailure::Unavailable => Problem::Unavailable,
            _ => Problem::Internal,
        }
    }
}

/// Log a store failure and answer "internal".
pub fn internal(what: &str, e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "{what}");
    Problem::Internal
}

/// Every wallet of `owner`, grouped by currency in the order of their first wallet.
pub async fn balances(s: &AppState, owner: OwnerId) -> Result<Vec<CurrencySummary>, Problem> {
    Ok(service::balances::summary(&s.store, owner).await?)
}

/// A currency the platform knows (ISO 4217, a configured extra, or one of its own).
pub async fn currency(s: &AppState, platform: OwnerId, text: &str) -> Result<CurrencyCode, Problem> {
    match service::balances::known_currency(&s.store, platform, text).await? {
        Some(c) => Ok(c),
        None => Err(Problem::UnknownCurrency(text.chars().take(16).collect())),
    }
}

/// The per-key rate limit every API shares.
pub fn rate_limit(s: &AppState, key: &str) -> Result<(), Problem> {
    s.over_limit(key).map_or(Ok(()), |secs| Err(Problem::RateLimited(secs)))
}

pub use coffer_app::now;

fn datetime(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.0).unwrap_or_default()
}

/// ISO 8601 to the second with a numeric offset: `2024-03-01T00:00:00+00:00`.
pub fn iso_seconds(t: Timestamp) -> String {
    datetime(t).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// RFC 3339 to the millisecond in UTC: `2023-03-30T06:15:22.096Z`.
pub fn rfc3339_millis(t: Timestamp) -> String {
    datetime(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `yyyy-MM-dd HH:mm:ss` in UTC.
pub fn plain_seconds(t: Timestamp) -> String {
    datetime(t).format("%Y-%m-%d %H:%M:%S").to_string()
}

impl From<service::AppError> for Problem {
    /// What a dialect's movement list can meet beyond a store failure is a bug: logged.
    fn from(e: service::AppError) -> Self {
        match e {
            service::AppError::Store(e) => e.into(),
            e => internal("dialect read", e),
        }
    }
}

/// The owner's wallet of a type in a currency, if it has one.
pub async fn wallet_of(
    s: &AppState,
    owner: OwnerId,
    t: WalletType,
    currency: CurrencyCode,
) -> Result<Option<Account>, Problem> {
    use coffer_store::Store;
    let all = s.store.accounts_of(owner).await?;
    Ok(all.into_iter().find(|a| a.kind == AccountKind::Wallet(t) && a.currency == currency))
}

/// The journal positions `(after, through]` of the entries made in `[begin, end]`, `through`
/// no further than the settled position (so a page never misses a movement that settles later).
pub async fn positions(s: &AppState, begin: Timestamp, end: Timestamp) -> Result<(Seq, Seq), Problem> {
    use coffer_store::Store;
    let after = s.store.seq_at(Timestamp(begin.0 - 1)).await?;
    let through = s.store.seq_at(end).await?.min(s.store.settled_seq().await?);
    Ok((after, through.max(after)))
}
