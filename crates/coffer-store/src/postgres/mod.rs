//! The PostgreSQL store: several stateless Coffer nodes on one database.
//!
//! - **Nothing shared lives in a node.** Owners, wallets, holds, keys, request ids, settings
//!   and rates are read from the database on every call; a node keeps a connection pool, a
//!   block of account numbers, and (to find wallets without a query) what never changes in the
//!   wallets it has seen: owner, kind, currency, number.
//! - **Writes** are group-committed per node: a writer task ([`Options::writers`], two by
//!   default) takes everything queued (up to [`Options::max_batch`]) and applies it in one
//!   transaction:
//!   1. *discover* what the commands name, asking the core ([`Ledger::refs`]) until nothing new
//!      appears (a hold's wallet shows once the hold is read); what it finds never changes, so
//!      this runs before the transaction and costs no query for wallets the node has seen;
//!   2. *lock*: the API keys and owners the batch changes, then every wallet it names, each once,
//!      in account-number order (`SELECT .. ORDER BY number FOR UPDATE`): batches of different
//!      nodes never deadlock and never see each other half done;
//!   3. *read afresh*, under those locks, into a new working set: wallets, owners, holds,
//!      incoming credits, reversed entries and idempotency records, and take entry numbers from
//!      `entry_seq` (after the locks: along each wallet, seq order is commit order). `BEGIN`,
//!      the locks and these reads go out in one pipeline (one round trip): the server runs
//!      them in order, so every read runs under the locks. Every change to a hold or an
//!      incoming credit also changes its wallet, so a locked wallet's holds are current;
//!   4. run each command through the core on its own, then send the writes and `COMMIT` in one
//!      pipeline (one round trip, one fsync; after a failed write the COMMIT rolls back).
//!
//!   A unique-key collision (two nodes creating the same system account, or the same
//!   idempotency key with different wallets), a serialization failure or a deadlock rolls the
//!   batch back and runs it again from step 1; the second run sees the other node's commit.
//! - **Hold expiry** runs on every node: a scanner task looks for due holds at the earliest
//!   known deadline and at least once a second, and queues their expiry as ordinary commands
//!   under the reserved idempotency key, so a hold two nodes expire at once expires once.
//! - **Reads** go straight to the database (simple reads pipelined on a few shared
//!   connections, transactions on a pooled one), so a caller never reads older than a write it
//!   saw acknowledged, whichever node acknowledged it.

mod journal;
pub mod projector;
mod rows;
pub mod schema;
mod watch;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use coffer_core::fx::RateQuote;
use coffer_core::ledger::{expiry_movement, Changes};
use coffer_core::verify::{Report, Verifier};
use coffer_core::*;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::TryStreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{IsolationLevel, NoTls};
use uuid::Uuid;

use crate::codec;
use crate::side::Side;
use crate::{Receipt, Stats, Store, StoreError};

/// How often (at most) the writer deletes request ids whose replay window has passed.
const NONCE_PRUNE_EVERY_MICROS: i64 = 60_000_000;
/// Longest wait between two looks for due holds.
const EXPIRY_SCAN_MICROS: i64 = 1_000_000;
/// Shortest wait between two looks for due holds.
const EXPIRY_RESCAN_MICROS: i64 = 50_000;
/// First wait before the node's prepared statements are planned again; it doubles up to
/// [`REPLAN_MAX`].
const REPLAN_FIRST: Duration = Duration::from_secs(1);
const REPLAN_MAX: Duration = Duration::from_secs(600);
/// Longest a writer waits to gather a batch while other writers are busy.
const GATHER_MAX: Duration = Duration::from_millis(1);
/// Due holds queued per look at most.
const EXPIRY_BATCH: i64 = 1024;
/// Times a batch is run again after a collision with another node before it is refused.
const MAX_RETRIES: usize = 8;
/// Rounds of discovery: a command's references are at most three steps deep (hold, then its
/// wallet, then the wallet's owner).
const MAX_ROUNDS: usize = 6;
/// Most accounts one command can create (system accounts of a posting list, plus one).
const MAX_NEW_ACCOUNTS: u64 = coffer_core::command::limits::MAX_POSTINGS as u64 + 2;

#[derive(Debug, Clone)]
pub struct Options {
    pub currencies: CurrencyTable,
    /// Most commands in one commit.
    pub max_batch: usize,
    /// Commands that may wait in the queue; callers wait (backpressure) beyond it.
    pub queue: usize,
    /// Connections for reads that need one of their own (transactions, probes); the shared
    /// readers and each writer take one more.
    pub pool_size: usize,
    /// Batches a node commits at once (writers), each in its own transaction. Batches of
    /// different writers touching one wallet take turns at its lock. A writer that finds the
    /// others busy gathers about as many commands as they hold (1 ms at most) before it starts.
    /// Two is the default: on the machine measured, two overlapped one batch's commit with the
    /// next one's reads, and more made smaller batches (see docs/ARCHITECTURE.md,
    /// "PostgreSQL performance").
    pub writers: usize,
    /// Connections the node's simple reads share: concurrent reads are pipelined on them
    /// (several statements per system call and per wake-up of a server process). Fewer gives
    /// more reads per second, more lets a slow read hold up fewer others; on the 2-core machine
    /// measured, 1 gave 37,200 wallet reads/s over HTTP, 2 gave 34,600, 4 gave 29,500 and 8
    /// gave 27,700 (and a connection per read, 24,300). Default: one per core.
    pub readers: usize,
    /// The deadline of every database call: connecting, waiting for a pooled connection, each
    /// statement (server side) and each read or batch as a whole (client side, so that a
    /// database that stopped answering is noticed too). Past it the call fails as
    /// [`StoreError::Unavailable`].
    pub timeout: Duration,
    /// Run the projector on this node (see [`projector`]); off only in tests that need the
    /// journal's tail to stay unprojected.
    pub project: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            currencies: CurrencyTable::default(),
            max_batch: 4096,
            queue: 65536,
            pool_size: 16,
            writers: 2,
            readers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(5),
            project: true,
        }
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(d.as_micros() as i64)
}

type Reply = oneshot::Sender<Result<Receipt, StoreError>>;

