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
}

impl Sqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        Sqlite { _dir: dir, path }
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path, Options::default()).unwrap())
    }
}

macro_rules! suite_tests {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            suite::$name(&Sqlite::new()).await;
        }
    )+};
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
    check_bad_text_fails_alone,
    check_directory_version,
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
    assert!(all.contains("sum to"), "{all}");
}

/// A data directory written by an older Coffer (schema version 1, before credentials could carry
/// public keys, request ids and rates) opens, is migrated in place, and keeps its ledger.
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
    c.execute_batch(
        "DROP TABLE rates; DROP TABLE nonces; ALTER TABLE api_keys DROP COLUMN public_key; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);

    let s = b.open().await;
    let c = rusqlite::Connection::open(b.path.join(DB_FILE)).unwrap();
    assert_eq!(schema::version(&c).unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(s.account(f.op).await.unwrap().unwrap().posted, 700, "balances kept");
    let key = s.api_key("ck_old").await.unwrap().expect("keys kept");
    assert_eq!(key.public_key, None);
    let far = coffer_core::Timestamp(i64::MAX / 2);
    assert!(s.claim_nonce("x", "1", far).await.unwrap(), "the new tables work");
    assert!(SqliteStore::verify_dir(&b.path).unwrap().is_ok());
    s.shutdown().await;
}
