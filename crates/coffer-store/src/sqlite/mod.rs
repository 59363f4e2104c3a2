//! The embedded store: SQLite in a data directory, one writer thread, group commit, and the
//! journal as the ledger (docs/ARCHITECTURE.md, "The embedded store").
//!
//! - **Writes.** Commands queue on a channel. The writer thread takes everything queued (up to
//!   [`Options::max_batch`]), expires due holds, runs each command through the core in one
//!   `BEGIN IMMEDIATE` transaction and commits the journal entries (each with its lines) and
//!   whatever else the commit must hold (new accounts, settings, holds, credits, keys, owners),
//!   but none of the state derived from the journal. The commit goes to the WAL without an
//!   fsync; the sync thread (`syncer`) makes it durable, then publishes it and answers its
//!   callers, while the writer goes on with the next batch. If a commit fails, every command of
//!   the batch gets a storage error and the working set is reloaded from disk. Writes beside
//!   the ledger (request-id claims, server settings, exchange rates: [`Side`]) ride in the same
//!   batch transaction and are answered with it.
//! - **Derived state.** Each account's lines, its balances on disk and the idempotency index
//!   are written by the writer's checkpoint, behind the journal; until then the entries are in
//!   the journal's tail (`tail`), which every read merges with the rows on disk.
//! - **Reads.** Owners and accounts (with their balances) are served from an in-memory view
//!   that the sync thread updates once a batch is durable: a balance read takes a read lock and
//!   never touches the disk nor waits for a commit. Journal, hold and incoming reads use
//!   read-only SQLite connections (WAL lets them run beside the writer).
//! - **Hold expiry.** The writer keeps every open hold's deadline. Before each batch it
//!   expires the holds that are due; when idle it wakes at the next deadline (at least once a
//!   second). So expiry takes effect without any caller, and no command ever runs against a
//!   hold past its deadline.
//! - **One process per directory**, enforced by an exclusive lock on `coffer.lock`.

mod backup;
mod rows;
pub mod schema;
mod syncer;
mod tail;
mod watch;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use coffer_core::fx::RateQuote;
use coffer_core::ledger::{expiry_movement, Changes};
use coffer_core::verify::{Report, Verifier};
use coffer_core::*;
use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::side::Side;
use crate::{Receipt, Stats, Store, StoreError};
use tail::Tail;

pub use backup::Backup;

pub const DB_FILE: &str = "coffer.db";
/// Small pages: a transfer dirties a few random B-tree pages, and every dirty page is written
/// to the WAL on commit, so the page size is the write amplification.
const PAGE_SIZE: u32 = 1024;
const LOCK_FILE: &str = "coffer.lock";
/// How often (at most) the writer deletes request ids whose replay window has passed.
const NONCE_PRUNE_EVERY_MICROS: i64 = 60_000_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub currencies: CurrencyTable,
    /// Most commands in one commit.
    pub max_batch: usize,
    /// Commands that may wait in the queue; callers wait (backpressure) beyond it.
    pub queue: usize,
    /// Longest a caller waits for its write to be queued and committed; past it the answer is
    /// [`StoreError::Unavailable`] (a disk that hangs does not hang callers).
    pub timeout: Duration,
    /// The writer checkpoints the derived state once the journal's tail holds this many
    /// entries (it also bounds the entries an open replays after a crash) ...
    pub checkpoint_entries: usize,
    /// ... or once this long has passed since its last checkpoint.
    pub checkpoint_interval: Duration,
    /// Most entries one checkpoint transaction takes, the oldest first (it holds the writer
    /// for ~2.3 µs an entry here): larger ones write a hot account's page less often, smaller
    /// ones stall commits less.
    pub checkpoint_slice: usize,
    /// Tests only: the sync thread waits this long before each fsync, as a slow disk would.
    #[doc(hidden)]
    pub sync_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            currencies: CurrencyTable::default(),
            max_batch: 8192,
            queue: 65536,
            timeout: Duration::from_secs(10),
            checkpoint_entries: 100_000,
            checkpoint_interval: Duration::from_secs(2),
            checkpoint_slice: 50_000,
            sync_delay: Duration::ZERO,
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(d.as_micros() as i64)
}

type Reply = oneshot::Sender<Result<Receipt, StoreError>>;

enum Job {
    Cmd(Box<Command>, Reply),
    /// Writes beside the ledger, committed with the next batch.
    Side(Side),
    Shutdown(oneshot::Sender<()>),
}

/// Run a side write inside the batch's transaction, keeping its answer in it.
/// `last` is the last entry number when the batch commits (alerts take it as their position);
/// a status change takes the ledger's next journal number.
fn apply_side(side: &mut Side, c: &Connection, now: Timestamp, last: Seq, l: &mut Ledger) -> Result<(), StoreError> {
    match side {
        Side::Nonce { scope, nonce, expires_at, fresh, .. } => {
            let n = c
                .prepare_cached(
                    "INSERT INTO nonces (scope, nonce, expires_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at
                         WHERE nonces.expires_at < ?4",
                )?
                .execute(rusqlite::params![&*scope, &*nonce, expires_at.0, now.0])?;
            *fresh = n == 1;
        }
        Side::Setting { name, value, .. } => {
            let key = format!("setting:{name}");
            c.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")?
                .execute(rusqlite::params![key, &*value])?;
            *value = c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0))?;
        }
        Side::Rates { platform, rates, .. } => {
            let mut st = c.prepare_cached(
                "INSERT INTO rates (platform_id, base, quote, effective_at, recorded_at, rate, source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO UPDATE SET rate = excluded.rate, source = excluded.source",
            )?;
            for q in rates.iter_mut() {
                q.recorded_at = now;
                st.execute(rusqlite::params![
                    platform.0.as_bytes().as_slice(),
                    q.base.as_str(),
                    q.quote.as_str(),
                    q.effective_at.0,
                    q.recorded_at.0,
                    q.rate.to_string(),
                    q.source
                ])?;
            }
        }
        Side::PutAlert { alert, .. } => watch::put(c, alert, last, now)?,
        Side::SaveWebhook { platform, id, body, expected, version, status, .. } => {
            *version = watch::save_webhook(c, *platform, *id, body, *expected)?;
            if let Some(s) = status.as_mut().filter(|_| version.is_some()) {
                (s.seq, s.created_at) = (l.take_seq(), now);
                watch::put_status(c, s)?;
            }
        }
        Side::DeleteAlert { platform, id, found, .. } => *found = watch::delete(c, *platform, *id, last)?,
    }
    Ok(())
}

