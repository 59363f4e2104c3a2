//! The store an HTTP test serves from: the embedded SQLite store in a temporary directory, or,
//! with `COFFER_TEST_BACKEND=postgres`, a PostgreSQL store in a schema of its own (see
//! `coffer_store::testdb`; CI runs these suites both ways).

pub mod server;

use std::sync::Arc;

use coffer_store::testdb::TestDatabase;
use coffer_store::Store;

/// Keeps the test's data (directory or schema) until the test ends.
pub enum Backing {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Db(#[allow(dead_code)] TestDatabase),
}

/// The backend `COFFER_TEST_BACKEND` asks for: `postgres` or (unset) `sqlite`.
pub fn wanted() -> &'static str {
    match std::env::var("COFFER_TEST_BACKEND").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("COFFER_TEST_BACKEND={other}: expected postgres or sqlite"),
    }
}

/// A store of the backend asked for; never another one in its place (a suite said to run on
/// PostgreSQL fails rather than quietly run on SQLite).
pub async fn open(label: &str) -> (Arc<dyn Store>, Backing) {
    let (store, backing): (Arc<dyn Store>, Backing) = if wanted() == "postgres" {
        let db = TestDatabase::create(label)
            .await
            .unwrap_or_else(|| panic!("COFFER_TEST_BACKEND=postgres but no PostgreSQL server is reachable"));
        let store = coffer_store::postgres::PgStore::open(&db.url(), Default::default()).await.unwrap();
        (Arc::new(store), Backing::Db(db))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let store = coffer_store::sqlite::SqliteStore::open(&dir.path().join("data"), Default::default()).unwrap();
        (Arc::new(store), Backing::Dir(dir))
    };
    assert_eq!(store.backend(), wanted(), "the suite runs on the backend it was asked to");
    (store, backing)
}

/// xorshift64: random walks in tests that are the same for a seed.
#[allow(dead_code)]
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    /// A number in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
