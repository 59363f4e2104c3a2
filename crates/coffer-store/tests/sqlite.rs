//! The shared storage suite on the embedded SQLite store, plus what only SQLite has (data
//! directory checks, schema versions, the process lock).

mod suite;

use std::path::PathBuf;
use std::sync::Arc;

use coffer_store::sqlite::{schema, Options, SqliteStore, DB_FILE};
use coffer_store::{Store, StoreError};
use suite::Backend;

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
    opts: Options,
}

impl Sqlite {
    fn new() -> Self {
        Self::with(Options::default())
    }
    fn with(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        Sqlite { _dir: dir, path, opts }
    }
    /// A store that checkpoints after every commit: its reads find everything on disk, where
    /// the default one finds recent writes in the journal's tail.
    fn eager() -> Self {
        Self::with(Options { checkpoint_entries: 1, ..Options::default() })
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path, self.opts.clone()).unwrap())
    }
}

macro_rules! suite_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::$name(&Sqlite::new()).await;
            }
        )+
        /// The same suite with a checkpoint after every commit.
        mod checkpointed {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    suite::$name(&Sqlite::eager()).await;
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
    check_settled_position,
);

fn open_err(path: &std::path::Path) -> String {
    match SqliteStore::open(path, Options::default()) {
        Ok(_) => panic!("opened"),
        Err(StoreError::Open(m)) => m,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_not_overwritten() {
    let b = Sqlite::new();
    let s = b.open().await;
    s.shutdown().await;
    drop(s);
    let c = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    c.pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1).unwrap();
    drop(c);
    let msg = open_err(&b.path);
    assert!(msg.contains("newer Coffer"), "{msg}");
    let report = SqliteStore::verify_dir(&b.path);
    assert!(matches!(report, Err(StoreError::Open(_))));
}

#[tokio::test]
async fn a_directory_that_is_not_a_ledger_is_refused() {
    let b = Sqlite::new();
    std::fs::create_dir_all(&b.path).unwrap();
    std::fs::write(b.path.join("notes.txt"), "hello").unwrap();
    assert!(open_err(&b.path).contains("not a Coffer data directory"));

    // A foreign SQLite database under the right name is not a ledger either.
    let other = Sqlite::new();
    std::fs::create_dir_all(&other.path).unwrap();
    let c = rusqlite::Connection::open(other.path.join(DB_FILE)).unwrap();
    c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    drop(c);
    assert!(open_err(&other.path).contains("not a Coffer ledger"));

    // A directory holding only a lock file (an open that stopped early) is still empty.
    let early = Sqlite::new();
    std::fs::create_dir_all(&early.path).unwrap();
    std::fs::write(early.path.join("coffer.lock"), "").unwrap();
    early.open().await.shutdown().await;
}

#[tokio::test]
async fn one_process_at_a_time() {
    let b = Sqlite::new();
    let s = b.open().await;
    assert!(open_err(&b.path).contains("in use"));
    // Verification reads alongside the running store.
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
    s.shutdown().await;
    drop(s);
    b.open().await.shutdown().await;
}

#[tokio::test]
async fn verify_reports_a_tampered_balance() {
    let b = Sqlite::new();
    let s = b.open().await;
    let f = suite::fixture(&*s).await;
    s.execute(suite::mv(
        f.p,
        "d",
        coffer_core::MoneyOp::Deposit {
            account: f.op,
            amount: suite::usd(500),
            source: coffer_core::SystemAccount::External,
        },
    ))
    .await
    .unwrap();
    s.shutdown().await;
    drop(s);
    let c = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    c.execute("UPDATE accounts SET posted = posted + 1 WHERE id = ?1", [f.op.0.as_bytes().as_slice()]).unwrap();

    c.execute("DELETE FROM lines WHERE seq = (SELECT MAX(seq) FROM lines) AND posted < 0", []).unwrap();
    drop(c);
    let r = SqliteStore::verify_dir(&b.path).unwrap();
    assert!(!r.is_ok());
    let all = r.problems.join("\n");
    assert!(all.contains(&f.op.to_string()), "{all}");
    // The journal itself still balances: what is wrong is the state derived from it.
    assert!(all.contains("the lines table differs from the journal"), "{all}");
}

/// A data directory written by an older Coffer (schema version 1, before credentials could carry
/// public keys, request ids and rates, and before the journal carried its lines) opens, is
/// migrated in place, and keeps its ledger: balances, history, idempotency keys, verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_is_migrated_in_place() {
    let b = Sqlite::new();
    let s = b.open().await;
    let f = suite::fixture(&*s).await;
    let deposit = coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(700),
        source: coffer_core::SystemAccount::External,
    };
    s.execute(suite::mv(f.p, "d", deposit)).await.unwrap();
    let fee = coffer_core::MoneyOp::Fee { account: f.op, amount: suite::usd(1) };
    let tagged = coffer_core::Movement {
        platform: f.p,
        idempotency_key: "tagged".into(),
        metadata: [("order".to_string(), "A-1".to_string())].into(),
        op: fee,
    };
    s.execute(coffer_core::Command::Move(tagged)).await.unwrap();
    let k = coffer_core::Command::CreateApiKey {
        owner: f.m,
        id: "ck_old".into(),
        secret_hash: "a".repeat(64),
        scope: coffer_core::KeyScope::ReadOnly,
    };
    s.execute(k).await.unwrap();
    s.shutdown().await;
    drop(s);
    // Take the file back to version 1: what an older Coffer left behind.
    let c = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    // Shut down cleanly, so every line is in the `lines` table as version 3 kept them.
    c.execute_batch(
        "DROP TABLE status_changes; DROP TABLE tags; DROP TABLE webhooks; DROP TABLE alerts; DROP TABLE idem; ALTER TABLE entries DROP COLUMN lines;
         CREATE INDEX entries_idem ON entries (idem_hash);
         DELETE FROM meta WHERE key = 'checkpoint_seq';
         DROP TABLE rates; DROP TABLE nonces; ALTER TABLE api_keys DROP COLUMN public_key; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);

    let s = b.open().await;
    let c = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    assert_eq!(schema::version(&c).unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 699, "balances kept");
    let page = coffer_store::Page { before: None, after: None, limit: 10 };
    assert_eq!(s.history(f.op, page).await.unwrap().len(), 2, "history kept");
    let e = s.entry(s.history(f.op, page).await.unwrap()[0].seq).await.unwrap().expect("entries kept");
    assert_eq!(e.lines.len(), 2, "an entry from before v4 reads its lines from the lines table");
    let deposit = coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(700),
        source: coffer_core::SystemAccount::External,
    };
    assert!(s.execute(suite::mv(f.p, "d", deposit)).await.unwrap().replayed, "idempotency keys kept");
    let key = s.api_key("ck_old").await.unwrap().expect("keys kept");
    assert_eq!(key.public_key, None);
    let far = coffer_core::Timestamp(i64::MAX / 2);
    assert!(s.claim_nonce("x", "1", far).await.unwrap(), "the new tables work");
    let found = s.tagged(f.p, "order", "A-1", page).await.unwrap();
    assert_eq!(found.len(), 1, "the metadata index is built from the entries already there");
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
    s.shutdown().await;
}

