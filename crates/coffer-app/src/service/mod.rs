//! The use-cases every shell runs. The native API, the dialects and the CLI parse their input
//! (ids, names, times) into the plain requests taken here and render the views returned; this
//! layer resolves what the request names through the caller's reach, parses amounts in the
//! right exponent, builds the core command, runs it and renders the answer. No shell builds a
//! command or calls the store itself.
//!
//! Who may do what is decided through an [`Actor`]: an API caller (its reach is
//! [`crate::reach`]'s) or the local operator (the CLI on its own data directory, which reaches
//! every owner and account).
//!
//! - [`movements`]: deposits, payouts, fees, transfers, postings, reversals, FX conversions,
//!   holds and incoming credits, planned here and committed by [`commit`];
//! - [`wallets`], [`owners`], [`keys`]: the directory's changes and reads;
//! - [`journal`]: transactions and wallet history;
//! - [`balances`]: balances now and as of an instant, and the per-currency summaries the
//!   dialects show.

use std::collections::BTreeMap;

use coffer_core::fx::FxError;
use coffer_core::money::parse_minor;
use coffer_core::*;
use coffer_store::{Receipt, Store, StoreError};

use crate::auth::{Caller, ReadOnlyKey};
use crate::directory::{Directory, Place};
use crate::reach::EntryReach;
use crate::render::{self, MovementView};

pub mod alerts;
pub mod balances;
pub mod events;
pub mod journal;
pub mod keys;
pub mod movements;
pub mod owners;
pub mod rates;
pub mod rows;
pub mod statements;
pub mod wallets;

/// Why a use-case refused or failed. Each shell maps these to its own envelope in one table.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A ledger rule, a missing record, or the store (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An exchange-rate refusal (missing, stale, invalid rate, overflow).
    #[error(transparent)]
    Fx(#[from] FxError),
    /// A request the use-case cannot take as it is (400 in the native API).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Allowed to this kind of caller only (403 in the native API).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A name that denotes nothing the caller reaches (an id not in reach, a system account
    /// named by a caller that does not reach system accounts).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("this API key is read-only")]
    ReadOnly,
    /// The request field or header at fault, around the error it caused.
    #[error("{1}")]
    At(&'static str, Box<AppError>),
}

impl AppError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid { code, message: message.into() }
    }
    pub fn not_found(what: &'static str, id: &str) -> Self {
        AppError::NotFound { what, id: id.chars().take(64).collect() }
    }
    /// The same error, naming the field at fault.
    pub fn at(self, param: &'static str) -> Self {
        AppError::At(param, Box::new(self))
    }
}

impl From<LedgerError> for AppError {
    fn from(e: LedgerError) -> Self {
        AppError::Store(StoreError::from(e))
    }
}

impl From<MoneyError> for AppError {
    fn from(e: MoneyError) -> Self {
        LedgerError::from(e).into()
    }
}

impl From<UnknownName> for AppError {
    fn from(e: UnknownName) -> Self {
        AppError::invalid("invalid_argument", e.to_string())
    }
}

impl From<ReadOnlyKey> for AppError {
    fn from(_: ReadOnlyKey) -> Self {
        AppError::ReadOnly
    }
}

/// Attribute an error to a request field.
pub trait At<T> {
    fn at(self, param: &'static str) -> Result<T, AppError>;
}

impl<T, E: Into<AppError>> At<T> for Result<T, E> {
    fn at(self, param: &'static str) -> Result<T, AppError> {
        self.map_err(|e| e.into().at(param))
    }
}

/// Who a use-case runs for.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An API caller: it reaches the owner it acts as and that owner's descendants.
    Key(&'a Caller),
    /// The operator of the data directory or database (the CLI): it reaches everything.
    Operator,
}

impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(c: &'a Caller) -> Self {
        Actor::Key(c)
    }
}

