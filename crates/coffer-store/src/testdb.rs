//! Throwaway PostgreSQL schemas for tests: each test gets its own schema in the test database,
//! created on demand and dropped when the handle is dropped.
//!
//! The server is `COFFER_TEST_POSTGRES` (a libpq-style connection string), by default
//! `host=127.0.0.1 port=5432 user=postgres dbname=test`. When it cannot be reached, tests skip
//! with a message on stderr, unless `COFFER_REQUIRE_POSTGRES=1` (set by CI), which makes a
//! missing server fail them.

use std::sync::atomic::{AtomicU64, Ordering};

const DEFAULT: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

pub struct TestDatabase {
    base: String,
    schema: String,
}

fn base() -> String {
    std::env::var("COFFER_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT.to_string())
}

fn required() -> bool {
    std::env::var("COFFER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl TestDatabase {
    /// A new empty schema, or `None` (after saying so on stderr) when no server is reachable
    /// and it is not required.
    pub async fn create(label: &str) -> Option<TestDatabase> {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = base();
        let schema = format!(
            "coffer_test_{}_{}_{}",
            label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(24).collect::<String>(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .to_ascii_lowercase();
        match run(&base, &format!("CREATE SCHEMA {schema}")).await {
            Ok(()) => Some(TestDatabase { base, schema }),
            Err(e) if required() => panic!("PostgreSQL is required (COFFER_REQUIRE_POSTGRES=1) but unusable: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL tests ({label}): no server at {base:?}: {e}");
                None
            }
        }
    }

    /// The connection string of this schema (for `PgStore::open` or `coffer --database`).
    pub fn url(&self) -> String {
        format!("{} options='-c search_path={}'", self.base, self.schema)
    }
}

async fn run(base: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await;
    drop(client);
    let _ = task.await;
    r
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (base, sql) = (self.base.clone(), format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        // Drop may run inside or outside a runtime: do it on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(run(&base, &sql))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop test schema {}: {e}", self.schema);
        }
    }
}