fn meta_checkpoint(path: &std::path::Path) -> (u64, u64) {
    let c = rusqlite::Connection::open(path.join(DB_FILE)).unwrap();
    let cp: String = c.query_row("SELECT value FROM meta WHERE key = 'checkpoint_seq'", [], |r| r.get(0)).unwrap();
    let max: i64 = c.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0)).unwrap();
    (cp.parse().unwrap(), max as u64)
}

/// Journal-first: recent entries are in the journal's tail (in memory and in the journal on
/// disk), older ones also in the derived rows. Every read merges both and sees every write:
/// history pages across the checkpoint, balances as of any entry, idempotent replays, entries;
/// and a clean shutdown checkpoints the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_merge_the_journal_tail_and_the_checkpoint() {
    // A checkpoint once four entries wait, of the oldest three: the tail is never emptied.
    let opts = Options {
        checkpoint_entries: 4,
        checkpoint_slice: 3,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..Options::default()
    };
    let b = Sqlite::with(opts);
    let s = b.open().await;
    let f = suite::fixture(&*s).await;
    let deposit = |n: i64| coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(100 * n),
        source: coffer_core::SystemAccount::External,
    };
    let mut seqs = Vec::new();
    for n in 1..=10 {
        let r = s.execute(suite::mv(f.p, &format!("k{n}"), deposit(n))).await.unwrap();
        match r.outcome {
            coffer_core::Outcome::Entry { entry, .. } => seqs.push(entry.seq),
            o => panic!("{o:?}"),
        }
    }
    let (checkpoint, max) = meta_checkpoint(&b.path);
    assert!(
        checkpoint > seqs[0] && checkpoint < max,
        "some entries checkpointed, some in the tail: {checkpoint} of {max}"
    );
    let all = s.history(f.op, coffer_store::Page { before: None, after: None, limit: 100 }).await.unwrap();
    assert_eq!(all.iter().map(|h| h.seq).collect::<Vec<_>>(), seqs.iter().rev().copied().collect::<Vec<_>>());
    let expected: Vec<i64> = (1..=10).rev().map(|n: i64| 100 * n * (n + 1) / 2).collect();
    assert_eq!(all.iter().map(|h| h.line.posted_after).collect::<Vec<_>>(), expected);
    // Pages of three, across the checkpoint, neither skip nor repeat.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.history(f.op, coffer_store::Page { before, after: None, limit: 3 }).await.unwrap();
        paged.extend(page.iter().map(|h| h.seq));
        match page.last() {
            Some(h) if page.len() == 3 => before = Some(h.seq),
            _ => break,
        }
    }
    assert_eq!(paged, all.iter().map(|h| h.seq).collect::<Vec<_>>());
    let window = s.history(f.op, coffer_store::Page { before: Some(seqs[8]), after: Some(seqs[1]), limit: 100 }).await;
    assert_eq!(window.unwrap().len(), 6, "entries 3 to 8");
    for (i, seq) in seqs.iter().enumerate() {
        let n = i as i64 + 1;
        let at = s.balances_at(vec![f.op], *seq).await.unwrap();
        assert_eq!(at[0].0, 100 * n * (n + 1) / 2, "as of entry {n}");
        let e = s.entry(*seq).await.unwrap().unwrap();
        assert_eq!(e.lines.len(), 2);
        let again = s.execute(suite::mv(f.p, &format!("k{n}"), deposit(n))).await.unwrap();
        assert!(again.replayed, "key k{n} replays");
        let conflict = s.execute(suite::mv(f.p, &format!("k{n}"), deposit(n + 1))).await;
        assert!(conflict.is_err(), "key k{n} with another request conflicts");
    }
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok(), "verify while a tail is pending");
    s.shutdown().await;
    drop(s);
    let (checkpoint, max) = meta_checkpoint(&b.path);
    assert_eq!(checkpoint, max, "a clean shutdown checkpoints the whole tail");
    let s = b.open().await;
    let after = s.history(f.op, coffer_store::Page { before: None, after: None, limit: 100 }).await.unwrap();
    assert_eq!(
        after.iter().map(|h| (h.seq, h.line.posted_after)).collect::<Vec<_>>(),
        all.iter().map(|h| (h.seq, h.line.posted_after)).collect::<Vec<_>>()
    );
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 5500);
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
    s.shutdown().await;
}

