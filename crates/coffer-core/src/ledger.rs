//! The ledger state machine: [`Ledger::execute`] applies one [`Command`] to a working set of
//! plain data, or refuses it and changes nothing.
//!
//! A store keeps a working set: every owner and account, every open hold and pending incoming
//! credit, and, loaded on demand before a command runs ([`Command::needs`]), the idempotency
//! record, closed hold or incoming, or journal entry the command refers to. Execution never does
//! I/O; time and fresh ids come from the caller's [`Ctx`].

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use crate::command::{limits, AccountRef, Command, MoneyOp, Movement, Needs, Posting};
use crate::error::{invalid, LedgerError};
use crate::model::*;
use crate::money::{format_minor, CurrencyCode, CurrencyTable, Money, MAX_AMOUNT, MAX_EXPONENT};
use crate::text::{check_idempotency_key, check_key_id, check_metadata, check_name, check_public_key};

/// Where fresh ids come from (random v7 UUIDs in a store, a counter in tests).
pub trait IdSource {
    fn next_uuid(&mut self) -> Uuid;
}

/// Time-ordered random UUIDs.
#[derive(Debug, Default)]
pub struct UuidV7;
impl IdSource for UuidV7 {
    fn next_uuid(&mut self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic ids for tests: 1, 2, 3, ...
#[derive(Debug, Default)]
pub struct CountingIds(pub u128);
impl IdSource for CountingIds {
    fn next_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(self.0)
    }
}

/// What execution may take from the outside world.
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub ids: &'a mut dyn IdSource,
}

/// The first accepted request under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    pub request_hash: String,
    pub seq: Seq,
}

/// What reversal needs to know of an earlier entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    pub seq: Seq,
    pub platform: OwnerId,
    pub kind: EntryKind,
    /// (account, posted delta) of each line.
    pub posted: Vec<(AccountId, i64)>,
    pub reversed_by: Option<Seq>,
}

/// The result of an accepted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Owner(Owner),
    ApiKey(ApiKey),
    Account(Account),
    Entry {
        entry: Box<Entry>,
        hold: Option<Hold>,
        incoming: Option<Incoming>,
    },
    /// The idempotency key was used before with the same request: the store answers with the
    /// first result (the entry `seq`).
    Replay {
        seq: Seq,
    },
}

/// Everything changed since the last [`Ledger::take_changes`]: what a store must persist.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub owners: HashSet<OwnerId>,
    /// Accounts whose balances or settings changed, or that are new.
    pub accounts: HashSet<AccountId>,
    /// Of those, the new ones...
    pub new_accounts: HashSet<AccountId>,
    /// ... and those whose settings (status, limits) changed: a store that derives balances
    /// from the journal writes only these two at commit.
    pub account_settings: HashSet<AccountId>,
    pub holds: HashSet<HoldId>,
    pub incomings: HashSet<IncomingId>,
    pub keys: HashSet<String>,
    pub entries: Vec<Entry>,
    /// Status changes, in the order made; each holds a journal number of its own.
    pub statuses: Vec<StatusChange>,
}

/// What a command reads (see [`Ledger::refs`]). Lists may repeat an item.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refs {
    pub owners: Vec<OwnerId>,
    pub accounts: Vec<AccountId>,
    /// Accounts named by (owner, kind, currency): a platform's system accounts, and the wallet
    /// an `OpenWallet` must not duplicate. They may not exist yet.
    pub keyed: Vec<(OwnerId, AccountKind, CurrencyCode)>,
    pub holds: Vec<HoldId>,
    pub incomings: Vec<IncomingId>,
    pub entries: Vec<Seq>,
    pub keys: Vec<String>,
    pub idempotency: Option<(OwnerId, String)>,
}

/// The counters a working set carries between batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub next_seq: Seq,
    pub next_account_number: u64,
    /// Latest entry time: entry times never go backwards in `seq` order.
    pub last_ts: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    currencies: CurrencyTable,
    owners: HashMap<OwnerId, Owner>,
    accounts: HashMap<AccountId, Account>,
    by_key: HashMap<(OwnerId, AccountKind, CurrencyCode), AccountId>,
    holds: HashMap<HoldId, Hold>,
    incomings: HashMap<IncomingId, Incoming>,
    keys: HashMap<String, ApiKey>,
    idempotency: HashMap<(OwnerId, String), IdemRecord>,
    entries: HashMap<Seq, EntryRef>,
    deadlines: BTreeSet<(Timestamp, HoldId)>,
    counters: Counters,
    changes: Changes,
}

/// An account a plan touches: an existing one, or a platform system account to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Existing(AccountId),
    NewSystem(SystemAccount, CurrencyCode),
}

#[derive(Debug, Clone, Copy)]
struct Delta {
    slot: Slot,
    posted: i64,
    held: i64,
    incoming: i64,
}

impl Delta {
    fn posted(slot: Slot, v: i64) -> Self {
        Delta { slot, posted: v, held: 0, incoming: 0 }
    }
}

/// A delta checked against the working set, with the balances after it.
#[derive(Debug, Clone, Copy)]
struct Checked {
    slot: Slot,
    currency: CurrencyCode,
    d: Delta,
    after: (i64, i64, i64),
}

/// What a money operation would do, before it is checked.
struct Plan {
    deltas: Vec<Delta>,
    /// Whether frozen/closed wallets and deleted owners refuse this plan (false for releases,
    /// expiries and cancellations, which only give back).
    enforce_status: bool,
    hold: Option<HoldChange>,
    incoming: Option<IncomingChange>,
    reverses: Option<Seq>,
    fx: Option<FxDetail>,
}

enum HoldChange {
    Create { account: AccountId, amount: i64, expires_at: Option<Timestamp> },
    Close { hold: HoldId, status: HoldStatus, captured: i64 },
}
enum IncomingChange {
    Create { account: AccountId, amount: i64 },
    Close { incoming: IncomingId, status: IncomingStatus },
}

