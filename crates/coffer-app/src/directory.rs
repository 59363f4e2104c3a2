//! The store as the shells see it: every call goes to the store, except the lookups that
//! authentication and reach make on every request (API keys, owners, currency exponents, the
//! owner of an account), which are answered from memory while they are exact.
//!
//! Exactness rests on the store's directory version (`Store::directory_version`), which grows
//! with every change to an owner or a key no later than the change becomes visible, on every
//! node (on PostgreSQL it is a row written in the change's own transaction). A request calls
//! [`Directory::refresh`] once as it authenticates: one cheap read (a round trip on
//! PostgreSQL, a memory read on SQLite); if the version moved, the cache is emptied. So a
//! revoked key, a suspended owner or a new public key takes effect on the very next request.
//!
//! A value loaded after a refresh is kept only if no reset happened while it was loading
//! (the cache's generation is unchanged), so a slow load can never bring back a value from
//! before a change. An account's owner and kind never change: they are kept regardless.
//!
//! We chose a counter read per request over LISTEN/NOTIFY: it is exact without relying on a
//! notification arriving (a dropped connection would silently leave a node stale), costs one
//! primary-key read, and keeps the store portable (no triggers or server-side state).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::fx::RateQuote;
use coffer_core::verify::Report;
use coffer_core::*;
use coffer_store::{HistoryItem, Page, Receipt, Stats, Store, StoreError};
use parking_lot::RwLock;

/// Entries kept per map; past it a map is emptied (and refilled by use).
const MAX_CACHED: usize = 200_000;

#[derive(Default)]
struct Cache {
    /// The store's directory version these entries are exact for.
    version: u64,
    /// Grows with every reset: a load started in one generation is not kept in another.
    generation: u64,
    keys: HashMap<String, ApiKey>,
    owners: HashMap<OwnerId, Owner>,
    exponents: HashMap<(OwnerId, CurrencyCode), u8>,
}

impl Cache {
    fn reset(&mut self, version: u64) {
        self.version = version;
        self.generation += 1;
        self.keys.clear();
        self.owners.clear();
        self.exponents.clear();
    }
}

/// What never changes about an account: where it sits (owner, platform, wallet or system
/// account), its currency and exponent. Enough to decide reach and parse an amount for it,
/// so a movement needs no read of the account before its commit (which checks the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub id: AccountId,
    pub owner: OwnerId,
    pub platform: OwnerId,
    pub wallet: bool,
    pub currency: CurrencyCode,
    pub exponent: u8,
}

impl From<&Account> for Place {
    fn from(a: &Account) -> Self {
        Place {
            id: a.id,
            owner: a.owner,
            platform: a.platform,
            wallet: a.is_wallet(),
            currency: a.currency,
            exponent: a.exponent,
        }
    }
}

pub struct Directory {
    store: Arc<dyn Store>,
    currencies: CurrencyTable,
    cache: RwLock<Cache>,
    places: RwLock<HashMap<AccountId, Place>>,
    tail: crate::tail::Tail,
    /// Grows after every change this node makes to a webhook endpoint (`webhooks::change`).
    webhook_changes: std::sync::atomic::AtomicU64,
}

