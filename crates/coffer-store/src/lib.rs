//! Coffer's storage shell around the pure ledger core.
//!
//! [`Store`] is what the rest of Coffer (CLI, HTTP, dialects) talks to. A backend keeps the
//! journal and the balances durable, group-commits concurrent commands, and serves reads. The
//! embedded backend is [`sqlite::SqliteStore`]; every backend must pass the shared suite in
//! `tests/suite/`.

use async_trait::async_trait;
use coffer_core::fx::RateQuote;
use coffer_core::verify::Report;
use coffer_core::*;

mod codec;
mod cols;
pub mod logs;
pub mod postgres;
mod side;
pub mod sqlite;
pub mod testdb;

/// Errors of the storage layer. `Rejected` carries the ledger's reason for refusing a command
/// (nothing was changed); `Unavailable` and `Closed` are passing conditions callers may retry
/// (503); the others are failures of the store itself, logged and reported as internal errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rejected(#[from] LedgerError),
    /// The store could not read or write; the command was not applied.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The store cannot read or write now: disk full, an I/O error, the database down,
    /// unreachable or slower than the deadline. Nothing was applied, except that a commit cut
    /// off in flight has an unknown outcome: a movement is safe to retry under its idempotency
    /// key.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store is shutting down or has stopped.
    #[error("the store is closed")]
    Closed,
    /// Opening refused: the data directory is not usable as it is.
    #[error("{0}")]
    Open(String),
    /// The database refused a write because a concurrent one (another node's) got there first:
    /// a unique key taken, a serialization failure or a deadlock. Nothing was applied; the
    /// PostgreSQL store runs the batch again, so callers only see it if that keeps failing.
    #[error("write conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// A passing condition: answered 503 with Retry-After rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }

    /// What each caller of a batch that failed with `self` is told.
    pub(crate) fn for_batch(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Closed => StoreError::Closed,
            e => StoreError::Storage(format!("the batch was not committed: {e}")),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(DiskFull | SystemIoFailure | CannotOpen | DatabaseBusy | DatabaseLocked | OutOfMemory) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Storage(e.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let conflict =
            [SqlState::UNIQUE_VIOLATION, SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED];
        match e.as_db_error() {
            Some(db) if conflict.contains(db.code()) => {
                StoreError::Conflict(format!("{}: {}", db.code().code(), db.message()))
            }
            // 08 connection, 53 insufficient resources (disk full), 57 operator intervention
            // (statement timeout, shutdown), 58 system (I/O) errors: the database, not the
            // request, is at fault.
            Some(db) if ["08", "53", "57", "58"].iter().any(|c| db.code().code().starts_with(c)) => {
                StoreError::Unavailable(format!("database error {}: {}", db.code().code(), db.message()))
            }
            Some(db) => StoreError::Storage(format!("database error {}: {}", db.code().code(), db.message())),
            None => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(format!("no database connection: {e}"))
    }
}

/// Queue `job` for a store's writer and wait for its answer, at most `limit` in all: a disk or
/// database that hangs must not hang callers. Past the deadline the answer is `Unavailable`,
/// and the outcome of a command still queued or committing is unknown (a movement is safe to
/// retry under its idempotency key).
pub(crate) async fn submit<J, T>(
    queue: &tokio::sync::mpsc::Sender<J>,
    job: J,
    answer: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    limit: std::time::Duration,
) -> Result<T, StoreError> {
    let wait = async {
        queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    };
    tokio::time::timeout(limit, wait).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!("the store did not answer within {} ms", limit.as_millis())))
    })
}

/// The answer to an accepted command. `outcome` is never [`Outcome::Replay`]: a replay is
/// answered with the first result, re-read from the journal, and `replayed` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub outcome: Outcome,
    pub replayed: bool,
}

impl Receipt {
    pub fn entry(&self) -> Option<&Entry> {
        match &self.outcome {
            Outcome::Entry { entry, .. } => Some(entry),
            _ => None,
        }
    }
}

/// One line of an account's journal with its entry's kind and time: a history item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    pub seq: Seq,
    pub kind: EntryKind,
    pub created_at: Timestamp,
    pub line: Line,
}

/// A webhook endpoint as a store keeps it: a document the application reads and writes whole,
/// and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub platform: OwnerId,
    pub id: uuid::Uuid,
    pub body: String,
    pub version: u64,
}