/// Owners and accounts as of the last durable commit.
#[derive(Default)]
struct View {
    owners: HashMap<OwnerId, Owner>,
    children: HashMap<OwnerId, Vec<OwnerId>>,
    accounts: HashMap<AccountId, Account>,
    /// Each owner's accounts in creation (number) order.
    by_owner: HashMap<OwnerId, Vec<AccountId>>,
    keys: HashMap<String, ApiKey>,
    /// Grows with every change to `owners` or `keys` (see `Store::directory_version`).
    version: u64,
}

impl View {
    fn put_owner(&mut self, o: Owner) {
        if !self.owners.contains_key(&o.id) {
            if let Some(p) = o.parent {
                self.children.entry(p).or_default().push(o.id);
            }
        }
        self.owners.insert(o.id, o);
    }
    fn put_account(&mut self, a: Account) {
        if !self.accounts.contains_key(&a.id) {
            let list = self.by_owner.entry(a.owner).or_default();
            let pos = list.partition_point(|id| self.accounts.get(id).is_some_and(|x| x.number < a.number));
            list.insert(pos, a.id);
        }
        self.accounts.insert(a.id, a);
    }
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    commands: AtomicU64,
    expired: AtomicU64,
    /// Set when the store refuses all writes (see `Writer::poisoned`, and the syncer).
    failed: std::sync::atomic::AtomicBool,
    /// The last entry on disk: readers of the journal on disk see nothing past it (a commit is
    /// in the WAL before its fsync, see `syncer`).
    durable_seq: AtomicU64,
    /// Set while the last commit (or probe) failed: the store cannot commit now.
    unhealthy: std::sync::atomic::AtomicBool,
}

/// A small pool of read-only connections.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = match self.idle.lock().pop() {
            Some(c) => c,
            None => open_read_only(&self.path)?,
        };
        let r = f(&conn);
        let mut idle = self.idle.lock();
        if idle.len() < 8 {
            idle.push(conn);
        }
        r
    }
}

fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    c.busy_timeout(BUSY_WAIT)?;
    Ok(c)
}

pub struct SqliteStore {
    tx: mpsc::Sender<Job>,
    checkpointer: Checkpointer,
    currencies: CurrencyTable,
    view: Arc<RwLock<View>>,
    tail: Arc<RwLock<Tail>>,
    reads: Arc<ReadPool>,
    counters: Arc<Counters>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    timeout: Duration,
    /// Most journal entries the tail may hold while the store calls itself ready: past it the
    /// checkpoint is failing or cannot keep up (memory grows, and so does a restart's replay).
    lag_bound: usize,
}

/// The tail may hold this many times `checkpoint_entries` before the store is not ready.
const LAG_BOUND_FACTOR: usize = 4;
/// A failed checkpoint is retried this long after (not on every commit meanwhile).
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);
/// How long a connection waits for a lock another connection (or process) holds.
const BUSY_WAIT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// Open (or, for a missing or empty directory, create) the ledger in `dir`.
    pub fn open(dir: &Path, opts: Options) -> Result<Self, StoreError> {
        let db = dir.join(DB_FILE);
        if dir.exists() {
            // Empty, or holding only the lock file of an open that stopped before creating the database.
            let empty = std::fs::read_dir(dir)
                .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?
                .filter_map(Result::ok)
                .all(|e| e.file_name() == LOCK_FILE);
            if !empty && !db.exists() {
                return Err(StoreError::Open(format!(
                    "{} is not empty and holds no {DB_FILE}: not a Coffer data directory",
                    dir.display()
                )));
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        }
        let lock =
            File::create(dir.join(LOCK_FILE)).map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Open(format!("{} is in use by another Coffer process", dir.display())));
        }
        let mut conn = Connection::open(&db)?;
        // page_size takes effect only on a new database.
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA cache_size = -131072;
             PRAGMA temp_store = MEMORY;"
        ))?;
        conn.busy_timeout(BUSY_WAIT)?;
        schema::migrate(&mut conn)?;

        let (ledger, tail) = load_ledger(&conn, &opts.currencies)?;
        let tail = Arc::new(RwLock::new(tail));
        // Commits do not wait for the disk; the syncer makes them durable before anyone hears
        // of them. The WAL file stays while the writer's connection is open.
        let wal_path = dir.join(format!("{DB_FILE}-wal"));
        let wal = File::open(&wal_path)
            .map_err(|e| StoreError::Open(format!("{}: cannot open the WAL: {e}", dir.display())))?;
        let mut view = View::default();
        for o in ledger.owners() {
            view.put_owner(o.clone());
        }
        let mut accounts: Vec<&Account> = ledger.accounts().collect();
        accounts.sort_by_key(|a| a.number);
        for a in accounts {
            view.put_account(a.clone());
        }
        view.keys = ledger.api_keys().map(|k| (k.id.clone(), k.clone())).collect();
        let view = Arc::new(RwLock::new(view));
        let counters = Arc::new(Counters::default());
        // Everything on disk at open is durable: every number taken so far (by an entry or a
        // status change).
        counters.durable_seq.store(ledger.counters().next_seq.saturating_sub(1), Ordering::Release);
        let published = syncer::Published {
            view: view.clone(),
            tail: tail.clone(),
            counters: counters.clone(),
            delay: opts.sync_delay,
        };
        let syncer = syncer::Syncer::start(wal, published)?;
        let (tx, rx) = mpsc::channel(opts.queue);
        let writer = Writer {
            conn,
            ledger,
            currencies: opts.currencies.clone(),
            view: view.clone(),
            tail: tail.clone(),
            syncer,
            wal_path,
            unsynced: Default::default(),
            checkpointed_at: std::time::Instant::now(),
            checkpoint_failed_at: None,
            counters: counters.clone(),
            ids: UuidV7,
            max_batch: opts.max_batch.max(1),
            checkpoint_entries: opts.checkpoint_entries.max(1),
            checkpoint_interval: opts.checkpoint_interval,
            checkpoint_slice: opts.checkpoint_slice.max(1),
            sync_delay: opts.sync_delay,
            nonces_pruned_at: Timestamp(0),
            poisoned: false,
            _lock: lock,
        };
        let checkpointer = Checkpointer::start(&db)?;
        let handle = std::thread::Builder::new()
            .name("coffer-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Open(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            tx,
            checkpointer,
            currencies: opts.currencies,
            view,
            tail,
            reads: Arc::new(ReadPool { path: db, idle: Mutex::new(Vec::new()) }),
            counters,
            writer: Mutex::new(Some(handle)),
            timeout: opts.timeout,
            lag_bound: opts.checkpoint_entries.max(1).saturating_mul(LAG_BOUND_FACTOR),
        })
    }

    /// Verify the ledger in `dir` without opening it for writing (it may be in use).
    pub fn verify_dir(dir: &Path) -> Result<Report, StoreError> {
        let db = dir.join(DB_FILE);
        if !db.exists() {
            return Err(StoreError::Open(format!("{} holds no Coffer ledger ({DB_FILE} is missing)", dir.display())));
        }
        let conn = open_read_only(&db)?;
        schema::check_readable(&conn)?;
        verify(&conn)
    }

    /// The last entry on disk (see `syncer`): journal reads from disk stop there.
    fn durable(&self) -> Seq {
        self.counters.durable_seq.load(Ordering::Acquire)
    }

    /// A read from disk, failing as unavailable past the store's deadline (a disk that hangs
    /// does not hang callers).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let limit = self.timeout;
        tokio::time::timeout(limit, self.read_unbounded(f)).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!("the disk did not answer within {} ms", limit.as_millis())))
        })
    }

    /// A read that takes as long as it takes (`verify` reads the whole journal).
    async fn read_unbounded<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.reads.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Storage(format!("read task failed: {e}")))?
    }
}