fn keep<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(k, v);
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let currencies = store.currency_table();
        Directory {
            store,
            currencies,
            cache: Default::default(),
            places: Default::default(),
            tail: Default::default(),
            webhook_changes: Default::default(),
        }
    }

    /// Every entry of `platform` numbered `from..=to`, oldest first, from the journal's settled
    /// tail this node keeps for feed readers (`tail`). `to` must be settled.
    /// With them, the platform's alerts, exact for them.
    pub async fn settled_entries(
        &self,
        platform: OwnerId,
        from: Seq,
        to: Seq,
    ) -> Result<crate::tail::Settled, StoreError> {
        self.tail.entries(self, platform, from, to).await
    }

    /// Make the cache exact as of now: read the store's directory version and empty the
    /// cache if it moved. Called once per request, before its first lookup.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let v = self.store.directory_version().await?;
        self.observe(v);
        Ok(())
    }

    /// Run `check` (authentication and reach, on the cache as it is, no refresh) and then
    /// `read` (given `check`'s answer, which it hands back, with one store call that also
    /// returns the directory version, such as [`Store::account_versioned`]), so that a warm
    /// read costs one round trip in all. The answer is exact: it is returned only if the version `read` saw is the one the cache
    /// had throughout `check` (no change to any owner or key between the cache's entries and
    /// that read, which came after the request arrived). Otherwise the cache is brought to the
    /// version seen and both run again; after two such misses, or on any refusal, the classic
    /// order (refresh, check, read) decides.
    pub async fn exact<A, T, E, C, CF, R, RF>(&self, check: C, read: R) -> Result<(A, T), E>
    where
        E: From<StoreError>,
        C: Fn() -> CF,
        CF: std::future::Future<Output = Result<A, E>>,
        R: Fn(A) -> RF,
        RF: std::future::Future<Output = Result<(A, T, u64), E>>,
    {
        for _ in 0..2 {
            let (basis, generation) = {
                let c = self.cache.read();
                (c.version, c.generation)
            };
            // A refusal may rest on a stale entry (an owner since reactivated): the classic
            // order decides it.
            let Ok(a) = check().await else { break };
            let Ok((a, t, v)) = read(a).await else { break };
            let unchanged = self.generation() == generation;
            self.observe(v);
            if v == basis && unchanged {
                return Ok((a, t));
            }
        }
        self.refresh().await?;
        let a = check().await?;
        let (a, t, _) = read(a).await?;
        Ok((a, t))
    }

    /// A directory version read with some data: the cache is emptied if it moved.
    fn observe(&self, v: u64) {
        if self.cache.read().version != v {
            let mut c = self.cache.write();
            if c.version != v {
                c.reset(v);
            }
        }
    }

    /// Forget everything cached (after this node changed an owner or a key).
    fn forget(&self) {
        let mut c = self.cache.write();
        let v = c.version;
        c.reset(v);
    }

    /// How many webhook endpoint changes this node has made: a delivery step in flight that
    /// sees it move writes its state at once, and ends if its endpoint was the one changed.
    pub fn webhook_changes(&self) -> u64 {
        self.webhook_changes.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn webhook_changed(&self) {
        self.webhook_changes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn generation(&self) -> u64 {
        self.cache.read().generation
    }

    /// Whether `owner` is `ancestor` or one of its descendants, decided on the cached owners
    /// alone (no copies); `None` when an owner on the way up is not cached.
    pub fn cached_under(&self, owner: OwnerId, ancestor: OwnerId) -> Option<bool> {
        let c = self.cache.read();
        let mut cur = owner;
        loop {
            let o = c.owners.get(&cur)?;
            if o.id == ancestor {
                return Some(true);
            }
            match o.parent {
                Some(p) => cur = p,
                None => return Some(false),
            }
        }
    }

    /// Where the account sits, if it exists.
    pub async fn place(&self, id: AccountId) -> Result<Option<Place>, StoreError> {
        if let Some(p) = self.places.read().get(&id) {
            return Ok(Some(*p));
        }
        let Some(a) = self.store.account(id).await? else { return Ok(None) };
        let p = Place::from(&a);
        keep(&mut self.places.write(), id, p);
        Ok(Some(p))
    }
}

/// Whether cached owners or keys may be stale after `cmd` (any command but those known to
/// change only wallets and money, so that a new kind of command errs on the safe side).
fn changes_directory(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Move(_)
            | Command::OpenWallet { .. }
            | Command::SetWalletStatus { .. }
            | Command::SetWalletLimits { .. }
    )
}

