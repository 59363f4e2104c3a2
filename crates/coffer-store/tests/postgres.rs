//! The shared storage suite on PostgreSQL (each test in a schema of its own), plus what only
//! the PostgreSQL store has: schema versions in a shared database, and several stores (nodes)
//! writing one ledger at once.

mod suite;

use std::sync::Arc;

use coffer_core::*;
use coffer_store::postgres::{schema, Options, PgStore};
use coffer_store::testdb::TestDatabase;
use coffer_store::{Store, StoreError};
use suite::Backend;

/// A store on its own schema; `project: false` leaves every entry in the journal's tail (no
/// projector), so that every read merges the tail.
struct Pg(TestDatabase, bool);

#[async_trait::async_trait]
impl Backend for Pg {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::open(&self.0.url(), Options { project: self.1, ..Options::default() }).await.unwrap())
    }
}

macro_rules! suite_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = TestDatabase::create(stringify!($name)).await else { return };
                suite::$name(&Pg(db, true)).await;
            }
        )+
        /// The same suite with no projector: every account's lines are read from the tail.
        mod unprojected {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let name = concat!("unprojected_", stringify!($name));
                    let Some(db) = TestDatabase::create(name).await else { return };
                    suite::$name(&Pg(db, false)).await;
                }
            )+
        }
    };
}

suite_tests!(
    check_durable_lifecycle,
    check_idempotency,
    check_refusals_change_nothing,
    check_cold_state,
    check_hold_expiry,
    check_concurrent_writers,
    check_shutdown,
    check_history_and_as_of,
    check_nonces,
    check_settings,
    check_rates,
    check_entries_at,
    check_tagged,
    check_bad_text_fails_alone,
    check_directory_version,
    check_alerts,
    check_status_changes,
);

/// Only with the projector (without one, a refused command's unused number is never found dead).
/// Batches committing out of entry-number order are caught here only when the sampling lands
/// in one; `the_projector_waits_for_a_gap_and_passes_a_dead_one` holds one open on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_settled_position() {
    let Some(db) = TestDatabase::create("settled").await else { return };
    suite::check_settled_position(&Pg(db, true)).await;
}

/// Several writers in one node: their batches run at once, taking turns at shared wallets.
struct PgWriters(TestDatabase);

