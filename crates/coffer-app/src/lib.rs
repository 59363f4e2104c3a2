//! Coffer's application layer, between the shells (native API, dialects, CLI) and the store:
//!
//! - [`directory`]: the store as the shells see it, with an exact cache of what every request
//!   needs before its real work (API keys, owners and their ancestry, currency exponents, the
//!   owner of each account), kept exact by the store's directory version;
//! - [`auth`]: who a request acts as (key, secret, owner standing, on-behalf-of);
//! - [`reach`]: what that caller may see and change, decided in one place;
//! - [`render`]: the views the APIs answer with, amounts already in their exponents;
//! - [`secrets`]: server keys shared by every node (token HMAC, platform RSA signing keys);
//! - [`tail`]: the settled end of each platform's journal in memory, shared by feed readers;
//! - [`cpu`]: a bounded pool for CPU-heavy work (RSA), off the async workers;
//! - [`service`]: the use-cases (movements, holds, wallets, owners, keys, journal, balances,
//!   rates) that every shell calls; no shell builds a command or calls the store itself.

pub mod auth;
pub mod cpu;
pub mod directory;
pub mod reach;
pub mod render;
pub mod secrets;
pub mod service;
pub mod tail;
pub mod webhooks;

pub use directory::Directory;

/// Now, to the microsecond.
pub fn now() -> coffer_core::Timestamp {
    coffer_core::Timestamp(chrono::Utc::now().timestamp_micros())
}