#[async_trait]
impl Store for Directory {
    async fn execute(&self, cmd: Command) -> Result<Receipt, StoreError> {
        let forget = changes_directory(&cmd);
        let r = self.store.execute(cmd).await;
        if forget {
            // Whatever the answer: a command cut off by a deadline may still have committed.
            self.forget();
        }
        r
    }
    async fn owner(&self, id: OwnerId) -> Result<Option<Owner>, StoreError> {
        let generation = {
            let c = self.cache.read();
            if let Some(o) = c.owners.get(&id) {
                return Ok(Some(o.clone()));
            }
            c.generation
        };
        let o = self.store.owner(id).await?;
        if let Some(o) = &o {
            let mut c = self.cache.write();
            if c.generation == generation {
                keep(&mut c.owners, id, o.clone());
            }
        }
        Ok(o)
    }
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let generation = {
            let c = self.cache.read();
            if let Some(k) = c.keys.get(id) {
                return Ok(Some(k.clone()));
            }
            c.generation
        };
        // Unknown ids are not remembered: anyone can make up as many as they like.
        let k = self.store.api_key(id).await?;
        if let Some(k) = &k {
            let mut c = self.cache.write();
            if c.generation == generation {
                keep(&mut c.keys, id.to_string(), k.clone());
            }
        }
        Ok(k)
    }
    async fn exponent(&self, platform: OwnerId, currency: CurrencyCode) -> Result<u8, StoreError> {
        if let Some(e) = self.cache.read().exponents.get(&(platform, currency)) {
            return Ok(*e);
        }
        let generation = self.generation();
        let p = self.owner(platform).await?.ok_or(LedgerError::OwnerNotFound(platform))?;
        let e = self.currencies.exponent_in(&p.currency_exponents, currency).map_err(LedgerError::from)?;
        let mut c = self.cache.write();
        if c.generation == generation {
            keep(&mut c.exponents, (platform, currency), e);
        }
        Ok(e)
    }
    async fn directory_version(&self) -> Result<u64, StoreError> {
        self.store.directory_version().await
    }
    async fn account_versioned(&self, id: AccountId) -> Result<(Option<Account>, u64), StoreError> {
        self.store.account_versioned(id).await
    }
    async fn accounts_of_versioned(&self, owner: OwnerId) -> Result<(Vec<Account>, u64), StoreError> {
        self.store.accounts_of_versioned(owner).await
    }
    async fn children(&self, parent: OwnerId) -> Result<Vec<Owner>, StoreError> {
        self.store.children(parent).await
    }
    async fn platforms(&self) -> Result<Vec<Owner>, StoreError> {
        self.store.platforms().await
    }
    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let a = self.store.account(id).await?;
        if let Some(a) = &a {
            if !self.places.read().contains_key(&id) {
                keep(&mut self.places.write(), id, Place::from(a));
            }
        }
        Ok(a)
    }
    async fn accounts_of(&self, owner: OwnerId) -> Result<Vec<Account>, StoreError> {
        self.store.accounts_of(owner).await
    }
    async fn entry(&self, seq: Seq) -> Result<Option<Entry>, StoreError> {
        self.store.entry(seq).await
    }
    async fn entries_at(&self, seqs: Vec<Seq>) -> Result<Vec<Entry>, StoreError> {
        self.store.entries_at(seqs).await
    }
    async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        self.store.hold(id).await
    }
    async fn open_holds(&self, account: AccountId) -> Result<Vec<Hold>, StoreError> {
        self.store.open_holds(account).await
    }
    async fn incoming(&self, id: IncomingId) -> Result<Option<Incoming>, StoreError> {
        self.store.incoming(id).await
    }
    async fn pending_incomings(&self, account: AccountId) -> Result<Vec<Incoming>, StoreError> {
        self.store.pending_incomings(account).await
    }
    async fn history(&self, account: AccountId, page: Page) -> Result<Vec<HistoryItem>, StoreError> {
        self.store.history(account, page).await
    }
    async fn entries(&self, platform: OwnerId, page: Page) -> Result<Vec<Entry>, StoreError> {
        self.store.entries(platform, page).await
    }
    async fn tagged(&self, platform: OwnerId, key: &str, value: &str, page: Page) -> Result<Vec<Entry>, StoreError> {
        self.store.tagged(platform, key, value, page).await
    }
    async fn seq_at(&self, t: Timestamp) -> Result<Seq, StoreError> {
        self.store.seq_at(t).await
    }
    async fn settled_seq(&self) -> Result<Seq, StoreError> {
        self.store.settled_seq().await
    }
    async fn put_alert(&self, alert: coffer_core::alerts::Alert) -> Result<coffer_core::alerts::Alert, StoreError> {
        self.store.put_alert(alert).await
    }
    async fn delete_alert(
        &self,
        platform: OwnerId,
        id: AlertId,
    ) -> Result<Option<coffer_core::alerts::Alert>, StoreError> {
        self.store.delete_alert(platform, id).await
    }
    async fn alerts(&self, platform: OwnerId) -> Result<Vec<coffer_core::alerts::Alert>, StoreError> {
        self.store.alerts(platform).await
    }
    async fn webhooks(&self, platform: Option<OwnerId>) -> Result<Vec<coffer_store::StoredWebhook>, StoreError> {
        self.store.webhooks(platform).await
    }
    async fn save_webhook(
        &self,
        platform: OwnerId,
        id: uuid::Uuid,
        body: String,
        expected: Option<u64>,
        status: Option<StatusChange>,
    ) -> Result<u64, StoreError> {
        self.store.save_webhook(platform, id, body, expected, status).await
    }
    async fn status_changes(&self, platform: OwnerId, from: Seq, to: Seq) -> Result<Vec<StatusChange>, StoreError> {
        self.store.status_changes(platform, from, to).await
    }
    async fn balances_at(&self, accounts: Vec<AccountId>, seq: Seq) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        self.store.balances_at(accounts, seq).await
    }
    async fn claim_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool, StoreError> {
        self.store.claim_nonce(scope, nonce, expires_at).await
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.store.setting(name).await
    }
    async fn init_setting(&self, name: &str, value: String) -> Result<String, StoreError> {
        self.store.init_setting(name, value).await
    }
    async fn record_rates(&self, platform: OwnerId, rates: Vec<RateQuote>) -> Result<Vec<RateQuote>, StoreError> {
        self.store.record_rates(platform, rates).await
    }
    async fn rates_at(
        &self,
        platform: OwnerId,
        pairs: Vec<(CurrencyCode, CurrencyCode)>,
        at: Timestamp,
    ) -> Result<Vec<RateQuote>, StoreError> {
        self.store.rates_at(platform, pairs, at).await
    }
    async fn verify(&self) -> Result<Report, StoreError> {
        self.store.verify().await
    }
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    fn currency_table(&self) -> CurrencyTable {
        self.currencies.clone()
    }
    fn stats(&self) -> Stats {
        self.store.stats()
    }
    async fn ready(&self) -> Result<(), String> {
        self.store.ready().await
    }
    fn sample_gauges(&self) {
        self.store.sample_gauges()
    }
    async fn shutdown(&self) {
        self.store.shutdown().await
    }
}