enum Job {
    /// A command; expiries issued by the node's scanner have no caller to answer.
    Cmd(Box<Command>, Option<Reply>),
    Side(Side),
    Shutdown(oneshot::Sender<()>),
}

/// Run a side write inside the batch's transaction, keeping its answer in it.
async fn apply_side(side: &mut Side, c: &impl GenericClient, now: Timestamp) -> Result<(), StoreError> {
    match side {
        Side::Nonce { scope, nonce, expires_at, fresh, .. } => {
            let st = c
                .prepare_cached(
                    "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3)
                         ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at
                         WHERE nonces.expires_at < $4",
                )
                .await?;
            *fresh = c.execute(&st, &[&*scope, &*nonce, &expires_at.0, &now.0]).await? == 1;
        }
        Side::Setting { name, value, .. } => {
            let st = c
                .prepare_cached("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .await?;
            c.execute(&st, &[&*name, &*value]).await?;
            *value = c.query_one("SELECT value FROM settings WHERE name = $1", &[&*name]).await?.try_get(0)?;
        }
        Side::Rates { platform, rates, .. } => {
            let st = c
                .prepare_cached(
                    "INSERT INTO rates (platform_id, base, quote, effective_at, recorded_at, rate, source)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (platform_id, base, quote, effective_at, recorded_at)
                         DO UPDATE SET rate = excluded.rate, source = excluded.source",
                )
                .await?;
            for q in rates.iter_mut() {
                q.recorded_at = now;
            }
            let platform = *platform;
            let texts: Vec<String> = rates.iter().map(|q| q.rate.to_string()).collect();
            let mut writes = Vec::with_capacity(rates.len());
            for (q, rate) in rates.iter().zip(&texts) {
                let st = &st;
                writes.push(async move {
                    c.execute(
                        st,
                        &[
                            &platform.0,
                            &q.base.as_str(),
                            &q.quote.as_str(),
                            &q.effective_at.0,
                            &q.recorded_at.0,
                            rate,
                            &q.source,
                        ],
                    )
                    .await
                });
            }
            futures_util::future::try_join_all(writes).await?;
        }
        Side::PutAlert { alert, .. } => watch::put(c, alert, now).await?,
        Side::SaveWebhook { platform, id, body, expected, version, status, .. } => {
            *version = watch::save_webhook(c, *platform, *id, body, *expected).await?;
            if let Some(s) = status.as_mut().filter(|_| version.is_some()) {
                s.created_at = now;
                watch::put_status(c, s).await?;
            }
        }
        Side::DeleteAlert { platform, id, found, .. } => *found = watch::delete(c, *platform, *id).await?,
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    /// Commands in the batches writers are applying now.
    in_flight: AtomicU64,
    /// Rung when a writer is done with a batch.
    finished: tokio::sync::Notify,
    commits: AtomicU64,
    commands: AtomicU64,
    expired: AtomicU64,
    /// Batches run again after a collision with another node's.
    retries: AtomicU64,
    stopped: AtomicBool,
}

pub struct PgStore {
    tx: mpsc::Sender<Job>,
    pool: Pool,
    /// Connections the reads share (see `PgStore::shared`).
    readers: Vec<Mutex<Option<Arc<deadpool_postgres::Object>>>>,
    next_reader: std::sync::atomic::AtomicUsize,
    currencies: CurrencyTable,
    counters: Arc<Counters>,
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    scanner: tokio::task::JoinHandle<()>,
    replanner: tokio::task::JoinHandle<()>,
    /// The projector task, and what stops it.
    projector: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: Arc<tokio::sync::Notify>,
    /// Account ids and currencies by number, for entries' lines.
    by_number: Arc<journal::Numbers>,
    timeout: Duration,
}

fn pool(url: &str, size: usize, timeout: Duration) -> Result<Pool, StoreError> {
    let mut cfg: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::Open(format!("the database URL is not usable: {e}")))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(timeout);
    }
    // The server ends a statement past the deadline (the URL's own options are kept).
    let ms = timeout.as_millis().max(1);
    // No JIT: Coffer's statements are short, and compiling one costs more than it saves.
    let options =
        format!("{} -c statement_timeout={ms} -c jit=off", cfg.get_options().unwrap_or("")).trim().to_string();
    cfg.options(&options);
    cfg.keepalives(true).keepalives_idle(Duration::from_secs(10));
    let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(mgr)
        .max_size(size.max(2))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| StoreError::Open(format!("cannot make a connection pool: {e}")))
}

/// `f`, unless it takes longer than `limit`: then the database is unavailable.
async fn within<T>(limit: Duration, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| Err(late(limit)))
}

fn late(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!("the database did not answer within {} ms", limit.as_millis()))
}

/// A pooled connection, the wait for it timed (`coffer_pg_pool_wait_seconds`).
async fn acquire(pool: &Pool) -> Result<deadpool_postgres::Object, deadpool_postgres::PoolError> {
    let started = std::time::Instant::now();
    let got = pool.get().await;
    metrics::histogram!("coffer_pg_pool_wait_seconds").record(started.elapsed().as_secs_f64());
    got
}

async fn connect(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| StoreError::Open(format!("cannot connect to the database: {e}")))
}