/// Copies committed WAL frames into the database file from its own thread and connection, so
/// that the writer never checkpoints inside a commit. `PASSIVE` checkpoints never block the
/// writer; once a checkpoint has caught up, SQLite restarts the WAL from its beginning, which
/// keeps the WAL (and the cost of finding a page in it) small.
struct Checkpointer {
    /// Dropping (or sending on) this wakes the thread and stops it.
    stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Checkpointer {
    const INTERVAL: Duration = Duration::from_millis(2000);

    fn start(db: &Path) -> Result<Self, StoreError> {
        let conn =
            Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(BUSY_WAIT)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("coffer-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Self::INTERVAL) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "checkpoint failed; will retry");
                    }
                }
            })
            .map_err(|e| StoreError::Open(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop: Mutex::new(Some(stop)), handle: Mutex::new(Some(handle)) })
    }

    fn stop(&self) {
        self.stop.lock().take();
        if let Some(h) = self.handle.lock().take() {
            let _ = h.join();
        }
    }
}

/// Recompute from the journal inside one read transaction (a consistent snapshot).
fn verify(conn: &Connection) -> Result<Report, StoreError> {
    conn.execute_batch("BEGIN")?;
    let r = verify_snapshot(conn);
    let _ = conn.execute_batch("COMMIT");
    r
}

/// The journal is the truth: every entry's lines (its `lines` column, or for entries older than
/// the column the `lines` table) must balance and chain into each account's running balances;
/// the derived rows must equal the journal up to `checkpoint_seq` (each account's lines,
/// balances and the idempotency index); and the balances the journal ends at must match the
/// open holds and pending credits.
fn verify_snapshot(conn: &Connection) -> Result<Report, StoreError> {
    let mut v = Verifier::new();
    let checkpoint = rows::checkpoint_seq(conn)?;
    let mut accounts = rows::accounts(conn)?;
    let by_no: HashMap<i64, (AccountId, CurrencyCode)> =
        accounts.iter().map(|a| (a.number as i64, (a.id, a.currency))).collect();
    let line = |no: i64, vals: tail::Values| by_no.get(&no).map(|(id, cur)| codec::line_of(*id, *cur, vals));
    // The derived lines, account by account: running balances up to the checkpoint.
    let mut derived: HashMap<(i64, i64), tail::Values> = HashMap::new();
    let mut at_checkpoint: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    let mut st = conn.prepare(
        "SELECT account_no, seq, posted, held, incoming, posted_after, held_after, incoming_after
         FROM lines ORDER BY account_no, seq",
    )?;
    let mut it = st.query([])?;
    while let Some(r) = it.next()? {
        let (no, seq): (i64, i64) = (r.get(0)?, r.get(1)?);
        let vals = [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?];
        if seq as u64 > checkpoint {
            v.problem(format!("the lines table holds entry {seq}, past the checkpoint {checkpoint}"));
        }
        match line(no, vals) {
            Some(l) => v.account_line(seq as u64, &l),
            None => v.problem(format!("entry {seq} has a line for account number {no}, which is not stored")),
        }
        derived.insert((no, seq), vals);
        at_checkpoint.insert(no, (vals[3], vals[4], vals[5]));
    }
    // Stored balances are the checkpoint's.
    for a in &accounts {
        let b = at_checkpoint.get(&(a.number as i64)).copied().unwrap_or((0, 0, 0));
        if b != (a.posted, a.held, a.incoming) {
            v.problem(format!(
                "account {}: stored balances {:?} differ from its lines at the checkpoint {b:?}",
                a.id,
                (a.posted, a.held, a.incoming)
            ));
        }
    }
    let mut idem: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut st = conn.prepare("SELECT hash, seq FROM idem")?;
    for r in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
        let (h, seq) = r?;
        idem.entry(seq).or_default().push(h);
    }
    let mut last: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    let mut entries =
        conn.prepare("SELECT seq, accounts, platform_id, idem_key, idem_hash, lines FROM entries ORDER BY seq")?;
    let mut it = entries.query([])?;
    let mut lines = Vec::new();
    while let Some(r) = it.next()? {
        let seq: i64 = r.get(0)?;
        let blob: Vec<u8> = r.get(1)?;
        let platform =
            OwnerId(uuid::Uuid::from_slice(&r.get::<_, Vec<u8>>(2)?).map_err(|e| StoreError::Storage(e.to_string()))?);
        let key: String = r.get(3)?;
        let hash: i64 = r.get(4)?;
        if hash != rows::idem_hash(platform, &key) {
            v.problem(format!("entry {seq}: its idempotency hash does not match its key"));
        }
        let indexed = idem.remove(&seq).unwrap_or_default();
        match (seq as u64 <= checkpoint, indexed.as_slice()) {
            (true, [h]) if *h == hash => {}
            (false, []) => {}
            (true, _) => v.problem(format!("entry {seq}: the idempotency index does not hold its key once")),
            (false, _) => v.problem(format!("entry {seq}: indexed although past the checkpoint")),
        }
        let Some(numbers) = codec::decode_accounts(&blob) else {
            v.problem(format!("entry {seq}: malformed account list"));
            continue;
        };
        let journal: Vec<(i64, tail::Values)> = match r.get::<_, Option<Vec<u8>>>(5)? {
            Some(b) => match codec::decode(&b, codec::Order::Little) {
                Some(l) if l.iter().map(|(no, _)| *no).eq(numbers.iter().copied()) => l,
                _ => {
                    v.problem(format!("entry {seq}: malformed lines"));
                    continue;
                }
            },
            None => numbers.iter().filter_map(|no| derived.get(&(*no, seq)).map(|x| (*no, *x))).collect(),
        };
        if journal.len() != numbers.len() {
            v.problem(format!("entry {seq}: lines missing from the lines table"));
        }
        lines.clear();
        for (no, vals) in &journal {
            let Some(l) = line(*no, *vals) else {
                v.problem(format!("entry {seq}: no stored account number {no}"));
                continue;
            };
            if seq as u64 > checkpoint {
                v.account_line(seq as u64, &l); // the checkpointed ones were fed above
            } else if derived.get(&(*no, seq)) != Some(vals) {
                v.problem(format!("entry {seq}: the lines table differs from the journal for account number {no}"));
            }
            last.insert(*no, (vals[3], vals[4], vals[5]));
            lines.push(l);
        }
        v.entry(seq as u64, &lines);
    }
    for seq in idem.keys() {
        v.problem(format!("the idempotency index names entry {seq}, which is not stored"));
    }
    let mut dup =
        conn.prepare("SELECT idem_key, COUNT(*) FROM entries GROUP BY platform_id, idem_key HAVING COUNT(*) > 1")?;
    for d in dup.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (key, n) = d?;
        v.problem(format!("idempotency key {key:?} was used by {n} entries of one platform"));
    }
    // The balances the journal ends at, against holds, credits and limits.
    for a in accounts.iter_mut() {
        if let Some(b) = last.get(&(a.number as i64)) {
            (a.posted, a.held, a.incoming) = *b;
        }
    }
    let holds = rows::open_holds(conn, None)?;
    let pending = rows::pending_incomings(conn)?;
    Ok(v.finish(&accounts, &holds, &pending))
}