impl Plan {
    fn new(deltas: Vec<Delta>) -> Self {
        Plan { deltas, enforce_status: true, hold: None, incoming: None, reverses: None, fx: None }
    }
}

fn bounded(v: Option<i64>) -> Result<i64, LedgerError> {
    match v {
        Some(x) if x.unsigned_abs() <= MAX_AMOUNT as u64 => Ok(x),
        _ => Err(LedgerError::Overflow),
    }
}

fn check_limit(field: &'static str, v: i64) -> Result<(), LedgerError> {
    if !(0..=MAX_AMOUNT).contains(&v) {
        return Err(invalid(field, "must be zero or positive and within range"));
    }
    Ok(())
}

/// Prefix of the idempotency keys the store uses for hold expiry (see [`expiry_movement`]).
pub const RESERVED_KEY_PREFIX: &str = "coffer:";

/// The movement a store issues when `hold`'s deadline has passed.
pub fn expiry_movement(platform: OwnerId, hold: HoldId) -> Movement {
    Movement {
        platform,
        idempotency_key: format!("{RESERVED_KEY_PREFIX}expire:{hold}"),
        metadata: Default::default(),
        op: MoneyOp::HoldExpire { hold },
    }
}

fn positive(m: Money) -> Result<i64, LedgerError> {
    if m.minor <= 0 {
        return Err(LedgerError::AmountNotPositive);
    }
    bounded(Some(m.minor))
}

impl Ledger {
    pub fn new(currencies: CurrencyTable) -> Self {
        Ledger { currencies, ..Default::default() }
    }

    // ---- loading (used by stores to build and refill the working set) ----

