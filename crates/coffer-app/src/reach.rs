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
use coffer_store::{Store, StoreError};

use crate::auth::Caller;
use crate::directory::{Directory, Place};

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

/// Whether the caller reaches each owner, remembered over one long read (the event feed walks
/// many entries whose wallets belong to few owners). Exact while it lives: an owner's place in
/// the tree never changes.
#[derive(Debug, Default)]
pub struct OwnerMemo(HashMap<OwnerId, bool>);

impl Caller {
    /// [`Caller::entry_reach`] given the owner of each line's wallet (`None`: a system
    /// account), as the journal tail keeps them (`crate::tail`).
    pub async fn entry_reach_known(
        &self,
        dir: &Directory,
        e: &Entry,
        owners: &[Option<OwnerId>],
        memo: &mut OwnerMemo,
    ) -> Result<EntryReach, StoreError> {
        if e.platform != self.acting.platform {
            return Ok(EntryReach(vec![false; e.lines.len()]));
        }
        if self.is_platform() {
            return Ok(EntryReach::whole(e));
        }
        let mut seen = Vec::with_capacity(owners.len());
        for o in owners {
            seen.push(match o {
                None => false,
                Some(o) => self.reaches_memo(dir, *o, memo).await?,
            });
        }
        Ok(EntryReach(seen))
    }

    /// Whether the caller reaches `owner` (of `platform`), remembered in `memo`.
    pub async fn reaches_memo(
        &self,
        dir: &Directory,
        owner: OwnerId,
        memo: &mut OwnerMemo,
    ) -> Result<bool, StoreError> {
        if let Some(&r) = memo.0.get(&owner) {
            return Ok(r);
        }
        let r = self.reaches(dir, owner).await?;
        memo.0.insert(owner, r);
        Ok(r)
    }

    /// A platform acting as itself: it reaches every owner and account of its platform.
    pub fn is_platform(&self) -> bool {
        self.acting.id == self.acting.platform
    }

    /// Whether `owner` is the acting owner or one of its descendants.
    pub async fn reaches(&self, dir: &Directory, owner: OwnerId) -> Result<bool, StoreError> {
        if let Some(r) = dir.cached_under(owner, self.acting.id) {
            return Ok(r);
        }
        Ok(crate::auth::ancestry(dir, owner, self.acting.id).await?.is_some())
    }

    /// The owner, if the caller reaches it; "not found" otherwise.
    pub async fn owner(&self, dir: &Directory, id: OwnerId) -> Result<Owner, StoreError> {
        match dir.owner(id).await? {
            Some(o) if self.reaches(dir, id).await? => Ok(o),
            _ => Err(StoreError::from(LedgerError::OwnerNotFound(id))),
        }
    }

    /// The account, if it is a wallet the caller reaches; "not found" otherwise.
    pub async fn wallet(&self, dir: &Directory, id: AccountId) -> Result<Account, StoreError> {
        self.wallet_found(dir, id, dir.account(id).await?).await
    }

    /// `found` (the account `id` as read), if it is a wallet the caller reaches.
    pub async fn wallet_found(
        &self,
        dir: &Directory,
        id: AccountId,
        found: Option<Account>,
    ) -> Result<Account, StoreError> {
        match found {
            Some(a) if a.is_wallet() && self.reaches(dir, a.owner).await? => Ok(a),
            _ => Err(StoreError::from(LedgerError::AccountNotFound(id))),
        }
    }

    /// What never changes about the wallet (owner, currency, exponent), if the caller reaches
    /// it; "not found" otherwise. What a movement needs before its commit, usually from memory.
    pub async fn wallet_ref(&self, dir: &Directory, id: AccountId) -> Result<Place, StoreError> {
        match dir.place(id).await? {
            Some(p) if p.wallet && self.reaches(dir, p.owner).await? => Ok(p),
            _ => Err(StoreError::from(LedgerError::AccountNotFound(id))),
        }
    }

    /// The hold and its wallet, if the caller reaches the wallet; "not found" otherwise.
    pub async fn hold(&self, dir: &Directory, id: HoldId) -> Result<(Hold, Account), StoreError> {
        if let Some(h) = dir.hold(id).await? {
            if let Ok(a) = self.wallet(dir, h.account).await {
                return Ok((h, a));
            }
        }
        Err(LedgerError::HoldNotFound(id).into())
    }

    /// The incoming credit, if the caller reaches its wallet; "not found" otherwise.
    pub async fn incoming(&self, dir: &Directory, id: IncomingId) -> Result<Incoming, StoreError> {
        if let Some(i) = dir.incoming(id).await? {
            if self.wallet(dir, i.account).await.is_ok() {
                return Ok(i);
            }
        }
        Err(LedgerError::IncomingNotFound(id).into())
    }

    /// Which lines of `e` the caller reaches: all of them for its platform acting as itself,
    /// else the lines of wallets of owners it reaches (never a system account's).
    pub async fn entry_reach(&self, dir: &Directory, e: &Entry) -> Result<EntryReach, StoreError> {
        if e.platform != self.acting.platform {
            return Ok(EntryReach(vec![false; e.lines.len()]));
        }
        if self.is_platform() {
            return Ok(EntryReach::whole(e));
        }
        let mut seen: Vec<bool> = Vec::with_capacity(e.lines.len());
        for (i, l) in e.lines.iter().enumerate() {
            // An account on an earlier line is decided already (entries have few lines).
            let earlier = e.lines[..i].iter().position(|m| m.account == l.account);
            let reached = match earlier {
                Some(j) => seen[j],
                None => match dir.place(l.account).await? {
                    Some(p) if p.wallet => self.reaches(dir, p.owner).await?,
                    _ => false,
                },
            };
            seen.push(reached);
        }
        Ok(EntryReach(seen))
    }

    /// The entry and the lines the caller sees of it; "not found" when it sees none.
    pub async fn entry(&self, dir: &Directory, seq: Seq) -> Result<(Entry, EntryReach), StoreError> {
        if let Some(e) = dir.entry(seq).await? {
            let reach = self.entry_reach(dir, &e).await?;
            if reach.any() {
                return Ok((e, reach));
            }
        }
        Err(LedgerError::EntryNotFound(seq).into())
    }

    /// The entry, if the caller reaches every account it changed (and so may reverse it). An
    /// entry seen only in part is refused as not found too: it names money outside the reach.
    pub async fn entry_to_change(&self, dir: &Directory, seq: Seq) -> Result<Entry, StoreError> {
        match self.entry(dir, seq).await {
            Ok((e, reach)) if reach.all() => Ok(e),
            _ => Err(LedgerError::EntryNotFound(seq).into()),
        }
    }
}