/// The working set and the journal's tail: the accounts as checkpointed, brought up to the
/// last entry by the tail's lines (each line carries the balances after it).
fn load_ledger(conn: &Connection, currencies: &CurrencyTable) -> Result<(Ledger, Tail), StoreError> {
    let mut l = Ledger::new(currencies.clone());
    for o in rows::owners(conn)? {
        l.insert_owner(o);
    }
    let tail = rows::load_tail(conn)?;
    for mut a in rows::accounts(conn)? {
        if let Some(last) = tail.by_account.get(&(a.number as i64)).and_then(|lines| lines.last()) {
            (a.posted, a.held, a.incoming) = (last.v[3], last.v[4], last.v[5]);
            a.last_trade_at = Some(last.created_at);
        }
        l.insert_account(a);
    }
    for h in rows::open_holds(conn, None)? {
        l.insert_hold(h);
    }
    for i in rows::pending_incomings(conn)? {
        l.insert_incoming(i);
    }
    for k in rows::api_keys(conn)? {
        l.insert_api_key(k);
    }
    l.set_counters(rows::counters(conn)?);
    Ok((l, tail))
}

struct Writer {
    conn: Connection,
    ledger: Ledger,
    currencies: CurrencyTable,
    view: Arc<RwLock<View>>,
    /// The durable entries since the last checkpoint, as readers see them.
    tail: Arc<RwLock<Tail>>,
    syncer: syncer::Syncer,
    wal_path: PathBuf,
    /// Entries committed but perhaps not yet durable nor in `tail`: (seq, idempotency hash),
    /// for the writer's own idempotency checks.
    unsynced: std::collections::VecDeque<(Seq, i64)>,
    checkpointed_at: std::time::Instant,
    /// When the last checkpoint failed, if the one since has not succeeded.
    checkpoint_failed_at: Option<std::time::Instant>,
    counters: Arc<Counters>,
    ids: UuidV7,
    max_batch: usize,
    checkpoint_entries: usize,
    checkpoint_interval: Duration,
    checkpoint_slice: usize,
    sync_delay: Duration,
    /// When expired request ids were last deleted.
    nonces_pruned_at: Timestamp,
    /// Set when the working set could not be reloaded after a failed commit: every command is
    /// refused from then on rather than risk acting on a state that is not on disk.
    poisoned: bool,
    _lock: File,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "writer cannot start its timer");
                return;
            }
        };
        let mut running = true;
        while running {
            let wait = match self.ledger.next_deadline() {
                Some(t) => Duration::from_micros((t.0 - now().0).clamp(0, 1_000_000) as u64),
                None => Duration::from_secs(1),
            };
            let mut jobs = Vec::new();
            match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(j)) => jobs.push(j),
                Ok(None) => running = false,
                // Timed out: look for due holds, and find out whether a failed disk is back.
                Err(_) => self.probe_if_unhealthy(),
            }
            while jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            metrics::gauge!("coffer_writer_queue").set(rx.len() as f64);
            let mut acks = Vec::new();
            let mut sides = Vec::new();
            let mut cmds = Vec::with_capacity(jobs.len());
            for j in jobs {
                match j {
                    Job::Cmd(c, r) => cmds.push((*c, Some(r))),
                    Job::Side(x) => sides.push(x),
                    Job::Shutdown(ack) => acks.push(ack),
                }
            }
            if !acks.is_empty() {
                // Refuse new work, then finish everything already queued.
                rx.close();
                while let Ok(j) = rx.try_recv() {
                    match j {
                        Job::Cmd(c, r) => cmds.push((*c, Some(r))),
                        Job::Side(x) => sides.push(x),
                        Job::Shutdown(ack) => acks.push(ack),
                    }
                }
                running = false;
            }
            for chunk in chunked(cmds, self.max_batch) {
                self.batch(chunk, std::mem::take(&mut sides));
            }
            if running && self.ledger.next_deadline().is_some_and(|t| t <= now()) {
                self.batch(Vec::new(), Vec::new());
            }
            if !running {
                self.syncer.finish(); // everything answered and published
                while self.checkpoint() {}
            } else if self.checkpoint_due() {
                self.checkpoint();
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
        if let Err(e) = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "final checkpoint failed (the WAL is replayed on next open)");
        }
        tracing::debug!("writer stopped");
    }

    /// While the last commit failed, try a small durable write once in a while, so that the
    /// store reports itself ready again as soon as it can commit (with no writes coming in
    /// while it is not ready, none would tell).
    fn probe_if_unhealthy(&mut self) {
        if !self.counters.unhealthy.load(Ordering::Relaxed) || self.poisoned {
            return;
        }
        let probe = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|_| {
            self.conn
                .execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?1)", [now().0.to_string()])?;
            self.conn.execute_batch("COMMIT")
        });
        match probe {
            Ok(()) => {
                tracing::info!("the store commits again");
                self.counters.unhealthy.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                crate::logs::error("the store still cannot commit", &StoreError::from(e));
            }
        }
    }

    /// Apply one group of commands in one durable commit and answer their callers.
    fn batch(&mut self, jobs: Vec<(Command, Option<Reply>)>, mut sides: Vec<Side>) {
        let t = now();
        if self.poisoned || self.counters.failed.load(Ordering::Relaxed) {
            let e = StoreError::Storage("the store failed and must be restarted".into());
            for (_, r) in jobs {
                if let Some(r) = r {
                    let _ = r.send(Err(e.for_batch()));
                }
            }
            sides.into_iter().for_each(|x| x.deliver(Some(&e)));
            return;
        }
        let mut work: Vec<(Command, Option<Reply>)> = self
            .ledger
            .due_holds(t, self.max_batch)
            .into_iter()
            .map(|(p, h)| (Command::Move(expiry_movement(p, h)), None))
            .collect();
        let expiring = work.len() as u64;
        work.extend(jobs);
        if work.is_empty() && sides.is_empty() {
            return;
        }
        self.prune_unsynced();
        let applying = std::time::Instant::now();
        match self.apply(&work, &mut sides, t) {
            Ok(Applied { results, changes, numbered }) => {
                metrics::histogram!("coffer_commit_batch_commands").record(work.len() as f64);
                metrics::histogram!("coffer_commit_apply_seconds").record(applying.elapsed().as_secs_f64());
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.commands.fetch_add(work.len() as u64, Ordering::Relaxed);
                self.counters.expired.fetch_add(expiring, Ordering::Relaxed);
                self.counters.unhealthy.store(false, Ordering::Relaxed);
                let mut answers = Vec::with_capacity(work.len());
                for ((_, reply), res) in work.into_iter().zip(results) {
                    let answer = match res {
                        Ok(Outcome::Replay { seq }) => self.replay(seq),
                        Ok(o) => Ok(Receipt { outcome: o, replayed: false }),
                        Err(e) => Err(StoreError::Rejected(e)),
                    };
                    match reply {
                        Some(r) => answers.push((r, answer)),
                        None => {
                            if let Err(e) = answer {
                                tracing::warn!(error = %e, "hold expiry refused");
                            }
                        }
                    }
                }
                let committed = syncer::Committed {
                    view: self.view_update(&changes),
                    tail: self.tail_of(&changes, numbered),
                    answers,
                    sides,
                    through: self.ledger.counters().next_seq.saturating_sub(1),
                };
                self.syncer.send(committed);
                self.ledger.evict_cold();
            }
            Err(e) => {
                crate::logs::error("commit failed; reloading the working set", &e);
                self.counters.unhealthy.store(true, Ordering::Relaxed);
                let _ = self.conn.execute_batch("ROLLBACK");
                for (_, reply) in work {
                    if let Some(r) = reply {
                        let _ = r.send(Err(e.for_batch()));
                    }
                }
                sides.into_iter().for_each(|x| x.deliver(Some(&e)));
                // Let every earlier batch be answered and published first, then start again
                // from the disk.
                self.syncer.finish();
                self.unsynced.clear();
                match load_ledger(&self.conn, &self.currencies) {
                    Ok((l, t)) => {
                        self.ledger = l;
                        *self.tail.write() = t;
                        let published = syncer::Published {
                            view: self.view.clone(),
                            tail: self.tail.clone(),
                            counters: self.counters.clone(),
                            delay: self.sync_delay,
                        };
                        match File::open(&self.wal_path)
                            .map_err(|e| StoreError::Storage(e.to_string()))
                            .and_then(|w| syncer::Syncer::start(w, published))
                        {
                            Ok(s) => self.syncer = s,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot restart the sync thread; refusing all writes");
                                self.poisoned = true;
                                self.counters.failed.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot reload the working set; refusing all writes");
                        self.poisoned = true;
                        self.counters.failed.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn apply(
        &mut self,
        work: &[(Command, Option<Reply>)],
        sides: &mut [Side],
        t: Timestamp,
    ) -> Result<Applied, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut results = Vec::with_capacity(work.len());
        for (cmd, _) in work {
            self.prefetch(&cmd.needs())?;
            let mut ctx = Ctx { now: t, ids: &mut self.ids };
            results.push(self.ledger.execute(cmd, &mut ctx));
        }
        let changes = self.ledger.take_changes();
        let numbered = codec::numbered(&self.ledger, &changes.entries);
        rows::persist(&self.conn, &self.ledger, &changes, &numbered)?;
        let last = self.ledger.counters().next_seq.saturating_sub(1);
        for x in sides.iter_mut() {
            apply_side(x, &self.conn, t, last, &mut self.ledger)?;
        }
        if !sides.is_empty() && t.0 - self.nonces_pruned_at.0 > NONCE_PRUNE_EVERY_MICROS {
            self.conn.prepare_cached("DELETE FROM nonces WHERE expires_at < ?1")?.execute([t.0])?;
            self.nonces_pruned_at = t;
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(Applied { results, changes, numbered })
    }

    /// A commit's entries as the tail holds them; also remembered as not yet durable, for
    /// the writer's idempotency checks until the syncer has published them.
    fn tail_of(&mut self, changes: &Changes, numbered: Numbered) -> Vec<tail::Journaled> {
        let mut out = Vec::with_capacity(changes.entries.len());
        for (e, lines) in changes.entries.iter().zip(numbered) {
            let idem_hash = rows::idem_hash(e.platform, &e.idempotency_key);
            self.unsynced.push_back((e.seq, idem_hash));
            let entry = tail::TailEntry { seq: e.seq, idem_hash };
            out.push(tail::Journaled { entry, kind: e.kind, created_at: e.created_at, lines });
        }
        out
    }

    /// Forget the unsynced entries the syncer has published since.
    fn prune_unsynced(&mut self) {
        let durable = self.counters.durable_seq.load(Ordering::Acquire);
        while self.unsynced.front().is_some_and(|(seq, _)| *seq <= durable) {
            self.unsynced.pop_front();
        }
    }

    fn checkpoint_due(&self) -> bool {
        let t = self.tail.read();
        // How far the derived state is behind the journal (entries held in memory).
        metrics::gauge!("coffer_checkpoint_lag_entries").set(t.len() as f64);
        if self.checkpoint_failed_at.is_some_and(|at| at.elapsed() < CHECKPOINT_RETRY) {
            return false;
        }
        t.len() >= self.checkpoint_entries
            || (!t.is_empty() && self.checkpointed_at.elapsed() >= self.checkpoint_interval)
    }

    /// Write the tail's derived rows in one transaction and empty it. A failure leaves the tail
    /// as it was (nothing acknowledged depends on a checkpoint); the next one retries.
    /// Whether it wrote one.
    fn checkpoint(&mut self) -> bool {
        if self.poisoned || self.tail.read().is_empty() {
            return false;
        }
        let started = std::time::Instant::now();
        let t = self.tail.read();
        // At most a slice of the oldest entries: the writer (and every commit) waits meanwhile.
        let entries = t.len().min(self.checkpoint_slice);
        let upto = t.entries[entries - 1].seq;
        let written = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(StoreError::from).and_then(|_| {
            rows::checkpoint(&self.conn, &t, upto)?;
            Ok(self.conn.execute_batch("COMMIT")?)
        });
        drop(t);
        self.checkpointed_at = std::time::Instant::now();
        self.checkpoint_failed_at = written.is_err().then(std::time::Instant::now);
        match written {
            Ok(()) => {
                self.tail.write().checkpointed(upto);
                metrics::histogram!("coffer_checkpoint_seconds").record(started.elapsed().as_secs_f64());
                metrics::histogram!("coffer_checkpoint_entries").record(entries as f64);
                tracing::debug!(entries, upto, ms = started.elapsed().as_millis() as u64, "checkpoint");
                true
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                metrics::counter!("coffer_checkpoint_failures_total").increment(1);
                crate::logs::error("checkpoint failed; the tail is kept and retried", &e);
                false
            }
        }
    }

    /// Load into the working set the cold state a command refers to.
    fn prefetch(&mut self, needs: &Needs) -> Result<(), StoreError> {
        let m = self.ledger.missing(needs);
        if let Some((p, key)) = m.idempotency {
            let hash = rows::idem_hash(p, &key);
            let unsynced: Vec<Seq> = self.unsynced.iter().filter(|(_, h)| *h == hash).map(|(s, _)| *s).collect();
            if let Some(rec) = rows::idempotency(&self.conn, &self.tail.read(), &unsynced, p, &key)? {
                self.ledger.insert_idempotency(p, key, rec);
            }
        }
        if let Some(h) = m.hold {
            if let Some(h) = rows::hold(&self.conn, h)? {
                self.ledger.insert_hold(h);
            }
        }
        if let Some(i) = m.incoming {
            if let Some(i) = rows::incoming(&self.conn, i)? {
                self.ledger.insert_incoming(i);
            }
        }
        if let Some(s) = m.entry {
            if let Some(e) = rows::entry_ref(&self.conn, s)? {
                self.ledger.insert_entry_ref(e);
            }
        }
        Ok(())
    }

    /// What a commit changes in the readers' view, as the working set now holds it.
    fn view_update(&self, changes: &Changes) -> syncer::ViewUpdate {
        let mut accounts: Vec<Account> =
            changes.accounts.iter().filter_map(|id| self.ledger.account(*id).cloned()).collect();
        accounts.sort_by_key(|a| a.number);
        syncer::ViewUpdate {
            owners: changes.owners.iter().filter_map(|id| self.ledger.owner(*id).cloned()).collect(),
            accounts,
            keys: changes.keys.iter().filter_map(|id| self.ledger.api_key(id).cloned()).collect(),
        }
    }

    /// The first result under a replayed idempotency key, as recorded.
    fn replay(&self, seq: Seq) -> Result<Receipt, StoreError> {
        let entry =
            rows::entry(&self.conn, seq)?.ok_or_else(|| StoreError::Storage(format!("entry {seq} vanished")))?;
        let hold = entry.hold.map(|h| rows::hold(&self.conn, h)).transpose()?.flatten();
        let incoming = entry.incoming.map(|i| rows::incoming(&self.conn, i)).transpose()?.flatten();
        Ok(Receipt { outcome: Outcome::Entry { entry: Box::new(entry), hold, incoming }, replayed: true })
    }
}

/// Each entry's lines with their accounts' numbers, in line order.
type Numbered = Vec<Vec<(i64, tail::Values)>>;

/// A batch applied and committed to the WAL: each command's result, what changed, and the
/// entries' lines by account number.
struct Applied {
    results: Vec<Result<Outcome, LedgerError>>,
    changes: Changes,
    numbered: Numbered,
}

fn chunked<T>(mut v: Vec<T>, n: usize) -> Vec<Vec<T>> {
    if v.len() <= n {
        return vec![v];
    }
    let mut out = Vec::new();
    while !v.is_empty() {
        let rest = v.split_off(n.min(v.len()));
        out.push(std::mem::replace(&mut v, rest));
    }
    out
}

#[async_trait]
impl Store for SqliteStore {
    async fn execute(&self, cmd: Command) -> Result<Receipt, StoreError> {
        // Refused alone, before it could join (and fail) a batch.
        coffer_core::text::check_command(&cmd)?;
        let (tx, rx) = oneshot::channel();
        crate::submit(&self.tx, Job::Cmd(Box::new(cmd), tx), rx, self.timeout).await
    }
    async fn owner(&self, id: OwnerId) -> Result<Option<Owner>, StoreError> {
        Ok(self.view.read().owners.get(&id).cloned())
    }
    async fn children(&self, parent: OwnerId) -> Result<Vec<Owner>, StoreError> {
        let v = self.view.read();
        Ok(v.children.get(&parent).into_iter().flatten().filter_map(|id| v.owners.get(id).cloned()).collect())
    }
    async fn platforms(&self) -> Result<Vec<Owner>, StoreError> {
        let v = self.view.read();
        let mut p: Vec<Owner> = v.owners.values().filter(|o| o.kind == OwnerKind::Platform).cloned().collect();
        p.sort_by_key(|o| (o.created_at, o.id));
        Ok(p)
    }
    async fn directory_version(&self) -> Result<u64, StoreError> {
        Ok(self.view.read().version)
    }
    async fn account_versioned(&self, id: AccountId) -> Result<(Option<Account>, u64), StoreError> {
        let v = self.view.read();
        Ok((v.accounts.get(&id).cloned(), v.version))
    }
    async fn accounts_of_versioned(&self, owner: OwnerId) -> Result<(Vec<Account>, u64), StoreError> {
        let v = self.view.read();
        let list = v.by_owner.get(&owner).into_iter().flatten().filter_map(|id| v.accounts.get(id).cloned()).collect();
        Ok((list, v.version))
    }
    async fn exponent(&self, platform: OwnerId, currency: CurrencyCode) -> Result<u8, StoreError> {
        let v = self.view.read();
        let p = v.owners.get(&platform).ok_or(LedgerError::OwnerNotFound(platform))?;
        Ok(self.currencies.exponent_in(&p.currency_exponents, currency).map_err(LedgerError::from)?)
    }
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        if !coffer_core::text::is_key_id(id) {
            return Ok(None); // no key has such an id
        }
        Ok(self.view.read().keys.get(id).cloned())
    }
    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.view.read().accounts.get(&id).cloned())
    }
    async fn accounts_of(&self, owner: OwnerId) -> Result<Vec<Account>, StoreError> {
        let v = self.view.read();
        Ok(v.by_owner.get(&owner).into_iter().flatten().filter_map(|id| v.accounts.get(id).cloned()).collect())
    }
    async fn entry(&self, seq: Seq) -> Result<Option<Entry>, StoreError> {
        if seq > self.durable() {
            return Ok(None);
        }
        self.read(move |c| Ok(rows::entry(c, seq)?)).await
    }
    async fn entries_at(&self, mut seqs: Vec<Seq>) -> Result<Vec<Entry>, StoreError> {
        let durable = self.durable();
        seqs.retain(|s| *s <= durable);
        self.read(move |c| {
            c.execute_batch("BEGIN")?;
            let r = seqs.iter().filter_map(|s| rows::entry(c, *s).transpose()).collect::<rusqlite::Result<Vec<_>>>();
            let _ = c.execute_batch("COMMIT");
            Ok(r?)
        })
        .await
    }
    async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        let d = self.durable();
        let h = self.read(move |c| Ok(rows::hold(c, id)?)).await?;
        // As of the last durable entry: not yet made, or still open.
        Ok(h.filter(|h| h.created_seq <= d).map(|mut h| {
            if h.closed_seq.is_some_and(|s| s > d) {
                (h.status, h.captured, h.closed_at, h.closed_seq) = (HoldStatus::Open, 0, None, None);
            }
            h
        }))
    }
    async fn open_holds(&self, account: AccountId) -> Result<Vec<Hold>, StoreError> {
        // A hold closed by a batch whose fsync is in flight leaves this list up to one fsync
        // early (balances and history show the close only once durable).
        let d = self.durable();
        let mut holds = self.read(move |c| Ok(rows::open_holds(c, Some(account))?)).await?;
        holds.retain(|h| h.created_seq <= d);
        Ok(holds)
    }
    async fn pending_incomings(&self, account: AccountId) -> Result<Vec<Incoming>, StoreError> {
        // As `open_holds`: one settled or cancelled by a batch in flight leaves early.
        let d = self.durable();
        let mut pending = self.read(move |c| Ok(rows::pending_incomings_of(c, account)?)).await?;
        pending.retain(|i| i.created_seq <= d);
        Ok(pending)
    }
    async fn incoming(&self, id: IncomingId) -> Result<Option<Incoming>, StoreError> {
        let d = self.durable();
        let i = self.read(move |c| Ok(rows::incoming(c, id)?)).await?;
        Ok(i.filter(|i| i.created_seq <= d).map(|mut i| {
            if i.closed_seq.is_some_and(|s| s > d) {
                (i.status, i.closed_at, i.closed_seq) = (IncomingStatus::Pending, None, None);
            }
            i
        }))
    }
    async fn history(&self, account: AccountId, page: crate::Page) -> Result<Vec<crate::HistoryItem>, StoreError> {
        let Some(a) = self.view.read().accounts.get(&account).cloned() else { return Ok(Vec::new()) };
        let no = a.number as i64;
        let limit = page.limit.min(10_000);
        // The tail first (newest), then the checkpointed lines below it.
        let (checkpoint, recent) = {
            let t = self.tail.read();
            (t.checkpoint, t.history(no, page.before.unwrap_or(u64::MAX), page.after.unwrap_or(0), limit))
        };
        let mut items: Vec<crate::HistoryItem> = recent
            .into_iter()
            .map(|l| crate::HistoryItem {
                seq: l.seq,
                kind: l.kind,
                created_at: l.created_at,
                line: codec::line_of(a.id, a.currency, l.v),
            })
            .collect();
        if items.len() == limit {
            return Ok(items);
        }
        let before = page.before.map_or(checkpoint + 1, |b| b.min(checkpoint + 1));
        let rest = crate::Page { before: Some(before), after: page.after, limit: limit - items.len() };
        items.extend(self.read(move |c| Ok(rows::history(c, no, a.id, a.currency, &rest)?)).await?);
        Ok(items)
    }
    async fn entries(&self, platform: OwnerId, mut page: crate::Page) -> Result<Vec<Entry>, StoreError> {
        let below = self.durable() + 1;
        page.before = Some(page.before.map_or(below, |b| b.min(below)));
        self.read(move |c| Ok(rows::platform_entries(c, platform, &page)?)).await
    }
    async fn tagged(
        &self,
        platform: OwnerId,
        key: &str,
        value: &str,
        mut page: crate::Page,
    ) -> Result<Vec<Entry>, StoreError> {
        let below = self.durable() + 1;
        page.before = Some(page.before.map_or(below, |b| b.min(below)));
        let (key, value) = (key.to_string(), value.to_string());
        self.read(move |c| Ok(rows::tagged_entries(c, platform, &key, &value, &page)?)).await
    }
    async fn settled_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.durable())
    }
    async fn put_alert(&self, alert: coffer_core::alerts::Alert) -> Result<coffer_core::alerts::Alert, StoreError> {
        let (reply, rx) = oneshot::channel();
        crate::submit(&self.tx, Job::Side(Side::PutAlert { alert, reply }), rx, self.timeout).await
    }
    async fn delete_alert(
        &self,
        platform: OwnerId,
        id: AlertId,
    ) -> Result<Option<coffer_core::alerts::Alert>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let side = Side::DeleteAlert { platform, id, found: None, reply };
        crate::submit(&self.tx, Job::Side(side), rx, self.timeout).await
    }
    async fn alerts(&self, platform: OwnerId) -> Result<Vec<coffer_core::alerts::Alert>, StoreError> {
        self.read(move |c| watch::of_platform(c, platform)).await
    }
    async fn webhooks(&self, platform: Option<OwnerId>) -> Result<Vec<crate::StoredWebhook>, StoreError> {
        self.read(move |c| watch::webhooks(c, platform)).await
    }
    async fn status_changes(&self, platform: OwnerId, from: Seq, to: Seq) -> Result<Vec<StatusChange>, StoreError> {
        // Nothing past the durable position: a number is shown only once it is on disk.
        let to = to.min(self.durable());
        self.read(move |c| watch::statuses(c, platform, from, to)).await
    }
    async fn save_webhook(
        &self,
        platform: OwnerId,
        id: uuid::Uuid,
        body: String,
        expected: Option<u64>,
        status: Option<StatusChange>,
    ) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        let side =
            Side::SaveWebhook { platform, id, body, expected, version: None, status: status.map(Box::new), reply };
        crate::submit(&self.tx, Job::Side(side), rx, self.timeout).await
    }
    async fn seq_at(&self, t: Timestamp) -> Result<Seq, StoreError> {
        let durable = self.durable();
        self.read(move |c| Ok(rows::seq_at(c, t)?.min(durable))).await
    }
    async fn balances_at(&self, accounts: Vec<AccountId>, seq: Seq) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let numbers: Vec<Option<i64>> = {
            let v = self.view.read();
            accounts.iter().map(|id| v.accounts.get(id).map(|a| a.number as i64)).collect()
        };
        // From the tail where it has a line at or before `seq`; else from the checkpointed
        // lines, which cover every entry up to the checkpoint.
        let (checkpoint, known): (Seq, Vec<Option<(i64, i64, i64)>>) = {
            let t = self.tail.read();
            let known = numbers.iter().map(|n| n.and_then(|n| t.balance_at(n, seq))).collect();
            (t.checkpoint, known)
        };
        self.read(move |c| {
            // One read transaction: every account at the same snapshot.
            c.execute_batch("BEGIN")?;
            let r = numbers
                .iter()
                .zip(known)
                .map(|(n, known)| match (n, known) {
                    (_, Some(b)) => Ok(b),
                    (Some(n), None) => rows::balance_at(c, *n, seq.min(checkpoint)),
                    (None, None) => Ok((0, 0, 0)),
                })
                .collect::<rusqlite::Result<Vec<_>>>();
            let _ = c.execute_batch("COMMIT");
            Ok(r?)
        })
        .await
    }
    async fn verify(&self) -> Result<Report, StoreError> {
        self.read_unbounded(verify).await
    }
    async fn claim_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool, StoreError> {
        coffer_core::text::check_nonce(scope, nonce)?;
        let (reply, rx) = oneshot::channel();
        let side = Side::Nonce { scope: scope.into(), nonce: nonce.into(), expires_at, fresh: false, reply };
        crate::submit(&self.tx, Job::Side(side), rx, self.timeout).await
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let key = format!("setting:{name}");
        self.read(move |c| Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?))
            .await
    }
    async fn record_rates(&self, platform: OwnerId, rates: Vec<RateQuote>) -> Result<Vec<RateQuote>, StoreError> {
        let (reply, rx) = oneshot::channel();
        crate::submit(&self.tx, Job::Side(Side::Rates { platform, rates, reply }), rx, self.timeout).await
    }
    async fn rates_at(
        &self,
        platform: OwnerId,
        pairs: Vec<(CurrencyCode, CurrencyCode)>,
        at: Timestamp,
    ) -> Result<Vec<RateQuote>, StoreError> {
        self.read(move |c| {
            c.execute_batch("BEGIN")?;
            let r = rows::rates_at(c, platform, &pairs, at);
            let _ = c.execute_batch("COMMIT");
            r
        })
        .await
    }
    async fn init_setting(&self, name: &str, value: String) -> Result<String, StoreError> {
        let (reply, rx) = oneshot::channel();
        crate::submit(&self.tx, Job::Side(Side::Setting { name: name.into(), value, reply }), rx, self.timeout).await
    }
    fn currency_table(&self) -> CurrencyTable {
        self.currencies.clone()
    }
    fn stats(&self) -> Stats {
        Stats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            commands: self.counters.commands.load(Ordering::Relaxed),
            expired: self.counters.expired.load(Ordering::Relaxed),
        }
    }
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    async fn ready(&self) -> Result<(), String> {
        let lag = self.tail.read().len();
        if self.tx.is_closed() {
            Err("the store has stopped".into())
        } else if self.counters.failed.load(Ordering::Relaxed) {
            Err("the store failed and must be restarted".into())
        } else if self.counters.unhealthy.load(Ordering::Relaxed) {
            Err("the last commit failed (disk full or I/O error); retrying".into())
        } else if lag > self.lag_bound {
            Err(format!("the checkpoint is behind: {lag} journal entries wait in memory (bound {})", self.lag_bound))
        } else {
            Ok(())
        }
    }
    async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Job::Shutdown(ack)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.writer.lock().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.checkpointer.stop();
    }
}
