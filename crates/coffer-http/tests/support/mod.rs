//! The store an HTTP test serves from: the embedded SQLite store in a temporary directory, or,
//! with `COFFER_TEST_BACKEND=postgres`, a PostgreSQL store in a schema of its own (see
//! `coffer_store::testdb`; CI runs these suites both ways).

use std::sync::Arc;

use coffer_store::testdb::TestDatabase;
use coffer_store::Store;

/// Keeps the test's data (directory or schema) until the test ends.
pub enum Backing {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Db(#[allow(dead_code)] TestDatabase),
}

pub async fn open(label: &str) -> (Arc<dyn Store>, Backing) {
    if std::env::var("COFFER_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
        if let Some(db) = TestDatabase::create(label).await {
            let store = coffer_store::postgres::PgStore::open(&db.url(), Default::default()).await.unwrap();
            return (Arc::new(store), Backing::Db(db));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = coffer_store::sqlite::SqliteStore::open(&dir.path().join("data"), Default::default()).unwrap();
    (Arc::new(store), Backing::Dir(dir))
}