impl Actor<'_> {
    pub fn require_write(&self) -> Result<(), AppError> {
        match self {
            Actor::Key(c) => Ok(c.require_write()?),
            Actor::Operator => Ok(()),
        }
    }

    /// The caller reaches the platform's system accounts (a platform acting as itself).
    pub fn reaches_system(&self) -> bool {
        match self {
            Actor::Key(c) => c.is_platform(),
            Actor::Operator => true,
        }
    }

    pub async fn owner(&self, dir: &Directory, id: OwnerId) -> Result<Owner, AppError> {
        match self {
            Actor::Key(c) => Ok(c.owner(dir, id).await?),
            Actor::Operator => Ok(dir.owner(id).await?.ok_or(LedgerError::OwnerNotFound(id))?),
        }
    }

    /// A wallet (for the operator: any account) with its balances.
    pub async fn wallet(&self, dir: &Directory, id: AccountId) -> Result<Account, AppError> {
        match self {
            Actor::Key(c) => Ok(c.wallet(dir, id).await?),
            Actor::Operator => Ok(dir.account(id).await?.ok_or(LedgerError::AccountNotFound(id))?),
        }
    }

    /// What never changes about a wallet (for the operator: any account), usually from memory.
    pub async fn wallet_ref(&self, dir: &Directory, id: AccountId) -> Result<Place, AppError> {
        match self {
            Actor::Key(c) => Ok(c.wallet_ref(dir, id).await?),
            Actor::Operator => Ok(dir.place(id).await?.ok_or(LedgerError::AccountNotFound(id))?),
        }
    }

    pub async fn hold(&self, dir: &Directory, id: HoldId) -> Result<(Hold, Account), AppError> {
        match self {
            Actor::Key(c) => Ok(c.hold(dir, id).await?),
            Actor::Operator => {
                let h = dir.hold(id).await?.ok_or(LedgerError::HoldNotFound(id))?;
                let a = dir.account(h.account).await?.ok_or(LedgerError::HoldNotFound(id))?;
                Ok((h, a))
            }
        }
    }

    pub async fn incoming(&self, dir: &Directory, id: IncomingId) -> Result<Incoming, AppError> {
        match self {
            Actor::Key(c) => Ok(c.incoming(dir, id).await?),
            Actor::Operator => Ok(dir.incoming(id).await?.ok_or(LedgerError::IncomingNotFound(id))?),
        }
    }

    pub async fn entry_reach(&self, dir: &Directory, e: &Entry) -> Result<EntryReach, AppError> {
        match self {
            Actor::Key(c) => Ok(c.entry_reach(dir, e).await?),
            Actor::Operator => Ok(EntryReach::whole(e)),
        }
    }

    /// [`Actor::entry_reach`] of an entry from the journal tail, which knows its lines' owners.
    pub async fn entry_reach_known(
        &self,
        dir: &Directory,
        t: &crate::tail::Tailed,
        memo: &mut crate::reach::OwnerMemo,
    ) -> Result<EntryReach, AppError> {
        match self {
            Actor::Key(c) => Ok(c.entry_reach_known(dir, &t.entry, &t.owners, memo).await?),
            Actor::Operator => Ok(EntryReach::whole(&t.entry)),
        }
    }

    /// Whether the caller reaches `owner` of `platform` (a status change's), remembered in `memo`.
    pub async fn reaches_known(
        &self,
        dir: &Directory,
        platform: OwnerId,
        owner: OwnerId,
        memo: &mut crate::reach::OwnerMemo,
    ) -> Result<bool, AppError> {
        match self {
            Actor::Key(c) if c.acting.platform != platform => Ok(false),
            Actor::Key(c) => Ok(c.is_platform() || c.reaches_memo(dir, owner, memo).await?),
            Actor::Operator => Ok(true),
        }
    }

    /// The entry and the lines the caller sees of it.
    pub async fn entry(&self, dir: &Directory, seq: Seq) -> Result<(Entry, EntryReach), AppError> {
        match self {
            Actor::Key(c) => Ok(c.entry(dir, seq).await?),
            Actor::Operator => {
                let e = dir.entry(seq).await?.ok_or(LedgerError::EntryNotFound(seq))?;
                let r = EntryReach::whole(&e);
                Ok((e, r))
            }
        }
    }

    /// The entry, if the caller reaches every account it changed (and so may reverse it).
    pub async fn entry_to_change(&self, dir: &Directory, seq: Seq) -> Result<Entry, AppError> {
        match self {
            Actor::Key(c) => Ok(c.entry_to_change(dir, seq).await?),
            Actor::Operator => Ok(self.entry(dir, seq).await?.0),
        }
    }

    /// The platform a request is about: a key's own; the operator must name one, which must
    /// exist.
    pub async fn platform_of(&self, dir: &Directory, named: Option<OwnerId>) -> Result<OwnerId, AppError> {
        match (self, named) {
            (Actor::Key(c), _) => Ok(c.key.platform),
            (Actor::Operator, Some(p)) => self.platform(dir, p).await,
            (Actor::Operator, None) => Err(AppError::invalid("invalid_argument", "name the platform").at("platform")),
        }
    }

    /// The platform an API key belongs to; the operator names one, which must exist.
    pub async fn platform(&self, dir: &Directory, named: OwnerId) -> Result<OwnerId, AppError> {
        match self {
            Actor::Key(c) => Ok(c.key.platform),
            Actor::Operator => match dir.owner(named).await? {
                Some(o) if o.kind == OwnerKind::Platform => Ok(o.id),
                _ => Err(LedgerError::OwnerNotFound(named).into()),
            },
        }
    }

    /// The platform the caller's changes belong to: its own; the operator names one.
    pub fn platform_or(&self, named: OwnerId) -> OwnerId {
        match self {
            Actor::Key(c) => c.acting.platform,
            Actor::Operator => named,
        }
    }
}

