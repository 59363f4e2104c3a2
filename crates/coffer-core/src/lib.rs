//! Coffer's ledger core: the rules of the money model as plain functions over plain data.
//!
//! Nothing in this crate does I/O. A store builds a [`Ledger`] working set, runs commands
//! through [`Ledger::execute`], and persists the [`Changes`] it hands back.

pub mod alerts;
pub mod command;
pub mod error;
pub mod events;
pub mod fx;
pub mod ledger;
pub mod model;
pub mod money;
pub mod summary;
pub mod text;
pub mod verify;

pub use command::{AccountRef, Command, MoneyOp, Movement, Needs, Posting};
pub use error::LedgerError;
pub use ledger::{Changes, Counters, CountingIds, Ctx, EntryRef, IdSource, IdemRecord, Ledger, Outcome, Refs, UuidV7};
pub use model::*;
pub use money::{CurrencyCode, CurrencyTable, Money, MoneyError, Rate};