impl PgStore {
    /// Connect, apply the schema's migrations (refusing a newer schema) and start the writer.
    /// Must be called inside a Tokio runtime, which the writer then runs on.
    pub async fn open(url: &str, opts: Options) -> Result<Self, StoreError> {
        let pool = pool(url, opts.pool_size + opts.readers.max(1) + opts.writers.max(1), opts.timeout)?;
        let mut c = connect(&pool).await?;
        schema::migrate(&mut c).await?;
        drop(c);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(opts.queue);
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let deadlines = Arc::new(Deadlines::default());
        let scanner = tokio::spawn(scan_expiries(pool.clone(), tx.clone(), deadlines.clone()));
        let replanner = tokio::spawn(replan(pool.clone()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let projector = opts.project.then(|| tokio::spawn(projector::run(pool.clone(), stop.clone())));
        let by_number = Arc::new(journal::Numbers::default());
        let writers = (0..opts.writers.max(1))
            .map(|_| {
                let w = Writer {
                    pool: pool.clone(),
                    currencies: opts.currencies.clone(),
                    counters: counters.clone(),
                    max_batch: opts.max_batch.max(1),
                    numbers: 0..0,
                    nonces_pruned_at: Timestamp(0),
                    deadlines: deadlines.clone(),
                    known: HashMap::new(),
                    keyed: HashMap::new(),
                    by_number: by_number.clone(),
                    timeout: opts.timeout,
                };
                tokio::spawn(w.run(queue.clone()))
            })
            .collect();
        Ok(PgStore {
            tx,
            pool,
            readers: (0..opts.readers.max(1)).map(|_| Mutex::new(None)).collect(),
            next_reader: Default::default(),
            currencies: opts.currencies,
            counters,
            writers: Mutex::new(writers),
            scanner,
            replanner,
            projector: Mutex::new(projector),
            stop,
            by_number,
            timeout: opts.timeout,
        })
    }

    /// Apply the schema's migrations and nothing else (`coffer migrate`). Returns the version.
    pub async fn migrate(url: &str) -> Result<i64, StoreError> {
        let mut c = connect(&pool(url, 1, Options::default().timeout)?).await?;
        schema::migrate(&mut c).await
    }

    /// Verify the ledger at `url` without starting a writer (other nodes may be running).
    pub async fn verify_url(url: &str) -> Result<Report, StoreError> {
        let pool = pool(url, 1, Options::default().timeout)?;
        let mut c = connect(&pool).await?;
        let v = schema::check_readable(&c).await?;
        if v == 0 {
            return Err(StoreError::Open("the database holds no Coffer ledger".into()));
        }
        verify(&mut c).await
    }

    /// Batches this node ran again after a collision with another node's (for tests and
    /// diagnostics).
    pub fn retries(&self) -> u64 {
        self.counters.retries.load(Ordering::Relaxed)
    }

    /// A connection of its own (for a transaction).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(acquire(&self.pool).await?)
    }

    /// A connection shared with other reads (round robin over `Options::readers`): concurrent reads
    /// are pipelined on it, several statements per system call and per wake-up of the server
    /// process, where a connection each would cost a round trip of their own. Only for reads
    /// that need no transaction. A connection found closed is replaced from the pool.
    async fn shared(&self) -> Result<Arc<deadpool_postgres::Object>, StoreError> {
        let slot = &self.readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len()];
        if let Some(c) = slot.lock().as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let fresh = Arc::new(acquire(&self.pool).await?);
        *slot.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    /// A read, failing as unavailable past the deadline.
    async fn within<T>(&self, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        within(self.timeout, f).await
    }

    /// Queue a side write and wait for its answer, within the write deadline.
    async fn side<T>(&self, side: Side, rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        crate::submit(&self.tx, Job::Side(side), rx, self.write_limit()).await
    }

    /// How long a write may wait in all: a batch attempt's deadline, and as long again for
    /// the queue and a retry after a collision.
    fn write_limit(&self) -> Duration {
        self.timeout * 2
    }
}

/// Recompute every balance from the journal inside one repeatable-read transaction (a
/// consistent snapshot, while other nodes keep writing).
async fn verify(c: &mut deadpool_postgres::Object) -> Result<Report, StoreError> {
    let tx = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?; // reads the whole journal
    let mut v = Verifier::new();
    let accounts: Vec<Account> = tx
        .query(&format!("SELECT {} FROM accounts ORDER BY number", crate::cols::ACCOUNT_COLS), &[])
        .await?
        .iter()
        .map(rows::account_row)
        .collect::<Result<_, _>>()?;
    let by_no: std::collections::HashMap<i64, &Account> = accounts.iter().map(|a| (a.number as i64, a)).collect();
    // The journal, entry by entry: each entry balances, and its lines chain into each
    // account's running balances.
    let entries = tx.query_raw("SELECT seq, lines FROM entries ORDER BY seq", std::iter::empty::<i64>()).await?;
    futures_util::pin_mut!(entries);
    while let Some(r) = entries.try_next().await? {
        let seq: i64 = r.try_get(0)?;
        let Some(decoded) = codec::decode(r.try_get(1)?, codec::Order::Big) else {
            v.problem(format!("entry {seq}: malformed lines"));
            continue;
        };
        let mut lines = Vec::with_capacity(decoded.len());
        for (no, vals) in decoded {
            match by_no.get(&no) {
                Some(a) => lines.push(codec::line_of(a.id, a.currency, vals)),
                None => v.problem(format!("entry {seq} has a line for account number {no}, which is not stored")),
            }
        }
        lines.iter().for_each(|l| v.account_line(seq as u64, l));
        v.entry(seq as u64, &lines);
    }
    // The derived lines equal the journal's up to the projected position, and none is past it.
    let derived = tx
        .query(
            &format!(
                "WITH p AS (SELECT projected_seq FROM coffer_projection),
                      journal AS ({})
                 SELECT COALESCE(j.seq, d.seq), COALESCE(j.account_no, d.account_no)
                 FROM journal j FULL JOIN lines d ON d.account_no = j.account_no AND d.seq = j.seq
                 WHERE j.seq IS DISTINCT FROM d.seq
                    OR (j.posted, j.held, j.incoming, j.posted_after, j.held_after, j.incoming_after)
                       IS DISTINCT FROM (d.posted, d.held, d.incoming, d.posted_after, d.held_after, d.incoming_after)
                 ORDER BY 1, 2 LIMIT 100",
                projector::decoded_lines("e.seq <= (SELECT projected_seq FROM p)")
            ),
            &[],
        )
        .await?;
    for r in derived {
        let (seq, no): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        v.problem(format!("the lines table differs from the journal at entry {seq}, account number {no}"));
    }
    let holds: Vec<Hold> = tx
        .query(&format!("SELECT {} FROM holds WHERE status = 'OPEN'", crate::cols::HOLD_COLS), &[])
        .await?
        .iter()
        .map(rows::hold_row)
        .collect::<Result<_, _>>()?;
    let pending: Vec<Incoming> = tx
        .query(&format!("SELECT {} FROM incomings WHERE status = 'PENDING'", crate::cols::INCOMING_COLS), &[])
        .await?
        .iter()
        .map(rows::incoming_row)
        .collect::<Result<_, _>>()?;
    tx.commit().await?;
    Ok(v.finish(&accounts, &holds, &pending))
}

/// Why a batch's transaction did not commit.
enum Failure {
    /// A collision with another node's concurrent batch: run the batch again.
    Retry(String),
    Fatal(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(why) => Failure::Retry(why),
            e => Failure::Fatal(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Failure::Fatal(e.into())
    }
}

/// What one batch names, gathered over all its commands.
#[derive(Default)]
struct Seen {
    owners: HashSet<OwnerId>,
    accounts: HashSet<AccountId>,
    keyed: HashSet<(OwnerId, AccountKind, CurrencyCode)>,
    holds: HashSet<HoldId>,
    incomings: HashSet<IncomingId>,
    entries: HashSet<Seq>,
    keys: HashSet<String>,
    idempotency: HashSet<(OwnerId, String)>,
}

impl Seen {
    /// Add what `l` says the commands name; returns what was not seen before.
    fn add(&mut self, l: &Ledger, cmds: &[&Command]) -> Seen {
        /// Move into `new` the items `seen` did not hold yet, remembering them.
        fn fresh<T: Clone + Eq + std::hash::Hash>(
            seen: &mut HashSet<T>,
            new: &mut HashSet<T>,
            items: impl IntoIterator<Item = T>,
        ) {
            new.extend(items.into_iter().filter(|x| seen.insert(x.clone())));
        }
        let mut new = Seen::default();
        for c in cmds {
            let r = l.refs(c);
            fresh(&mut self.owners, &mut new.owners, r.owners);
            fresh(&mut self.accounts, &mut new.accounts, r.accounts);
            fresh(&mut self.keyed, &mut new.keyed, r.keyed);
            fresh(&mut self.holds, &mut new.holds, r.holds);
            fresh(&mut self.incomings, &mut new.incomings, r.incomings);
            fresh(&mut self.entries, &mut new.entries, r.entries);
            fresh(&mut self.keys, &mut new.keys, r.keys);
            fresh(&mut self.idempotency, &mut new.idempotency, r.idempotency);
        }
        new
    }