#[async_trait::async_trait]
impl Backend for PgWriters {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::open(&self.0.url(), Options { writers: 4, ..Options::default() }).await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_writers_in_one_node() {
    let Some(db) = TestDatabase::create("writers").await else { return };
    suite::check_concurrent_writers(&PgWriters(db)).await;
    let Some(db) = TestDatabase::create("writers_expiry").await else { return };
    suite::check_hold_expiry(&PgWriters(db)).await;
}

async fn sql(db: &TestDatabase, q: &str) {
    let (c, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute(q).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_a_foreign_one_too() {
    let Some(db) = TestDatabase::create("newer").await else { return };
    assert_eq!(PgStore::migrate(&db.url()).await.unwrap(), schema::SCHEMA_VERSION);
    // Migrating again is a no-op.
    assert_eq!(PgStore::migrate(&db.url()).await.unwrap(), schema::SCHEMA_VERSION);
    sql(&db, &format!("UPDATE coffer_meta SET value = '{}' WHERE key = 'schema_version'", schema::SCHEMA_VERSION + 1))
        .await;
    match PgStore::open(&db.url(), Options::default()).await {
        Err(StoreError::Open(m)) => assert!(m.contains("newer Coffer"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
    assert!(matches!(PgStore::verify_url(&db.url()).await, Err(StoreError::Open(_))));

    let Some(other) = TestDatabase::create("foreign").await else { return };
    sql(&other, "CREATE TABLE accounts (x INTEGER)").await;
    match PgStore::open(&other.url(), Options::default()).await {
        Err(StoreError::Open(m)) => assert!(m.contains("not a Coffer ledger"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a foreign schema"),
    }
}

/// One value from the database.
async fn one(db: &TestDatabase, q: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.query_one(q, &[]).await.unwrap().get(0)
}

/// Wait (5 s at most) until the projector has reached `seq`.
async fn projected(db: &TestDatabase, seq: i64) {
    for _ in 0..500 {
        if one(db, "SELECT projected_seq FROM coffer_projection").await >= seq {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the projector did not reach entry {seq}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_tampered_balance_journal_or_projection() {
    let Some(db) = TestDatabase::create("tampered").await else { return };
    let s = PgStore::open(&db.url(), Options::default()).await.unwrap();
    let f = suite::fixture(&s).await;
    let dep = MoneyOp::Deposit { account: f.op, amount: suite::usd(500), source: SystemAccount::External };
    s.execute(suite::mv(f.p, "d", dep)).await.unwrap();
    projected(&db, one(&db, "SELECT MAX(seq) FROM entries").await).await;
    s.shutdown().await;
    assert!(PgStore::verify_url(&db.url()).await.unwrap().is_ok());
    let problems = || async { PgStore::verify_url(&db.url()).await.unwrap().problems.join("\n") };
    // A balance that is not what the journal sums to.
    sql(&db, &format!("UPDATE accounts SET posted = posted + 1 WHERE id = '{}'", f.op.0)).await;
    let all = problems().await;
    assert!(all.contains(&f.op.to_string()) && all.contains("journal sums to"), "{all}");
    sql(&db, &format!("UPDATE accounts SET posted = posted - 1 WHERE id = '{}'", f.op.0)).await;
    // A derived line missing.
    sql(&db, "DELETE FROM lines WHERE seq = (SELECT MAX(seq) FROM lines) AND posted < 0").await;
    assert!(problems().await.contains("the lines table differs from the journal"));
    // A journal line changed: its entry no longer balances.
    sql(&db, "UPDATE entries SET lines = overlay(lines PLACING int8send(7) FROM 9 FOR 8) WHERE seq = (SELECT MAX(seq) FROM entries)")
        .await;
    let all = problems().await;
    assert!(all.contains("sum to 507, not zero") && all.contains("recomputes to"), "{all}");
}

/// The projector never passes an entry number a running batch may still commit: a transaction
/// that took an id and then an entry number holds the projection back until it ends; a rolled
/// back one leaves a gap the projector then passes. Reads merge the tail meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_waits_for_a_gap_and_passes_a_dead_one() {
    let Some(db) = TestDatabase::create("gap").await else { return };
    let s = PgStore::open(&db.url(), Options::default()).await.unwrap();
    let f = suite::fixture(&s).await;
    let deposit = |k: &str| {
        suite::mv(f.p, k, MoneyOp::Deposit { account: f.op, amount: suite::usd(100), source: SystemAccount::External })
    };
    s.execute(deposit("a")).await.unwrap();
    // A batch of another node, mid-way: an id, then an entry number, not committed yet.
    let (held, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    held.batch_execute("BEGIN; SELECT pg_current_xact_id(); SELECT nextval('entry_seq')").await.unwrap();
    let gap = one(&db, "SELECT last_value FROM entry_seq").await;
    for k in ["b", "c", "d"] {
        s.execute(deposit(k)).await.unwrap();
    }
    projected(&db, gap - 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(one(&db, "SELECT projected_seq FROM coffer_projection").await, gap - 1, "held back by the gap");
    assert_eq!(s.settled_seq().await.unwrap(), gap as u64 - 1, "the settled position stops before the gap too");
    let page = coffer_store::Page { before: None, after: None, limit: 10 };
    let history = s.history(f.op, page).await.unwrap();
    assert_eq!(history.iter().map(|h| h.line.posted_after).collect::<Vec<_>>(), vec![400, 300, 200, 100]);
    let last = history[0].seq;
    let at = s.balances_at(vec![f.op], last - 1).await.unwrap();
    assert_eq!(at, vec![(300, 0, 0)], "as of the entry before the last, read from the tail");
    held.batch_execute("ROLLBACK").await.unwrap();
    projected(&db, last as i64).await;
    assert_eq!(s.settled_seq().await.unwrap(), last, "past the dead gap");
    assert_eq!(s.history(f.op, page).await.unwrap(), history, "the same history from the table");
    assert_eq!(s.balances_at(vec![f.op], last - 1).await.unwrap(), at);
    s.shutdown().await;
    assert!(PgStore::verify_url(&db.url()).await.unwrap().is_ok());
}

/// A database written by schema version 2 (lines only in the `lines` table, entries listing
/// their accounts in `account_nos`) opens after the upgrade with the same history and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_database_migrates_in_place() {
    let Some(db) = TestDatabase::create("migrate_v2").await else { return };
    let s = PgStore::open(&db.url(), Options::default()).await.unwrap();
    let f = suite::fixture(&s).await;
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        let op = MoneyOp::Deposit {
            account: f.op,
            amount: suite::usd(100 * (i as i64 + 1)),
            source: SystemAccount::External,
        };
        s.execute(suite::mv(f.p, k, op)).await.unwrap();
    }
    let page = coffer_store::Page { before: None, after: None, limit: 10 };
    let before = s.history(f.op, page).await.unwrap();
    projected(&db, one(&db, "SELECT MAX(seq) FROM entries").await).await;
    s.shutdown().await;
    // Back to version 2: each entry's account list, little-endian, in its lines' order.
    let (c, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute("ALTER TABLE entries ADD COLUMN account_nos BYTEA").await.unwrap();
    for r in c.query("SELECT seq, lines FROM entries", &[]).await.unwrap() {
        let (seq, blob): (i64, Vec<u8>) = (r.get(0), r.get(1));
        let nos: Vec<u8> =
            blob.chunks(56).flat_map(|l| i64::from_be_bytes(l[..8].try_into().unwrap()).to_le_bytes()).collect();
        c.execute("UPDATE entries SET account_nos = $1 WHERE seq = $2", &[&nos, &seq]).await.unwrap();
    }
    c.batch_execute(
        "ALTER TABLE entries ALTER COLUMN account_nos SET NOT NULL; ALTER TABLE entries DROP COLUMN lines;
         DROP TABLE coffer_projection; DROP TABLE alerts; DROP TABLE webhooks; DROP TABLE tags; DROP TABLE status_changes; UPDATE coffer_meta SET value = '2' WHERE key = 'schema_version'",
    )
    .await
    .unwrap();
    let s = PgStore::open(&db.url(), Options::default()).await.unwrap();
    assert_eq!(s.history(f.op, page).await.unwrap(), before);
    s.shutdown().await;
    assert!(PgStore::verify_url(&db.url()).await.unwrap().is_ok());
    assert_eq!(
        one(&db, "SELECT value::BIGINT FROM coffer_meta WHERE key = 'schema_version'").await,
        schema::SCHEMA_VERSION
    );
}

/// Three stores (three nodes) on one database: racing payouts never overdraw, every
/// idempotency key takes effect once, holds expire once, and the ledger verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_share_one_ledger() {
    let Some(db) = TestDatabase::create("nodes").await else { return };
    let nodes: Vec<Arc<dyn Store>> = {
        let mut v: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..3 {
            v.push(Arc::new(PgStore::open(&db.url(), Options::default()).await.unwrap()));
        }
        v
    };
    let f = suite::fixture(&*nodes[0]).await;
    let dep = MoneyOp::Deposit { account: f.sub, amount: suite::usd(10_000), source: SystemAccount::External };
    nodes[1].execute(suite::mv(f.p, "fund", dep)).await.unwrap();
    // A hold about to expire, seen by every node's expiry.
    let soon = Timestamp(dial_now().0 + 200_000);
    let hold = MoneyOp::HoldCreate { account: f.sub, amount: suite::usd(1_000), expires_at: Some(soon) };
    nodes[2].execute(suite::mv(f.p, "h", hold)).await.unwrap();

    // 3 nodes x 8 clients, each sending payouts of 70 under 20 keys shared by every client, and
    // transfers back and forth between two wallets.
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..8 {
            let s = node.clone();
            let (p, sub, op) = (f.p, f.sub, f.op);
            tasks.push(tokio::spawn(async move {
                let mut effects = Vec::new();
                for i in 0..20 {
                    let key = format!("payout-{}", (i + c) % 20);
                    let pay = MoneyOp::Payout { account: sub, amount: suite::usd(70) };
                    match s.execute(suite::mv(p, &key, pay)).await {
                        Ok(r) => effects.push((key, r.entry().unwrap().seq, r.replayed)),
                        Err(StoreError::Rejected(_)) => {}
                        Err(e) => panic!("node {n}: {e}"),
                    }
                    let (from, to) = if i % 2 == 0 { (sub, op) } else { (op, sub) };
                    let t = MoneyOp::Transfer { from, to, amount: suite::usd(13) };
                    match s.execute(suite::mv(p, &format!("t-{n}-{c}-{i}"), t)).await {
                        Ok(_) | Err(StoreError::Rejected(_)) => {}
                        Err(e) => panic!("node {n}: {e}"),
                    }
                }
                effects
            }));
        }
    }
    let mut by_key: std::collections::HashMap<String, std::collections::HashSet<Seq>> = Default::default();
    let mut firsts = 0;
    for t in tasks {
        for (key, seq, replayed) in t.await.unwrap() {
            by_key.entry(key).or_default().insert(seq);
            firsts += usize::from(!replayed);
        }
    }
    assert_eq!(by_key.len(), 20);
    assert!(by_key.values().all(|s| s.len() == 1), "each key answered with one entry: {by_key:?}");
    assert_eq!(firsts, 20, "each key took effect once");
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    for s in &nodes {
        let a = s.account(f.sub).await.unwrap().unwrap();
        assert_eq!(a.held, 0, "the hold expired");
        assert!(a.available() >= 0, "{a:?}");
    }
    let expired: u64 = nodes.iter().map(|s| s.stats().expired).sum();
    assert_eq!(expired, 1, "one node expired the hold");
    let sub = nodes[0].account(f.sub).await.unwrap().unwrap();
    let op = nodes[0].account(f.op).await.unwrap().unwrap();
    assert_eq!(sub.posted + op.posted, 10_000 - 20 * 70, "only the 20 payouts left");
    let r = nodes[1].verify().await.unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
    for s in nodes {
        s.shutdown().await;
    }
}

/// Two nodes using one idempotency key for transfers between different wallets at the same instant:
/// neither holds the other's lock, both find the key unused, and the second insert collides
/// with the first. The colliding batch (its writes and COMMIT sent in one pipeline) rolls back,
/// runs again, and sees the key taken. Each key has one effect, and the nodes' connections are
/// left clean (later batches on them commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collision_rolls_back_and_runs_again() {
    let Some(db) = TestDatabase::create("collide").await else { return };
    let a = Arc::new(PgStore::open(&db.url(), Options::default()).await.unwrap());
    let b = Arc::new(PgStore::open(&db.url(), Options::default()).await.unwrap());
    let f = suite::fixture(&*a).await;
    let (w3, w4) =
        (suite::wallet(&*a, f.m, WalletType::Reserve, 0).await, suite::wallet(&*a, f.s, WalletType::Reserve, 0).await);
    for (w, k) in [(f.sub, "fund-sub"), (w3, "fund-w3")] {
        let dep = MoneyOp::Deposit { account: w, amount: suite::usd(100_000), source: SystemAccount::External };
        a.execute(suite::mv(f.p, k, dep)).await.unwrap();
    }
    let mut rounds = 0;
    while a.retries() + b.retries() < 5 && rounds < 500 {
        let key = format!("same-{rounds}");
        // No wallet in common: the two batches take no lock in common.
        let pay = |from, to| suite::mv(f.p, &key, MoneyOp::Transfer { from, to, amount: suite::usd(1) });
        let (x, y) = tokio::join!(a.execute(pay(f.sub, f.op)), b.execute(pay(w3, w4)));
        let ok = [x, y]
            .into_iter()
            .filter(|r| match r {
                Ok(_) => true,
                Err(StoreError::Rejected(LedgerError::IdempotencyConflict { .. })) => false,
                Err(e) => panic!("round {rounds}: {e}"),
            })
            .count();
        assert_eq!(ok, 1, "round {rounds}: one transfer under the key");
        rounds += 1;
    }
    assert!(a.retries() + b.retries() > 0, "no collision in {rounds} rounds");
    // Every pooled connection still works: many batches on both nodes commit.
    let mut tasks = Vec::new();
    for (n, s) in [a.clone(), b.clone()].into_iter().enumerate() {
        for c in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let t = MoneyOp::Transfer { from: f.sub, to: f.op, amount: suite::usd(1) };
                    s.execute(suite::mv(f.p, &format!("after-{n}-{c}-{i}"), t)).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for w in [f.sub, f.op, w3, w4] {
        total += a.account(w).await.unwrap().unwrap().posted;
    }
    assert_eq!(total, 200_000, "transfers conserve money");
    let r = b.verify().await.unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
    a.shutdown().await;
    b.shutdown().await;
}

/// A batch that fails after its transaction began (here: a locked wallet's row cannot be read)
/// is rolled back at once: its connection goes back to the pool outside any transaction, so
/// the wallet's lock is free for others and later batches commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_inside_its_transaction_releases_its_locks() {
    let Some(db) = TestDatabase::create("midfail").await else { return };
    let s = PgStore::open(&db.url(), Options::default()).await.unwrap();
    let f = suite::fixture(&s).await;
    let dep = MoneyOp::Deposit { account: f.sub, amount: suite::usd(1_000), source: SystemAccount::External };
    s.execute(suite::mv(f.p, "fund", dep)).await.unwrap(); // the node now knows both wallets
    sql(&db, &format!("UPDATE accounts SET status = 'BOGUS' WHERE id = '{}'", f.sub.0)).await;
    let t = || MoneyOp::Transfer { from: f.sub, to: f.op, amount: suite::usd(1) };
    let wait = std::time::Duration::from_secs(10);
    for i in 0..4 {
        // Were a failed batch's transaction left open, the next would wait for its lock forever.
        match tokio::time::timeout(wait, s.execute(suite::mv(f.p, &format!("bad-{i}"), t()))).await {
            Ok(Err(StoreError::Storage(_))) => {}
            Ok(other) => panic!("expected a storage error, got {other:?}"),
            Err(_) => panic!("batch {i} waited for a lock a failed batch still holds"),
        }
    }
    let fix = format!("UPDATE accounts SET status = 'ACTIVE' WHERE id = '{}'", f.sub.0);
    tokio::time::timeout(wait, sql(&db, &fix)).await.expect("the wallet's lock was released");
    for i in 0..20 {
        s.execute(suite::mv(f.p, &format!("good-{i}"), t())).await.unwrap();
    }
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 20);
    let r = s.verify().await.unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
    s.shutdown().await;
}

fn dial_now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64)
}

/// A command the database itself refuses (here: a wallet row made unreadable by SQL behind the
/// store's back) fails alone: the commands that shared its batch are run again without it and
/// commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_database_refuses_fails_alone() {
    let Some(db) = TestDatabase::create("alone").await else { return };
    let s = Arc::new(PgStore::open(&db.url(), Options { writers: 1, ..Options::default() }).await.unwrap());
    let f = suite::fixture(&*s).await;
    let dep = |a| MoneyOp::Deposit { account: a, amount: suite::usd(1), source: SystemAccount::External };
    s.execute(suite::mv(f.p, "fund", dep(f.sub))).await.unwrap(); // the node now knows the wallet
    sql(&db, &format!("UPDATE accounts SET status = 'BOGUS' WHERE id = '{}'", f.sub.0)).await;
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (st, c) = (s.clone(), suite::mv(f.p, &format!("good-{round}-{i}"), dep(f.op)));
            tasks.push(tokio::spawn(async move { st.execute(c).await }));
            if i == 10 {
                let (st, c) = (s.clone(), suite::mv(f.p, &format!("bad-{round}"), dep(f.sub)));
                tasks.push(tokio::spawn(async move { st.execute(c).await }));
            }
        }
        let results: Vec<_> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
        let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
        assert_eq!(failed.len(), 1, "round {round}: only the bad command fails: {failed:?}");
        assert!(matches!(failed[0], Err(StoreError::Storage(_))), "{failed:?}");
    }
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 150);
    sql(&db, &format!("UPDATE accounts SET status = 'ACTIVE' WHERE id = '{}'", f.sub.0)).await;
    let r = s.verify().await.unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
    s.shutdown().await;
}
