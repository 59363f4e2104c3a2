//! Writes beside the ledger (request-id claims, server settings, exchange rates, alerts) that a
//! backend commits in a batch's transaction and answers after the same commit. Each backend
//! applies them in its own SQL; the answers are delivered here.

use coffer_core::alerts::Alert;
use coffer_core::fx::RateQuote;
use coffer_core::{AlertId, OwnerId, StatusChange, Timestamp};
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
    /// A new alert; the backend sets its position and time.
    PutAlert {
        alert: Alert,
        reply: oneshot::Sender<Result<Alert, StoreError>>,
    },
    /// A webhook document written if its version is still `expected` (`None`: a new one);
    /// `version` is the new version, or `None` when another write came first. With it, when
    /// written, a status change (the backend numbers it).
    SaveWebhook {
        platform: OwnerId,
        id: uuid::Uuid,
        body: String,
        expected: Option<u64>,
        version: Option<u64>,
        status: Option<Box<StatusChange>>,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// An alert marked deleted (if it was not); `found` is the alert as stored after.
    DeleteAlert {
        platform: OwnerId,
        id: AlertId,
        found: Option<Alert>,
        reply: oneshot::Sender<Result<Option<Alert>, StoreError>>,
    },
}

impl Side {
    /// Answer the write: done, or `failure` (the batch's error) when the batch was not committed.
    pub(crate) fn deliver(self, failure: Option<&StoreError>) {
        fn answer<T>(v: T, failure: Option<&StoreError>) -> Result<T, StoreError> {
            failure.map_or(Ok(v), |e| Err(e.for_batch()))
        }
        match self {
            Side::Nonce { fresh, reply, .. } => drop(reply.send(answer(fresh, failure))),
            Side::Setting { value, reply, .. } => drop(reply.send(answer(value, failure))),
            Side::Rates { rates, reply, .. } => drop(reply.send(answer(rates, failure))),
            Side::PutAlert { alert, reply } => drop(reply.send(answer(alert, failure))),
            Side::SaveWebhook { id, version, reply, .. } => {
                let r = answer(version, failure)
                    .and_then(|v| v.ok_or_else(|| StoreError::Conflict(format!("webhook {id} was changed meanwhile"))));
                drop(reply.send(r))
            }
            Side::DeleteAlert { found, reply, .. } => drop(reply.send(answer(found, failure))),
        }
    }
}