/// `amount` (a decimal string) in the account's currency and exponent; `currency`, when given,
/// must be a known currency of the platform and the account's.
pub async fn money(dir: &Directory, a: &Place, amount: &str, currency: Option<&str>) -> Result<Money, AppError> {
    if let Some(c) = currency {
        let c: CurrencyCode = c.parse().at("currency")?;
        dir.exponent(a.platform, c).await.at("currency")?;
        if c != a.currency {
            return Err(LedgerError::CurrencyMismatch { account: a.id, actual: a.currency, requested: c }.into());
        }
    }
    Ok(Money::new(parse_minor(amount, a.exponent).at("amount")?, a.currency))
}

/// A limit (min balance, overdraft) in an exponent: absent is `None`.
pub fn limit(v: Option<&str>, exponent: u8, field: &'static str) -> Result<Option<i64>, AppError> {
    v.map(|v| parse_minor(v, exponent).at(field)).transpose()
}

/// A money movement resolved and checked, ready to commit: the platform whose idempotency keys
/// it uses, and the operation.
#[derive(Debug, Clone)]
pub struct Planned {
    pub platform: OwnerId,
    pub op: MoneyOp,
}

/// What a movement's caller is told, and whether it replays an earlier answer.
#[derive(Debug, Clone)]
pub struct Moved {
    pub view: MovementView,
    pub replayed: bool,
}

/// Run a planned movement under its idempotency key and render it as the caller sees it.
pub async fn commit(
    dir: &Directory,
    actor: Actor<'_>,
    planned: Planned,
    idempotency_key: String,
    metadata: BTreeMap<String, String>,
) -> Result<Moved, AppError> {
    actor.require_write()?;
    let m = Movement { platform: planned.platform, idempotency_key, metadata, op: planned.op };
    let r = dir.execute(Command::Move(m)).await?;
    moved(dir, actor, r).await
}

/// A committed movement as the caller sees it (lines outside its reach redacted).
async fn moved(dir: &Directory, actor: Actor<'_>, r: Receipt) -> Result<Moved, AppError> {
    match &r.outcome {
        Outcome::Entry { entry, hold, incoming } => {
            let reach = actor.entry_reach(dir, entry).await?;
            let view = render::movement(dir, entry, hold.as_ref(), incoming.as_ref(), r.replayed, &reach).await?;
            Ok(Moved { view, replayed: r.replayed })
        }
        _ => Err(unexpected("movement")),
    }
}

/// Run a directory command (owners, wallets, keys) and return its outcome.
async fn run(dir: &Directory, actor: Actor<'_>, cmd: Command) -> Result<Outcome, AppError> {
    actor.require_write()?;
    Ok(dir.execute(cmd).await?.outcome)
}

/// A command answered with an outcome of another kind: a bug, logged and reported as such.
fn unexpected(what: &str) -> AppError {
    tracing::error!(what, "unexpected outcome");
    AppError::Store(StoreError::Storage(format!("unexpected outcome for {what}")))
}

/// Claim a request id within `scope` until `until` (durable, and atomic across nodes):
/// `false` when it was claimed already.
pub async fn claim_request_id(dir: &Directory, scope: &str, id: &str, until: Timestamp) -> Result<bool, StoreError> {
    dir.claim_nonce(scope, id, until).await
}
