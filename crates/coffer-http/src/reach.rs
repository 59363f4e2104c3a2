//! Reach: what a caller may see and change. Every decision of the kind is made here, so the
//! native API and the dialects cannot disagree about it.
//!
//! A caller acts as one owner (its key's owner, or a descendant named on-behalf-of) and reaches
//! that owner, its descendants, and their wallets. System accounts are reached by platform
//! callers only (a platform acting as itself reaches everything of its platform).
//!
//! - Owners, wallets, holds and incoming credits outside the reach answer "not found", like a
//!   missing id, so that ids cannot be probed.
//! - A journal entry is seen through the lines the caller reaches; its other lines are
//!   redacted (no account, amount or balance). An entry with no line in reach is not found.
//! - Money moves only where the caller reaches every account the operation changes: a
//!   reversal needs every line of the entry it reverses in reach.

use std::collections::HashMap;

use coffer_core::*;
use coffer_store::Store;

use crate::auth::Caller;
use crate::error::ApiError;

/// Which lines of one entry a caller reaches, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryReach(pub Vec<bool>);

impl EntryReach {
    /// Every line: what a platform sees of its own entries.
    pub fn whole(e: &Entry) -> Self {
        EntryReach(vec![true; e.lines.len()])
    }
    /// The caller may see the entry at all.
    pub fn any(&self) -> bool {
        self.0.iter().any(|&x| x)
    }
    /// The caller may change everything the entry changed (reverse it).
    pub fn all(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|&x| x)
    }
}

impl Caller {
    /// A platform acting as itself: it reaches every owner and account of its platform.
    pub fn is_platform(&self) -> bool {
        self.acting.id == self.acting.platform
    }

    /// Whether `owner` is the acting owner or one of its descendants.
    pub async fn reaches(&self, store: &dyn Store, owner: OwnerId) -> Result<bool, ApiError> {
        Ok(crate::auth::ancestry(store, owner, self.acting.id).await?.is_some())
    }

    /// The owner, if the caller reaches it; "not found" otherwise.
    pub async fn owner(&self, store: &dyn Store, id: OwnerId) -> Result<Owner, ApiError> {
        match store.owner(id).await? {
            Some(o) if self.reaches(store, id).await? => Ok(o),
            _ => Err(ApiError::from(LedgerError::OwnerNotFound(id))),
        }
    }

    /// The account, if it is a wallet the caller reaches; "not found" otherwise.
    pub async fn wallet(&self, store: &dyn Store, id: AccountId) -> Result<Account, ApiError> {
        match store.account(id).await? {
            Some(a) if a.is_wallet() && self.reaches(store, a.owner).await? => Ok(a),
            _ => Err(ApiError::from(LedgerError::AccountNotFound(id))),
        }
    }

    /// The hold and its wallet, if the caller reaches the wallet; "not found" otherwise.
    pub async fn hold(&self, store: &dyn Store, id: HoldId) -> Result<(Hold, Account), ApiError> {
        if let Some(h) = store.hold(id).await? {
            if let Ok(a) = self.wallet(store, h.account).await {
                return Ok((h, a));
            }
        }
        Err(LedgerError::HoldNotFound(id).into())
    }

    /// The incoming credit, if the caller reaches its wallet; "not found" otherwise.
    pub async fn incoming(&self, store: &dyn Store, id: IncomingId) -> Result<Incoming, ApiError> {
        if let Some(i) = store.incoming(id).await? {
            if self.wallet(store, i.account).await.is_ok() {
                return Ok(i);
            }
        }
        Err(LedgerError::IncomingNotFound(id).into())
    }

    /// Which lines of `e` the caller reaches: all of them for its platform acting as itself,
    /// else the lines of wallets of owners it reaches (never a system account's).
    pub async fn entry_reach(&self, store: &dyn Store, e: &Entry) -> Result<EntryReach, ApiError> {
        if e.platform != self.acting.platform {
            return Ok(EntryReach(vec![false; e.lines.len()]));
        }
        if self.is_platform() {
            return Ok(EntryReach::whole(e));
        }
        let mut known: HashMap<AccountId, bool> = HashMap::new();
        let mut seen = Vec::with_capacity(e.lines.len());
        for l in &e.lines {
            let reached = match known.get(&l.account) {
                Some(&r) => r,
                None => {
                    let r = match store.account(l.account).await? {
                        Some(a) if a.is_wallet() => self.reaches(store, a.owner).await?,
                        _ => false,
                    };
                    known.insert(l.account, r);
                    r
                }
            };
            seen.push(reached);
        }
        Ok(EntryReach(seen))
    }

    /// The entry and the lines the caller sees of it; "not found" when it sees none.
    pub async fn entry(&self, store: &dyn Store, seq: Seq) -> Result<(Entry, EntryReach), ApiError> {
        if let Some(e) = store.entry(seq).await? {
            let reach = self.entry_reach(store, &e).await?;
            if reach.any() {
                return Ok((e, reach));
            }
        }
        Err(LedgerError::EntryNotFound(seq).into())
    }

    /// The entry, if the caller reaches every account it changed (and so may reverse it). An
    /// entry seen only in part is refused as not found too: it names money outside the reach.
    pub async fn entry_to_change(&self, store: &dyn Store, seq: Seq) -> Result<Entry, ApiError> {
        match self.entry(store, seq).await {
            Ok((e, reach)) if reach.all() => Ok(e),
            _ => Err(LedgerError::EntryNotFound(seq).into()),
        }
    }
}