    fn is_empty(&self) -> bool {
        self.owners.is_empty()
            && self.accounts.is_empty()
            && self.keyed.is_empty()
            && self.holds.is_empty()
            && self.incomings.is_empty()
            && self.entries.is_empty()
            && self.keys.is_empty()
    }
}

/// The rows `query` finds, or none without asking when there is nothing to ask for (a future
/// sends its query only when polled).
async fn unless<T>(
    nothing: bool,
    query: impl std::future::Future<Output = Result<Vec<T>, StoreError>>,
) -> Result<Vec<T>, StoreError> {
    if nothing {
        return Ok(Vec::new());
    }
    query.await
}

fn uuids<T>(set: &HashSet<T>, f: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    set.iter().map(f).collect()
}

/// The earliest deadline a node knows of, and a bell for the scanner when it moves earlier.
#[derive(Default)]
struct Deadlines {
    next: std::sync::atomic::AtomicI64,
    bell: tokio::sync::Notify,
}

impl Deadlines {
    fn add(&self, t: Timestamp) {
        if self.next.fetch_min(t.0, Ordering::Relaxed) > t.0 {
            self.bell.notify_one();
        }
    }
}

/// Looks for due holds (any node's) at the earliest known deadline and at least once a
/// second, and queues their expiry as commands. Every node runs one; the writers' locks and
/// the reserved idempotency key make a hold expire once however many nodes see it due.
async fn scan_expiries(pool: Pool, tx: mpsc::Sender<Job>, deadlines: Arc<Deadlines>) {
    loop {
        let t = now();
        let found = async {
            let c = pool.get().await?;
            let due = rows::due_holds(&c, t, EXPIRY_BATCH).await?;
            let next = rows::next_deadline(&c).await?;
            Ok::<_, StoreError>((due, next))
        }
        .await;
        let mut next = Timestamp(t.0 + EXPIRY_SCAN_MICROS);
        match found {
            Ok((due, upcoming)) => {
                for (p, h) in due {
                    if tx.send(Job::Cmd(Box::new(Command::Move(expiry_movement(p, h))), None)).await.is_err() {
                        return; // the store is shutting down
                    }
                }
                // Due ones just queued are not looked for again before they had time to run.
                let soonest = Timestamp(t.0 + EXPIRY_RESCAN_MICROS);
                if let Some(u) = upcoming {
                    next = next.min(u.max(soonest));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for due holds; will retry"),
        }
        deadlines.next.store(next.0, Ordering::Relaxed);
        let wait = Duration::from_micros((next.0 - now().0).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = deadlines.bell.notified() => {
                let at = deadlines.next.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_micros((at - now().0).max(0) as u64)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Forget the node's prepared statements from time to time (after 1 s, 2 s, 4 s, ... then
/// every 10 minutes), so that they are planned again for the tables as they are now.
/// PostgreSQL keeps a prepared statement's generic plan for the connection's life, until the
/// table's statistics change; a plan made while a table was nearly empty (a hash join over a
/// sequential scan of `entries`, say) would otherwise stay in use as the table grows, until
/// autovacuum analyzes it. The next use of each statement prepares it again.
async fn replan(pool: Pool) {
    let mut every = REPLAN_FIRST;
    loop {
        tokio::time::sleep(every).await;
        pool.manager().statement_caches.clear();
        every = (every * 2).min(REPLAN_MAX);
    }
}

struct Writer {
    pool: Pool,
    currencies: CurrencyTable,
    counters: Arc<Counters>,
    max_batch: usize,
    /// Account numbers this node may hand out (a block taken from `account_number_blocks`).
    numbers: std::ops::Range<u64>,
    nonces_pruned_at: Timestamp,
    /// Told of the deadlines of holds this node creates.
    deadlines: Arc<Deadlines>,
    /// Wallets this node has seen, for what never changes in them (owner, platform, kind,
    /// currency, number): discovery needs no database read for them. Balances here are stale
    /// and never used; execution reads wallets afresh under their locks.
    known: HashMap<AccountId, Account>,
    /// Ids of accounts by (owner, kind, currency), for those that exist.
    keyed: HashMap<(OwnerId, AccountKind, CurrencyCode), AccountId>,
    by_number: Arc<journal::Numbers>,
    /// Deadline of one attempt at a batch (see [`Options::timeout`]).
    timeout: Duration,
}

/// Bound on the wallets a node remembers (it forgets all and starts again beyond it).
const KNOWN_MAX: usize = 1 << 20;

/// A batch that committed.
struct Done {
    results: Vec<Result<Outcome, LedgerError>>,
    changes: Changes,
    working: Ledger,
}

impl Writer {
    fn remember<'a>(&mut self, accounts: impl Iterator<Item = &'a Account>) {
        if self.known.len() > KNOWN_MAX {
            self.known.clear();
            self.keyed.clear();
        }
        for a in accounts {
            self.keyed.insert((a.owner, a.kind, a.currency), a.id);
            self.known.entry(a.id).or_insert_with(|| a.clone());
        }
    }

    /// Put into `l` (without locks) what `s` names: wallets from memory when the node has
    /// seen them, else from the database; holds, incoming credits and entries (for their
    /// wallets). Owners are read later, under the wallets' locks.
    async fn discover(&mut self, c: &impl GenericClient, l: &mut Ledger, s: &Seen) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        for id in &s.accounts {
            match self.known.get(id) {
                Some(a) => l.insert_account(a.clone()),
                None => ids.push(id.0),
            }
        }
        let mut keys = Vec::new();
        for k in &s.keyed {
            match self.keyed.get(k).and_then(|id| self.known.get(id)) {
                Some(a) => l.insert_account(a.clone()),
                None => keys.push(*k),
            }
        }
        let (hold_ids, incoming_ids) = (uuids(&s.holds, |h| h.0), uuids(&s.incomings, |i| i.0));
        let seqs: Vec<i64> = s.entries.iter().map(|v| *v as i64).collect();
        let (by_id, by_key, holds, incomings, entries) = futures_util::try_join!(
            unless(ids.is_empty(), rows::accounts_by_id(c, &ids)),
            unless(keys.is_empty(), rows::accounts_by_key(c, &keys)),
            unless(hold_ids.is_empty(), rows::holds_by_id(c, &hold_ids)),
            unless(incoming_ids.is_empty(), rows::incomings_by_id(c, &incoming_ids)),
            unless(seqs.is_empty(), journal::entry_refs(c, &self.by_number, &seqs)),
        )?;
        self.remember(by_id.iter().chain(&by_key));
        by_id.into_iter().chain(by_key).for_each(|a| l.insert_account(a));
        holds.into_iter().for_each(|h| l.insert_hold(h));
        incomings.into_iter().for_each(|i| l.insert_incoming(i));
        entries.into_iter().for_each(|e| l.insert_entry_ref(e));
        Ok(())
    }

    /// Take batches from the shared queue until it closes. The node's writers take turns at
    /// the queue: one gathers the next batch while the others commit theirs.
    async fn run(mut self, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
        let mut running = true;
        while running {
            let mut jobs = Vec::new();
            let mut rx = queue.lock().await;
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => running = false,
            }
            // While other writers are busy, gather about as many commands as they hold (for a
            // short while at most) rather than leaving with the first one.
            let others = self.counters.in_flight.load(Ordering::Relaxed) as usize;
            let target = others.clamp(1, self.max_batch);
            let since = std::time::Instant::now();
            loop {
                while jobs.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let finished = self.counters.finished.notified();
                let left = GATHER_MAX.saturating_sub(since.elapsed());
                if jobs.len() >= target
                    || left.is_zero()
                    || self.counters.in_flight.load(Ordering::Relaxed) == 0
                    || !running
                {
                    break;
                }
                tokio::select! {
                    j = rx.recv() => match j {
                        Some(j) => jobs.push(j),
                        None => running = false,
                    },
                    _ = finished => {}
                    _ = tokio::time::sleep(left) => break,
                }
            }
            let held = jobs.len() as u64;
            self.counters.in_flight.fetch_add(held, Ordering::Relaxed);
            if jobs.iter().any(|j| matches!(j, Job::Shutdown(_))) {
                // Refuse new work, then finish everything already queued.
                rx.close();
                while let Ok(j) = rx.try_recv() {
                    jobs.push(j);
                }
                running = false;
            }
            drop(rx);
            let (mut cmds, mut sides, mut acks) = (Vec::new(), Vec::new(), Vec::new());
            for j in jobs {
                match j {
                    Job::Cmd(c, r) => cmds.push((*c, r)),
                    Job::Side(x) => sides.push(x),
                    Job::Shutdown(ack) => acks.push(ack),
                }
            }
            let mut queue = cmds.into_iter().peekable();
            while queue.peek().is_some() || !sides.is_empty() {
                let work: Vec<(Command, Option<Reply>)> = queue.by_ref().take(self.max_batch).collect();
                self.batch(work, std::mem::take(&mut sides)).await;
            }
            self.counters.in_flight.fetch_sub(held, Ordering::Relaxed);
            self.counters.finished.notify_waiters();
            for ack in acks {
                let _ = ack.send(());
            }
        }
        self.counters.stopped.store(true, Ordering::Relaxed);
        tracing::debug!("writer stopped");
    }

    /// Apply one group of commands in one transaction (run again after a collision with
    /// another node) and answer their callers.
    async fn batch(&mut self, work: Vec<(Command, Option<Reply>)>, mut sides: Vec<Side>) {
        let mut attempt = 0;
        let started = std::time::Instant::now();
        metrics::histogram!("coffer_commit_batch_commands").record(work.len() as f64);
        let outcome = loop {
            match self.attempt(&work, &mut sides).await {
                Err(Failure::Retry(why)) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(attempt, reason = %why, "batch collided with another node's; running it again");
                }
                Err(Failure::Retry(why)) => {
                    break Err(StoreError::Storage(format!("gave up after {attempt} retries: {why}")))
                }
                Err(Failure::Fatal(e)) => break Err(e),
                Ok(done) => break Ok(done),
            }
        };
        metrics::histogram!("coffer_commit_seconds").record(started.elapsed().as_secs_f64());
        let expiring = work.iter().filter(|(_, r)| r.is_none()).count() as u64;
        match outcome {
            Ok(done) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.commands.fetch_add(work.len() as u64, Ordering::Relaxed);
                for h in &done.changes.holds {
                    if let Some(t) =
                        done.working.hold(*h).filter(|h| h.status == HoldStatus::Open).and_then(|h| h.expires_at)
                    {
                        self.deadlines.add(t);
                    }
                }
                sides.into_iter().for_each(|x| x.deliver(None));
                for ((_, reply), res) in work.into_iter().zip(done.results) {
                    let answer = match res {
                        Ok(Outcome::Replay { seq }) => self.replay(seq).await,
                        Ok(o) => Ok(Receipt { outcome: o, replayed: false }),
                        Err(e) => Err(StoreError::Rejected(e)),
                    };
                    match reply {
                        Some(r) => {
                            let _ = r.send(answer);
                        }
                        None => match answer {
                            Ok(r) if !r.replayed => {
                                self.counters.expired.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) | Err(StoreError::Rejected(LedgerError::HoldNotOpen { .. })) => {} // another node did it
                            Err(e) => tracing::warn!(error = %e, "hold expiry refused"),
                        },
                    }
                }
            }
            // One command (or side write) the database refuses must not fail the others: run
            // them one by one, so that only it fails. A database that is away fails them all.
            Err(e) if !e.is_unavailable() && work.len() + sides.len() > 1 => {
                crate::logs::error("batch failed; running its commands one at a time", &e);
                for one in work {
                    Box::pin(self.batch(vec![one], Vec::new())).await;
                }
                for side in sides {
                    Box::pin(self.batch(Vec::new(), vec![side])).await;
                }
            }
            Err(e) => {
                crate::logs::error("batch failed", &e);
                tracing::debug!(commands = work.len(), expiring, "batch failed");
                for (_, reply) in work {
                    if let Some(r) = reply {
                        let _ = r.send(Err(e.for_batch()));
                    }
                }
                sides.into_iter().for_each(|x| x.deliver(Some(&e)));
            }
        }
    }

    async fn attempt(&mut self, work: &[(Command, Option<Reply>)], sides: &mut [Side]) -> Result<Done, Failure> {
        let client = acquire(&self.pool).await?;
        let limit = self.timeout;
        let done = match tokio::time::timeout(limit, self.apply(&client, work, sides)).await {
            Ok(done) => done,
            Err(_) => Err(Failure::Fatal(late(limit))),
        };
        if done.is_err() {
            // The transaction may be open or aborted: end it, or give the connection up (the
            // server rolls back a transaction whose connection is gone).
            if within(limit, async { Ok(client.batch_execute("ROLLBACK").await?) }).await.is_err() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
        done
    }

    async fn apply(
        &mut self,
        c: &deadpool_postgres::Object,
        work: &[(Command, Option<Reply>)],
        sides: &mut [Side],
    ) -> Result<Done, Failure> {
        let cmds: Vec<&Command> = work.iter().map(|(c, _)| c).collect();

        // 1. Discover what the batch names (before the transaction: what it finds never
        //    changes). Which wallet an id, a key or a hold names never changes, so the node
        //    remembers it; only what it has not seen yet is read here.
        let mut l = Ledger::new(self.currencies.clone());
        let mut seen = Seen::default();
        for _ in 0..MAX_ROUNDS {
            let new = seen.add(&l, &cmds);
            if new.is_empty() {
                break;
            }
            self.discover(c, &mut l, &new).await?;
        }

        // 2, 3. Begin; lock keys, then owners the batch changes, then wallets in number order;
        //    read afresh under the locks and take the entry numbers: one round trip.
        let mut owners = seen.owners.clone();
        owners.extend(l.accounts().map(|a| a.owner)); // a wallet's owner never changes
        let wanted = rows::Wanted {
            keys: seen.keys.iter().cloned().collect(),
            lock_owners: cmds
                .iter()
                .filter_map(|c| match c {
                    Command::SetOwnerStatus { owner, .. } => Some(owner.0),
                    _ => None,
                })
                .collect(),
            accounts: l.accounts().map(|a| a.id.0).collect(),
            owners: uuids(&owners, |o| o.0),
            holds: uuids(&seen.holds, |h| h.0),
            incomings: uuids(&seen.incomings, |i| i.0),
            idempotency: seen.idempotency.iter().cloned().collect(),
            numbers: cmds.iter().filter(|c| matches!(c, Command::Move(_))).count() as i64,
        };
        let got = rows::lock_and_read(c, &wanted).await?;
        let mut fresh = Ledger::new(self.currencies.clone());
        let locked: HashSet<AccountId> = got.accounts.iter().map(|a| a.id).collect();
        got.keys.into_iter().for_each(|k| fresh.insert_api_key(k));
        got.accounts.into_iter().for_each(|a| fresh.insert_account(a));
        got.owners.into_iter().for_each(|o| fresh.insert_owner(o));
        got.holds.into_iter().for_each(|h| fresh.insert_hold(h));
        got.incomings.into_iter().for_each(|i| fresh.insert_incoming(i));
        got.idempotency.into_iter().for_each(|(k, r)| fresh.insert_idempotency(k.0, k.1, r));
        let mut seqs = got.numbers;
        if !seen.entries.is_empty() {
            // Reversals (rare): the reversed entries, read under their wallets' locks.
            let numbers: Vec<i64> = seen.entries.iter().map(|v| *v as i64).collect();
            journal::entry_refs(c, &self.by_number, &numbers)
                .await?
                .into_iter()
                .for_each(|e| fresh.insert_entry_ref(e));
        }
        // Owners that only show now (an opened wallet's platform) are read; a wallet that only
        // shows now was not locked: run the batch again, locking it with the others.
        for _ in 0..MAX_ROUNDS {
            let new = seen.add(&fresh, &cmds);
            if new.is_empty() {
                break;
            }
            if !new.accounts.is_empty() || !new.keyed.is_empty() || !new.holds.is_empty() || !new.incomings.is_empty() {
                return Err(Failure::Retry("the batch names a wallet it had not locked".into()));
            }
            let ids = uuids(&new.owners, |o| o.0);
            rows::owners_by_id(c, &ids).await?.into_iter().for_each(|o| fresh.insert_owner(o));
        }

        // 4. Number, execute, write, commit.
        seqs.sort_unstable();
        let mut seqs = seqs.into_iter();
        let t = now();
        let mut ids = UuidV7;
        let mut results = Vec::with_capacity(cmds.len());
        for cmd in &cmds {
            if self.numbers.end - self.numbers.start < MAX_NEW_ACCOUNTS {
                let st = c.prepare_cached("SELECT nextval('account_number_blocks')").await?;
                let block: i64 = c.query_one(&st, &[]).await?.try_get(0)?;
                let first = block as u64 * schema::ACCOUNT_BLOCK;
                self.numbers = first..first + schema::ACCOUNT_BLOCK;
            }
            let next_seq =
                if matches!(cmd, Command::Move(_)) { seqs.next().expect("one per movement") as u64 } else { 0 };
            fresh.set_counters(coffer_core::Counters {
                next_seq,
                next_account_number: self.numbers.start,
                last_ts: Timestamp(0),
            });
            let mut ctx = Ctx { now: t, ids: &mut ids };
            results.push(fresh.execute(cmd, &mut ctx));
            self.numbers.start = fresh.counters().next_account_number.max(self.numbers.start);
        }
        let mut changes = fresh.take_changes();
        for s in changes.statuses.iter_mut() {
            watch::put_status(c, s).await?;
        }
        // The working set holds only locked wallets and the ones created here. Without side
        // writes, COMMIT goes out with the writes (one round trip).
        rows::persist(c, &fresh, &changes, &locked, sides.is_empty()).await?;
        if !sides.is_empty() {
            for x in sides.iter_mut() {
                apply_side(x, c, t).await?;
            }
            if t.0 - self.nonces_pruned_at.0 > NONCE_PRUNE_EVERY_MICROS {
                c.execute("DELETE FROM nonces WHERE expires_at < $1", &[&t.0]).await?;
                self.nonces_pruned_at = t;
            }
            c.batch_execute("COMMIT").await?;
        }
        self.remember(fresh.accounts());
        Ok(Done { results, changes, working: fresh })
    }

    /// The first result under a replayed idempotency key, as recorded.
    async fn replay(&self, seq: Seq) -> Result<Receipt, StoreError> {
        let c = self.pool.get().await?;
        let entry = journal::entries(&c, &self.by_number, &[seq as i64])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Storage(format!("entry {seq} vanished")))?;
        let hold = match entry.hold {
            Some(h) => rows::holds_by_id(&c, &[h.0]).await?.pop(),
            None => None,
        };
        let incoming = match entry.incoming {
            Some(i) => rows::incomings_by_id(&c, &[i.0]).await?.pop(),
            None => None,
        };
        Ok(Receipt { outcome: Outcome::Entry { entry: Box::new(entry), hold, incoming }, replayed: true })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn execute(&self, cmd: Command) -> Result<Receipt, StoreError> {
        // Refused alone, before it could join (and fail) a batch.
        coffer_core::text::check_command(&cmd)?;
        let (tx, rx) = oneshot::channel();
        crate::submit(&self.tx, Job::Cmd(Box::new(cmd), Some(tx)), rx, self.write_limit()).await
    }
    async fn owner(&self, id: OwnerId) -> Result<Option<Owner>, StoreError> {
        self.within(async { rows::owner(&*self.shared().await?, id).await }).await
    }
    async fn children(&self, parent: OwnerId) -> Result<Vec<Owner>, StoreError> {
        self.within(async { rows::children(&*self.shared().await?, parent).await }).await
    }
    async fn platforms(&self) -> Result<Vec<Owner>, StoreError> {
        self.within(async { rows::platforms(&*self.shared().await?).await }).await
    }
    async fn directory_version(&self) -> Result<u64, StoreError> {
        self.within(async { rows::directory_version(&*self.shared().await?).await }).await
    }
    async fn account_versioned(&self, id: AccountId) -> Result<(Option<Account>, u64), StoreError> {
        self.within(async { rows::account_versioned(&*self.shared().await?, id).await }).await
    }
    async fn accounts_of_versioned(&self, owner: OwnerId) -> Result<(Vec<Account>, u64), StoreError> {
        self.within(async { rows::accounts_of_versioned(&*self.shared().await?, owner).await }).await
    }
    async fn exponent(&self, platform: OwnerId, currency: CurrencyCode) -> Result<u8, StoreError> {
        let p = self.owner(platform).await?.ok_or(LedgerError::OwnerNotFound(platform))?;
        Ok(self.currencies.exponent_in(&p.currency_exponents, currency).map_err(LedgerError::from)?)
    }
    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.within(async { Ok(rows::accounts_by_id(&*self.shared().await?, &[id.0]).await?.pop()) }).await
    }
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.within(async {
            if !coffer_core::text::is_key_id(id) {
                return Ok(None); // no key has such an id
            }
            Ok(rows::keys_by_id(&*self.shared().await?, &[id.to_string()]).await?.pop())
        })
        .await
    }
    async fn accounts_of(&self, owner: OwnerId) -> Result<Vec<Account>, StoreError> {
        self.within(async { rows::accounts_of(&*self.shared().await?, owner).await }).await
    }
    async fn entry(&self, seq: Seq) -> Result<Option<Entry>, StoreError> {
        self.within(async {
            Ok(journal::entries(&*self.shared().await?, &self.by_number, &[seq.min(i64::MAX as u64) as i64])
                .await?
                .pop())
        })
        .await
    }
    async fn entries_at(&self, seqs: Vec<Seq>) -> Result<Vec<Entry>, StoreError> {
        self.within(async {
            let seqs: Vec<i64> = seqs.iter().map(|s| (*s).min(i64::MAX as u64) as i64).collect();
            journal::entries(&*self.shared().await?, &self.by_number, &seqs).await
        })
        .await
    }
    async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        self.within(async { Ok(rows::holds_by_id(&*self.shared().await?, &[id.0]).await?.pop()) }).await
    }
    async fn open_holds(&self, account: AccountId) -> Result<Vec<Hold>, StoreError> {
        self.within(async { rows::open_holds(&*self.shared().await?, account).await }).await
    }
    async fn pending_incomings(&self, account: AccountId) -> Result<Vec<Incoming>, StoreError> {
        self.within(async { rows::pending_incomings(&*self.shared().await?, account).await }).await
    }
    async fn incoming(&self, id: IncomingId) -> Result<Option<Incoming>, StoreError> {
        self.within(async { Ok(rows::incomings_by_id(&*self.shared().await?, &[id.0]).await?.pop()) }).await
    }
    async fn history(&self, account: AccountId, page: crate::Page) -> Result<Vec<crate::HistoryItem>, StoreError> {
        self.within(async {
            let c = self.shared().await?;
            let Some(a) = rows::accounts_by_id(&*c, &[account.0]).await?.pop() else { return Ok(Vec::new()) };
            journal::history(&*c, &a, &page).await
        })
        .await
    }
    async fn entries(&self, platform: OwnerId, page: crate::Page) -> Result<Vec<Entry>, StoreError> {
        self.within(async { journal::platform_entries(&*self.shared().await?, &self.by_number, platform, &page).await })
            .await
    }
    async fn tagged(
        &self,
        platform: OwnerId,
        key: &str,
        value: &str,
        page: crate::Page,
    ) -> Result<Vec<Entry>, StoreError> {
        self.within(async {
            journal::tagged_entries(&*self.shared().await?, &self.by_number, platform, (key, value), &page).await
        })
        .await
    }
    async fn put_alert(&self, alert: coffer_core::alerts::Alert) -> Result<coffer_core::alerts::Alert, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.side(Side::PutAlert { alert, reply }, rx).await
    }
    async fn delete_alert(
        &self,
        platform: OwnerId,
        id: AlertId,
    ) -> Result<Option<coffer_core::alerts::Alert>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.side(Side::DeleteAlert { platform, id, found: None, reply }, rx).await
    }
    async fn alerts(&self, platform: OwnerId) -> Result<Vec<coffer_core::alerts::Alert>, StoreError> {
        self.within(async { watch::of_platform(&*self.shared().await?, platform).await }).await
    }
    async fn webhooks(&self, platform: Option<OwnerId>) -> Result<Vec<crate::StoredWebhook>, StoreError> {
        self.within(async { watch::webhooks(&*self.shared().await?, platform).await }).await
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
        self.side(
            Side::SaveWebhook { platform, id, body, expected, version: None, status: status.map(Box::new), reply },
            rx,
        )
        .await
    }
    async fn status_changes(&self, platform: OwnerId, from: Seq, to: Seq) -> Result<Vec<StatusChange>, StoreError> {
        self.within(async { watch::statuses(&*self.shared().await?, platform, from, to).await }).await
    }
    async fn settled_seq(&self) -> Result<Seq, StoreError> {
        self.within(async { journal::settled_seq(&*self.shared().await?).await }).await
    }
    async fn seq_at(&self, t: Timestamp) -> Result<Seq, StoreError> {
        self.within(async { journal::seq_at(&*self.shared().await?, t).await }).await
    }
    async fn balances_at(&self, accounts: Vec<AccountId>, seq: Seq) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        self.within(async {
            let mut c = self.client().await?;
            // One snapshot: every account at the same seq, whatever commits meanwhile.
            let tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
            let found = rows::accounts_by_id(&tx, &accounts.iter().map(|a| a.0).collect::<Vec<_>>()).await?;
            let numbers: Vec<Option<i64>> =
                accounts.iter().map(|id| found.iter().find(|a| a.id == *id).map(|a| a.number as i64)).collect();
            let r = journal::balances_at(&tx, &numbers, seq).await?;
            tx.commit().await?;
            Ok(r)
        })
        .await
    }
    async fn claim_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool, StoreError> {
        coffer_core::text::check_nonce(scope, nonce)?;
        let (reply, rx) = oneshot::channel();
        self.side(Side::Nonce { scope: scope.into(), nonce: nonce.into(), expires_at, fresh: false, reply }, rx).await
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.within(async {
            let c = self.shared().await?;
            let st = c.prepare_cached("SELECT value FROM settings WHERE name = $1").await?;
            Ok(c.query_opt(&st, &[&name]).await?.map(|r| r.try_get(0)).transpose()?)
        })
        .await
    }
    async fn init_setting(&self, name: &str, value: String) -> Result<String, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.side(Side::Setting { name: name.into(), value, reply }, rx).await
    }
    async fn record_rates(&self, platform: OwnerId, rates: Vec<RateQuote>) -> Result<Vec<RateQuote>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.side(Side::Rates { platform, rates, reply }, rx).await
    }
    async fn rates_at(
        &self,
        platform: OwnerId,
        pairs: Vec<(CurrencyCode, CurrencyCode)>,
        at: Timestamp,
    ) -> Result<Vec<RateQuote>, StoreError> {
        self.within(async {
            let mut c = self.client().await?;
            let tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
            let r = rows::rates_at(&tx, platform, &pairs, at).await?;
            tx.commit().await?;
            Ok(r)
        })
        .await
    }
    /// Takes as long as the journal needs (no deadline: it reads everything).
    async fn verify(&self) -> Result<Report, StoreError> {
        verify(&mut self.client().await?).await
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
        "postgres"
    }
    async fn ready(&self) -> Result<(), String> {
        if self.tx.is_closed() || self.counters.stopped.load(Ordering::Relaxed) {
            return Err("the store has stopped".into());
        }
        // A real round trip: the database answers, within the deadline.
        let probe = self.within(async { Ok(self.client().await?.simple_query("SELECT 1").await?) });
        probe.await.map(drop).map_err(|e| e.to_string())
    }
    fn sample_gauges(&self) {
        let st = self.pool.status();
        metrics::gauge!("coffer_pg_pool_connections").set(st.size as f64);
        metrics::gauge!("coffer_pg_pool_idle").set(st.available as f64);
        metrics::gauge!("coffer_pg_pool_waiting").set(st.waiting as f64);
        metrics::gauge!("coffer_pg_pool_max").set(st.max_size as f64);
    }
    async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Job::Shutdown(ack)).await.is_ok() {
            let _ = done.await;
        }
        self.scanner.abort();
        self.replanner.abort();
        self.stop.notify_one();
        let projector = self.projector.lock().take();
        if let Some(p) = projector {
            let _ = p.await;
        }
        let handles = std::mem::take(&mut *self.writers.lock());
        for h in handles {
            let _ = h.await;
        }
        self.pool.close();
    }
}