/// Readiness includes the checkpoint: while checkpoints fail (here a trigger refuses the
/// derived rows they write; commits, which write only the journal, go on) the tail grows; past
/// four times `checkpoint_entries` the store is not ready, with the reason; once checkpoints
/// succeed again it is ready, and every balance is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_falls_behind_makes_the_store_unready() {
    let opts = Options {
        checkpoint_entries: 2,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..Options::default()
    };
    let b = Sqlite::with(opts);
    let s = b.open().await;
    let f = suite::fixture(&*s).await;
    let deposit = coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(100),
        source: coffer_core::SystemAccount::External,
    };
    assert_eq!(s.ready().await, Ok(()));
    let other = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    other
        .execute_batch("CREATE TRIGGER stall BEFORE INSERT ON lines BEGIN SELECT RAISE(ABORT, 'stalled'); END")
        .unwrap();
    for n in 0..12 {
        s.execute(suite::mv(f.p, &format!("lag{n}"), deposit.clone())).await.unwrap();
    }
    let why = s.ready().await.unwrap_err();
    assert!(why.contains("checkpoint is behind") && why.contains("bound 8"), "{why}");
    other.execute_batch("DROP TRIGGER stall").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.ready().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "still not ready: {:?}", s.ready().await);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 1200);
    s.shutdown().await;
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
}

