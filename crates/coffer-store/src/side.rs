//! Writes beside the ledger (request-id claims, server settings, exchange rates) that a
//! backend commits in a batch's transaction and answers after the same commit. Each backend
//! applies them in its own SQL; the answers are delivered here.

use coffer_core::fx::RateQuote;
use coffer_core::{OwnerId, Timestamp};
use tokio::sync::oneshot;

use crate::StoreError;

/// A write that is not a ledger command. The backend's `apply_side` runs it inside a batch's transaction and keeps its answer; `deliver` sends it once the batch is
/// durable (or the batch's failure instead).
pub(crate) enum Side {
    Nonce {
        scope: String,
        nonce: String,
        expires_at: Timestamp,
        fresh: bool,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Setting {
        name: String,
        value: String,
        reply: oneshot::Sender<Result<String, StoreError>>,
    },
    Rates {
        platform: OwnerId,
        rates: Vec<RateQuote>,
        reply: oneshot::Sender<Result<Vec<RateQuote>, StoreError>>,
    },
}

impl Side {
    pub(crate) fn deliver(self, failed: bool) {
        let lost = || StoreError::Storage("the write could not be made durable".into());
        match self {
            Side::Nonce { fresh, reply, .. } => drop(reply.send(if failed { Err(lost()) } else { Ok(fresh) })),
            Side::Setting { value, reply, .. } => drop(reply.send(if failed { Err(lost()) } else { Ok(value) })),
            Side::Rates { rates, reply, .. } => drop(reply.send(if failed { Err(lost()) } else { Ok(rates) })),
        }
    }
}