/// A window of the journal, newest first: entries with `seq < before` (all when `None`) and
/// `seq > after` (all when `None`), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before: Option<Seq>,
    pub after: Option<Seq>,
    pub limit: usize,
}

/// Counters a store keeps about its own work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Durable commits (one per group-committed batch).
    pub commits: u64,
    /// Commands executed (accepted or refused) in those commits.
    pub commands: u64,
    /// Holds expired by the store.
    pub expired: u64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Execute one command. Concurrent calls are applied together in one durable commit; each
    /// command is still accepted or refused on its own. Returns once the result is durable.
    async fn execute(&self, cmd: Command) -> Result<Receipt, StoreError>;

    async fn owner(&self, id: OwnerId) -> Result<Option<Owner>, StoreError>;
    /// Direct children of an owner (merchants of a platform, sub-merchants of a merchant).
    async fn children(&self, parent: OwnerId) -> Result<Vec<Owner>, StoreError>;
    async fn platforms(&self) -> Result<Vec<Owner>, StoreError>;
    /// A number that grows with every change to an owner (status, currency settings) or an API
    /// key (status, public key), visible no later than the change itself: whoever caches
    /// owners, keys or exponents may keep them while this number stays the same. On PostgreSQL
    /// it is one row written in the same transaction as the change, so it covers every node.
    async fn directory_version(&self) -> Result<u64, StoreError>;
    /// [`Store::account`] and the directory version, read at one instant (one round trip on
    /// PostgreSQL): a read guarded by a cached authentication checks the cache in the same call.
    async fn account_versioned(&self, id: AccountId) -> Result<(Option<Account>, u64), StoreError>;
    /// [`Store::accounts_of`] and the directory version, read at one instant.
    async fn accounts_of_versioned(&self, owner: OwnerId) -> Result<(Vec<Account>, u64), StoreError>;
    /// The exponent amounts in `currency` have in `platform`'s wallets: the platform's override,
    /// else the standard one (ISO 4217 or a configured extra).
    async fn exponent(&self, platform: OwnerId, currency: CurrencyCode) -> Result<u8, StoreError>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
    /// An API key by its public id (served from memory: authentication is on every request).
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    /// An owner's accounts, in creation order.
    async fn accounts_of(&self, owner: OwnerId) -> Result<Vec<Account>, StoreError>;
    async fn entry(&self, seq: Seq) -> Result<Option<Entry>, StoreError>;
    /// Several entries at once, in the order asked (missing ones left out), read at one snapshot.
    async fn entries_at(&self, seqs: Vec<Seq>) -> Result<Vec<Entry>, StoreError>;
    async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StoreError>;
    /// Open holds of an account, oldest first.
    async fn open_holds(&self, account: AccountId) -> Result<Vec<Hold>, StoreError>;
    /// Pending incoming credits of an account, oldest first.
    async fn pending_incomings(&self, account: AccountId) -> Result<Vec<Incoming>, StoreError>;
    async fn incoming(&self, id: IncomingId) -> Result<Option<Incoming>, StoreError>;
    /// An account's journal, newest first.
    async fn history(&self, account: AccountId, page: Page) -> Result<Vec<HistoryItem>, StoreError>;
    /// A platform's journal entries, newest first.
    async fn entries(&self, platform: OwnerId, page: Page) -> Result<Vec<Entry>, StoreError>;
    /// A platform's journal entries whose metadata has `key` = `value`, newest first, read
    /// from an index written with each entry (never a scan of the journal).
    async fn tagged(&self, platform: OwnerId, key: &str, value: &str, page: Page) -> Result<Vec<Entry>, StoreError>;
    /// The journal position below which every entry number is settled: an entry not shown at
    /// or below it never will be. Readers that walk the journal in order (the event feed) stop
    /// there. SQLite: the last durable entry (one writer commits in seq order); PostgreSQL: the
    /// projector's position, or past it while the entries after it are contiguous (concurrent
    /// batches commit out of seq order, and refused or rolled-back ones leave gaps the projector
    /// decides, see `projector`).
    async fn settled_seq(&self) -> Result<Seq, StoreError>;
    /// Record a new balance alert, durable before it returns; the store sets `created_at` and
    /// `created_seq`, a position no reader can have been shown an entry past before the alert
    /// is visible (SQLite: the last entry when it commits, one writer; PostgreSQL: an entry
    /// number its own transaction takes, which holds the settled position back until it ends).
    async fn put_alert(&self, alert: coffer_core::alerts::Alert) -> Result<coffer_core::alerts::Alert, StoreError>;
    /// Mark an alert of `platform` deleted at a position taken like `created_seq` (once: a
    /// deleted alert stays as it was). The alert as stored, `None` when there is no such alert.
    async fn delete_alert(
        &self,
        platform: OwnerId,
        id: AlertId,
    ) -> Result<Option<coffer_core::alerts::Alert>, StoreError>;
    /// Every alert of the platform, deleted ones too (they apply to earlier entries), ordered
    /// by (`created_seq`, id).
    async fn alerts(&self, platform: OwnerId) -> Result<Vec<coffer_core::alerts::Alert>, StoreError>;
    /// Webhook endpoints (of one platform, or of all), as the application wrote them.
    async fn webhooks(&self, platform: Option<OwnerId>) -> Result<Vec<StoredWebhook>, StoreError>;
    /// Write a webhook document if its stored version is still `expected` (`None`: it must be
    /// new); the new version, or `StoreError::Conflict` when another write came first. Durable
    /// before it returns. `status`, if given, is recorded in the same write (the store takes
    /// a journal number for it and sets its time).
    async fn save_webhook(
        &self,
        platform: OwnerId,
        id: uuid::Uuid,
        body: String,
        expected: Option<u64>,
        status: Option<StatusChange>,
    ) -> Result<u64, StoreError>;
    /// The platform's status changes numbered `from..=to`, by number, as far as settled. Each
    /// holds a journal number no entry has, taken in the write that made the change, so a
    /// reader walking the journal up to the settled position meets it in its place.
    async fn status_changes(&self, platform: OwnerId, from: Seq, to: Seq) -> Result<Vec<StatusChange>, StoreError>;
    /// The last `seq` whose entry was made at or before `t` (0 when none was).
    async fn seq_at(&self, t: Timestamp) -> Result<Seq, StoreError>;
    /// (posted, held, incoming) of each account just after entry `seq` (all zero for an account
    /// that had no entry by then). Every account is read at the same `seq`.
    async fn balances_at(&self, accounts: Vec<AccountId>, seq: Seq) -> Result<Vec<(i64, i64, i64)>, StoreError>;
    /// Remember `nonce` (a request id) under `scope` until `expires_at`. True if it was new (or
    /// its earlier claim had expired); false if it is a replay. Durable before it returns, and
    /// shared by every node of one database.
    async fn claim_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool, StoreError>;
    /// A server setting (signing keys and the like) by name, if it is set.
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Set `name` to `value` unless it is set already; returns the value it has now. Every node
    /// racing to initialise a setting ends up with the same, first written, value.
    async fn init_setting(&self, name: &str, value: String) -> Result<String, StoreError>;
    /// Record exchange rates of a platform, all in one durable commit; each gets the commit's
    /// time as `recorded_at` (whatever the caller put there). Returns them as recorded.
    async fn record_rates(&self, platform: OwnerId, rates: Vec<RateQuote>) -> Result<Vec<RateQuote>, StoreError>;
    /// For each pair, the platform's quote at `at` (latest `effective_at <= at` among those
    /// recorded by `at`), if there is one.
    async fn rates_at(
        &self,
        platform: OwnerId,
        pairs: Vec<(CurrencyCode, CurrencyCode)>,
        at: Timestamp,
    ) -> Result<Vec<RateQuote>, StoreError>;
    /// Recompute every balance from the journal and compare (see `coffer verify`).
    async fn verify(&self) -> Result<Report, StoreError>;
    /// Which backend this is: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// The currencies this store knows (ISO 4217 and configured extras).
    fn currency_table(&self) -> CurrencyTable;
    fn stats(&self) -> Stats;
    /// Whether the store can commit now, and if not, why: it has been shut down or has
    /// failed, its disk refuses writes, or (PostgreSQL) the database does not answer within
    /// the deadline. Cheap enough for a load balancer's frequent probe.
    async fn ready(&self) -> Result<(), String>;
    /// Set the gauges that are read rather than counted (PostgreSQL: the connection pool's
    /// size, idle and waiting), just before `/metrics` renders them.
    fn sample_gauges(&self) {}
    /// Stop accepting commands, finish the ones already queued, flush, and stop.
    async fn shutdown(&self);
}