/// A commit is answered, and shown to readers, only once its WAL is on disk: with a slow disk
/// (the sync thread held back), a deposit in flight changes no balance, history, entry or hold
/// that a reader sees, and the writer still refuses its idempotency key to a second request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_shown_before_it_is_durable() {
    let slow = std::time::Duration::from_millis(400);
    let b = Sqlite::with(Options { sync_delay: slow, ..Options::default() });
    let s = b.open().await;
    let f = suite::fixture(&*s).await;
    let hold = coffer_core::MoneyOp::HoldCreate { account: f.op, amount: suite::usd(1), expires_at: None };
    let deposit = coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(900),
        source: coffer_core::SystemAccount::External,
    };
    let deposit_again = {
        let d = deposit.clone();
        move || d.clone()
    };
    s.execute(suite::mv(f.p, "d0", deposit.clone())).await.unwrap();
    let h = match s.execute(suite::mv(f.p, "h", hold)).await.unwrap().outcome {
        coffer_core::Outcome::Entry { hold: Some(h), .. } => h,
        o => panic!("{o:?}"),
    };
    let before = s.account(f.op).await.unwrap().unwrap();
    let page = coffer_store::Page { before: None, after: None, limit: 100 };
    let history = s.history(f.op, page).await.unwrap().len();
    let last = s.history(f.op, page).await.unwrap()[0].seq;

    let (s1, s2) = (s.clone(), s.clone());
    let release = coffer_core::MoneyOp::HoldRelease { hold: h.id };
    let in_flight = tokio::spawn(async move { s1.execute(suite::mv(f.p, "d1", deposit)).await });
    let released = tokio::spawn(async move { s2.execute(suite::mv(f.p, "r", release)).await });
    tokio::time::sleep(slow / 4).await;
    assert!(!in_flight.is_finished() && !released.is_finished(), "not answered before the fsync");
    // The writer knows the key in flight: the same request replays, another one conflicts.
    let other = coffer_core::MoneyOp::Deposit {
        account: f.op,
        amount: suite::usd(1),
        source: coffer_core::SystemAccount::External,
    };
    let (s3, s4) = (s.clone(), s.clone());
    let same = tokio::spawn(async move { s3.execute(suite::mv(f.p, "d1", deposit_again())).await });
    let conflict = tokio::spawn(async move { s4.execute(suite::mv(f.p, "d1", other)).await });
    let now = s.account(f.op).await.unwrap().unwrap();
    assert_eq!((now.posted, now.held), (before.posted, before.held), "balances as of the last fsync");
    assert_eq!(s.history(f.op, page).await.unwrap().len(), history);
    assert!(s.entry(last + 1).await.unwrap().is_none(), "no entry past the last fsync");
    assert_eq!(s.seq_at(coffer_core::Timestamp(i64::MAX / 2)).await.unwrap(), last);
    assert_eq!(s.hold(h.id).await.unwrap().unwrap().status, coffer_core::HoldStatus::Open);

    let d1 = in_flight.await.unwrap().unwrap();
    released.await.unwrap().unwrap();
    assert!(!d1.replayed);
    assert!(same.await.unwrap().unwrap().replayed, "the same request under the key replays");
    assert!(conflict.await.unwrap().is_err(), "another request under the key is refused");
    let after = s.account(f.op).await.unwrap().unwrap();
    assert_eq!((after.posted, after.held), (before.posted + 900, 0));
    assert_eq!(s.history(f.op, page).await.unwrap().len(), history + 2);
    assert_ne!(s.hold(h.id).await.unwrap().unwrap().status, coffer_core::HoldStatus::Open);
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
    s.shutdown().await;
}