    pub fn set_counters(&mut self, c: Counters) {
        self.counters = c;
    }
    pub fn counters(&self) -> Counters {
        self.counters
    }
    pub fn insert_owner(&mut self, o: Owner) {
        self.owners.insert(o.id, o);
    }
    pub fn insert_account(&mut self, a: Account) {
        self.by_key.insert((a.owner, a.kind, a.currency), a.id);
        self.accounts.insert(a.id, a);
    }
    pub fn insert_hold(&mut self, h: Hold) {
        if h.status == HoldStatus::Open {
            if let Some(t) = h.expires_at {
                self.deadlines.insert((t, h.id));
            }
        }
        self.holds.insert(h.id, h);
    }
    pub fn insert_api_key(&mut self, k: ApiKey) {
        self.keys.insert(k.id.clone(), k);
    }
    pub fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.keys.get(id)
    }
    pub fn api_keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.values()
    }
    pub fn insert_incoming(&mut self, i: Incoming) {
        self.incomings.insert(i.id, i);
    }
    pub fn insert_idempotency(&mut self, platform: OwnerId, key: String, rec: IdemRecord) {
        self.idempotency.insert((platform, key), rec);
    }
    pub fn insert_entry_ref(&mut self, e: EntryRef) {
        self.entries.insert(e.seq, e);
    }

    /// The part of `needs` that the working set does not hold yet.
    pub fn missing(&self, needs: &Needs) -> Needs {
        Needs {
            idempotency: needs.idempotency.clone().filter(|k| !self.idempotency.contains_key(k)),
            hold: needs.hold.filter(|h| !self.holds.contains_key(h)),
            incoming: needs.incoming.filter(|i| !self.incomings.contains_key(i)),
            entry: needs.entry.filter(|s| !self.entries.contains_key(s)),
        }
    }

    /// Everything `cmd` reads, as far as this working set can tell. A store that builds its
    /// working set afresh for every batch (several nodes on one database) loads what this names
    /// and asks again until nothing new appears: a hold's, incoming's or reversed entry's
    /// accounts, and the owners of the accounts, only show once those are loaded. The accounts
    /// named (by id or by key) are exactly the ones execution may change, so they are what
    /// such a store locks.
    pub fn refs(&self, cmd: &Command) -> Refs {
        let mut r = Refs::default();
        match cmd {
            Command::CreatePlatform { .. } => {}
            Command::CreateMerchant { parent: owner, .. } | Command::SetOwnerStatus { owner, .. } => {
                r.owners.push(*owner)
            }
            Command::OpenWallet { owner, wallet_type, currency, .. } => {
                r.owners.push(*owner);
                if let Some(o) = self.owners.get(owner) {
                    r.owners.push(o.platform);
                }
                r.keyed.push((*owner, AccountKind::Wallet(*wallet_type), *currency));
            }
            Command::SetWalletStatus { account, .. } | Command::SetWalletLimits { account, .. } => {
                r.accounts.push(*account)
            }
            Command::CreateApiKey { owner, id, .. } => {
                r.owners.push(*owner);
                r.keys.push(id.clone());
            }
            Command::RevokeApiKey { id } | Command::SetKeyPublicKey { id, .. } => r.keys.push(id.clone()),
            Command::Move(m) => self.movement_refs(m, &mut r),
        }
        r
    }

    fn movement_refs(&self, m: &Movement, r: &mut Refs) {
        let p = m.platform;
        r.owners.push(p);
        r.idempotency = Some((p, m.idempotency_key.clone()));
        let system =
            |r: &mut Refs, kind: SystemAccount, c: CurrencyCode| r.keyed.push((p, AccountKind::System(kind), c));
        let named = |r: &mut Refs, a: &AccountRef| match *a {
            AccountRef::Id(id) => r.accounts.push(id),
            AccountRef::System(kind, c) => system(r, kind, c),
        };
        match &m.op {
            MoneyOp::Postings { postings } => postings.iter().for_each(|x| named(r, &x.account)),
            MoneyOp::Deposit { account, amount, source } => {
                r.accounts.push(*account);
                system(r, *source, amount.currency);
            }
            MoneyOp::Payout { account, amount } => {
                r.accounts.push(*account);
                system(r, SystemAccount::External, amount.currency);
            }
            MoneyOp::Fee { account, amount } => {
                r.accounts.push(*account);
                system(r, SystemAccount::Fees, amount.currency);
            }
            MoneyOp::Transfer { from, to, .. } => r.accounts.extend([*from, *to]),
            MoneyOp::Reverse { seq } => {
                r.entries.push(*seq);
                if let Some(e) = self.entries.get(seq) {
                    r.accounts.extend(e.posted.iter().map(|(a, _)| *a));
                }
            }
            MoneyOp::HoldCreate { account, .. } | MoneyOp::IncomingCreate { account, .. } => r.accounts.push(*account),
            MoneyOp::HoldCapture { hold, destination, .. } => {
                r.holds.push(*hold);
                named(r, destination);
                if let Some(h) = self.holds.get(hold) {
                    r.accounts.push(h.account);
                }
            }
            MoneyOp::HoldRelease { hold } | MoneyOp::HoldExpire { hold } => {
                r.holds.push(*hold);
                if let Some(h) = self.holds.get(hold) {
                    r.accounts.push(h.account);
                }
            }
            MoneyOp::IncomingSettle { incoming } | MoneyOp::IncomingCancel { incoming } => {
                r.incomings.push(*incoming);
                if let Some(i) = self.incomings.get(incoming) {
                    r.accounts.push(i.account);
                    if let (MoneyOp::IncomingSettle { .. }, Some(a)) = (&m.op, self.accounts.get(&i.account)) {
                        system(r, SystemAccount::External, a.currency);
                    }
                }
            }
            MoneyOp::FxConvert { from, to, amount, .. } => {
                r.accounts.extend([*from, *to]);
                system(r, SystemAccount::FxClearing, amount.currency);
                if let Some(a) = self.accounts.get(to) {
                    system(r, SystemAccount::FxClearing, a.currency);
                }
            }
        }
        // Movements check the status of each wallet's owner.
        for id in &r.accounts {
            if let Some(a) = self.accounts.get(id) {
                r.owners.push(a.owner);
            }
        }
    }

    /// Drop what was loaded on demand and what no longer needs to be hot (closed holds and
    /// incomings). Call after the changes were persisted.
    pub fn evict_cold(&mut self) {
        self.idempotency.clear();
        self.entries.clear();
        self.holds.retain(|_, h| h.status == HoldStatus::Open);
        self.incomings.retain(|_, i| i.status == IncomingStatus::Pending);
    }

    /// The next journal number (an entry's, or a status change's).
    pub fn take_seq(&mut self) -> Seq {
        let seq = self.counters.next_seq.max(1);
        self.counters.next_seq = seq + 1;
        seq
    }

    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    // ---- reading ----

    pub fn owner(&self, id: OwnerId) -> Option<&Owner> {
        self.owners.get(&id)
    }
    pub fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.owners.values()
    }
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }
    pub fn account_by_key(&self, owner: OwnerId, kind: AccountKind, currency: CurrencyCode) -> Option<&Account> {
        self.by_key.get(&(owner, kind, currency)).and_then(|id| self.accounts.get(id))
    }
    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.holds.get(&id)
    }
    pub fn holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds.values()
    }
    pub fn incoming(&self, id: IncomingId) -> Option<&Incoming> {
        self.incomings.get(&id)
    }
    pub fn incomings(&self) -> impl Iterator<Item = &Incoming> {
        self.incomings.values()
    }

    /// Open holds whose deadline is at or before `now`, as (platform, hold), earliest first.
    pub fn due_holds(&self, now: Timestamp, max: usize) -> Vec<(OwnerId, HoldId)> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(max)
            .filter_map(|(_, h)| self.holds.get(h).map(|h| (h.platform, h.id)))
            .collect()
    }

    /// The earliest deadline of an open hold.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.iter().next().map(|(t, _)| *t)
    }

    /// The exponent of `currency` in `platform`'s wallets: the platform's override, else the
    /// standard one.
    pub fn exponent_for(&self, platform: OwnerId, currency: CurrencyCode) -> Result<u8, LedgerError> {
        let none = Default::default();
        let raised = self.owners.get(&platform).map_or(&none, |p| &p.currency_exponents);
        Ok(self.currencies.exponent_in(raised, currency)?)
    }

    // ---- execution ----

    /// Apply `cmd`, or refuse it and change nothing.
    pub fn execute(&mut self, cmd: &Command, ctx: &mut Ctx<'_>) -> Result<Outcome, LedgerError> {
        let now = ctx.now.max(self.counters.last_ts);
        match cmd {
            Command::CreatePlatform { name, default_currency, currency_exponents } => {
                check_name("name", name)?;
                self.currencies.exponent(*default_currency)?;
                for (c, e) in currency_exponents {
                    let std = self.currencies.exponent(*c)?;
                    if *e < std || *e > MAX_EXPONENT {
                        return Err(invalid(
                            "currency_exponents",
                            format!("{c} may only be raised from {std} up to {MAX_EXPONENT}, not set to {e}"),
                        ));
                    }
                }
                let id = OwnerId(ctx.ids.next_uuid());
                let o = Owner {
                    id,
                    kind: OwnerKind::Platform,
                    platform: id,
                    parent: None,
                    name: name.clone(),
                    status: OwnerStatus::Active,
                    default_currency: *default_currency,
                    currency_exponents: currency_exponents.clone(),
                    created_at: now,
                    updated_at: now,
                };
                self.owners.insert(id, o.clone());
                self.changes.owners.insert(id);
                Ok(Outcome::Owner(o))
            }
            Command::CreateMerchant { parent, name, default_currency } => {
                check_name("name", name)?;
                let p = self.owners.get(parent).ok_or(LedgerError::OwnerNotFound(*parent))?;
                if p.status == OwnerStatus::Deleted {
                    return Err(LedgerError::OwnerNotActive { owner: p.id, status: p.status });
                }
                let kind = match p.kind {
                    OwnerKind::Platform => OwnerKind::Merchant,
                    OwnerKind::Merchant => OwnerKind::SubMerchant,
                    OwnerKind::SubMerchant => {
                        return Err(invalid("parent", "a sub-merchant cannot have sub-merchants"));
                    }
                };
                let currency = default_currency.unwrap_or(p.default_currency);
                self.currencies.exponent(currency)?;
                let id = OwnerId(ctx.ids.next_uuid());
                let o = Owner {
                    id,
                    kind,
                    platform: p.platform,
                    parent: Some(p.id),
                    name: name.clone(),
                    status: OwnerStatus::Active,
                    default_currency: currency,
                    currency_exponents: Default::default(),
                    created_at: now,
                    updated_at: now,
                };
                self.owners.insert(id, o.clone());
                self.changes.owners.insert(id);
                Ok(Outcome::Owner(o))
            }
            Command::SetOwnerStatus { owner, status } => {
                let o = self.owners.get_mut(owner).ok_or(LedgerError::OwnerNotFound(*owner))?;
                if o.status == OwnerStatus::Deleted && *status != OwnerStatus::Deleted {
                    return Err(LedgerError::InvalidTransition { from: o.status.as_str(), to: status.as_str() });
                }
                if o.status == *status {
                    return Ok(Outcome::Owner(o.clone()));
                }
                let from = o.status;
                o.status = *status;
                o.updated_at = now;
                let (o, platform) = (o.clone(), o.platform);
                self.changes.owners.insert(*owner);
                let subject = StatusSubject::Owner(*owner);
                self.status_changed(platform, *owner, subject, from.as_str(), status.as_str(), now);
                Ok(Outcome::Owner(o))
            }
            Command::OpenWallet { owner, wallet_type, currency, overdraft_limit, min_balance } => {
                let o = self.owners.get(owner).ok_or(LedgerError::OwnerNotFound(*owner))?;
                if o.status == OwnerStatus::Deleted {
                    return Err(LedgerError::OwnerNotActive { owner: o.id, status: o.status });
                }
                check_limit("overdraft_limit", *overdraft_limit)?;
                check_limit("min_balance", *min_balance)?;
                let platform = o.platform;
                let exponent = self.exponent_for(platform, *currency)?;
                let kind = AccountKind::Wallet(*wallet_type);
                if let Some(existing) = self.by_key.get(&(*owner, kind, *currency)) {
                    return Err(LedgerError::WalletExists {
                        owner: *owner,
                        wallet_type: *wallet_type,
                        currency: *currency,
                        existing: *existing,
                    });
                }
                let a = self.new_account(ctx, platform, *owner, kind, *currency, exponent, now);
                let a = self.accounts.get_mut(&a).expect("just created");
                a.overdraft_limit = Some(*overdraft_limit);
                a.min_balance = *min_balance;
                Ok(Outcome::Account(a.clone()))
            }
            Command::SetWalletStatus { account, status } => {
                let a = self.wallet(*account)?;
                if a.status == WalletStatus::Closed && *status != WalletStatus::Closed {
                    return Err(LedgerError::InvalidTransition { from: a.status.as_str(), to: status.as_str() });
                }
                if *status == WalletStatus::Closed && (a.posted != 0 || a.held != 0 || a.incoming != 0) {
                    let f = |v| format_minor(v, a.exponent);
                    return Err(LedgerError::WalletNotEmpty {
                        account: a.id,
                        posted: f(a.posted),
                        held: f(a.held),
                        incoming: f(a.incoming),
                    });
                }
                let a = self.accounts.get_mut(account).expect("checked");
                if a.status == *status {
                    return Ok(Outcome::Account(a.clone()));
                }
                let from = a.status;
                a.status = *status;
                let a = a.clone();
                self.changes.accounts.insert(*account);
                self.changes.account_settings.insert(*account);
                let subject = StatusSubject::Wallet(*account);
                self.status_changed(a.platform, a.owner, subject, from.as_str(), status.as_str(), now);
                Ok(Outcome::Account(a))
            }
            Command::SetWalletLimits { account, overdraft_limit, min_balance } => {
                let a = self.wallet(*account)?;
                if a.status == WalletStatus::Closed {
                    return Err(LedgerError::WalletNotActive { account: a.id, status: a.status });
                }
                if let Some(v) = overdraft_limit {
                    check_limit("overdraft_limit", *v)?;
                }
                if let Some(v) = min_balance {
                    check_limit("min_balance", *v)?;
                }
                let a = self.accounts.get_mut(account).expect("checked");
                if let Some(v) = overdraft_limit {
                    a.overdraft_limit = Some(*v);
                }
                if let Some(v) = min_balance {
                    a.min_balance = *v;
                }
                self.changes.accounts.insert(*account);
                self.changes.account_settings.insert(*account);
                Ok(Outcome::Account(a.clone()))
            }
            Command::CreateApiKey { owner, id, secret_hash, scope } => {
                let o = self.owners.get(owner).ok_or(LedgerError::OwnerNotFound(*owner))?;
                if o.status == OwnerStatus::Deleted {
                    return Err(LedgerError::OwnerNotActive { owner: o.id, status: o.status });
                }
                check_key_id(id)?;
                if secret_hash.len() != 64 || !secret_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("secret_hash", "a hex SHA-256"));
                }
                if self.keys.contains_key(id) {
                    return Err(LedgerError::ApiKeyExists(id.clone()));
                }
                let k = ApiKey {
                    id: id.clone(),
                    owner: *owner,
                    platform: o.platform,
                    scope: *scope,
                    secret_hash: secret_hash.to_ascii_lowercase(),
                    status: KeyStatus::Active,
                    created_at: now,
                    revoked_at: None,
                    public_key: None,
                };
                self.keys.insert(id.clone(), k.clone());
                self.changes.keys.insert(id.clone());
                Ok(Outcome::ApiKey(k))
            }
            Command::RevokeApiKey { id } => {
                let k = self.keys.get_mut(id).ok_or_else(|| LedgerError::ApiKeyNotFound(id.clone()))?;
                if k.status == KeyStatus::Active {
                    k.status = KeyStatus::Revoked;
                    k.revoked_at = Some(now);
                    self.changes.keys.insert(id.clone());
                }
                Ok(Outcome::ApiKey(k.clone()))
            }
            Command::SetKeyPublicKey { id, public_key } => {
                if let Some(pk) = public_key {
                    check_public_key(pk)?;
                }
                let k = self.keys.get_mut(id).ok_or_else(|| LedgerError::ApiKeyNotFound(id.clone()))?;
                if k.status != KeyStatus::Active {
                    return Err(invalid("id", "an active API key"));
                }
                k.public_key = public_key.clone();
                self.changes.keys.insert(id.clone());
                Ok(Outcome::ApiKey(k.clone()))
            }
            Command::Move(m) => self.execute_movement(m, ctx, now),
        }
    }

    /// Refuse movements of a frozen or closed wallet, or of a deleted owner's.
    fn movable(&self, a: &Account) -> Result<(), LedgerError> {
        if !a.status.accepts_movements() {
            return Err(LedgerError::WalletNotActive { account: a.id, status: a.status });
        }
        let o = self.owners.get(&a.owner).ok_or(LedgerError::OwnerNotFound(a.owner))?;
        if o.status == OwnerStatus::Deleted {
            return Err(LedgerError::OwnerNotActive { owner: o.id, status: o.status });
        }
        Ok(())
    }

    fn wallet(&self, id: AccountId) -> Result<&Account, LedgerError> {
        match self.accounts.get(&id) {
            Some(a) if a.is_wallet() => Ok(a),
            _ => Err(LedgerError::AccountNotFound(id)),
        }
    }

    /// A wallet of `platform` in `currency` (accounts of other platforms are "not found", so
    /// that ids do not leak across tenants).
    fn wallet_in(&self, platform: OwnerId, id: AccountId, currency: CurrencyCode) -> Result<&Account, LedgerError> {
        let a = self.wallet(id)?;
        if a.platform != platform {
            return Err(LedgerError::AccountNotFound(id));
        }
        if a.currency != currency {
            return Err(LedgerError::CurrencyMismatch { account: id, actual: a.currency, requested: currency });
        }
        Ok(a)
    }

    fn system_slot(&self, platform: OwnerId, kind: SystemAccount, currency: CurrencyCode) -> Slot {
        match self.by_key.get(&(platform, AccountKind::System(kind), currency)) {
            Some(id) => Slot::Existing(*id),
            None => Slot::NewSystem(kind, currency),
        }
    }

    fn resolve(&self, platform: OwnerId, r: AccountRef, currency: CurrencyCode) -> Result<Slot, LedgerError> {
        match r {
            AccountRef::Id(id) => {
                let a = self
                    .accounts
                    .get(&id)
                    .filter(|a| a.platform == platform)
                    .ok_or(LedgerError::AccountNotFound(id))?;
                if a.currency != currency {
                    return Err(LedgerError::CurrencyMismatch { account: id, actual: a.currency, requested: currency });
                }
                Ok(Slot::Existing(id))
            }
            AccountRef::System(kind, c) => {
                if c != currency {
                    return Err(invalid(
                        "postings",
                        format!("system account {kind} {c} named with an amount in {currency}"),
                    ));
                }
                self.currencies.exponent(c)?;
                Ok(self.system_slot(platform, kind, c))
            }
        }
    }

    fn open_hold(&self, platform: OwnerId, id: HoldId) -> Result<&Hold, LedgerError> {
        let h = self.holds.get(&id).filter(|h| h.platform == platform).ok_or(LedgerError::HoldNotFound(id))?;
        if h.status != HoldStatus::Open {
            return Err(LedgerError::HoldNotOpen { hold: id, status: h.status });
        }
        Ok(h)
    }

    fn pending_incoming(&self, platform: OwnerId, id: IncomingId) -> Result<&Incoming, LedgerError> {
        let i = self.incomings.get(&id).filter(|i| i.platform == platform).ok_or(LedgerError::IncomingNotFound(id))?;
        if i.status != IncomingStatus::Pending {
            return Err(LedgerError::IncomingNotPending { incoming: id, status: i.status });
        }
        Ok(i)
    }

    fn plan(&self, m: &Movement, now: Timestamp) -> Result<Plan, LedgerError> {
        let p = m.platform;
        Ok(match &m.op {
            MoneyOp::Postings { postings } => {
                if postings.is_empty() || postings.len() > limits::MAX_POSTINGS {
                    return Err(invalid("postings", format!("must hold 1 to {} postings", limits::MAX_POSTINGS)));
                }
                let mut deltas = Vec::with_capacity(postings.len());
                for Posting { account, amount } in postings {
                    if amount.minor == 0 {
                        return Err(invalid("postings", "a posting's amount must not be zero"));
                    }
                    bounded(Some(amount.minor))?;
                    deltas.push(Delta::posted(self.resolve(p, *account, amount.currency)?, amount.minor));
                }
                Plan::new(deltas)
            }
            MoneyOp::Deposit { account, amount, source } => {
                let a = positive(*amount)?;
                if !matches!(source, SystemAccount::External | SystemAccount::Opening) {
                    return Err(invalid("source", "a deposit comes from EXTERNAL or OPENING"));
                }
                self.wallet_in(p, *account, amount.currency)?;
                Plan::new(vec![
                    Delta::posted(self.system_slot(p, *source, amount.currency), -a),
                    Delta::posted(Slot::Existing(*account), a),
                ])
            }
            MoneyOp::Payout { account, amount } => {
                let a = positive(*amount)?;
                let w = self.wallet_in(p, *account, amount.currency)?;
                self.movable(w)?;
                if a > w.withdrawable() {
                    let f = |v| format_minor(v, w.exponent);
                    return Err(if w.min_balance > 0 && a <= w.available() {
                        LedgerError::BelowMinBalance {
                            account: w.id,
                            withdrawable: f(w.withdrawable()),
                            requested: f(a),
                        }
                    } else {
                        LedgerError::InsufficientFunds { account: w.id, available: f(w.available()), needed: f(a) }
                    });
                }
                Plan::new(vec![
                    Delta::posted(Slot::Existing(*account), -a),
                    Delta::posted(self.system_slot(p, SystemAccount::External, amount.currency), a),
                ])
            }
            MoneyOp::Transfer { from, to, amount } => {
                let a = positive(*amount)?;
                if from == to {
                    return Err(invalid("to", "source and destination are the same wallet"));
                }
                self.wallet_in(p, *from, amount.currency)?;
                self.wallet_in(p, *to, amount.currency)?;
                Plan::new(vec![Delta::posted(Slot::Existing(*from), -a), Delta::posted(Slot::Existing(*to), a)])
            }
            MoneyOp::Fee { account, amount } => {
                let a = positive(*amount)?;
                self.wallet_in(p, *account, amount.currency)?;
                Plan::new(vec![
                    Delta::posted(Slot::Existing(*account), -a),
                    Delta::posted(self.system_slot(p, SystemAccount::Fees, amount.currency), a),
                ])
            }
            MoneyOp::Reverse { seq } => {
                let e = self.entries.get(seq).filter(|e| e.platform == p).ok_or(LedgerError::EntryNotFound(*seq))?;
                if e.kind == EntryKind::Reversal {
                    return Err(LedgerError::NotReversible {
                        seq: *seq,
                        reason: "it is a reversal; post a new transaction instead",
                    });
                }
                if let Some(by) = e.reversed_by {
                    return Err(LedgerError::AlreadyReversed { seq: *seq, by });
                }
                let deltas: Vec<Delta> = e
                    .posted
                    .iter()
                    .filter(|(_, v)| *v != 0)
                    .map(|(a, v)| Delta::posted(Slot::Existing(*a), -v))
                    .collect();
                if deltas.is_empty() {
                    return Err(LedgerError::NotReversible {
                        seq: *seq,
                        reason: "it moved no settled money; release or cancel instead",
                    });
                }
                Plan { reverses: Some(*seq), ..Plan::new(deltas) }
            }
            MoneyOp::HoldCreate { account, amount, expires_at } => {
                let a = positive(*amount)?;
                self.wallet_in(p, *account, amount.currency)?;
                if let Some(t) = expires_at {
                    if *t <= now {
                        return Err(invalid("expires_at", "must be in the future"));
                    }
                    if t.0 - now.0 > limits::MAX_HOLD_MICROS {
                        return Err(invalid("expires_at", "must be within a year"));
                    }
                }
                Plan {
                    hold: Some(HoldChange::Create { account: *account, amount: a, expires_at: *expires_at }),
                    ..Plan::new(vec![Delta { slot: Slot::Existing(*account), posted: 0, held: a, incoming: 0 }])
                }
            }
            MoneyOp::HoldCapture { hold, amount, destination } => {
                let h = self.open_hold(p, *hold)?;
                if h.expires_at.is_some_and(|t| t <= now) {
                    return Err(LedgerError::HoldExpired { hold: *hold });
                }
                let src = self
                    .accounts
                    .get(&h.account)
                    .ok_or(LedgerError::Invariant(format!("hold {hold} has no account")))?;
                let take = match amount {
                    None => h.amount,
                    Some(m) => {
                        if m.currency != src.currency {
                            return Err(LedgerError::CurrencyMismatch {
                                account: src.id,
                                actual: src.currency,
                                requested: m.currency,
                            });
                        }
                        let v = positive(*m)?;
                        if v > h.amount {
                            let f = |v| format_minor(v, src.exponent);
                            return Err(LedgerError::CaptureExceedsHold {
                                hold: *hold,
                                amount: f(h.amount),
                                requested: f(v),
                            });
                        }
                        v
                    }
                };
                let dest = self.resolve(p, *destination, src.currency)?;
                if dest == Slot::Existing(src.id) {
                    return Err(invalid("destination", "a hold cannot be captured into its own wallet"));
                }
                Plan {
                    hold: Some(HoldChange::Close { hold: *hold, status: HoldStatus::Captured, captured: take }),
                    ..Plan::new(vec![
                        Delta { slot: Slot::Existing(src.id), posted: -take, held: -h.amount, incoming: 0 },
                        Delta::posted(dest, take),
                    ])
                }
            }
            MoneyOp::HoldRelease { hold } | MoneyOp::HoldExpire { hold } => {
                let h = self.open_hold(p, *hold)?;
                let expire = matches!(m.op, MoneyOp::HoldExpire { .. });
                if expire && h.expires_at.is_none_or(|t| t > now) {
                    return Err(LedgerError::HoldNotDue { hold: *hold });
                }
                let status = if expire { HoldStatus::Expired } else { HoldStatus::Released };
                Plan {
                    enforce_status: false,
                    hold: Some(HoldChange::Close { hold: *hold, status, captured: 0 }),
                    ..Plan::new(vec![Delta {
                        slot: Slot::Existing(h.account),
                        posted: 0,
                        held: -h.amount,
                        incoming: 0,
                    }])
                }
            }
            MoneyOp::IncomingCreate { account, amount } => {
                let a = positive(*amount)?;
                self.wallet_in(p, *account, amount.currency)?;
                Plan {
                    incoming: Some(IncomingChange::Create { account: *account, amount: a }),
                    ..Plan::new(vec![Delta { slot: Slot::Existing(*account), posted: 0, held: 0, incoming: a }])
                }
            }
            MoneyOp::IncomingSettle { incoming } => {
                let i = self.pending_incoming(p, *incoming)?;
                let cur =
                    self.accounts.get(&i.account).map(|a| a.currency).ok_or(LedgerError::AccountNotFound(i.account))?;
                Plan {
                    incoming: Some(IncomingChange::Close { incoming: *incoming, status: IncomingStatus::Settled }),
                    ..Plan::new(vec![
                        Delta { slot: Slot::Existing(i.account), posted: i.amount, held: 0, incoming: -i.amount },
                        Delta::posted(self.system_slot(p, SystemAccount::External, cur), -i.amount),
                    ])
                }
            }
            MoneyOp::IncomingCancel { incoming } => {
                let i = self.pending_incoming(p, *incoming)?;
                Plan {
                    enforce_status: false,
                    incoming: Some(IncomingChange::Close { incoming: *incoming, status: IncomingStatus::Cancelled }),
                    ..Plan::new(vec![Delta {
                        slot: Slot::Existing(i.account),
                        posted: 0,
                        held: 0,
                        incoming: -i.amount,
                    }])
                }
            }
            MoneyOp::FxConvert { from, to, amount, rate, rate_source } => {
                let a = positive(*amount)?;
                let src = self.wallet_in(p, *from, amount.currency)?;
                let dst = self.wallet(*to).ok().filter(|d| d.platform == p).ok_or(LedgerError::AccountNotFound(*to))?;
                if src.owner != dst.owner {
                    return Err(invalid("to", "an FX conversion is between two wallets of one owner"));
                }
                if src.currency == dst.currency {
                    return Err(invalid("to", "an FX conversion needs two different currencies"));
                }
                let b = rate.convert(a, src.exponent, dst.exponent)?;
                if b <= 0 {
                    return Err(invalid("amount", "converts to zero at this rate"));
                }
                Plan {
                    fx: Some(FxDetail {
                        rate: rate.to_string(),
                        rate_source: rate_source.clone(),
                        from_currency: src.currency,
                        to_currency: dst.currency,
                        from_amount: a,
                        to_amount: b,
                    }),
                    ..Plan::new(vec![
                        Delta::posted(Slot::Existing(src.id), -a),
                        Delta::posted(self.system_slot(p, SystemAccount::FxClearing, src.currency), a),
                        Delta::posted(self.system_slot(p, SystemAccount::FxClearing, dst.currency), -b),
                        Delta::posted(Slot::Existing(dst.id), b),
                    ])
                }
            }
        })
    }

    /// Merge a plan's deltas per account and check every rule against the working set.
    fn check(&self, platform: OwnerId, plan: &Plan) -> Result<Vec<Checked>, LedgerError> {
        let mut merged: Vec<Delta> = Vec::with_capacity(plan.deltas.len());
        for d in &plan.deltas {
            match merged.iter_mut().find(|m| m.slot == d.slot) {
                Some(m) => {
                    m.posted = bounded(m.posted.checked_add(d.posted))?;
                    m.held = bounded(m.held.checked_add(d.held))?;
                    m.incoming = bounded(m.incoming.checked_add(d.incoming))?;
                }
                None => merged.push(*d),
            }
        }
        // Every account must exist and accept movements before any balance is looked at, so
        // that the reason given does not depend on the order of the postings.
        for d in &merged {
            if let Slot::Existing(id) = d.slot {
                let a = self
                    .accounts
                    .get(&id)
                    .filter(|a| a.platform == platform)
                    .ok_or(LedgerError::AccountNotFound(id))?;
                if plan.enforce_status {
                    self.movable(a)?;
                }
            }
        }
        let mut out = Vec::with_capacity(merged.len());
        let mut sums: Vec<(CurrencyCode, i128)> = Vec::new();
        for d in merged {
            let (currency, before, limit, exponent) = match d.slot {
                Slot::Existing(id) => {
                    let a = self.accounts.get(&id).ok_or(LedgerError::AccountNotFound(id))?;
                    (a.currency, (a.posted, a.held, a.incoming), a.overdraft_limit, a.exponent)
                }
                Slot::NewSystem(_, c) => (c, (0, 0, 0), None, 0),
            };
            let after = (
                bounded(before.0.checked_add(d.posted))?,
                bounded(before.1.checked_add(d.held))?,
                bounded(before.2.checked_add(d.incoming))?,
            );
            if after.1 < 0 || after.2 < 0 {
                return Err(LedgerError::Invariant(format!("held or incoming would go negative on {:?}", d.slot)));
            }
            let available_delta = d.posted as i128 - d.held as i128;
            if let (Some(limit), true) = (limit, available_delta < 0) {
                let available_after = after.0 - after.1;
                if available_after < -limit {
                    let Slot::Existing(account) = d.slot else { unreachable!("system accounts have no limit") };
                    return Err(LedgerError::InsufficientFunds {
                        account,
                        available: format_minor(before.0 - before.1, exponent),
                        needed: format_minor((-available_delta) as i64, exponent),
                    });
                }
            }
            match sums.iter_mut().find(|(c, _)| *c == currency) {
                Some((_, s)) => *s += d.posted as i128,
                None => sums.push((currency, d.posted as i128)),
            }
            out.push(Checked { slot: d.slot, currency, d, after });
        }
        if let Some((currency, sum)) = sums.into_iter().find(|(_, s)| *s != 0) {
            return Err(LedgerError::Unbalanced { currency, sum });
        }
        Ok(out)
    }

    fn execute_movement(&mut self, m: &Movement, ctx: &mut Ctx<'_>, now: Timestamp) -> Result<Outcome, LedgerError> {
        check_idempotency_key(&m.idempotency_key)?;
        // Expiries are issued by the store under a reserved key, which callers cannot take.
        let expiry = matches!(m.op, MoneyOp::HoldExpire { .. });
        if expiry != m.idempotency_key.starts_with(RESERVED_KEY_PREFIX) {
            return Err(invalid(
                "idempotency_key",
                format!("keys starting with {RESERVED_KEY_PREFIX:?} are reserved for hold expiry"),
            ));
        }
        check_metadata(&m.metadata)?;
        match self.owners.get(&m.platform) {
            Some(o) if o.kind == OwnerKind::Platform => {}
            _ => return Err(LedgerError::OwnerNotFound(m.platform)),
        }
        let hash = m.request_hash();
        let idem_key = (m.platform, m.idempotency_key.clone());
        if let Some(rec) = self.idempotency.get(&idem_key) {
            return if rec.request_hash == hash {
                Ok(Outcome::Replay { seq: rec.seq })
            } else {
                Err(LedgerError::IdempotencyConflict { key: m.idempotency_key.clone() })
            };
        }
        let plan = self.plan(m, now)?;
        let checked = self.check(m.platform, &plan)?;

        // Everything is checked: from here on nothing can fail.
        let seq = self.take_seq();
        self.counters.last_ts = now;
        let mut lines = Vec::with_capacity(checked.len());
        for c in checked {
            let id = match c.slot {
                Slot::Existing(id) => id,
                Slot::NewSystem(kind, currency) => {
                    let exp = self.exponent_for(m.platform, currency).expect("checked in plan");
                    self.new_account(ctx, m.platform, m.platform, AccountKind::System(kind), currency, exp, now)
                }
            };
            let a = self.accounts.get_mut(&id).expect("checked");
            (a.posted, a.held, a.incoming) = c.after;
            a.last_trade_at = Some(now);
            self.changes.accounts.insert(id);
            lines.push(Line {
                account: id,
                currency: c.currency,
                posted: c.d.posted,
                held: c.d.held,
                incoming: c.d.incoming,
                posted_after: c.after.0,
                held_after: c.after.1,
                incoming_after: c.after.2,
            });
        }
        let mut hold_out = None;
        let mut hold_id = None;
        match plan.hold {
            Some(HoldChange::Create { account, amount, expires_at }) => {
                let h = Hold {
                    id: HoldId(ctx.ids.next_uuid()),
                    platform: m.platform,
                    account,
                    amount,
                    captured: 0,
                    status: HoldStatus::Open,
                    expires_at,
                    created_at: now,
                    created_seq: seq,
                    closed_at: None,
                    closed_seq: None,
                };
                hold_id = Some(h.id);
                self.changes.holds.insert(h.id);
                self.insert_hold(h.clone());
                hold_out = Some(h);
            }
            Some(HoldChange::Close { hold, status, captured }) => {
                let h = self.holds.get_mut(&hold).expect("checked");
                if let Some(t) = h.expires_at {
                    self.deadlines.remove(&(t, hold));
                }
                h.status = status;
                h.captured = captured;
                h.closed_at = Some(now);
                h.closed_seq = Some(seq);
                hold_id = Some(hold);
                self.changes.holds.insert(hold);
                hold_out = Some(h.clone());
            }
            None => {}
        }
        let mut inc_out = None;
        let mut inc_id = None;
        match plan.incoming {
            Some(IncomingChange::Create { account, amount }) => {
                let i = Incoming {
                    id: IncomingId(ctx.ids.next_uuid()),
                    platform: m.platform,
                    account,
                    amount,
                    status: IncomingStatus::Pending,
                    created_at: now,
                    created_seq: seq,
                    closed_at: None,
                    closed_seq: None,
                };
                inc_id = Some(i.id);
                self.changes.incomings.insert(i.id);
                self.incomings.insert(i.id, i.clone());
                inc_out = Some(i);
            }
            Some(IncomingChange::Close { incoming, status }) => {
                let i = self.incomings.get_mut(&incoming).expect("checked");
                i.status = status;
                i.closed_at = Some(now);
                i.closed_seq = Some(seq);
                inc_id = Some(incoming);
                self.changes.incomings.insert(incoming);
                inc_out = Some(i.clone());
            }
            None => {}
        }
        if let Some(r) = plan.reverses {
            if let Some(e) = self.entries.get_mut(&r) {
                e.reversed_by = Some(seq);
            }
        }
        let entry = Entry {
            seq,
            platform: m.platform,
            kind: m.kind(),
            idempotency_key: m.idempotency_key.clone(),
            request_hash: hash.clone(),
            created_at: now,
            metadata: m.metadata.clone(),
            lines,
            hold: hold_id,
            incoming: inc_id,
            reverses: plan.reverses,
            fx: plan.fx,
        };
        // Conservation, asserted on what is about to be journaled.
        debug_assert!(entry.posted_sums().values().all(|s| *s == 0), "unbalanced entry {entry:?}");
        self.idempotency.insert(idem_key, IdemRecord { request_hash: hash, seq });
        self.changes.entries.push(entry.clone());
        Ok(Outcome::Entry { entry: Box::new(entry), hold: hold_out, incoming: inc_out })
    }

    /// Record a status change at a journal number of its own (made at `now`).
    fn status_changed(
        &mut self,
        platform: OwnerId,
        owner: OwnerId,
        subject: StatusSubject,
        from: &str,
        to: &str,
        now: Timestamp,
    ) {
        let seq = self.take_seq();
        let (from, to) = (from.to_string(), to.to_string());
        let change = StatusChange { seq, platform, owner, subject, from, to, reason: None, created_at: now };
        self.changes.statuses.push(change);
    }

    #[allow(clippy::too_many_arguments)]
    fn new_account(
        &mut self,
        ctx: &mut Ctx<'_>,
        platform: OwnerId,
        owner: OwnerId,
        kind: AccountKind,
        currency: CurrencyCode,
        exponent: u8,
        now: Timestamp,
    ) -> AccountId {
        let id = AccountId(ctx.ids.next_uuid());
        let number = self.counters.next_account_number.max(1);
        self.counters.next_account_number = number + 1;
        let is_system = matches!(kind, AccountKind::System(_));
        self.insert_account(Account {
            id,
            number,
            platform,
            owner,
            kind,
            currency,
            exponent,
            posted: 0,
            held: 0,
            incoming: 0,
            status: WalletStatus::Active,
            overdraft_limit: if is_system { None } else { Some(0) },
            min_balance: 0,
            created_at: now,
            last_trade_at: None,
        });
        self.changes.accounts.insert(id);
        self.changes.new_accounts.insert(id);
        id
    }
}
